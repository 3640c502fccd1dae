"""Evaluate a run folder: base and adapted model on one split, written to eval.json and predictions.jsonl.

For the PEFT methods, base and adapted share one set of loaded weights: the base model is the PEFT
model with its adapter disabled. A fully fine-tuned model is compared with a second copy of the base.
Both are measured on the same items with the same tokenizer, prompts and limits.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable

import torch
from pydantic import ValidationError

from physlora.config.loading import format_validation_error, load_config
from physlora.config.schema import EvaluationConfig, RunConfig
from physlora.data.records import Record, read_jsonl
from physlora.errors import ConfigError, RunFolderError
from physlora.eval.aggregate import BootstrapSettings, summarize
from physlora.eval.generation import generate_answers, resolve_max_new_tokens
from physlora.eval.likelihood import Lengths, batch_count, score_pairs
from physlora.eval.predictions import ModelOutputs, build_rows, loss_target, write_predictions
from physlora.io import write_json_atomic
from physlora.models.encoding import build_prompt
from physlora.models.loading import load_model
from physlora.models.methods import base_model_view, load_trained, trained_weights_file

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
# Called after every batch with (batches done, batches in total) across both models and all stages.
Progress = Callable[[int, int], None]


def run_config_of(run_dir: Path) -> RunConfig:
    if not run_dir.is_dir():
        raise RunFolderError(f"run folder {run_dir} not found; train a model first (`physlora run` or `physlora train`)")
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        raise RunFolderError(f"{config_path} not found; {run_dir} is not a run folder written by `physlora train`")
    return load_config(config_file=config_path)


def data_dir_of(config: RunConfig, run_dir: Path) -> Path:
    return Path(config.output.data_dir) if config.output.data_dir else run_dir / "data"


def evaluation_settings(config: RunConfig, **overrides) -> EvaluationConfig:
    """Return the run's evaluation section with the command-line overrides applied and validated."""
    values = config.evaluation.model_dump()
    values.update({key: value for key, value in overrides.items() if value is not None})
    try:
        return EvaluationConfig.model_validate(values)
    except ValidationError as error:
        raise ConfigError(format_validation_error(error, "evaluation options")) from error


def read_split(path: Path, max_items: int | None) -> list[Record]:
    if not path.is_file():
        raise RunFolderError(f"{path} not found; build the data set first (`physlora data build`)")
    records = read_jsonl(path)
    if max_items is not None:
        records = records[:max_items]
    if not records:
        raise RunFolderError(f"{path} contains no records; nothing to evaluate")
    return records


def _load_adapted_model(config: RunConfig, run_dir: Path):
    adapter_dir = run_dir / "adapter"
    marker = trained_weights_file(config.lora)
    if not (adapter_dir / marker).is_file():
        raise RunFolderError(
            f"no adapter in {adapter_dir} ({marker} not found for lora.method={config.lora.method}); "
            "finish training first (`physlora train`)"
        )
    # The trainer also builds a randomly initialised base model from training.seed, so the same
    # seed here rebuilds the weights the adapter was trained on.
    bundle = load_model(config.model, seed=config.training.seed)
    model = load_trained(bundle.model, config.lora, adapter_dir)
    model.to(_device())
    model.eval()
    return model, bundle


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _load_base(config: RunConfig) -> torch.nn.Module:
    """Load a second, untrained copy of the base model, for methods that changed the base weights themselves."""
    model = load_model(config.model, seed=config.training.seed).model
    return model.to(_device()).eval()


def _run_model(model, bundle, plan: dict, on_batch: Callable[[], None]) -> ModelOutputs:
    targets = score_pairs(model, bundle.tokenizer, bundle.family, plan["target_pairs"], plan["lengths"],
                          plan["batch_size"], on_batch)
    choices = score_pairs(model, bundle.tokenizer, bundle.family, plan["choice_pairs"], plan["lengths"],
                          plan["batch_size"], on_batch)
    answers = generate_answers(model, bundle.tokenizer, bundle.family, plan["prompts"], plan["max_new_tokens"],
                               plan["lengths"].max_seq_length, plan["batch_size"], on_batch)
    return ModelOutputs(targets=targets, choices=choices, answers=answers)


