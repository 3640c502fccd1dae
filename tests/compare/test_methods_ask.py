"""`physlora ask` and the adapter registry load runs of every method, fully fine-tuned ones included."""

from __future__ import annotations

from pathlib import Path

import pytest

from physlora.errors import ConfigError
from physlora.eval.generation import generate_answers
from physlora.models.loading import load_model
from physlora.serve.ask import answer_questions, load_run_registry
from physlora.serve.registry import AdapterRegistry, AdapterSpec
from physlora.train.trainer import train_run

QUESTIONS = ["What is the SI unit of force?", "What is the SI unit of power?"]


def test_ask_full_run(method_config):
    config = method_config("full", "lora.full_learning_rate=0.05")
    train_run(config)
    registry = load_run_registry(Path(config.output.dir))

    adapted = answer_questions(registry, QUESTIONS, max_new_tokens=4)
    base = answer_questions(registry, QUESTIONS, base=True, max_new_tokens=4)
    bundle = load_model(config.model, seed=config.training.seed)
    prompts = [registry.prompt_for("adapted", question) for question in QUESTIONS]
    expected_base = generate_answers(bundle.model.eval(), bundle.tokenizer, bundle.family, prompts, 4,
                                     config.training.max_seq_length, 2)
    assert [answer.text for answer in base] == [answer.text for answer in expected_base]
    assert len(adapted) == 2


@pytest.mark.parametrize("method", ["ia3", "prefix"])
def test_ask_peft_method_run(method_config, method: str):
    config = method_config(method)
    train_run(config)
    registry = load_run_registry(Path(config.output.dir))

    assert len(answer_questions(registry, QUESTIONS, max_new_tokens=3)) == 2
    assert len(answer_questions(registry, QUESTIONS, base=True, max_new_tokens=3)) == 2


def test_serve_mixed_methods_rejected(method_config):
    lora, ia3 = method_config("lora"), method_config("ia3")
    train_run(lora)
    train_run(ia3)
    specs = [AdapterSpec("first", Path(lora.output.dir)), AdapterSpec("second", Path(ia3.output.dir))]

    with pytest.raises(ConfigError, match="lora.method=ia3"):
        AdapterRegistry.load(specs, general=None)
