"""Continual adaptation: start from an earlier run's adapter and replay part of its training data.

`training.init_from` (or `physlora train --init-from RUN`) names the parent run folder. Its adapter,
RUN/adapter, replaces the fresh adapter before the first step, so training continues from the parent's
exact weights. `training.replay_fraction` adds that fraction of the parent's training split, sampled
with `training.seed`, to the new training data.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from pathlib import Path

import torch
from peft import set_peft_model_state_dict
from peft.utils import load_peft_weights

from physlora.config.loading import load_config
from physlora.config.schema import RunConfig
from physlora.data.records import Record, read_jsonl
from physlora.errors import ConfigError, ModelError, RunFolderError
from physlora.models.adapters import check_adapter_keys
from physlora.train.setup import CONFIG_FILE, data_dir

logger = logging.getLogger(__name__)

PARENT_ADAPTER_DIR = "adapter"
# Model settings that define the frozen base weights. An adapter only fits the base it was trained on.
BASE_MODEL_KEYS = ("name", "family", "tokenizer", "init", "architecture", "config")
# LoRA settings that define the adapter's tensors and their scale.
ADAPTER_KEYS = ("method", "r", "alpha", "target_modules", "bias")


@dataclass
class ParentRun:
    """The run an adapter continues from, and the replay counts once the training data is mixed."""

    run_dir: Path
    config: RunConfig
    replay: dict = field(default_factory=dict)

    @property
    def adapter_dir(self) -> Path:
        return self.run_dir / PARENT_ADAPTER_DIR

    def summary_fields(self) -> dict:
        return {"continual": {"parent_run": str(self.run_dir), "parent_adapter": str(self.adapter_dir),
                              "parent_model": self.config.model.name, **self.replay}}


def resolve_parent(config: RunConfig) -> ParentRun | None:
    """Return the parent run of `training.init_from`, or None when it is not set.

    Raises RunFolderError when the folder, its config or its adapter is missing, and ConfigError when
    its base model or LoRA settings differ from `config`.
    """
    init_from = config.training.init_from
    if init_from is None:
        return None
    run_dir = Path(init_from)
    key = f"training.init_from={init_from}"
    if not run_dir.is_dir():
        raise RunFolderError(f"{key}: run folder not found; pass the output.dir of a finished training run")
    if run_dir.resolve() == Path(config.output.dir).resolve():
        raise ConfigError(f"{key} is the output folder of this run; set output.dir to a new folder")
    if not (run_dir / CONFIG_FILE).is_file():
        raise RunFolderError(f"{key}: {run_dir / CONFIG_FILE} not found, so {run_dir} is not a training run folder")
    if not (run_dir / PARENT_ADAPTER_DIR / "adapter_config.json").is_file():
        raise RunFolderError(
            f"{key}: {run_dir / PARENT_ADAPTER_DIR} contains no adapter; finish that run first "
            f"(`physlora train --resume {run_dir}`)"
        )
    parent = ParentRun(run_dir, load_config(config_file=run_dir / CONFIG_FILE))
    _check_same_settings(config, parent)
    return parent


def _check_same_settings(config: RunConfig, parent: ParentRun) -> None:
    sections = [("model", key) for key in BASE_MODEL_KEYS] + [("lora", key) for key in ADAPTER_KEYS]
    if config.model.init == "random":
        # A randomly initialised base model is built from training.seed, so the seed is part of the base weights.
        sections.append(("training", "seed"))
    differences = []
    for section, key in sections:
        ours = getattr(getattr(config, section), key)
        theirs = getattr(getattr(parent.config, section), key)
        if ours != theirs:
            differences.append(f"{section}.{key} is {ours!r} here but {theirs!r} in {parent.run_dir / CONFIG_FILE}")
    if differences:
        raise ConfigError(
            f"training.init_from={parent.run_dir}: the parent adapter does not fit this run because "
            + "; ".join(differences) + ". Use the parent's base model and LoRA settings"
        )


def load_parent_weights(model: torch.nn.Module, parent: ParentRun) -> None:
    """Copy the parent's adapter tensors into the fresh adapter of `model`, after the strict name check."""
    check_adapter_keys(model, parent.adapter_dir, "default")
    weights = load_peft_weights(str(parent.adapter_dir), device="cpu")
    try:
        set_peft_model_state_dict(model, weights, adapter_name="default")
    except RuntimeError as error:
        first_line = str(error).splitlines()[0]
        raise ModelError(f"cannot load the parent adapter {parent.adapter_dir}: {first_line}") from error
    logger.info("starting from the adapter of %s (%d tensors)", parent.run_dir, len(weights))


def add_replay(parent: ParentRun, config: RunConfig, train_records: list[Record]) -> list[Record]:
    """Return the new training records plus `training.replay_fraction` of the parent's training split.

    The sample is drawn with `training.seed`. Sampled records whose id or question (ignoring case and
    spacing) also appears in the new train, validation or test split are left out and counted.
    """
    fraction = config.training.replay_fraction
    parent_data = Path(parent.config.output.data_dir) if parent.config.output.data_dir else parent.run_dir / "data"
    parent_file = parent_data / "train.jsonl"
    parent.replay = {"replay_fraction": fraction, "new_train_records": len(train_records)}
    if fraction == 0:
        parent.replay.update(replayed=0, train_records=len(train_records))
        return train_records
    if not parent_file.is_file():
        raise RunFolderError(
            f"training.replay_fraction={fraction} needs the parent's training split, but {parent_file} was not found"
        )
    previous = read_jsonl(parent_file)
    sampled = random.Random(config.training.seed).sample(previous, round(fraction * len(previous)))
    taken_ids, taken_questions = _new_split_keys(config, train_records)
    replayed = [record for record in sampled
                if record.id not in taken_ids and _question_key(record.question) not in taken_questions]
    parent.replay.update(
        parent_train_file=str(parent_file), parent_train_records=len(previous), sampled=len(sampled),
        excluded_overlap=len(sampled) - len(replayed), replayed=len(replayed),
        train_records=len(train_records) + len(replayed),
    )
    logger.info("replaying %d of %d training records of %s (%d left out because they overlap the new splits)",
                len(replayed), len(previous), parent.run_dir, len(sampled) - len(replayed))
    return train_records + replayed


def _new_split_keys(config: RunConfig, train_records: list[Record]) -> tuple[set[str], set[str]]:
    records = list(train_records)
    for name in ("validation", "test"):
        path = data_dir(config) / f"{name}.jsonl"
        if path.is_file():
            records += read_jsonl(path)
    return {record.id for record in records}, {_question_key(record.question) for record in records}


def _question_key(question: str) -> str:
    return " ".join(question.lower().split())
