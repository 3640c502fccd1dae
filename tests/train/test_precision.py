"""Precision choice, bf16 training, and frozen weights stored in the autocast dtype."""

from __future__ import annotations

import pytest
import torch

from physlora.models.encoding import build_prompt, collate, encode_example
from physlora.models.scoring import label_logprobs, unwrap
from physlora.train import train_run
from physlora.train.precision import Precision, bf16_supported, resolve_precision, store_frozen_weights_in
from physlora.train.setup import build_adapted_model


def test_auto_precision_follows_hardware():
    expected = "bf16" if bf16_supported("cpu") else "fp32"
    assert resolve_precision("auto", "cpu", model_is_t5=True).name == expected
    assert resolve_precision("fp32", "cpu", model_is_t5=True).name == "fp32"
    assert resolve_precision("fp16", "cpu", model_is_t5=False).grad_scaler() is not None


@pytest.mark.parametrize("causal", [False, True], ids=["t5", "gemma3"])
def test_frozen_bf16_weights_keep_autocast_results(make_config, causal):
    overrides = [] if causal else ["model.config.dropout_rate=0.0"]
    config = make_config(*overrides, causal=causal)
    adapted = build_adapted_model(config, "cpu")  # the tiny preset trains in fp32: nothing converted yet
    model = adapted.model.eval()
    prompt = build_prompt(config.model.prompt_template, "What is the SI unit of force?")
    example = encode_example(adapted.tokenizer, adapted.family, prompt, "newton", 64, 16)
    batch = collate([example], adapted.tokenizer.pad_token_id)
    precision = Precision("bf16", "cpu")
    with torch.no_grad(), precision.autocast():
        before, _ = label_logprobs(model, adapted.family, batch)

    converted = store_frozen_weights_in(model, precision)
    inner = unwrap(model)
    with torch.no_grad(), precision.autocast():
        after, _ = label_logprobs(model, adapted.family, batch)

    assert converted > 0
    assert inner.get_output_embeddings().weight.dtype == torch.bfloat16
    assert inner.get_input_embeddings().weight.dtype == torch.float32
    assert all(parameter.dtype == torch.float32 for parameter in model.parameters() if parameter.requires_grad)
    torch.testing.assert_close(after, before, rtol=0, atol=0)


@pytest.mark.parametrize("causal", [False, True], ids=["t5", "gemma3"])
def test_bf16_training_counts_and_learns(make_config, causal):
    fp32 = train_run(make_config(run="fp32", causal=causal), max_steps=0)
    summary = train_run(make_config("training.precision=bf16", "training.learning_rate=1e-2",
                                    "training.warmup_steps=0", "training.epochs=3", run="bf16", causal=causal))
    assert summary["precision"] == "bf16"
    assert summary["params"]["total"] == fp32["params"]["total"]
    assert summary["params"]["trainable"] == fp32["params"]["trainable"]
    assert summary["epochs"][-1]["val_loss"] < summary["epochs"][0]["val_loss"] - 0.1
