"""Build what a training run needs before its first step: data, model with adapter, and folder checks."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
import transformers

from physlora.config.schema import RunConfig
from physlora.data.records import Record, read_jsonl
from physlora.errors import RunFolderError
from physlora.models.adapters import parameter_counts
from physlora.models.architectures import Family, is_t5
from physlora.models.loading import load_model
from physlora.models.methods import attach_method, check_available
from physlora.train.checkpoint import CHECKPOINTS, complete_checkpoints
from physlora.train.metrics import METRICS_FILE
from physlora.train.precision import Precision, resolve_precision, store_frozen_weights_in

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.yaml"


@dataclass
class AdaptedModel:
    """The base model made trainable by the configured method (a fresh adapter, or every weight for full
    fine-tuning), on its device, in train mode."""

    model: torch.nn.Module
    tokenizer: object
    family: Family
    precision: Precision
    params: dict


def data_dir(config: RunConfig) -> Path:
    """Folder of the built data set: `output.data_dir`, else `<output.dir>/data`."""
    return Path(config.output.data_dir) if config.output.data_dir else Path(config.output.dir) / "data"


def load_splits(config: RunConfig) -> tuple[list[Record], list[Record]]:
    """Read the train and validation records. Raise RunFolderError when a file is missing or train is empty."""
    folder = data_dir(config)
    splits = []
    for name in ("train", "validation"):
        path = folder / f"{name}.jsonl"
        if not path.is_file():
            raise RunFolderError(
                f"{path} not found; run `physlora data build --config <your config> --out {folder}` "
                "(or --preset NAME instead of --config) first, "
                "or set output.data_dir to the folder of a built data set"
            )
        splits.append(read_jsonl(path))
    if not splits[0]:
        raise RunFolderError(f"{folder / 'train.jsonl'} contains no records; rebuild the data set")
    if not splits[1]:
        logger.warning("%s contains no records, so validation losses will be null", folder / "validation.jsonl")
    return splits[0], splits[1]


def build_adapted_model(config: RunConfig, device_type: str) -> AdaptedModel:
    """Load the base model, check the precision against it, and attach the configured method.

    All seeds are set before the base model is built and again right before the adapter is created,
    so the same seed gives bitwise-identical initial adapters on CPU.
    """
    training = config.training
    check_available(config.lora.method)
    transformers.set_seed(training.seed)
    bundle = load_model(config.model, seed=training.seed)
    precision = resolve_precision(training.precision, device_type, is_t5(bundle.model.config))

    model = bundle.model
    if training.gradient_checkpointing:
        # Non-reentrant checkpointing computes gradients for the LoRA weights inside each recomputed
        # block, and input gradients keep the graph connected when the embedding is frozen.
        options = {"use_reentrant": False}
        # transformers 5.25 deprecates gradient_checkpointing_enable in favour of this name.
        if hasattr(model, "activation_checkpointing_enable"):
            model.activation_checkpointing_enable(activation_checkpointing_kwargs=options)
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=options)
        model.enable_input_require_grads()
    model = attach_method(model, bundle.family, config.lora, seed=training.seed)
    model.to(device_type)
    # Counted before the frozen weights are converted: a tied output projection becomes a separate
    # copy there, which is not a parameter of the model being trained.
    params = parameter_counts(model)
    converted = store_frozen_weights_in(model, precision)
    if converted:
        logger.info("stored %s frozen linear weights in %s for autocast", f"{converted:,}", precision.name)
    model.train()
    return AdaptedModel(model, bundle.tokenizer, bundle.family, precision, params)


# Files and folders of a training run; data/, eval and report files in the same run folder are kept.
TRAINING_OUTPUTS = (METRICS_FILE, "summary.json", "adapter", "adapter-best", "adapter-last", CHECKPOINTS)


def prepare_fresh_run_folder(run_dir: Path, overwrite: bool) -> None:
    """Check that a new run may write into `run_dir`. With `overwrite`, delete an earlier run's training
    outputs. Without it, raise RunFolderError if an earlier run left metrics or checkpoints."""
    earlier = [run_dir / name for name in TRAINING_OUTPUTS if (run_dir / name).exists()]
    if not overwrite:
        if (run_dir / METRICS_FILE).exists() or complete_checkpoints(run_dir):
            raise RunFolderError(
                f"{run_dir} already contains a training run ({METRICS_FILE} or checkpoints/); continue it with "
                f"`physlora train --resume {run_dir}`, start again with --overwrite, or set output.dir to a new folder"
            )
        return
    for path in earlier:
        logger.warning("deleting %s of an earlier training run", path)
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


def check_resumable_run_folder(run_dir: Path) -> None:
    if not (run_dir / CONFIG_FILE).is_file():
        raise RunFolderError(
            f"{run_dir} is not a run folder ({CONFIG_FILE} not found); pass the output.dir of a training run to --resume"
        )
