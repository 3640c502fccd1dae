"""Report sections from optional run-folder files: topic adapters with their ensemble, and blind A/B ratings.

The files are RUN/topics/topics.json and RUN/eval-ensemble.json (written by `physlora run --per-topic`),
and RUN/ab.json (written by `physlora ab report`). A run without them gets no section; a file that
exists but cannot be parsed gets a section that names the problem.
"""

from __future__ import annotations

import json
from pathlib import Path

from physlora.report import formatting as fmt
from physlora.report.document import Block, Heading, Paragraph, Table
from physlora.report.evaluation import METRIC_LABELS, metric_rows, verdict
from physlora.report.runfolder import RunFiles

ENSEMBLE_FILE = "eval-ensemble.json"
TOPIC_PLAN_FILE = "topics/topics.json"
AB_FILE = "ab.json"


def _read_optional(path: Path) -> tuple[dict | None, str | None]:
    """Return (content, None), (None, None) when the file is absent, or (None, problem) when it is unreadable."""
    if not path.is_file():
        return None, None
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        return None, f"{path.name} is unreadable ({error})"
    return (content, None) if isinstance(content, dict) else (None, f"{path.name} does not contain a JSON object")


def _difference_cell(measure: dict | None) -> str:
    if not measure:
        return fmt.MISSING
    return f"{fmt.interval(measure['difference'], as_points=True)}, {verdict(measure['difference'])}"


def _plan_blocks(plan: dict | None) -> list[Block]:
    if plan is None:
        return [Paragraph(f"{TOPIC_PLAN_FILE} not found, so the topic adapters' training is not described.")]
    adapters = plan.get("adapters", {})
    rows = [[topic, fmt.integer((entry.get("items") or {}).get("train")), str(entry.get("steps", fmt.MISSING)),
             entry.get("status", fmt.MISSING), entry.get("folder", "")] for topic, entry in adapters.items()]
    skipped = plan.get("skipped", {})
    skipped_rows = [[topic, fmt.integer(entry.get("n_train")), entry.get("reason", "")]
                    for topic, entry in skipped.items()]
    return [
        Paragraph(f"One adapter per topic with at least {plan.get('min_train_items', fmt.MISSING)} training items, "
                  "trained with the run's model, LoRA and training settings on that topic's items only."),
        Table(["topic adapter", "training items", "steps", "status", "run folder"], rows),
        Paragraph(f"Topics without an adapter ({len(skipped)}):"),
        Table(["topic", "training items", "reason"], skipped_rows),
    ]


def _routing_paragraph(routing: dict) -> Paragraph:
    per_adapter = ", ".join(f"{name} {count}" for name, count in sorted(routing.get("items_per_adapter", {}).items()))
    to_general = routing.get("to_general", {})
    by_topic = ", ".join(f"{topic} {count}" for topic, count in sorted(to_general.get("by_topic", {}).items()))
    return Paragraph(
        f"Routing ({routing.get('input', 'n/a')}): items per adapter: {per_adapter}. "
        f"{to_general.get('n', 'n/a')} items went to the general adapter: "
        f"{to_general.get('no_topic_adapter', 'n/a')} because their topic has no adapter and "
        f"{to_general.get('not_physics', 'n/a')} because the classifier did not count the question text as "
        f"physics (classified topics: {by_topic or 'none'}). The routed topic equals the record's stored topic for "
        f"{routing.get('agrees_with_record_topic', 'n/a')} items."
    )


def _three_model_table(comparisons: dict) -> Table:
    against_base = comparisons.get("ensemble_vs_base", {}).get("metrics", {}).get("overall", {})
    against_general = comparisons.get("ensemble_vs_general", {}).get("metrics", {}).get("overall", {})
    general_vs_base = comparisons.get("general_vs_base", {}).get("metrics", {}).get("overall", {})
    rows = []
    for name, measure in metric_rows(against_base):
        rows.append([METRIC_LABELS[name], str(measure["n"]), fmt.interval(measure["base"]),
                     fmt.interval((against_general.get(name) or {}).get("base")), fmt.interval(measure["adapted"]),
                     _difference_cell(measure), _difference_cell(against_general.get(name)),
                     _difference_cell(general_vs_base.get(name))])
    return Table(["metric", "items", "base", "general", "ensemble", "ensemble - base", "ensemble - general",
                  "general - base"], rows)


