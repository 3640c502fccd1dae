"""Report sections about the run's setup and training: configuration, data audit, parameters, epochs, gradients."""

from __future__ import annotations

from physlora.report import formatting as fmt
from physlora.report.analysis import (
    OVERFITTING_GAP,
    clipping_note,
    epoch_rows,
    grad_norm_stats,
    lora_groups,
    overfitting,
)
from physlora.report.document import Block, Bullets, Code, Heading, Paragraph, Table
from physlora.report.runfolder import RunFiles

# (label, dotted config key) of the settings table.
KEY_SETTINGS = [
    ("model", "model.name"), ("model family", "model.family"), ("initialisation", "model.init"),
    ("LoRA rank r", "lora.r"), ("LoRA alpha", "lora.alpha"), ("LoRA dropout", "lora.dropout"),
    ("LoRA target modules", "lora.target_modules"), ("learning rate", "training.learning_rate"),
    ("batch size", "training.batch_size"), ("gradient accumulation", "training.gradient_accumulation_steps"),
    ("warmup steps", "training.warmup_steps"), ("epochs", "training.epochs"), ("max steps", "training.max_steps"),
    ("max gradient norm", "training.max_grad_norm"), ("precision", "training.precision"),
    ("training seed", "training.seed"), ("max sequence length", "training.max_seq_length"),
    ("max target length", "training.max_target_length"), ("evaluation split", "evaluation.split"),
]
AUDIT_KEYS = ("splits", "sources", "topics", "duplicates", "leakage", "tokens")
SOURCE_COLUMNS = ("read", "rejected", "filtered_non_physics", "excluded_by_topic", "duplicates_removed",
                  "subsampled_away", "leakage_removed", "kept")


def configuration_section(files: RunFiles) -> list[Block]:
    blocks: list[Block] = [Heading("Configuration")]
    if files.config is None and files.summary is None:
        return blocks + [Paragraph("No configuration: config.yaml and summary.json are missing.")]
    rows = [[label, _setting(files.config_value(key, "n/a"))] for label, key in KEY_SETTINGS]
    if files.config_value("lora.target_modules", "n/a") is None:
        rows[[key for _, key in KEY_SETTINGS].index("lora.target_modules")][1] = _adapted_module_names(files)
    rows.append(["training processes", _processes(files.summary)])
    blocks.append(Table(["setting", "value"], rows))
    if files.config_text is not None:
        blocks.append(Code(files.config_text, title="config.yaml (complete)", language="yaml", collapsed=True))
    return blocks


def _adapted_module_names(files: RunFiles) -> str:
    """Module names the architecture default picked, read from the LoRA layers listed in summary.json."""
    modules = ((files.summary or {}).get("params") or {}).get("lora_modules") or []
    names = sorted({module["name"].rsplit(".", 1)[-1] for module in modules if "name" in module})
    return f"architecture default: {', '.join(names)}" if names else "architecture default"


def _processes(summary: dict | None) -> str:
    """Process count and engine from summary.json, for example "2 (fsdp)"."""
    distributed = (summary or {}).get("distributed")
    if not distributed:
        return "n/a (not in summary.json)"
    return f"{distributed['processes']} ({distributed['engine']})"


def _setting(value) -> str:
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    return "none" if value is None else str(value)


def _scalar_table(mapping: dict, row_label: str, columns: tuple[str, ...] | None = None) -> Table:
    """{row: {column: scalar}} or {row: scalar} as a table.

    `columns` picks and orders the columns (those present in some row); by default every scalar one.
    """
    present: list[str] = []
    for value in mapping.values():
        if isinstance(value, dict):
            present += [key for key, item in value.items() if key not in present and not isinstance(item, (dict, list))]
    if columns is not None:
        present = [column for column in columns if column in present]
    if not present:
        return Table([row_label, "count"], [[str(key), str(value)] for key, value in mapping.items()])
    rows = [[str(key), *[str(value.get(column, "n/a")) for column in present]] for key, value in mapping.items()]
    return Table([row_label, *present], rows)


