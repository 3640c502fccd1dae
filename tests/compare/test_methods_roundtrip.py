"""Every adaptation method trains, evaluates, saves and reloads with identical outputs on tiny models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from physlora.errors import MethodUnavailableError
from physlora.eval.generation import generate_answers
from physlora.eval.runner import evaluate_run
from physlora.models.loading import load_model
from physlora.models.methods import load_trained, unavailable_reason
from physlora.train.setup import build_adapted_model
from physlora.train.trainer import Trainer

RUNNABLE = [method for method in ("lora", "full", "qlora", "dora", "ia3", "prefix") if unavailable_reason(method) is None]


def _logits(model, bundle) -> torch.Tensor:
    encoded = bundle.tokenizer(["What is the SI unit of force?"], return_tensors="pt")
    with torch.no_grad():
        if bundle.family == "seq2seq":
            decoder = torch.full((1, 3), model.config.decoder_start_token_id)
            return model(**encoded, decoder_input_ids=decoder).logits
        return model(**encoded).logits


@pytest.mark.parametrize("causal", [False, True], ids=["t5", "gemma3"])
@pytest.mark.parametrize("method", RUNNABLE)
def test_method_trains_saves_reloads(method_config, method: str, causal: bool):
    config = method_config(method, causal=causal)
    trainer = Trainer(config)
    summary = trainer.run()
    run_dir = Path(config.output.dir)

    assert summary["steps"] == 2
    assert summary["params"]["trainable"] > 0
    trained = trainer.model.eval()
    bundle = load_model(config.model, seed=config.training.seed)
    reloaded = load_trained(bundle.model, trainer.config.lora, run_dir / "adapter").eval()
    assert torch.equal(_logits(trained, bundle), _logits(reloaded, bundle))

    result = evaluate_run(run_dir)
    assert result["settings"]["n_items"] == 4
    assert result["metrics"]["overall"]["mc_accuracy_sum"]["adapted"] is not None
    predictions = (run_dir / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(predictions) == 4


def test_full_trains_every_parameter(method_config):
    config = method_config("full")
    summary = Trainer(config).run()

    assert summary["params"]["trainable"] == summary["params"]["total"]
    assert summary["config"]["training"]["learning_rate"] == config.lora.full_learning_rate
    assert (Path(config.output.dir) / "adapter" / "model.safetensors").is_file()


def test_full_eval_base_differs(method_config):
    config = method_config("full", "lora.full_learning_rate=0.05")
    Trainer(config).run()
    result = evaluate_run(Path(config.output.dir))

    rows = [json.loads(line) for line in (Path(config.output.dir) / "predictions.jsonl").read_text().splitlines()]
    loss = result["metrics"]["overall"]["loss"]
    assert loss["base"] != loss["adapted"]
    assert any(row["base"] != row["adapted"] for row in rows)


def test_prefix_generates_on_t5(method_config):
    config = method_config("prefix", "lora.prefix_virtual_tokens=3")
    trainer = Trainer(config)
    trainer.run()
    bundle = load_model(config.model, seed=config.training.seed)
    model = load_trained(bundle.model, trainer.config.lora, Path(config.output.dir) / "adapter").eval()
    encoded = bundle.tokenizer(["What is the SI unit of power?"], return_tensors="pt")

    with torch.no_grad():
        sequence = model.generate(**encoded, max_new_tokens=5, do_sample=False, num_beams=1, min_new_tokens=5)
        # Greedy decoding with the cached prefix must pick the tokens a full forward pass ranks first.
        logits = model(**encoded, decoder_input_ids=sequence[:, :-1]).logits
        with model.disable_adapter():
            base_logits = model(**encoded, decoder_input_ids=sequence[:, :-1]).logits
    assert model.peft_config["default"].num_virtual_tokens == 3
    assert sequence.shape[1] == 6
    assert torch.equal(logits.argmax(-1), sequence[:, 1:])
    assert not torch.allclose(logits, base_logits)
    answers = generate_answers(model, bundle.tokenizer, "seq2seq", ["What is the SI unit of power?"], 5, 64, 1)
    assert answers[0].n_tokens >= 1


def test_prefix_base_equals_lora_base(method_config):
    base_losses = []
    for method in ("lora", "prefix"):
        config = method_config(method, causal=True)
        Trainer(config).run()
        loss = evaluate_run(Path(config.output.dir))["metrics"]["overall"]["loss"]
        base_losses.append(loss["base"])
        assert loss["adapted"] != loss["base"]

    assert base_losses[0] == pytest.approx(base_losses[1], abs=1e-6)


def test_qlora_quantizes_base(method_config):
    if unavailable_reason("qlora") is not None:
        pytest.skip(unavailable_reason("qlora"))
    config = method_config("qlora")
    trainer = Trainer(config)
    trainer.run()

    quantized = [module for module in trainer.model.modules() if type(module).__name__ == "Linear4bit"]
    assert quantized
    counted = trainer.params["total"]
    full = sum(parameter.numel() for parameter in load_model(config.model, seed=42).model.parameters())
    assert counted == full + trainer.params["trainable"]


def test_adapter_method_unavailable(method_config):
    config = method_config("adapter")

    with pytest.raises(MethodUnavailableError, match="transformers"):
        Trainer(config).run()


def test_bf16_store_skips_trained_and_quantized(method_config):
    full = build_adapted_model(method_config("full", "training.precision=bf16"), "cpu")

    assert all(parameter.dtype == torch.float32 for parameter in full.model.parameters())
    if unavailable_reason("qlora") is not None:
        pytest.skip(unavailable_reason("qlora"))
    qlora = build_adapted_model(method_config("qlora", "training.precision=bf16"), "cpu")
    quantized = [module for module in qlora.model.modules() if type(module).__name__ == "Linear4bit"]
    assert quantized
    assert all(module.weight.dtype == torch.uint8 for module in quantized)
    trained = [parameter for parameter in qlora.model.parameters() if parameter.requires_grad]
    assert all(parameter.dtype == torch.float32 for parameter in trained)
