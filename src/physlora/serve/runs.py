"""Load a run's base model and adapter for inference; the adapter's tensors are checked strictly by
`physlora.models.adapters.load_checked_adapter`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from physlora.config.schema import RunConfig
from physlora.errors import ModelError, RunFolderError
from physlora.eval.runner import run_config_of
from physlora.models.loading import ModelBundle, load_model
from physlora.models.methods import trained_weights_file

ADAPTER_DIR = "adapter"


@dataclass(frozen=True)
class GenerationSettings:
    """Prompt template and length limits of one run."""

    prompt_template: str
    max_seq_length: int
    default_max_new_tokens: int
    batch_size: int


def generation_settings(config: RunConfig) -> GenerationSettings:
    """Settings of a run: its prompt template and prompt limit, and a default answer length.

    The default answer length is evaluation.max_new_tokens when set, else training.max_target_length
    (the longest answer the adapter was trained to produce), because evaluation's other rule sizes the
    limit from reference answers that a served question does not have.
    """
    default_tokens = config.evaluation.max_new_tokens or config.training.max_target_length
    return GenerationSettings(
        prompt_template=config.model.prompt_template,
        max_seq_length=config.training.max_seq_length,
        default_max_new_tokens=default_tokens,
        batch_size=config.evaluation.batch_size,
    )


def adapter_dir_of(run_dir: Path, marker: str = "adapter_config.json") -> Path:
    """Return the run's adapter folder; raise RunFolderError when `marker` (the file the run's method
    saves there) is missing."""
    adapter_dir = Path(run_dir) / ADAPTER_DIR
    if not (adapter_dir / marker).is_file():
        raise RunFolderError(
            f"no adapter in {adapter_dir} ({marker} not found); finish training first (`physlora train`)"
        )
    return adapter_dir


def read_run_config(run_dir: Path) -> RunConfig:
    """Read the stored config of a run folder that contains a trained adapter (or fine-tuned model)."""
    config = run_config_of(Path(run_dir))
    adapter_dir_of(run_dir, trained_weights_file(config.lora))
    return config


def load_base(config: RunConfig, dtype: str | None = None) -> ModelBundle:
    """Build the run's base model, in `dtype` when given, else in model.dtype.

    NOTE: a randomly initialised base is rebuilt from training.seed, as evaluation does. It matches the
    trained base only if the trainer built it with the same seed.
    """
    model_config = config.model.model_copy(update={"dtype": dtype}) if dtype else config.model
    return load_model(model_config, seed=config.training.seed)


def inference_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


