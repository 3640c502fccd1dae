"""Write RUN/report.md, RUN/report.html and RUN/plots/*.png from the files of a run folder.

The report never loads a model: it reads config.yaml, summary.json, metrics.jsonl, eval.json,
predictions.jsonl and the data audit, so it can be rebuilt anywhere from the folder alone. Every
percentage and difference in it is computed here from stored values.
"""

from __future__ import annotations

import logging
from pathlib import Path

from physlora.io import write_text_atomic
from physlora.report import formatting as fmt
from physlora.report import plots
from physlora.report.analysis import overfitting
from physlora.report.checks import FAIL, Check, run_checks
from physlora.report.continual import forgetting_section, stopping_findings
from physlora.report.document import Block, Document, Heading, Image, Paragraph, Table, render_html, render_markdown
from physlora.report.evaluation import METRIC_LABELS, evaluation_section, examples_section, metric_rows, verdict
from physlora.report.ensemble import ab_section, ensemble_section
from physlora.report.runfolder import RunFiles, read_run_folder
from physlora.report.sections import (
    audit_section,
    configuration_section,
    gradient_section,
    missing_section,
    parameters_section,
    training_section,
)

logger = logging.getLogger(__name__)


def _training_findings(files: RunFiles) -> list[str]:
    epochs = files.epochs
    findings = []
    if files.summary:
        findings.append(f"Training status: {files.summary.get('status', 'n/a')} after "
                        f"{files.summary.get('steps', 'n/a')} optimizer steps.")
    with_val = [record for record in epochs if record.get("val_loss") is not None]
    if len(with_val) >= 2:
        first, last = with_val[0], with_val[-1]
        change = last["val_loss"] - first["val_loss"]
        direction = "did not change"
        if change < 0:
            direction = "fell"
        elif change > 0:
            direction = "rose"
        findings.append(f"Validation loss {direction} from {fmt.loss(first['val_loss'])} (epoch {first['epoch']}) to "
                        f"{fmt.loss(last['val_loss'])} (epoch {last['epoch']}), "
                        f"{fmt.relative_change(change, first['val_loss'])}.")
    result = overfitting(epochs)
    if result["verdict"] == "overfitting":
        findings.append(f"Overfitting at epoch {result['epoch']}: validation loss exceeds train loss by "
                        f"{100 * result['gap_fraction']:.1f}% and rose over the epoch.")
    elif result["verdict"] == "not overfitting":
        findings.append("No overfitting by the rule in the Training section.")
    return findings


def _evaluation_findings(files: RunFiles) -> list[str]:
    if files.eval is None:
        return []
    findings = []
    overall = files.eval.get("metrics", {}).get("overall", {})
    loss = overall.get("loss") or {}
    if loss.get("base") is not None and loss.get("adapted") is not None:
        split = files.eval.get("settings", {}).get("split", "evaluated")
        findings.append(f"Loss on the {split} items: base {fmt.loss(loss['base'])}, adapted {fmt.loss(loss['adapted'])} "
                        f"({fmt.relative_change(loss['adapted'] - loss['base'], loss['base'])}).")
    for name, measure in metric_rows(overall):
        difference = measure["difference"]
        label = METRIC_LABELS[name][0].upper() + METRIC_LABELS[name][1:]
        findings.append(
            f"{label}: base {fmt.percent(measure['base']['value'])}, adapted "
            f"{fmt.percent(measure['adapted']['value'])}, difference {fmt.interval(difference, as_points=True)}: "
            f"{verdict(difference)}."
        )
    return findings


def findings_section(files: RunFiles, checks: list[Check]) -> list[Block]:
    findings = _training_findings(files) + stopping_findings(files) + _evaluation_findings(files)
    failed = [check.name for check in checks if check.status == FAIL]
    if failed:
        findings.append("Consistency checks FAILED: " + "; ".join(failed) + ".")
    else:
        findings.append("Every consistency check that could run passed.")
    if files.missing:
        findings.append("Missing: " + "; ".join(entry.split(":", 1)[0] for entry in files.missing) + ".")
    return [Heading("Findings"), *[Paragraph(text) for text in findings]]


def checks_section(checks: list[Check]) -> list[Block]:
    rows = [[check.name, check.status.upper(), check.detail] for check in checks]
    return [Heading("Consistency checks"), Table(["check", "result", "detail"], rows)]


def _training_plots(files: RunFiles, folder: Path) -> list[Block]:
    max_norm = files.config_value("training.max_grad_norm")
    made = [
        (plots.loss_per_step(files, folder), "Train loss per optimizer step; dashed lines mark the end of each epoch"),
        (plots.validation_loss(files, folder), "Validation loss per epoch (0 = before training) and epoch train loss"),
        (plots.gradient_norm(files, folder, max_norm), "Global gradient norm per step, before clipping"),
    ]
    return [Image(path, caption) for path, caption in made if path]


def _accuracy_plot(files: RunFiles, folder: Path) -> str | None:
    overall = (files.eval or {}).get("metrics", {}).get("overall", {})
    metric = "mc_accuracy_sum" if (overall.get("mc_accuracy_sum") or {}).get("n") else "exact_match"
    return plots.accuracy_by_topic(files, folder, metric, METRIC_LABELS[metric])


def build_document(files: RunFiles) -> Document:
    """Assemble the report from the parsed files; writes the plots into RUN/plots as a side effect."""
    checks = run_checks(files)
    folder = files.run_dir / plots.PLOTS_DIR
    plots.remove_old_plots(folder)
    document = Document(title=f"Run report: {files.run_dir.name}")
    document.add(*findings_section(files, checks))
    document.add(*configuration_section(files))
    document.add(*audit_section(files))
    document.add(*parameters_section(files))
    document.add(*training_section(files))
    document.add(*_training_plots(files, folder))
    document.add(*gradient_section(files))
    document.add(*evaluation_section(files, _accuracy_plot(files, folder)))
    document.add(*forgetting_section(files))
    document.add(*examples_section(files))
    document.add(*ensemble_section(files))
    document.add(*ab_section(files))
    document.add(*checks_section(checks))
    document.add(*missing_section(files))
    return document


def write_report(run_dir: Path) -> Path:
    """Write report.md, report.html (plots embedded) and plots/*.png into `run_dir`; return report.md's path.

    Raises RunFolderError when `run_dir` does not exist or contains no training files.
    """
    run_dir = Path(run_dir)
    files = read_run_folder(run_dir)
    document = build_document(files)
    markdown_path = run_dir / "report.md"
    write_text_atomic(markdown_path, render_markdown(document))
    write_text_atomic(run_dir / "report.html", render_html(document, run_dir))
    logger.info("wrote %s and %s", markdown_path, run_dir / "report.html")
    return markdown_path
