"""Attach a PEFT adapter to a base model, count parameters, and reload saved adapters."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from peft import LoraConfig as PeftLoraConfig
from peft import PeftModel, TaskType, get_peft_model

from physlora.config.schema import LoraConfig
from physlora.errors import ConfigError, ModelError
from physlora.models.architectures import DEFAULT_LORA_TARGETS, Family

logger = logging.getLogger(__name__)

_TASK_TYPES = {"seq2seq": TaskType.SEQ_2_SEQ_LM, "causal": TaskType.CAUSAL_LM}


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
    peft_config = PeftLoraConfig(
        task_type=_TASK_TYPES[family],
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=target_modules_for(lora, family, model),
        bias=lora.bias,
    )
    torch.manual_seed(seed)
    return get_peft_model(model, peft_config)


def load_adapter(model: torch.nn.Module, adapter_dir: str | Path, trainable: bool = False) -> PeftModel:
    adapter_dir = Path(adapter_dir)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise ModelError(f"{adapter_dir} is not a PEFT adapter folder (adapter_config.json not found)")
    return PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=trainable)


def parameter_counts(model: torch.nn.Module) -> dict:
    """Total, trainable and frozen parameters, plus the shape of every LoRA pair for the report's arithmetic."""
    total = sum(parameter.numel() for parameter in model.parameters())
    trainable = sum(parameter.numel() for parameter in model.parameters() if parameter.requires_grad)
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