def audit_section(files: RunFiles) -> list[Block]:
    blocks: list[Block] = [Heading("Data audit")]
    audit = files.audit
    if audit is None:
        return blocks + [Paragraph(f"Missing: no data audit at {files.audit_path}.")]
    absent = [key for key in AUDIT_KEYS if key not in audit]
    if isinstance(audit.get("splits"), dict):
        blocks += [Paragraph("Records per split:"), _scalar_table(audit["splits"], "split")]
    if isinstance(audit.get("sources"), dict):
        blocks += [Paragraph("Rows per source: read, rejected as malformed, filtered as not physics, excluded as "
                             "another topic than data.topics, duplicates, subsampled away, removed as leakage, and kept:"),
                   _scalar_table(audit["sources"], "source", SOURCE_COLUMNS)]
    if isinstance(audit.get("source_by_split"), dict):
        blocks += [Paragraph("Records per source and split:"), _scalar_table(audit["source_by_split"], "source")]
    topics = audit.get("topic_by_split") or audit.get("topics")
    if isinstance(topics, dict):
        blocks += [Paragraph("Records per topic:"), _scalar_table(topics, "topic")]
    blocks += _duplicates_and_truncation(audit)
    reconciled = (audit.get("checks") or {}).get("counts_reconcile")
    if reconciled is not None:
        blocks.append(Paragraph(f"The audit's own count reconciliation: {'passed' if reconciled else 'FAILED'}."))
    if absent:
        blocks.append(Paragraph(f"Missing from audit.json: {', '.join(absent)}."))
    return blocks


def _duplicates_and_truncation(audit: dict) -> list[Block]:
    blocks: list[Block] = []
    duplicates, leakage = audit.get("duplicates"), audit.get("leakage")
    facts = []
    if isinstance(duplicates, dict):
        facts.append(f"duplicates removed: {duplicates.get('removed', 'n/a')}")
    if isinstance(leakage, dict):
        facts.append(f"leakage across splits removed: {leakage.get('removed', 'n/a')}")
    if facts:
        blocks.append(Paragraph("; ".join(facts).capitalize() + "."))
    truncated = (audit.get("tokens") or {}).get("truncated")
    if isinstance(truncated, dict):
        blocks += [Paragraph("Records over the token limits (truncated in training):"),
                   _scalar_table(truncated, "part")]
    elif isinstance(audit.get("tokens"), dict):
        blocks.append(Paragraph(f"Token lengths not measured: {audit['tokens'].get('reason', 'no reason given')}."))
    return blocks


def parameters_section(files: RunFiles) -> list[Block]:
    blocks: list[Block] = [Heading("Parameters")]
    params = (files.summary or {}).get("params")
    if not params:
        return blocks + [Paragraph("Missing: summary.json has no parameter counts.")]
    total, trainable = params.get("total"), params.get("trainable")
    share = f"{100 * trainable / total:.3f}%" if total and trainable is not None else "n/a"
    blocks.append(Paragraph(f"Total {fmt.integer(total)}, trainable {fmt.integer(trainable)} ({share} of the total), "
                            f"frozen {fmt.integer(params.get('frozen'))}."))
    groups = lora_groups(params.get("lora_modules", []))
    if not groups:
        return blocks
    rows = [[str(g["count"]), str(g["r"]), str(g["in"]), str(g["out"]),
             f"{g['count']} × {g['r']} × ({g['in']} + {g['out']})", fmt.integer(g["params"])] for g in groups]
    computed = sum(group["params"] for group in groups)
    rows.append(["total", "", "", "", "", fmt.integer(computed)])
    verdict = "equals" if computed == trainable else "does NOT equal"
    blocks += [
        Paragraph("Each LoRA pair on a layer with `in` inputs and `out` outputs adds A (r × in) and B (out × r), "
                  "so a group of n such modules adds n × r × (in + out) weights:"),
        Table(["modules n", "r", "in", "out", "n × r × (in + out)", "parameters"], rows),
        Paragraph(f"The sum {fmt.integer(computed)} {verdict} the trainable count {fmt.integer(trainable)}."),
    ]
    return blocks


def _change_cell(change: float | None, reference: float | None) -> str:
    if change is None:
        return ""
    return f"{fmt.signed(change)} ({fmt.relative_change(change, reference)})"


