"""Entry point of `physlora data build`: sources -> clean records -> filter and tag -> dedupe -> split -> files.

Writes train.jsonl, validation.jsonl, test.jsonl, audit.json and audit.md into the output folder, each
atomically. The same input files and seed give byte-identical JSONL files; audit.json differs only in
`build_time_s`.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any

from physlora.config.schema import DataConfig, RunConfig
from physlora.data.audit import build_audit, render_markdown
from physlora.data.records import Record, write_jsonl
from physlora.data.sources import SkippedSource, SourceData, data_dir, plan_sources, read_source
from physlora.data.split import SPLITS, make_ids_unique, remove_duplicates, remove_leakage, stratified_split, subsample
from physlora.data.stats import SourceStats
from physlora.data.tokens import token_statistics
from physlora.data.topics import TopicClassifier, get_classifier
from physlora.errors import ConfigError, DataError
from physlora.io import write_json_atomic, write_text_atomic

logger = logging.getLogger(__name__)


def build_dataset(
    config: RunConfig,
    out_dir: Path,
    tokenizer: Any = None,
    max_source_length: int | None = None,
    max_target_length: int | None = None,
) -> dict[str, Any]:
    """Build the split files and the audit in `out_dir` and return the audit.

    `tokenizer` (any transformers tokenizer) is only used for the token statistics; without it they are
    recorded as not measured. The maximum lengths default to training.max_seq_length and
    training.max_target_length. Raises DataError when a required source is missing or yields no usable row.
    """
    started = time.perf_counter()
    data = config.data
    _check_unique_labels(config)
    classifier = get_classifier(data.topic_classifier)

    sources, skipped = _read_sources(data)
    stats = {source.stats.label: source.stats for source in sources}
    tagged = {source.stats.label: _filter_and_tag(source, classifier, data.physics_only) for source in sources}
    if data.topics is not None:
        tagged = select_topics(tagged, stats, data.topics)
    records, ids_renamed = _deduplicate_and_subsample(tagged, stats, data)

    splits, leaked = remove_leakage(stratified_split(records, data.split_fractions, data.seed))
    for record in leaked:
        stats[record.source].leakage_removed += 1
    for name in SPLITS:
        for record in splits[name]:
            stats[record.source].kept += 1
    if leaked:
        logger.warning("removed %d records whose question also appears in a later split", len(leaked))

    out_dir = Path(out_dir)
    for name in SPLITS:
        write_jsonl(splits[name], out_dir / f"{name}.jsonl")
    tokens = _token_section(config, splits, tokenizer, max_source_length, max_target_length)
    root, origin = data_dir(data)
    audit = build_audit(
        config=data,
        data_dir=str(root),
        data_dir_origin=origin,
        stats=list(stats.values()),
        skipped=skipped,
        splits=splits,
        ids_renamed=ids_renamed,
        leakage_removed=leaked,
        tokens=tokens,
        build_time_s=time.perf_counter() - started,
    )
    write_json_atomic(out_dir / "audit.json", audit)
    write_text_atomic(out_dir / "audit.md", render_markdown(audit))
    logger.info("data build finished: %s", ", ".join(f"{name} {len(splits[name])}" for name in SPLITS))
    return audit


def _read_sources(data: DataConfig) -> tuple[list[SourceData], list[SkippedSource]]:
    sources: list[SourceData] = []
    skipped: list[SkippedSource] = []
    for plan in plan_sources(data):
        result = plan if isinstance(plan, SkippedSource) else read_source(plan, data.seed)
        if isinstance(result, SkippedSource):
            skipped.append(result)
        else:
            sources.append(result)
    if not sources:
        raise DataError("no data source could be read; every configured source was optional and unavailable")
    return sources, skipped


def _deduplicate_and_subsample(
    tagged: dict[str, list[Record]], stats: dict[str, SourceStats], data: DataConfig
) -> tuple[list[Record], int]:
    """Remove duplicates across sources, apply each source's max_items, set the targets and make ids unique.

    Returns the records and how many ids were renamed; the counts go into `stats`.
    """
    max_items = {source.label: source.max_items for source in data.sources}
    unique, duplicates = remove_duplicates(tagged)
    records: list[Record] = []
    for label, kept in unique.items():
        stats[label].duplicates = duplicates[label]
        chosen = subsample(kept, max_items[label], data.seed, label)
        stats[label].subsampled = len(kept) - len(chosen)
        records.extend(_with_target(record, data.include_explanation) for record in chosen)
    return make_ids_unique(records)


def _check_unique_labels(config: RunConfig) -> None:
    labels = Counter(source.label for source in config.data.sources)
    repeated = sorted(label for label, count in labels.items() if count > 1)
    if repeated:
        raise ConfigError(
            f"several data sources are labelled {', '.join(repeated)}; give each a distinct `name` in data.sources"
        )


def _filter_and_tag(source: SourceData, classifier: TopicClassifier, physics_only: bool) -> list[Record]:
    """Tag every item's topic and drop non-physics items; raise DataError when nothing usable is left.

    Items the source labels as another subject are always dropped. Unlabelled items are dropped when
    `physics_only` is set and the classifier does not consider them physics.
    """
    stats = source.stats
    records = []
    for item in source.items:
        record = item.record
        if item.physics is False:
            stats.add_filtered(record.question)
            continue
        if item.topic_from_source:
            records.append(record)
            continue
        result = classifier.classify(record.question, record.choices, record.answer)
        if item.physics is None and physics_only and not result.is_physics:
            stats.add_filtered(record.question)
            continue
        records.append(record.with_changes(topic=result.topic))
    if not records:
        raise DataError(
            f"{stats.label}: 0 usable rows from {stats.origin} ({stats.rejection_summary()}; "
            f"{stats.filtered} not physics). {_suggest_fixes(stats, physics_only)}"
        )
    return records


def select_topics(
    tagged: dict[str, list[Record]], stats: dict[str, SourceStats], topics: list[str]
) -> dict[str, list[Record]]:
    """Keep the records whose topic is in `topics` and count the rest per source.

    Raises DataError when no source has a record of those topics, with the topic counts that were found.
    """
    selected = {}
    found: Counter = Counter()
    for label, records in tagged.items():
        found.update(record.topic for record in records)
        selected[label] = [record for record in records if record.topic in topics]
        stats[label].topic_excluded = len(records) - len(selected[label])
    if not any(selected.values()):
        counts = ", ".join(f"{topic} {count}" for topic, count in found.most_common())
        raise DataError(
            f"no record is tagged with a topic in data.topics={topics}; the sources give {counts}. "
            "Choose topics from that list or add sources that cover them"
        )
    logger.info("kept %d records of topics %s, excluded %d of other topics", sum(map(len, selected.values())),
                ", ".join(topics), sum(entry.topic_excluded for entry in stats.values()))
    return selected


def _suggest_fixes(stats: SourceStats, physics_only: bool) -> str:
    """Suggest what to do about a source that yielded nothing, from the reasons its rows were dropped."""
    steps = []
    if stats.rejected_total:
        steps.append("fix the rejected rows (the warnings above give file and line)")
    if stats.type in ("jsonl", "csv") and any(reason.startswith("missing field") for reason in stats.rejected):
        steps.append("map other column names with `columns` in the source")
    if stats.filtered and physics_only:
        steps.append("set data.physics_only=false to keep questions the classifier does not tag as physics")
    steps.append("remove the source from data.sources")
    return "To go on, " + ", or ".join(steps)


def _with_target(record: Record, include_explanation: bool) -> Record:
    target = record.answer
    if include_explanation and record.explanation:
        target = f"{record.answer} {record.explanation}"
    return record.with_changes(target=target)


def _token_section(
    config: RunConfig,
    splits: dict[str, list[Record]],
    tokenizer: Any,
    max_source_length: int | None,
    max_target_length: int | None,
) -> dict[str, Any]:
    if tokenizer is None:
        return {"measured": False, "reason": "no tokenizer was given"}
    return token_statistics(
        splits,
        tokenizer,
        config.model.prompt_template,
        max_source_length or config.training.max_seq_length,
        max_target_length or config.training.max_target_length,
    )


def default_out_dir(config: RunConfig) -> Path:
    """Return output.data_dir, or `<output.dir>/data` when it is not set."""
    if config.output.data_dir:
        return Path(config.output.data_dir)
    return Path(config.output.dir) / "data"
