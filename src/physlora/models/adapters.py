"""Attach a PEFT adapter to a base model, count parameters, and reload saved adapters.

PEFT (0.21) only warns when an adapter file lacks tensors the adapter's layers expect, and silently
ignores tensors that match no layer, so a renamed or truncated adapter would run as a partly random
model. `load_checked_adapter` compares both key sets and raises ModelError on any difference.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import torch
from peft import LoraConfig as PeftLoraConfig
from peft import PeftModel, TaskType, get_peft_model
from peft.utils import get_peft_model_state_dict, load_peft_weights

from physlora.config.schema import LoraConfig
from physlora.errors import ConfigError, ModelError
from physlora.models.architectures import DEFAULT_LORA_TARGETS, Family

logger = logging.getLogger(__name__)

_SHOWN_KEYS = 5
TASK_TYPES = {"seq2seq": TaskType.SEQ_2_SEQ_LM, "causal": TaskType.CAUSAL_LM}


def linear_module_names(model: torch.nn.Module) -> list[str]:
    """Distinct last name components of the model's nn.Linear modules (what target_modules matches)."""
    return sorted({name.rsplit(".", 1)[-1] for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)})


def target_modules_for(lora: LoraConfig, family: Family, model: torch.nn.Module) -> list[str]:
    targets = list(lora.target_modules or DEFAULT_LORA_TARGETS[family])
    available = linear_module_names(model)
    missing = [target for target in targets if target not in available]
    if missing:
        raise ConfigError(
            f"lora.target_modules={targets}: {missing} not found in the model. "
            f"Its linear modules are: {', '.join(available)}; set lora.target_modules to some of these"
        )
    return targets


def attach_lora(model: torch.nn.Module, family: Family, lora: LoraConfig, seed: int) -> PeftModel:
    """Wrap `model` with a LoRA adapter. The seed is set right before the adapter weights are created,
    so the same seed gives bitwise-identical initial adapters on CPU."""
    torch.manual_seed(seed)
    return get_peft_model(model, lora_peft_config(lora, family, model))


def lora_peft_config(lora: LoraConfig, family: Family, model: torch.nn.Module) -> PeftLoraConfig:
    """PEFT LoRA config of `lora`; DoRA when lora.method is dora."""
    return PeftLoraConfig(
        task_type=TASK_TYPES[family],
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=target_modules_for(lora, family, model),
        bias=lora.bias,
        use_dora=lora.method == "dora",
    )


def load_adapter(model: torch.nn.Module, adapter_dir: str | Path) -> PeftModel:
    """Load the saved adapter in `adapter_dir` onto `model`, with the strict tensor check."""
    return load_checked_adapter(model, Path(adapter_dir), "default")


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


def parameter_counts(model: torch.nn.Module) -> dict:
    """Total, trainable and frozen parameters, plus the shape of every LoRA pair for the report's arithmetic."""
    total = sum(logical_numel(parameter) for parameter in model.parameters())
    trainable = sum(logical_numel(parameter) for parameter in model.parameters() if parameter.requires_grad)
    lora_modules = []
    for name, module in model.named_modules():
        lora_a = getattr(module, "lora_A", None)
        if isinstance(lora_a, torch.nn.ModuleDict) and "default" in lora_a:
            base = module.get_base_layer()
            lora_modules.append(
                {"name": name, "in_features": base.in_features, "out_features": base.out_features,
                 "r": lora_a["default"].out_features}
            )
    return {
        "total": total,
        "trainable": trainable,
        "frozen": total - trainable,
        "trainable_pct": 100.0 * trainable / total if total else 0.0,
        "lora_modules": lora_modules,
    }


def logical_numel(parameter: torch.Tensor) -> int:
    """Number of weights a parameter represents. A bitsandbytes 4-bit parameter packs two weights per
    stored byte, so its numel is half the weight count, and its quant_state keeps the real shape."""
    quant_state = getattr(parameter, "quant_state", None)
    if quant_state is not None and getattr(quant_state, "shape", None) is not None:
        return int(torch.Size(quant_state.shape).numel())
    return parameter.numel()


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