def _status_paragraph(summary: dict) -> Paragraph:
    throughput = summary.get("throughput") or {}
    return Paragraph(
        f"Status {summary.get('status', 'n/a')} after {summary.get('steps', 'n/a')} optimizer steps in "
        f"{fmt.seconds(summary.get('total_time_s'))}; peak memory {fmt.mebibytes(summary.get('peak_memory_bytes'))} "
        f"({summary.get('peak_memory_kind', 'n/a')}); throughput {fmt.plain(throughput.get('input_tokens_per_s'), 1)} "
        f"input and {fmt.plain(throughput.get('supervised_tokens_per_s'), 1)} supervised tokens per second "
        f"of training time."
    )


def _epoch_table(epochs: list[dict]) -> Table:
    rows = []
    for row in epoch_rows(epochs):
        label = f"{row['epoch']} (partial)" if row.get("partial") else str(row["epoch"])
        rows.append([
            label, fmt.loss(row.get("train_loss")), fmt.loss(row.get("val_loss")),
            _change_cell(row["val_change_previous"], row["previous_val_loss"]),
            _change_cell(row["val_change_first"], epochs[0].get("val_loss")),
            _change_cell(row["train_change_previous"], row["previous_train_loss"]),
            fmt.seconds(row.get("time_s")), fmt.integer(row.get("tokens")), fmt.mebibytes(row.get("peak_memory_bytes")),
        ])
    header = ["epoch", "train loss", "val loss", "val change vs previous", "val change vs epoch 0",
              "train change vs previous", "time", "supervised tokens", "peak memory"]
    return Table(header, rows)


def training_section(files: RunFiles) -> list[Block]:
    blocks: list[Block] = [Heading("Training")]
    epochs = files.epochs
    if not epochs:
        return blocks + [Paragraph("Missing: no epoch records in metrics.jsonl or summary.json.")]

    if files.summary:
        blocks.append(_status_paragraph(files.summary))
    blocks += [
        Paragraph("Losses are token-weighted means in nats per token; epoch 0 is before training."),
        _epoch_table(epochs),
        Paragraph(overfitting_statement(epochs)),
    ]

    events = [f"{event.get('event')} at step {event.get('step')}" for event in files.event_records
              if event.get("event") != "end"]
    if events:
        blocks.append(Paragraph("Events: " + "; ".join(events) + "."))
    return blocks


def overfitting_statement(epochs: list[dict]) -> str:
    rule = (f"Rule: overfitting when the final validation loss exceeds the final train loss by more than "
            f"{100 * OVERFITTING_GAP:.0f}% of it and rose over the final epoch.")
    result = overfitting(epochs)
    if result["verdict"] == "unknown":
        return f"{rule} Not decidable: no epoch has both a train and a validation loss."
    gap = f"{100 * result['gap_fraction']:+.1f}%" if result["gap_fraction"] is not None else "n/a"
    trend = "rose" if result["rising"] else "did not rise"
    if result["verdict"] == "overfitting":
        return (f"{rule} Overfitting: at epoch {result['epoch']} the validation loss is {gap} relative to the train "
                f"loss and {trend} over the epoch.")
    return (f"{rule} Not overfitting by this rule: at epoch {result['epoch']} the validation loss is {gap} relative "
            f"to the train loss and {trend} over the epoch.")


def gradient_section(files: RunFiles) -> list[Block]:
    blocks: list[Block] = [Heading("Gradient norms")]
    stats = grad_norm_stats(files.step_records)
    if stats is None:
        return blocks + [Paragraph("Missing: no step records with a gradient norm in metrics.jsonl.")]
    rows = [[str(stats["n"]), fmt.plain(stats["mean"]), fmt.plain(stats["median"]), fmt.plain(stats["p95"]),
             fmt.plain(stats["max"]), fmt.percent(stats["clip_rate"])]]
    threshold = files.config_value("training.max_grad_norm")
    facts = [f"Global norm before clipping over the logged steps; clipping threshold {threshold if threshold is not None else 'n/a'}."]
    if stats["non_finite"]:
        facts.append(f"Steps with a non-finite norm: {stats['non_finite']}.")
    note = clipping_note(stats, threshold)
    if note:
        facts.append(note)
    return blocks + [Paragraph(" ".join(facts)),
                     Table(["logged steps", "mean", "median", "p95", "max", "clipped steps"], rows)]


def missing_section(files: RunFiles) -> list[Block]:
    blocks: list[Block] = [Heading("Missing measurements")]
    if not files.missing:
        return blocks + [Paragraph("None: every file the report reads is present.")]
    return blocks + [Bullets(list(files.missing))]
