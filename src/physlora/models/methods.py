"""Adaptation methods behind one interface: attach a method to a base model, and reload what it trained.

Methods: lora, dora and qlora (PEFT LoRA layers, with DoRA's magnitude vector, or on a 4-bit base),
ia3 and prefix (PEFT), full (every parameter trained, saved as a whole transformers model) and
adapter (bottleneck adapters, unavailable here: see `unavailable_reason`).

Every method saves into the run's `adapter/` folder: a PEFT adapter folder for the PEFT methods, and a
transformers model folder (config.json, model.safetensors) for full fine-tuning.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from peft import IA3Config, PeftModel, PrefixTuningConfig, get_peft_model
from safetensors.torch import load_model as load_safetensors_into

from physlora.config.schema import LoraConfig, RunConfig
from physlora.errors import ConfigError, MethodUnavailableError, ModelError
from physlora.models.adapters import TASK_TYPES, load_checked_adapter, lora_peft_config, target_modules_for
from physlora.models.architectures import Family

logger = logging.getLogger(__name__)

METHODS = ("lora", "full", "qlora", "dora", "ia3", "prefix", "adapter")
FULL_MODEL_FILE = "model.safetensors"
# Block size of bitsandbytes 4-bit quantization (its default). Its CPU kernel (0.50) repacks the
# weights per block of input features and fails on layers narrower than one block.
_QUANT_BLOCK = 64

# Reason bottleneck adapters cannot run here, checked with `pip install --dry-run adapters` against the
# `adapters` 1.3.0 release. PEFT 0.21.2 has no bottleneck adapter method of its own.
_ADAPTER_REASON = (
    "bottleneck adapters need the `adapters` package, whose current release (1.3.0) requires "
    "transformers~=4.57.6 while physlora needs transformers 5; PEFT 0.21 has no bottleneck adapter method"
)


def unavailable_reason(method: str) -> str | None:
    """Say why `method` cannot run in this environment, or return None when it can."""
    if method == "adapter":
        return _ADAPTER_REASON
    if method == "qlora" and importlib.util.find_spec("bitsandbytes") is None:
        return "4-bit base weights need the bitsandbytes package, which is not installed (pip install 'physlora[qlora]')"
    return None


def check_available(method: str) -> None:
    """Raise MethodUnavailableError when `method` cannot run in this environment."""
    reason = unavailable_reason(method)
    if reason is not None:
        raise MethodUnavailableError(f"lora.method={method} cannot run: {reason}")


def apply_method_defaults(config: RunConfig) -> None:
    """Set the settings a method changes in the rest of the config, in place.

    Full fine-tuning trains with `lora.full_learning_rate` instead of `training.learning_rate`,
    because the rate that suits small adapters moves pretrained weights too far.
    """
    if config.lora.method == "full":
        config.training.learning_rate = config.lora.full_learning_rate


def quantize_base(model: torch.nn.Module, lora: LoraConfig) -> int:
    """Replace the model's linear layers, except the output projection, by bitsandbytes 4-bit layers.

    Works on pretrained and randomly initialised models alike, on CPU and CUDA (bitsandbytes 0.50).
    Returns the number of layers replaced.

    NOTE: the model was loaded in float32 first, so peak memory still includes the unquantized weights.
    """
    import bitsandbytes as bnb

    output = model.get_output_embeddings()
    # transformers keeps these in float32 when it quantizes a model (T5's wo, whose forward casts its
    # input to the weight's dtype), and so does this function.
    keep = set(getattr(model, "_keep_in_fp32_modules", None) or [])
    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is not torch.nn.Linear or child is output or name in keep:
                continue
            if child.in_features % _QUANT_BLOCK:
                raise ModelError(
                    f"lora.method=qlora: a {name} layer has {child.in_features} input features, not a multiple of "
                    f"the {_QUANT_BLOCK}-weight block bitsandbytes' CPU kernels quantize; use a wider model"
                )
            quantized = bnb.nn.Linear4bit(
                child.in_features, child.out_features, bias=child.bias is not None,
                compute_dtype=child.weight.dtype, quant_type=lora.qlora_quant_type, device="meta",
            )
            quantized.weight = bnb.nn.Params4bit(
                child.weight.data, requires_grad=False, quant_type=lora.qlora_quant_type,
            ).to(child.weight.device)
            if child.bias is not None:
                quantized.bias = torch.nn.Parameter(child.bias.data, requires_grad=False)
            # bitsandbytes 0.50 repacks a layer's weights on its first CPU forward in eval mode, rounding
            # the block scales to bfloat16 in place, and the state dict unpacks them again. A model that
            # was evaluated during training would then differ from the same adapter reloaded onto a fresh
            # base, so the repacking is switched off and every forward dequantizes the same stored scales.
            quantized.support_avx512bf16_for_cpu = False
            setattr(parent, name, quantized)
            replaced += 1
    return replaced


def attach_method(model: torch.nn.Module, family: Family, lora: LoraConfig, seed: int) -> torch.nn.Module:
    """Make `model` trainable with `lora.method`. The seed is set right before new weights are created,
    so the same seed gives bitwise-identical initial adapters on CPU."""
    check_available(lora.method)
    if lora.method == "full":
        for parameter in model.parameters():
            parameter.requires_grad_(True)
        return model
    if lora.method == "qlora":
        logger.info("quantized %d linear layers to 4-bit %s", quantize_base(model, lora), lora.qlora_quant_type)
    peft_config = _peft_config(model, family, lora)
    torch.manual_seed(seed)
    return get_peft_model(model, peft_config)


def _peft_config(model: torch.nn.Module, family: Family, lora: LoraConfig):
    task_type = TASK_TYPES[family]
    if lora.method in ("lora", "dora", "qlora"):
        return lora_peft_config(lora, family, model)
    if lora.method == "ia3":
        return _ia3_config(model, family, lora)
    return PrefixTuningConfig(task_type=task_type, num_virtual_tokens=lora.prefix_virtual_tokens)


def _ia3_config(model: torch.nn.Module, family: Family, lora: LoraConfig) -> IA3Config:
    if lora.ia3_target_modules is None:
        # PEFT's per-architecture defaults: k, v, wo for T5 (wo scaled at its input), q_proj, v_proj,
        # down_proj for Gemma 3.
        return IA3Config(task_type=TASK_TYPES[family])
    targets = target_modules_for(lora.model_copy(update={"target_modules": lora.ia3_target_modules}), family, model)
    feedforward = list(lora.ia3_feedforward_modules or [])
    outside = [name for name in feedforward if name not in targets]
    if outside:
        raise ConfigError(
            f"lora.ia3_feedforward_modules={feedforward}: {outside} not in lora.ia3_target_modules={targets}; "
            "every feed-forward module must also be a target"
        )
    return IA3Config(task_type=TASK_TYPES[family], target_modules=targets, feedforward_modules=feedforward)


def load_trained(
    model: torch.nn.Module, lora: LoraConfig, weights_dir: Path, adapter_name: str = "default"
) -> torch.nn.Module:
    """Load what a run trained onto its freshly loaded base `model`, checking every tensor strictly.

    Raises ModelError when `weights_dir` lacks the method's files or they do not fit `model`.
    """
    check_available(lora.method)
    if lora.method == "full":
        load_full_weights(model, Path(weights_dir) / FULL_MODEL_FILE)
        return model
    if lora.method == "qlora":
        quantize_base(model, lora)
    return load_checked_adapter(model, Path(weights_dir), adapter_name)


def load_full_weights(model: torch.nn.Module, path: Path) -> None:
    """Load a whole-model safetensors file into `model`; raise ModelError on any missing or extra tensor."""
    if not path.is_file():
        raise ModelError(f"{path} not found; a full fine-tuning run saves the whole model there")
    try:
        missing, unexpected = load_safetensors_into(model, str(path), strict=False)
    except (OSError, RuntimeError, ValueError) as error:
        raise ModelError(f"cannot load the fine-tuned model {path}: {error}") from error
    if missing or unexpected:
        raise ModelError(
            f"{path} does not fit the base model: missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}. "
            "Check that it was trained on this run's base model and that the file is intact."
        )


def trained_weights_file(lora: LoraConfig) -> str:
    """Name of the file whose presence in `adapter/` shows that the method's training finished."""
    return FULL_MODEL_FILE if lora.method == "full" else "adapter_config.json"


@contextlib.contextmanager
def base_model_view(model: torch.nn.Module, load_base: Callable[[], torch.nn.Module]) -> Iterator[torch.nn.Module]:
    """Yield the untrained base of `model`: the PEFT model with its adapter disabled, or, for a fully
    fine-tuned model, a second copy of the base built by `load_base` and freed afterwards."""
    if isinstance(model, PeftModel) and model.active_peft_config.is_prompt_learning:
        # Prefix tuning leaves the base model's layers untouched. PEFT's disable_adapter only swaps the
        # wrapper's forward, which the decoder-only scoring path does not call.
        yield model.get_base_model()
        return
    if isinstance(model, PeftModel):
        with model.disable_adapter():
            yield model
        return
    base = load_base()
    try:
        yield base
    finally:
        del base

