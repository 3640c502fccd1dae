"""Topic adapters: one LoRA adapter per physics topic, trained with the run's settings on that topic's items.

Each topic adapter lives in RUN/topics/<topic>/, a complete run folder of its own (config.yaml, data/,
metrics.jsonl, summary.json, adapter/, checkpoints/), so `physlora ask`, `physlora report` and
`physlora serve --adapter <topic>=RUN/topics/<topic>` accept it as it is. RUN/topics/topics.json records
the plan: training items per topic, the topics that got an adapter, and why each other topic got none.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path

from physlora.config.schema import TOPICS, RunConfig, TopicAdaptersConfig
from physlora.data.records import Record, read_jsonl, write_jsonl

logger = logging.getLogger(__name__)

TOPICS_DIR = "topics"
PLAN_FILE = "topics.json"
SPLITS = ("train", "validation", "test")
# The classifier's label for questions without a topic keyword. It names no physics topic, so its
# questions stay with the general adapter.
CATCH_ALL_TOPIC = "other"


def topic_run_dir(run_dir: Path, topic: str) -> Path:
    return Path(run_dir) / TOPICS_DIR / topic


def plan_path(run_dir: Path) -> Path:
    return Path(run_dir) / TOPICS_DIR / PLAN_FILE


def plan_topics(train_records: list[Record], settings: TopicAdaptersConfig) -> dict:
    """Choose the topics that get an adapter: every physics topic with at least `min_train_items` training items.

    Returns {"min_train_items", "train_counts" (every topic, 0 included), "trained" (topic names in TOPICS
    order), "skipped" ({topic: {"n_train", "reason"}})}. Each skipped topic is also logged.
    """
    counts = Counter(record.topic for record in train_records)
    trained, skipped = [], {}
    for topic in TOPICS:
        count = counts.get(topic, 0)
        if topic == CATCH_ALL_TOPIC:
            reason = "catch-all label for questions without a topic keyword, not a physics topic"
        elif count < settings.min_train_items:
            reason = f"{count} training items, fewer than topic_adapters.min_train_items={settings.min_train_items}"
        else:
            trained.append(topic)
            continue
        skipped[topic] = {"n_train": count, "reason": reason}
        logger.info("no adapter for topic %s: %s", topic, reason)
    if not trained:
        largest = max((counts.get(topic, 0) for topic in TOPICS if topic != CATCH_ALL_TOPIC), default=0)
        logger.warning(
            "no topic has topic_adapters.min_train_items=%d training items (the largest has %d), so no topic "
            "adapter is trained; lower topic_adapters.min_train_items to train some", settings.min_train_items, largest,
        )
    return {
        "min_train_items": settings.min_train_items,
        "train_counts": {topic: counts.get(topic, 0) for topic in TOPICS},
        "trained": trained,
        "skipped": skipped,
    }


def topic_config(config: RunConfig, topic: str) -> RunConfig:
    """Return the run config for one topic adapter: the same model, LoRA and training settings, its own folder."""
    topic_run = config.model_copy(deep=True)
    topic_run.output.dir = str(topic_run_dir(Path(config.output.dir), topic))
    topic_run.output.data_dir = None
    if config.topic_adapters.max_steps is not None:
        topic_run.training.max_steps = config.topic_adapters.max_steps
    # A topic run is a leaf: it trains no topic adapters of its own.
    topic_run.topic_adapters.enabled = False
    return topic_run


def write_topic_data(source_dir: Path, topic: str, out_dir: Path) -> dict[str, int]:
    """Copy the records of `topic` from each split file of `source_dir` into `out_dir`; return the counts."""
    counts = {}
    for split in SPLITS:
        path = Path(source_dir) / f"{split}.jsonl"
        records = [record for record in read_jsonl(path) if record.topic == topic] if path.is_file() else []
        write_jsonl(records, Path(out_dir) / f"{split}.jsonl")
        counts[split] = len(records)
    return counts


def read_plan(run_dir: Path) -> dict:
    """Return RUN/topics/topics.json, or {} when it is absent or unreadable (the stage then runs again)."""
    path = plan_path(run_dir)
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        logger.warning("%s is not valid JSON; every topic adapter is checked again", path)
        return {}


def trained_topic_runs(run_dir: Path) -> dict[str, Path]:
    """Return {topic: run folder} of the finished topic adapters recorded in RUN/topics/topics.json."""
    adapters = read_plan(run_dir).get("adapters", {})
    return {topic: Path(run_dir) / entry["folder"] for topic, entry in adapters.items()
            if entry.get("status") in {"finished", "max_steps"}}