def _run_base(model, bundle, plan: dict, on_batch: Callable[[], None], config: RunConfig) -> ModelOutputs:
    """Run the plan on the untrained base of `model`: its adapter disabled, or a fresh copy of the base model."""
    with base_model_view(model, lambda: _load_base(config)) as base:
        return _run_model(base, bundle, plan, on_batch)


def _plan(config: RunConfig, evaluation: EvaluationConfig, records: list[Record], limit: dict) -> dict:
    prompts = [build_prompt(config.model.prompt_template, record.question) for record in records]
    return {
        "prompts": prompts,
        "target_pairs": [(prompt, loss_target(record)) for prompt, record in zip(prompts, records)],
        "choice_pairs": [(prompt, choice) for prompt, record in zip(prompts, records) for choice in record.choices],
        "lengths": Lengths(config.training.max_seq_length, config.training.max_target_length),
        "batch_size": evaluation.batch_size,
        "max_new_tokens": limit["max_new_tokens"],
    }


def _progress_counter(plan: dict, progress: Progress | None) -> Callable[[], None]:
    per_model = 2 * batch_count(len(plan["prompts"]), plan["batch_size"])
    per_model += batch_count(len(plan["choice_pairs"]), plan["batch_size"])
    state = {"done": 0, "total": 2 * per_model}

    def on_batch() -> None:
        state["done"] += 1
        if progress is not None:
            progress(state["done"], state["total"])

    return on_batch


def evaluate_run(
    run_dir: Path,
    split: str | None = None,
    max_items: int | None = None,
    progress: Progress | None = None,
    *,
    batch_size: int | None = None,
) -> dict:
    """Evaluate the run's base and adapted model and write RUN/predictions.jsonl and RUN/eval.json.

    `split`, `max_items` and `batch_size` override the run's evaluation config when given. Returns the
    content of eval.json. Raises RunFolderError when the config, adapter or split file is missing.
    """
    started = time.perf_counter()
    run_dir = Path(run_dir)
    config = run_config_of(run_dir)
    evaluation = evaluation_settings(config, split=split, max_items=max_items, batch_size=batch_size)
    data_file = data_dir_of(config, run_dir) / f"{evaluation.split}.jsonl"
    records = read_split(data_file, evaluation.max_items)
    model, bundle = _load_adapted_model(config, run_dir)

    limit = resolve_max_new_tokens(evaluation, bundle.tokenizer, bundle.family, [record.answer for record in records])
    plan = _plan(config, evaluation, records, limit)
    on_batch = _progress_counter(plan, progress)
    logger.info("evaluating %d %s items (max_new_tokens=%d)", len(records), evaluation.split, limit["max_new_tokens"])
    outputs = {
        "base": _run_base(model, bundle, plan, on_batch, config),
        "adapted": _run_model(model, bundle, plan, on_batch),
    }

    rows = build_rows(records, outputs)
    bootstrap = BootstrapSettings(evaluation.bootstrap_samples, evaluation.confidence, evaluation.seed)
    result = {
        "format_version": FORMAT_VERSION,
        "settings": {
            "split": evaluation.split,
            "data_file": str(data_file),
            "n_items": len(records),
            "max_items": evaluation.max_items,
            "batch_size": evaluation.batch_size,
            **limit,
            "bootstrap_samples": evaluation.bootstrap_samples,
            "confidence": evaluation.confidence,
            "seed": evaluation.seed,
            "model": config.model.name,
            "family": bundle.family,
            "device": str(next(model.parameters()).device),
        },
        "metrics": summarize(rows, bootstrap),
        "time_s": time.perf_counter() - started,
    }
    # predictions.jsonl first: a present eval.json then always has its per-item file beside it.
    write_predictions(run_dir / "predictions.jsonl", rows)
    write_json_atomic(run_dir / "eval.json", result)
    logger.info("wrote %s and %s", run_dir / "eval.json", run_dir / "predictions.jsonl")
    return result