def _loss_paragraph(comparisons: dict) -> Paragraph:
    against_base = comparisons.get("ensemble_vs_base", {}).get("metrics", {}).get("overall", {}).get("loss") or {}
    against_general = comparisons.get("ensemble_vs_general", {}).get("metrics", {}).get("overall", {}).get("loss") or {}
    return Paragraph(
        f"Loss (token-weighted, nats per token, over {fmt.integer(against_base.get('n_tokens'))} target tokens): "
        f"base {fmt.loss(against_base.get('base'))}, general {fmt.loss(against_general.get('base'))}, "
        f"ensemble {fmt.loss(against_base.get('adapted'))}."
    )


def _adapter_table(comparisons: dict) -> Table:
    groups = comparisons.get("ensemble_vs_general", {}).get("metrics", {}).get("by_adapter", {})
    rows = []
    for adapter, group in groups.items():
        for name, measure in metric_rows(group):
            rows.append([adapter, METRIC_LABELS[name], str(measure["n"]), fmt.interval(measure["base"]),
                         fmt.interval(measure["adapted"]), _difference_cell(measure)])
    return Table(["routed to", "metric", "items", "general", "ensemble", "ensemble - general"], rows)


def _ensemble_verdicts(comparisons: dict) -> list[str]:
    verdicts = []
    for key, text in (("ensemble_vs_general", "the ensemble against the general adapter"),
                      ("ensemble_vs_base", "the ensemble against the base model")):
        overall = comparisons.get(key, {}).get("metrics", {}).get("overall", {})
        parts = [f"{METRIC_LABELS[name]} {fmt.points(measure['difference']['value'])} "
                 f"({verdict(measure['difference'])})" for name, measure in metric_rows(overall)]
        if parts:
            verdicts.append(f"Verdict, {text}: " + "; ".join(parts) + ".")
    return verdicts


def ensemble_section(files: RunFiles) -> list[Block]:
    """Topic adapters, routing and the base / general / ensemble comparison; empty without eval-ensemble.json."""
    result, problem = _read_optional(files.run_dir / ENSEMBLE_FILE)
    plan, plan_problem = _read_optional(files.run_dir / TOPIC_PLAN_FILE)
    if result is None and plan is None and problem is None and plan_problem is None:
        return []
    blocks: list[Block] = [Heading("Topic adapters and ensemble")]
    blocks += [Paragraph(text) for text in (problem, plan_problem) if text]
    blocks += _plan_blocks(plan)
    if result is None:
        return blocks + [Paragraph(f"{ENSEMBLE_FILE} not found; run `physlora eval-ensemble {files.run_dir}`.")]
    settings = result.get("settings", {})
    comparisons = result.get("comparisons", {})
    blocks += [
        _routing_paragraph(result.get("routing", {})),
        Paragraph(f"Split {settings.get('split', 'n/a')}, {settings.get('n_items', 'n/a')} items, the same generation "
                  f"limit ({settings.get('max_new_tokens', 'n/a')} tokens) and bootstrap as the Evaluation section. "
                  "Each difference is paired (same resampled items for both models); an interval that includes 0 "
                  f"is not significant. Base and general outputs: {settings.get('base_and_general_from', 'n/a')}."),
        Heading("Base, general adapter and ensemble", 3),
        _three_model_table(comparisons),
        _loss_paragraph(comparisons),
        *[Paragraph(text) for text in _ensemble_verdicts(comparisons)],
        Heading("Per routed adapter", 3),
        _adapter_table(comparisons),
    ]
    return blocks


def ab_section(files: RunFiles) -> list[Block]:
    """Blind A/B win, tie and loss rates of the adapted model from RUN/ab.json; empty without the file."""
    report, problem = _read_optional(files.run_dir / AB_FILE)
    if report is None and problem is None:
        return []
    blocks: list[Block] = [Heading("Blind A/B ratings")]
    if report is None:
        return blocks + [Paragraph(f"{problem}; write it again with `physlora ab report DB --run {files.run_dir}`.")]
    rates = report.get("rates", {})
    counts = report.get("counts", {})
    interval = report.get("interval", {})
    rows = [[name, fmt.integer(counts.get(name)), fmt.interval(rates.get(name))] for name in ("win", "tie", "loss")]
    without_ties = report.get("win_rate_without_ties")
    rows.append(["win without ties", fmt.integer(counts.get("win")), fmt.interval(without_ties)])
    return blocks + [
        Paragraph(f"Adapter {report.get('adapter', 'n/a')} against the base model: {report.get('n_judgements', 'n/a')} "
                  f"judgements of {report.get('n_items', 'n/a')} items by {report.get('n_raters', 'n/a')} raters "
                  f"({report.get('compared', '')}). Intervals: {interval.get('method', 'n/a')} score, confidence "
                  f"{fmt.percent(interval.get('confidence'))}, treating judgements as independent."),
        Table(["outcome", "judgements", "rate [interval]"], rows),
    ]
