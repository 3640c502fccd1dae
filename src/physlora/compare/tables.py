"""Ratios against full fine-tuning, and the comparison.json and comparison.md files."""

from __future__ import annotations

import platform
import time
from pathlib import Path

from physlora.io import write_json_atomic, write_text_atomic

FORMAT_VERSION = 1
REFERENCE = "full"
# Ratio name -> (row field, phrase for a ratio above 1, phrase for one below 1). Each ratio is full
# fine-tuning's value divided by the method's, so a value above 1 means the method needs less of it.
RATIOS = {
    "trainable_params": ("trainable_params", "fewer trainable parameters", "more trainable parameters"),
    "artifact_size": ("artifact_bytes", "smaller saved artifact", "larger saved artifact"),
    "peak_memory": ("peak_memory_bytes", "less peak memory", "more peak memory"),
    "epoch_time": ("epoch_time_s", "less wall time per epoch", "more wall time per epoch"),
}


def ratio(reference: float | None, value: float | None) -> float | None:
    if reference is None or value is None or value <= 0:
        return None
    return reference / value


def add_ratios(rows: list[dict]) -> str | None:
    """Give every measured row `ratios_vs_full`; return why there are none, or None when there are."""
    full = next((row for row in rows if row["method"] == REFERENCE and "trainable_params" in row), None)
    if full is None:
        for row in rows:
            row["ratios_vs_full"] = None
        if all(row["method"] != REFERENCE for row in rows):
            return "full fine-tuning was not run"
        return "full fine-tuning has no measurements"
    for row in rows:
        if "trainable_params" not in row:
            row["ratios_vs_full"] = None
            continue
        row["ratios_vs_full"] = {name: ratio(full[field], row.get(field)) for name, (field, *_) in RATIOS.items()}
    return None


def write_comparison(out_dir: Path, rows: list[dict], settings: dict, plots: list[str]) -> dict:
    """Add the ratios, then write out_dir/comparison.json and out_dir/comparison.md; return the JSON content."""
    ratios_missing = add_ratios(rows)
    document = {
        "format_version": FORMAT_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": platform.platform(),
        "settings": settings,
        "reference": REFERENCE,
        "ratios_missing_reason": ratios_missing,
        "methods": rows,
        "plots": plots,
    }
    write_json_atomic(out_dir / "comparison.json", document)
    write_text_atomic(out_dir / "comparison.md", comparison_markdown(document))
    return document


def comparison_markdown(document: dict) -> str:
    settings = document["settings"]
    lines = [
        "# Method comparison",
        "",
        f"Model `{settings['model']}`, {settings['max_steps']} optimizer steps per method "
        f"(batch {settings['batch_size']} x accumulation {settings['gradient_accumulation_steps']}), "
        f"seed {settings['seed']}, {settings['eval_items']} test items, on {settings['device']}.",
        "",
        "| method | status | trainable params | % | artifact | time/epoch | tokens/s | peak memory | "
        "val loss | MC accuracy | exact match |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for row in document["methods"]:
        lines.append(_table_line(row))
    lines += ["", *_ratio_lines(document), *_notes(document)]
    lines += ["", *[f"![{Path(name).stem}]({name})" for name in document["plots"]]]
    return "\n".join(lines) + "\n"


def _table_line(row: dict) -> str:
    if "trainable_params" not in row:
        return f"| {row['method']} | {row['status']} | | | | | | | | | |"
    cells = [
        row["method"], row["status"], f"{row['trainable_params']:,}", f"{row['trainable_pct']:.3f}",
        _size(row["artifact_bytes"]), _number(row["epoch_time_s"], "{:.1f} s"),
        _number(row["input_tokens_per_s"], "{:.0f}"), _size(row["peak_memory_bytes"]),
        _number(row["final_val_loss"], "{:.4f}"), _interval(row.get("mc_accuracy")), _interval(row.get("exact_match")),
    ]
    return "| " + " | ".join(cells) + " |"


def _ratio_lines(document: dict) -> list[str]:
    if document["ratios_missing_reason"]:
        return [f"No ratios against full fine-tuning: {document['ratios_missing_reason']}.", ""]
    lines = ["## Against full fine-tuning", ""]
    for row in document["methods"]:
        ratios = row.get("ratios_vs_full")
        if not ratios or row["method"] == REFERENCE:
            continue
        parts = [_ratio_phrase(ratios[name], less, more) for name, (_, less, more) in RATIOS.items()
                 if ratios[name] is not None]
        lines.append(f"- {row['method']}: {', '.join(parts)}")
    lines.append("")
    return lines


def _ratio_phrase(value: float, less: str, more: str) -> str:
    """Say "2.0x less ..." for a ratio of 2 and "1.1x more ..." for a ratio of 0.9, never "0.9x less"."""
    return f"{value:.1f}x {less}" if value >= 1 else f"{1 / value:.1f}x {more}"


def _notes(document: dict) -> list[str]:
    lines = []
    for row in document["methods"]:
        if row.get("reason"):
            lines.append(f"- {row['method']} ({row['status']}): {row['reason']}")
    if lines:
        lines = ["## Methods without full results", "", *lines, ""]
    kinds = {row.get("peak_memory_kind") for row in document["methods"]} - {None}
    lines += [
        "Time per epoch includes the epoch's validation pass; tokens/s counts input tokens in optimizer steps. "
        f"Peak memory kind: {', '.join(sorted(kinds)) or 'not measured'} (rss is the training process's resident "
        "set high-water mark, model loading included). Intervals are bootstrap intervals at "
        f"{document['settings']['confidence']:.0%}.",
    ]
    return lines


def _number(value: float | None, template: str) -> str:
    return "n/a" if value is None else template.format(value)


def _size(value: int | None) -> str:
    if value is None:
        return "n/a"
    return f"{value / 1e3:,.1f} kB" if value < 1e5 else f"{value / 1e6:,.1f} MB"


def _interval(entry: dict | None) -> str:
    if not entry or entry.get("value") is None:
        return "n/a"
    return f"{entry['value']:.3f} [{entry['low']:.3f}, {entry['high']:.3f}]"
