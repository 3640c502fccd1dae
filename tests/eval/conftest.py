"""Tiny run folders for evaluation tests: a random T5, a LoRA adapter with non-zero weights, a test split."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from physlora.config import dump_yaml, load_config
from physlora.data.records import Record, write_jsonl
from physlora.models.adapters import attach_lora
from physlora.models.loading import load_model

# The last answer is long on purpose: its token count plus the margin exceeds 20, the max_length
# transformers falls back to when no limit is passed.
ANSWERS = ["newton", "joule", "watt", "the speed of light in a vacuum", "kinetic energy",
           "a wave that needs a medium to travel through, such as sound in air or water"]


def make_records() -> list[Record]:
    records = []
    for index in range(12):
        answer = ANSWERS[index % len(ANSWERS)]
        with_choices = index % 2 == 1
        choices = [answer, "volt", "ampere", "ohm"] if with_choices else []
        if with_choices and index % 4 == 3:
            choices = ["volt", answer, "ohm"]
        records.append(
            Record(
                id=f"hand-test-{index}",
                source="arc" if with_choices else "sciq",
                question=f"Question {index}: which quantity or unit is described here?",
                answer=answer,
                choices=choices,
                answer_index=choices.index(answer) if choices else None,
                topic=["mechanics", "energy", "waves_optics"][index % 3],
                original_split="test",
                target=answer,
            )
        )
    return records


def build_run(run_dir: Path, overrides: list[str] | None = None, records: list[Record] | None = None) -> Path:
    """Write config.yaml, adapter/ (LoRA B matrices set non-zero so adapted differs from base) and data/test.jsonl."""
    config = load_config(preset="tiny", overrides=[f"output.dir={run_dir}", *(overrides or [])])
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(dump_yaml(config), encoding="utf-8")
    bundle = load_model(config.model, seed=config.training.seed)
    model = attach_lora(bundle.model, bundle.family, config.lora, config.training.seed)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.5)
    model.save_pretrained(run_dir / "adapter")
    write_jsonl(records if records is not None else make_records(), run_dir / "data" / "test.jsonl")
    return run_dir


def tiny_bundle(architecture: str):
    """A tiny randomly initialised model in eval mode: t5 (seq2seq) or llama (causal), T5 tokenizer."""
    overrides = [] if architecture == "t5" else [f"model.architecture={architecture}", "model.config={}",
                                                   "model.family=causal"]
    config = load_config(preset="tiny", overrides=overrides)
    bundle = load_model(config.model, seed=0)
    bundle.model.eval()
    return bundle


@pytest.fixture(scope="module")
def t5_bundle(t5_tokenizer_path):
    return tiny_bundle("t5")


@pytest.fixture(scope="module")
def llama_bundle(t5_tokenizer_path):
    return tiny_bundle("llama")


@pytest.fixture
def run_builder(t5_tokenizer_path):
    """The `build_run` function, for tests that need a run folder with other settings or records."""
    return build_run


@pytest.fixture
def hand_records() -> list[Record]:
    return make_records()


@pytest.fixture
def tiny_run(tmp_path, t5_tokenizer_path) -> Path:
    return build_run(tmp_path / "run")


@pytest.fixture(scope="module")
def evaluated_run(tmp_path_factory, t5_tokenizer_path) -> Path:
    """A tiny run evaluated once with default settings, shared by the read-only tests of a module."""
    from physlora.eval.runner import evaluate_run

    run_dir = build_run(tmp_path_factory.mktemp("evaluated") / "run")
    evaluate_run(run_dir)
    return run_dir
