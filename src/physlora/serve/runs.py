"""Load a run's base model and adapter for inference, with a strict check of the adapter's tensors.

PEFT (0.21) only warns when an adapter file lacks tensors the adapter's layers expect, and silently
ignores tensors that match no layer, so a renamed or truncated adapter would run as a partly random
model. `load_checked_adapter` compares both key sets and raises ModelError on any difference.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from peft import PeftModel
from peft.utils import get_peft_model_state_dict, load_peft_weights

from physlora.config.schema import RunConfig
from physlora.errors import ModelError, RunFolderError
from physlora.eval.runner import run_config_of
from physlora.models.loading import ModelBundle, load_model

ADAPTER_DIR = "adapter"
_SHOWN_KEYS = 5


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


def adapter_dir_of(run_dir: Path) -> Path:
    """Return the run's adapter folder; raise RunFolderError when it contains no adapter."""
    adapter_dir = Path(run_dir) / ADAPTER_DIR
    if not (adapter_dir / "adapter_config.json").is_file():
        raise RunFolderError(
            f"no adapter in {adapter_dir} (adapter_config.json not found); finish training first (`physlora train`)"
        )
    return adapter_dir


def read_run_config(run_dir: Path) -> RunConfig:
    """Read the stored config of a run folder that contains a trained adapter."""
    config = run_config_of(Path(run_dir))
    adapter_dir_of(run_dir)
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


def load_checked_adapter(model: torch.nn.Module, adapter_dir: Path, adapter_name: str) -> PeftModel:
    """Load the adapter in `adapter_dir` under `adapter_name` and check its tensors against its layers.

    `model` is a plain transformers model (wrapped into a new PeftModel) or a PeftModel that gets one
    more adapter. Raises ModelError when the adapter cannot be loaded, when a tensor has the wrong shape,
    or when the file's tensor names and the adapter's LoRA parameter names differ.
    """
    adapter_dir = Path(adapter_dir)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise ModelError(f"{adapter_dir} is not a PEFT adapter folder (adapter_config.json not found)")
    with warnings.catch_warnings():
        # The key comparison below raises on missing tensors, so PEFT's warning would only repeat it.
        warnings.filterwarnings("ignore", message="Found missing adapter keys")
        try:
            if isinstance(model, PeftModel):
                model.load_adapter(str(adapter_dir), adapter_name=adapter_name)
            else:
                model = PeftModel.from_pretrained(model, str(adapter_dir), adapter_name=adapter_name)
        except (OSError, RuntimeError, ValueError, KeyError) as error:
            raise ModelError(f"cannot load the adapter in {adapter_dir}: {_first_line(error)}") from error
    check_adapter_keys(model, adapter_dir, adapter_name)
    return model


def check_adapter_keys(model: PeftModel, adapter_dir: Path, adapter_name: str) -> None:
    """Raise ModelError unless the saved tensor names equal the names PEFT would save for this adapter."""
    saved = set(load_peft_weights(str(adapter_dir), device="cpu"))
    expected = set(get_peft_model_state_dict(model, adapter_name=adapter_name))
    missing = sorted(expected - saved)
    unexpected = sorted(saved - expected)
    if not missing and not unexpected:
        return
    parts = []
    if missing:
        parts.append(f"{len(missing)} adapter tensor(s) missing from the file, for example {missing[:_SHOWN_KEYS]}")
    if unexpected:
        parts.append(f"{len(unexpected)} tensor(s) in the file match no LoRA layer, for example {unexpected[:_SHOWN_KEYS]}")
    raise ModelError(
        f"the adapter in {adapter_dir} does not fit the base model: {'; '.join(parts)}. "
        "Check that the adapter was trained on this run's base model and that its files are intact."
    )


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
