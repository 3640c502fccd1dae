"""Report parts about how training ended (best epoch, early stopping) and about continual adaptation.

The forgetting table reads RUN/forgetting.json, written by `physlora forgetting RUN`. "Before" is the
parent adapter on the previous test split, and the base model or the parent adapter on the new test
split. "After" is always the new adapter.
"""

from __future__ import annotations

from physlora.report import formatting as fmt
from physlora.report.analysis import significant
from physlora.report.document import Block, Heading, Paragraph, Table
from physlora.report.evaluation import METRIC_LABELS, metric_rows
from physlora.report.runfolder import RunFiles

SPLIT_LABELS = {"previous": "previous test split", "new": "new test split"}
COMPARISON_ORDER = ("previous", "new", "new_vs_previous")


def stopping_findings(files: RunFiles) -> list[str]:
    """Sentences on the best epoch, why training stopped and which adapter RUN/adapter holds."""
    summary = files.summary or {}
    if "stop_reason" not in summary:
        return []
    findings = [f"Training ended ({summary['stop_reason']})."]
    if summary.get("best_epoch") is not None:
        findings.append(f"Best epoch by validation loss: {summary['best_epoch']} "
                        f"(validation loss {fmt.loss(summary.get('best_val_loss'))}).")
    if summary.get("best_adapter") and summary.get("adapter_epoch") is not None:
        findings.append(f"RUN/adapter contains the best adapter, from epoch {summary['adapter_epoch']}; the last "
                        "epoch's adapter is in RUN/adapter-last.")
    continual = summary.get("continual")
    if continual:
        findings.append(f"Training started from the adapter of {continual['parent_run']} and replayed "
                        f"{continual.get('replayed', 0)} of its training records "
                        f"(replay fraction {continual.get('replay_fraction', 0):g}).")
    return findings


def change_verdict(difference: dict | None, split: str) -> str:
    """Plain verdict on an after-minus-before interval: forgetting or gain only when the interval excludes 0."""
    result = significant(difference)
    if result is None:
        return "n/a"
    if not result:
        return "no significant change"
    if difference["value"] < 0:
        return "forgetting" if split == "previous" else "significant loss"
    return "improved" if split == "previous" else "significant gain"


def forgetting_section(files: RunFiles) -> list[Block]:
    """Build the forgetting table: each split, metric, before, after and the paired difference, with verdicts."""
    result = files.forgetting
    if result is None:
        return []
    comparisons = result.get("comparisons", {})
    rows, loss_lines = [], []
    for name in COMPARISON_ORDER:
        entry = comparisons.get(name)
        if not entry:
            continue
        split = entry["split"]
        overall = entry["metrics"]["overall"]
        for metric, measure in metric_rows(overall):
            difference = measure["difference"]
            rows.append([SPLIT_LABELS[split], METRIC_LABELS[metric], str(measure["n"]), entry["before"],
                         fmt.interval(measure["base"]), fmt.interval(measure["adapted"]),
                         fmt.interval(difference, as_points=True), change_verdict(difference, split)])
        loss = overall.get("loss") or {}
        loss_lines.append(f"Loss on the {SPLIT_LABELS[split]} ({entry['n_items']} items, {entry['data_file']}), "
                          f"{entry['before']} against the new adapter: "
                          f"{entry['before']} {fmt.loss(loss.get('base'))}, "
                          f"new adapter {fmt.loss(loss.get('adapted'))} "
                          f"({fmt.signed(loss.get('difference'))}).")
    settings = result.get("settings", {})
    intro = (f"Continual adaptation from {result.get('parent_run', 'n/a')}. On the previous test split, before is the "
             "parent adapter, so a negative difference is forgetting. On the new test split, before is the base "
             "model (the gain of both trainings) and then the parent adapter (the gain of the new training "
             "alone). Differences are paired on the same "
             f"items, with {settings.get('bootstrap_samples', 'n/a')} bootstrap resamples at confidence "
             f"{settings.get('confidence', 'n/a')}; a verdict other than no significant change needs an interval "
             "that excludes 0.")
    header = ["split", "metric", "items", "before: model", "before", "after: new adapter", "after - before", "verdict"]
    table = Table(header, rows)
    return [Heading("Continual adaptation and forgetting"), Paragraph(intro), table,
            *[Paragraph(line) for line in loss_lines]]
