"""`physlora merge`: merged weights reproduce the adapted model; a damaged adapter raises ModelError."""

from __future__ import annotations

import shutil

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer
from typer.testing import CliRunner

from physlora.cli import app
from physlora.errors import ConfigError, ModelError
from physlora.eval.generation import generate_answers
from physlora.models.encoding import build_prompt, collate, encode_example
from physlora.serve.merge import MERGE_INFO_FILE, merge_run
from physlora.models.adapters import load_checked_adapter
from physlora.serve.runs import adapter_dir_of, load_base, read_run_config

QUESTIONS = ["What is the SI unit of force?", "Why does a ball thrown upwards slow down?", "What is a joule?"]
TARGETS = ["the newton", "gravity pulls it down", "a unit of energy"]


@pytest.fixture(scope="module")
def run_dir(serve_runs):
    return serve_runs["mechanics"]


@pytest.fixture(scope="module")
def merged_dir(run_dir, tmp_path_factory):
    return merge_run(run_dir, tmp_path_factory.mktemp("merge") / "merged")


def _unmerged(run_dir):
    config = read_run_config(run_dir)
    bundle = load_base(config, dtype="float32")
    model = load_checked_adapter(bundle.model, adapter_dir_of(run_dir), "default")
    return model.eval(), bundle, config


def _batch(tokenizer, config):
    prompts = [build_prompt(config.model.prompt_template, question) for question in QUESTIONS]
    examples = [encode_example(tokenizer, "seq2seq", prompt, target, 128, 32) for prompt, target in zip(prompts, TARGETS)]
    return prompts, collate(examples, tokenizer.pad_token_id)


@torch.no_grad()
def _logits(model, batch):
    return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]).logits


def test_merged_logits_match_unmerged(run_dir, merged_dir):
    unmerged, bundle, config = _unmerged(run_dir)
    merged = AutoModelForSeq2SeqLM.from_pretrained(merged_dir, dtype=torch.float32).eval()
    _, batch = _batch(bundle.tokenizer, config)

    adapted_logits = _logits(unmerged, batch)
    merged_logits = _logits(merged, batch)
    assert merged_logits.dtype == torch.float32
    assert (merged_logits - adapted_logits).abs().max().item() < 1e-5
    with unmerged.disable_adapter():
        base_logits = _logits(unmerged, batch)
    # The adapter changes the logits, so the comparison above would catch a merge that dropped it.
    assert (merged_logits - base_logits).abs().max().item() > 1e-3


def test_merged_greedy_answers_identical(run_dir, merged_dir):
    unmerged, bundle, config = _unmerged(run_dir)
    merged = AutoModelForSeq2SeqLM.from_pretrained(merged_dir, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(merged_dir)
    prompts, _ = _batch(bundle.tokenizer, config)

    expected = generate_answers(unmerged, bundle.tokenizer, "seq2seq", prompts, 12, 128, batch_size=3)
    actual = generate_answers(merged, tokenizer, "seq2seq", prompts, 12, 128, batch_size=3)
    assert actual == expected


def test_merge_folder_contents(merged_dir, run_dir):
    names = {path.name for path in merged_dir.iterdir()}
    assert {"config.json", "model.safetensors", MERGE_INFO_FILE} <= names
    assert any(name.startswith("tokenizer") for name in names)
    with safe_open(merged_dir / "model.safetensors", framework="pt") as weights:
        assert not any("lora" in key for key in weights.keys())


def test_merge_bfloat16_casts_weights(run_dir, tmp_path):
    out = merge_run(run_dir, tmp_path / "merged-bf16", dtype="bfloat16")
    with safe_open(out / "model.safetensors", framework="pt") as weights:
        dtypes = {weights.get_tensor(key).dtype for key in weights.keys()}
    assert dtypes == {torch.bfloat16}


def _damaged_run(run_dir, tmp_path, damage):
    copy = tmp_path / "damaged"
    shutil.copytree(run_dir, copy)
    weights_path = copy / "adapter" / "adapter_model.safetensors"
    tensors = load_file(weights_path)
    damage(tensors)
    save_file(tensors, weights_path)
    return copy


def test_renamed_adapter_key_raises(run_dir, tmp_path):
    def rename(tensors):
        key = sorted(tensors)[0]
        tensors[key.replace("lora_A", "lora_Z")] = tensors.pop(key)

    damaged = _damaged_run(run_dir, tmp_path, rename)
    with pytest.raises(ModelError) as raised:
        merge_run(damaged, tmp_path / "merged")
    assert "missing from the file" in str(raised.value)
    assert "match no LoRA layer" in str(raised.value)
    assert "lora_Z" in str(raised.value)
    assert not (tmp_path / "merged").exists()


def test_missing_adapter_key_raises(run_dir, tmp_path):
    damaged = _damaged_run(run_dir, tmp_path, lambda tensors: tensors.pop(sorted(tensors)[-1]))
    with pytest.raises(ModelError, match="1 adapter tensor\\(s\\) missing"):
        merge_run(damaged, tmp_path / "merged")


def test_wrong_adapter_shape_raises(run_dir, tmp_path):
    def reshape(tensors):
        key = sorted(tensors)[0]
        tensors[key] = torch.zeros(tensors[key].shape[0] + 1, tensors[key].shape[1])

    damaged = _damaged_run(run_dir, tmp_path, reshape)
    with pytest.raises(ModelError, match="cannot load the adapter"):
        merge_run(damaged, tmp_path / "merged")


def test_merge_refuses_non_empty_folder(run_dir, tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("x", encoding="utf-8")
    with pytest.raises(ConfigError, match="not empty"):
        merge_run(run_dir, out)
    assert (out / "keep.txt").is_file()


def test_merge_cli(run_dir, tmp_path):
    result = CliRunner().invoke(app, ["merge", str(run_dir), "--out", str(tmp_path / "merged"), "--dtype", "float16"])
    assert result.exit_code == 2
    assert "use float32 or bfloat16" in result.output
    result = CliRunner().invoke(app, ["merge", str(run_dir), "--out", str(tmp_path / "merged")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "merged" / "model.safetensors").is_file()
