"""Forgetting of a continual run: the parent's test items before and after the new training, beside the new gain.

For a run trained with `training.init_from`, one loaded base model carries both adapters, so every
measurement uses the same weights, tokenizer, prompts, limits and metric code as `physlora eval`:

- previous split (the parent run's test file): the parent adapter ("before") against the new adapter ("after");
- new split (this run's test file): the base model ("before") against the new adapter ("after"), the gain
  of both trainings together;
- new split again: the parent adapter ("before") against the new adapter ("after"), the gain of the new
  training alone.

Each comparison is paired on the same items with the same bootstrap as eval.json. The results go to
RUN/forgetting.json, and the per-item rows to RUN/forgetting-<comparison>.jsonl.
"""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path

from physlora.config.schema import EvaluationConfig, RunConfig
from physlora.data.records import Record
from physlora.errors import ConfigError
from physlora.eval.aggregate import BootstrapSettings, summarize
from physlora.eval.generation import resolve_max_new_tokens
from physlora.eval.predictions import ModelOutputs, build_rows, write_predictions
from physlora.eval.runner import _load_adapted_model, _plan, _run_base, _run_model, data_dir_of, evaluation_settings, read_split
from physlora.eval.runner import run_config_of
from physlora.io import write_json_atomic
from physlora.models.adapters import load_checked_adapter

logger = logging.getLogger(__name__)

FORGETTING_FILE = "forgetting.json"
FORMAT_VERSION = 1
NEW_ADAPTER = "default"
PREVIOUS_ADAPTER = "previous"
# Comparison name -> (split, label of the "before" model, its adapter or None for the base model).
# The "after" model is always the new adapter.
COMPARISONS = {
    "previous": ("previous", "previous adapter", PREVIOUS_ADAPTER),
    "new": ("new", "base model", None),
    "new_vs_previous": ("new", "previous adapter", PREVIOUS_ADAPTER),
}


def evaluate_forgetting(run_dir: Path, max_items: int | None = None, *, batch_size: int | None = None) -> dict:
    """Measure forgetting and gain of the continual run in `run_dir` and write RUN/forgetting.json.

    `max_items` caps each split (the first items of each test file). Returns the content of
    forgetting.json. Raises ConfigError when the run has no `training.init_from`, and RunFolderError
    when a config, adapter or test file is missing.
    """
    started = time.perf_counter()
    run_dir = Path(run_dir)
    config = run_config_of(run_dir)
    if config.training.init_from is None:
        raise ConfigError(
            f"{run_dir} was not trained from another run (training.init_from is not set in its config.yaml), "
            "so there is no previous split to measure forgetting on; train with `physlora train --init-from RUN`"
        )
    parent_dir = Path(config.training.init_from)
    parent_config = run_config_of(parent_dir)
    evaluation = evaluation_settings(config, split="test", max_items=max_items, batch_size=batch_size)
    files = {
        "previous": data_dir_of(parent_config, parent_dir) / "test.jsonl",
        "new": data_dir_of(config, run_dir) / "test.jsonl",
    }
    records = {name: read_split(path, evaluation.max_items) for name, path in files.items()}

    model, bundle = _load_adapted_model(config, run_dir)
    model = load_checked_adapter(model, parent_dir / "adapter", PREVIOUS_ADAPTER)
    bootstrap = BootstrapSettings(evaluation.bootstrap_samples, evaluation.confidence, evaluation.seed)
    scorer = _Scorer(model, bundle, config, evaluation, records)
    comparisons = {}
    for name, (split, before_label, before_adapter) in COMPARISONS.items():
        rows = build_rows(records[split], {"base": scorer.outputs(split, before_adapter),
                                           "adapted": scorer.outputs(split, NEW_ADAPTER)})
        write_predictions(run_dir / f"forgetting-{name}.jsonl", rows)
        comparisons[name] = {
            "split": split,
            "data_file": str(files[split]),
            "n_items": len(rows),
            "before": before_label,
            "after": "new adapter",
            **scorer.limits[split],
            "metrics": summarize(rows, bootstrap),
        }

    result = {
        "format_version": FORMAT_VERSION,
        "parent_run": str(parent_dir),
        "settings": {
            "max_items": evaluation.max_items, "batch_size": evaluation.batch_size,
            "bootstrap_samples": evaluation.bootstrap_samples, "confidence": evaluation.confidence,
            "seed": evaluation.seed, "model": config.model.name,
        },
        "comparisons": comparisons,
        "time_s": time.perf_counter() - started,
    }
    write_json_atomic(run_dir / FORGETTING_FILE, result)
    logger.info("wrote %s", run_dir / FORGETTING_FILE)
    return result


class _Scorer:
    """Model outputs per (split, adapter), each computed once. Adapter None is the base model."""

    def __init__(self, model, bundle, config: RunConfig, evaluation: EvaluationConfig,
                 records: dict[str, list[Record]]) -> None:
        self.model, self.bundle, self.config = model, bundle, config
        self.limits = {split: resolve_max_new_tokens(evaluation, bundle.tokenizer, bundle.family,
                                                     [record.answer for record in split_records])
                       for split, split_records in records.items()}
        self.plans = {split: _plan(config, evaluation, records[split], self.limits[split]) for split in records}
        self.cache: dict[tuple[str, str | None], ModelOutputs] = {}

    def outputs(self, split: str, adapter: str | None) -> ModelOutputs:
        key = (split, adapter)
        if key not in self.cache:
            model_name = {None: "base model", NEW_ADAPTER: "new adapter"}.get(adapter, f"{adapter} adapter")
            logger.info("scoring %d %s items with the %s", len(self.plans[split]["prompts"]), split, model_name)
            if adapter is None:
                self.cache[key] = _run_base(self.model, self.bundle, self.plans[split], _ignore, self.config)
            else:
                with _active_adapter(self.model, adapter):
                    self.cache[key] = _run_model(self.model, self.bundle, self.plans[split], _ignore)
        return self.cache[key]


@contextlib.contextmanager
def _active_adapter(model, name: str):
    """Make `name` the active adapter, then the new adapter again."""
    model.set_adapter(name)
    try:
        yield
    finally:
        model.set_adapter(NEW_ADAPTER)


def _ignore() -> None:
    return None
