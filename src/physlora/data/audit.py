"""The build audit: one dictionary (audit.json) and its readable form (audit.md)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from physlora.config.schema import TOPICS, DataConfig
from physlora.data.records import Record
from physlora.data.split import SPLITS
from physlora.data.stats import SourceStats
from physlora.data.sources import SkippedSource

RECONCILIATION_RULE = (
    "read = rejected + filtered_non_physics + excluded_by_topic + duplicates_removed + subsampled_away"
    " + leakage_removed + kept"
)


def count_table(splits: dict[str, list[Record]], field: str, rows: list[str]) -> dict[str, dict[str, int]]:
    """Return {row value: {split: count}} for a record field (topic or source), every row and split present."""
    table = {row: dict.fromkeys(SPLITS, 0) for row in rows}
    for name, records in splits.items():
        for record in records:
            table.setdefault(getattr(record, field), dict.fromkeys(SPLITS, 0))[name] += 1
    return table


def reconciliation(stats: list[SourceStats], splits: dict[str, list[Record]]) -> dict[str, Any]:
    """Check read = rejected + filtered + excluded by topic + duplicates + subsampled + leakage removed + kept
    for every source, and that the kept records of all sources are exactly the records in the split files."""
    per_source = {}
    for entry in stats:
        unaccounted = entry.unaccounted()
        per_source[entry.label] = {"read": entry.read, "unaccounted": unaccounted, "ok": unaccounted == 0}
    kept_total = sum(entry.kept for entry in stats)
    split_total = sum(len(records) for records in splits.values())
    by_source = Counter(record.source for records in splits.values() for record in records)
    sources_match = all(by_source[entry.label] == entry.kept for entry in stats)
    sources_reconcile = all(item["ok"] for item in per_source.values())
    return {
        "counts_reconcile": sources_reconcile and kept_total == split_total and sources_match,
        "rule": RECONCILIATION_RULE,
        "per_source": per_source,
        "kept_total": kept_total,
        "split_total": split_total,
    }


def build_audit(
    *,
    config: DataConfig,
    data_dir: str,
    data_dir_origin: str,
    stats: list[SourceStats],
    skipped: list[SkippedSource],
    splits: dict[str, list[Record]],
    ids_renamed: int,
    leakage_removed: list[Record],
    tokens: dict[str, Any],
    build_time_s: float,
) -> dict[str, Any]:
    topic_table = count_table(splits, "topic", list(TOPICS))
    leaked = Counter(record.original_split for record in leakage_removed)
    return {
        "seed": config.seed,
        "build_time_s": round(build_time_s, 2),
        "data_dir": data_dir,
        "data_dir_origin": data_dir_origin,
        "config": config.model_dump(mode="json"),
        "splits": {name: len(records) for name, records in splits.items()},
        "sources": {entry.label: entry.to_dict() for entry in stats},
        "skipped_sources": [{"source": entry.label, "reason": entry.reason} for entry in skipped],
        "topics": {topic: sum(row.values()) for topic, row in topic_table.items()},
        "topic_by_split": topic_table,
        "source_by_split": count_table(splits, "source", [entry.label for entry in stats]),
        "duplicates": {
            "removed": sum(entry.duplicates for entry in stats),
            "by_source": {entry.label: entry.duplicates for entry in stats},
            "ids_renamed": ids_renamed,
        },
        "leakage": {"found": len(leakage_removed), "removed": len(leakage_removed), "by_original_split": dict(leaked)},
        "tokens": tokens,
        "checks": reconciliation(stats, splits),
    }


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines + [""]


def _split_table(kind: str, table: dict[str, dict[str, int]]) -> list[str]:
    rows = [[name, *counts.values(), sum(counts.values())] for name, counts in table.items()]
    return _table([kind, *SPLITS, "total"], rows)


def render_markdown(audit: dict[str, Any]) -> str:
    """Return the audit as Markdown: splits, sources, topics, duplicates, leakage, tokens and the checks."""
    lines = ["# Data build audit", ""]
    checks = audit["checks"]
    lines += [
        f"Seed {audit['seed']}, built in {audit['build_time_s']} s.",
        f"Data folder `{audit['data_dir']}`, set by {audit['data_dir_origin']}.",
        f"Counts reconcile: **{'yes' if checks['counts_reconcile'] else 'NO'}** ({checks['rule']}).",
        "",
        "## Splits",
        "",
    ]
    lines += _table(["split", "records"], [[name, count] for name, count in audit["splits"].items()])

    lines += ["## Sources", ""]
    header = ["source", "read", "rejected", "not physics", "duplicates", "subsampled", "leakage", "kept"]
    rows = [
        [label, s["read"], s["rejected"], s["filtered_non_physics"], s["duplicates_removed"], s["subsampled_away"],
         s["leakage_removed"], s["kept"]]
        for label, s in audit["sources"].items()
    ]  # fmt: skip
    if audit["config"].get("topics") is not None:
        # The column appears only when data.topics selects topics, because otherwise it is 0 for every source.
        header.insert(4, "other topic")
        for row, source in zip(rows, audit["sources"].values()):
            row.insert(4, source["excluded_by_topic"])
    lines += _table(header, rows)
    for label, source in audit["sources"].items():
        if source["rejected"]:
            lines.append(f"Rejected rows of {label}:")
            for reason, count in source["rejected_by_reason"].items():
                lines.append(f"- {reason}: {count}, for example {'; '.join(source['rejected_examples'][reason])}")
            lines.append("")
    for entry in audit["skipped_sources"]:
        lines += [f"Skipped optional source {entry['source']}: {entry['reason']}", ""]

    lines += ["## Topics by split", ""]
    lines += _split_table("topic", audit["topic_by_split"])
    lines += ["## Sources by split", ""]
    lines += _split_table("source", audit["source_by_split"])

    duplicates, leakage = audit["duplicates"], audit["leakage"]
    lines += [
        "## Duplicates and leakage",
        "",
        f"Duplicates removed (same normalised question and answer): {duplicates['removed']}; ids renamed: "
        f"{duplicates['ids_renamed']}.",
        f"Leakage (a validation or test question also in an earlier split): {leakage['found']} found, "
        f"{leakage['removed']} removed.",
        "",
        "## Token lengths",
        "",
    ]
    lines += _render_tokens(audit["tokens"])
    return "\n".join(lines).rstrip() + "\n"


def _render_tokens(tokens: dict[str, Any]) -> list[str]:
    if not tokens.get("measured"):
        return [f"Not measured: {tokens.get('reason', 'no tokenizer')}.", ""]
    lines = [f"Tokenizer `{tokens['tokenizer']}`; special tokens included.", ""]
    rows = []
    for name in ("prompt_tokens", "target_tokens"):
        summary = tokens[name]
        rows.append([name.split("_")[0], summary["mean"], summary["p50"], summary["p95"], summary["max"]])
    lines += _table(["text", "mean", "p50", "p95", "max"], rows)
    truncated = tokens["truncated"]
    lines += _table(
        ["over the limit", *SPLITS],
        [
            [f"prompt > {tokens['max_source_length']}", *truncated["prompt"].values()],
            [f"target > {tokens['max_target_length']}", *truncated["target"].values()],
            [f"prompt + target > {tokens['max_source_length']}", *truncated["prompt_plus_target"].values()],
        ],
    )
    unknown = tokens["unknown_tokens"]
    if unknown.get("measured"):
        characters = ", ".join(f"`{char}` ({count})" for char, count in unknown["target_characters"].items()) or "none"
        lines += [
            f"Targets containing the unknown token `{unknown['token']}`: {unknown['targets_with_unknown']} "
            f"(prompts: {unknown['prompts_with_unknown']}). Characters it stands for: {characters}.",
            "",
        ]
    return lines
