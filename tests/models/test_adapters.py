"""LoRA attachment: target-module errors and the exact trainable parameter count of FLAN-T5-base."""

from __future__ import annotations

import re

import pytest
from tiny_models import tiny_model

from physlora.config import load_config
from physlora.config.schema import LoraConfig
from physlora.errors import ConfigError
from physlora.models.adapters import attach_lora, parameter_counts
from physlora.models.loading import load_model


def test_missing_target_module_lists_linear_modules(t5_tokenizer_path):
    bundle = tiny_model(t5_tokenizer_path, "t5")
    with pytest.raises(ConfigError, match=r"\['q_proj'\] not found") as error:
        attach_lora(bundle.model, bundle.family, LoraConfig(target_modules=["q", "q_proj"]), seed=0)
    listed = re.search(r"linear modules are: ([\w, ]+)", str(error.value))
    assert listed is not None
    assert set(listed.group(1).split(", ")) == {"q", "k", "v", "o", "wi_0", "wi_1", "wo", "lm_head"}


def test_flan_t5_base_report_lora_has_884736_trainable(t5_tokenizer_path):
    # q and v (768 x 768) with r=8: 2 x 12 encoder + 4 x 12 decoder modules of 2 x 768 x 8 weights each.
    config = load_config(preset="report", overrides=[
        "model.init=random", "model.architecture=t5", "model.name=flan-t5-base", f"model.tokenizer={t5_tokenizer_path}",
    ])
    bundle = load_model(config.model, seed=0)
    model = attach_lora(bundle.model, bundle.family, config.lora, seed=0)
    counts = parameter_counts(model)

    assert counts["trainable"] == 884_736
    assert len(counts["lora_modules"]) == 72
    assert 247_000_000 < counts["total"] < 250_000_000
    assert counts["frozen"] == counts["total"] - counts["trainable"]
    assert counts["trainable_pct"] == pytest.approx(100 * 884_736 / counts["total"])


def test_load_adapter_rejects_renamed_tensor(t5_tokenizer_path, tmp_path):
    from safetensors.torch import load_file, save_file

    from physlora.errors import ModelError
    from physlora.models.adapters import load_adapter

    bundle = tiny_model(t5_tokenizer_path, "t5")
    attach_lora(bundle.model, bundle.family, LoraConfig(r=2), seed=0).save_pretrained(tmp_path)
    weights_path = tmp_path / "adapter_model.safetensors"
    tensors = load_file(weights_path)
    first = sorted(tensors)[0]
    tensors[first.replace("lora_A", "lora_Z")] = tensors.pop(first)
    save_file(tensors, weights_path)

    with pytest.raises(ModelError, match="does not fit the base model"):
        load_adapter(tiny_model(t5_tokenizer_path, "t5").model, tmp_path)


def test_load_adapter_accepts_intact_adapter(t5_tokenizer_path, tmp_path):
    from physlora.models.adapters import load_adapter

    bundle = tiny_model(t5_tokenizer_path, "t5")
    attach_lora(bundle.model, bundle.family, LoraConfig(r=2), seed=0).save_pretrained(tmp_path)
    loaded = load_adapter(tiny_model(t5_tokenizer_path, "t5").model, tmp_path)
    assert parameter_counts(loaded)["lora_modules"]
