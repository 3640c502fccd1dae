"""Report sections about evaluation: base versus adapted tables with intervals, and example predictions."""

from __future__ import annotations

from physlora.report import formatting as fmt
from physlora.report.analysis import significant
from physlora.report.document import Block, Heading, Image, Paragraph, Table
from physlora.report.runfolder import RunFiles

METRIC_LABELS = {
    "mc_accuracy_sum": "MC accuracy (summed log-probability)",
    "mc_accuracy_mean": "MC accuracy (mean log-probability per token)",
    "exact_match": "exact match",
    "token_f1": "token F1",
    "rouge_l": "ROUGE-L F",
}
EXAMPLE_COUNT = 5
EXAMPLE_TEXT_LIMIT = 160


def verdict(difference: dict | None) -> str:
    result = significant(difference)
    if result is None:
        return "n/a"
    return "significant" if result else "not significant"


def metric_rows(group: dict) -> list[tuple[str, dict]]:
    """(metric name, measure) pairs of a group that were measured on at least one item."""
    return [(name, group[name]) for name in METRIC_LABELS if (group.get(name) or {}).get("n")]


def _overall_table(group: dict) -> Table:
    rows = [[METRIC_LABELS[name], str(measure["n"]), fmt.interval(measure["base"]), fmt.interval(measure["adapted"]),
             fmt.interval(measure["difference"], as_points=True), verdict(measure["difference"])]
            for name, measure in metric_rows(group)]
    return Table(["metric", "items", "base", "adapted", "adapted - base", "difference"], rows)


def _group_table(groups: dict[str, dict], label: str) -> Table:
    rows = []
    for group_name, group in groups.items():
        for name, measure in metric_rows(group):
            rows.append([group_name, METRIC_LABELS[name], str(measure["n"]), fmt.interval(measure["base"]),
                         fmt.interval(measure["adapted"]), fmt.interval(measure["difference"], as_points=True),
                         verdict(measure["difference"])])
    return Table([label, "metric", "items", "base", "adapted", "adapted - base", "difference"], rows)


def _loss_paragraph(group: dict) -> Paragraph:
    loss = group.get("loss") or {}
    return Paragraph(
        f"Loss on the evaluated items (token-weighted, nats per token, over {fmt.integer(loss.get('n_tokens'))} target "
        f"tokens): base {fmt.loss(loss.get('base'))}, adapted {fmt.loss(loss.get('adapted'))}, difference "
        f"{fmt.signed(loss.get('difference'))} ({fmt.relative_change(loss.get('difference'), loss.get('base'))})."
    )


def _settings_paragraph(settings: dict, overall: dict) -> Paragraph:
    limit = settings.get("max_new_tokens")
    if settings.get("source") == "longest_reference":
        limit_text = (f"{limit} (longest reference {settings.get('longest_reference_tokens')} tokens + margin "
                      f"{settings.get('generation_margin')})")
    else:
        limit_text = f"{limit} (set in the config)"
    confidence = settings.get("confidence")
    return Paragraph(
        f"Split {settings.get('split', 'n/a')}: {settings.get('n_items', 'n/a')} items, "
        f"{overall.get('n_choice_items', 'n/a')} with answer choices. Greedy generation with max_new_tokens {limit_text}. "
        f"Intervals: {fmt.percent(confidence) if confidence is not None else 'n/a'} percentile bootstrap, "
        f"{settings.get('bootstrap_samples', 'n/a')} resamples of the items, seed {settings.get('seed', 'n/a')}; the "
        "difference uses the same resampled items for both models. A difference whose interval includes 0 is "
        "not significant."
    )


def evaluation_section(files: RunFiles, plot: str | None) -> list[Block]:
    blocks: list[Block] = [Heading("Evaluation")]
    if files.eval is None:
        return blocks + [Paragraph(f"Missing: eval.json not found; run `physlora eval {files.run_dir}`.")]
    metrics = files.eval.get("metrics", {})
    overall = metrics.get("overall", {})
    blocks += [_settings_paragraph(files.eval.get("settings", {}), overall), Heading("Overall", 3),
               _overall_table(overall), _loss_paragraph(overall)]
    for key, label in (("by_topic", "topic"), ("by_source", "source")):
        if metrics.get(key):
            blocks += [Heading(f"Per {label}", 3), _group_table(metrics[key], label)]
    if plot:
        blocks.append(Image(plot, "Accuracy per topic, base and adapted, with bootstrap intervals"))
    return blocks


def _shorten(text: str, limit: int = EXAMPLE_TEXT_LIMIT) -> str:
    """Cut at a space so that no number or word is split."""
    text = " ".join(str(text).split())
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit)
    return text[: cut if cut > 0 else limit] + " …"


def _example_row(row: dict) -> list[str]:
    cells = [row.get("id", ""), row.get("topic", ""), _shorten(row.get("question", "")), _shorten(row.get("reference", ""))]
    for model in ("base", "adapted"):
        fields = row.get(model) or {}
        choice = fields.get("pick_sum")
        picked = f"; picks choice {choice}" if choice is not None else ""
        cells.append(f"{_shorten(fields.get('answer', '')) or '(empty)'} "
                     f"(EM {fields.get('exact_match', 'n/a')}, F1 {fmt.plain(fields.get('token_f1'), 2)}{picked})")
    return cells


def examples_section(files: RunFiles) -> list[Block]:
    blocks: list[Block] = [Heading("Example predictions")]
    if not files.predictions:
        return blocks + [Paragraph("Missing: predictions.jsonl not found or empty.")]
    rows = [_example_row(row) for row in files.predictions[:EXAMPLE_COUNT]]
    return blocks + [
        Paragraph("The first items of predictions.jsonl, with greedy answers; picks count choices from 0 by summed "
                  "log-probability."),
        Table(["id", "topic", "question", "reference", "base answer", "adapted answer"], rows),
    ]
