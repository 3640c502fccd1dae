"""evaluate_run on tiny run folders: files written, counts, recomputable numbers, errors."""

from __future__ import annotations

import json
import math
import shutil

import pytest

from physlora.config import load_config
from physlora.errors import ConfigError, RunFolderError
from physlora.eval import runner
from physlora.eval.likelihood import Lengths, score_pairs
from physlora.eval.predictions import loss_target
from physlora.models.encoding import build_prompt
from physlora.models.loading import load_model

ITEM_FIELDS = {"id", "source", "topic", "question", "reference", "choices", "answer_index", "target",
               "target_tokens", "choice_tokens", "base", "adapted"}
MODEL_FIELDS = {"answer", "n_generated_tokens", "stopped_at_eos", "exact_match", "token_f1", "rouge_l",
                "target_sum_logprob", "choice_sum_logprob", "choice_mean_logprob", "pick_sum", "pick_mean",
                "correct_sum", "correct_mean"}


def read_outputs(run_dir):
    result = json.loads((run_dir / "eval.json").read_text(encoding="utf-8"))
    lines = (run_dir / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
    return result, [json.loads(line) for line in lines]


def test_eval_writes_one_row_per_item(evaluated_run, hand_records):
    result, rows = read_outputs(evaluated_run)
    records = hand_records
    assert result["settings"]["n_items"] == len(records)
    assert [row["id"] for row in rows] == [record.id for record in records]
    for row in rows:
        assert set(row) == ITEM_FIELDS
        assert set(row["base"]) == MODEL_FIELDS
        assert set(row["adapted"]) == MODEL_FIELDS


def test_eval_group_counts_sum_to_total(evaluated_run, hand_records):
    metrics = read_outputs(evaluated_run)[0]["metrics"]
    total = metrics["overall"]["n_items"]
    assert sum(group["n_items"] for group in metrics["by_topic"].values()) == total
    assert sum(group["n_items"] for group in metrics["by_source"].values()) == total
    assert set(metrics["by_topic"]) == {"mechanics", "energy", "waves_optics"}
    assert metrics["overall"]["n_choice_items"] == sum(1 for record in hand_records if record.choices)


def test_eval_metrics_recomputable_from_predictions(evaluated_run):
    result, rows = read_outputs(evaluated_run)
    overall = result["metrics"]["overall"]
    choice_rows = [row for row in rows if row["choices"]]
    for model in ("base", "adapted"):
        for name, field, used in [("mc_accuracy_sum", "correct_sum", choice_rows),
                                  ("mc_accuracy_mean", "correct_mean", choice_rows),
                                  ("exact_match", "exact_match", rows), ("token_f1", "token_f1", rows)]:
            expected = sum(row[model][field] for row in used) / len(used)
            assert overall[name][model]["value"] == pytest.approx(expected), (model, name)
        loss = -sum(row[model]["target_sum_logprob"] for row in rows) / sum(row["target_tokens"] for row in rows)
        assert overall["loss"][model] == pytest.approx(loss)
    difference = overall["mc_accuracy_mean"]["difference"]["value"]
    assert difference == pytest.approx(overall["mc_accuracy_mean"]["adapted"]["value"]
                                       - overall["mc_accuracy_mean"]["base"]["value"])


def test_eval_picks_follow_choice_scores(evaluated_run):
    rows = read_outputs(evaluated_run)[1]
    for row in [row for row in rows if row["choices"]]:
        for model in ("base", "adapted"):
            fields = row[model]
            assert fields["pick_sum"] == max(range(len(row["choices"])), key=fields["choice_sum_logprob"].__getitem__)
            means = [total / count for total, count in zip(fields["choice_sum_logprob"], row["choice_tokens"])]
            assert fields["choice_mean_logprob"] == pytest.approx(means)
            assert fields["correct_sum"] == float(fields["pick_sum"] == row["answer_index"])


def test_eval_base_is_model_without_adapter(evaluated_run, hand_records):
    # The base scores must equal those of a freshly loaded model that never had an adapter, and the
    # adapter (non-zero LoRA B) must change them.
    config = load_config(config_file=evaluated_run / "config.yaml")
    bundle = load_model(config.model, seed=config.training.seed)
    bundle.model.eval()
    records = hand_records
    pairs = [(build_prompt(config.model.prompt_template, record.question), loss_target(record)) for record in records]
    lengths = Lengths(config.training.max_seq_length, config.training.max_target_length)
    plain = score_pairs(bundle.model, bundle.tokenizer, bundle.family, pairs, lengths, batch_size=4)
    rows = read_outputs(evaluated_run)[1]
    assert [row["base"]["target_sum_logprob"] for row in rows] == pytest.approx(plain.sum_logprob, rel=1e-5)
    assert [row["adapted"]["target_sum_logprob"] for row in rows] != pytest.approx(plain.sum_logprob, rel=1e-3)


def test_eval_loss_same_for_any_batch_size(tiny_run):
    losses = []
    for size in (1, 5):
        result = runner.evaluate_run(tiny_run, batch_size=size)
        losses.append(result["metrics"]["overall"]["loss"])
        assert result["settings"]["batch_size"] == size
    assert losses[0]["base"] == pytest.approx(losses[1]["base"], rel=1e-6)
    assert losses[0]["adapted"] == pytest.approx(losses[1]["adapted"], rel=1e-6)


def test_eval_generates_to_limit_from_longest_reference(tiny_run, hand_records, monkeypatch):
    # With EOS suppressed, every answer has exactly max_new_tokens tokens, and that limit is the
    # longest reference plus the margin, which here exceeds transformers' default of 20.
    real_load_model = runner.load_model

    def load_model_without_eos(model_config, seed):
        bundle = real_load_model(model_config, seed)
        eos = bundle.tokenizer.eos_token_id

        def hook(module, inputs, output):
            output = output.clone()
            output[..., eos] = float("-inf")
            return output

        bundle.model.get_output_embeddings().register_forward_hook(hook)
        return bundle

    monkeypatch.setattr(runner, "load_model", load_model_without_eos)
    result = runner.evaluate_run(tiny_run)
    config = load_config(config_file=tiny_run / "config.yaml")
    tokenizer = load_model(config.model, seed=0).tokenizer
    longest = max(len(tokenizer(record.answer, add_special_tokens=False).input_ids) for record in hand_records)
    expected = longest + config.evaluation.generation_margin
    assert expected > 20
    assert result["settings"]["max_new_tokens"] == expected
    assert result["settings"]["source"] == "longest_reference"
    rows = read_outputs(tiny_run)[1]
    for row in rows:
        assert row["base"]["n_generated_tokens"] == expected
        assert row["adapted"]["n_generated_tokens"] == expected
    # EOS has probability 0, so every target's log-probability is -inf: written as null, not -Infinity.
    assert "Infinity" not in (tiny_run / "predictions.jsonl").read_text(encoding="utf-8")
    assert rows[0]["base"]["target_sum_logprob"] is None


def test_eval_max_items_override(tiny_run):
    result = runner.evaluate_run(tiny_run, max_items=3)
    assert result["settings"]["n_items"] == 3
    assert len(read_outputs(tiny_run)[1]) == 3


def test_eval_same_numbers_on_rerun(tiny_run):
    first = runner.evaluate_run(tiny_run, max_items=4)
    second = runner.evaluate_run(tiny_run, max_items=4)
    assert first["metrics"] == second["metrics"]


def test_eval_missing_run_folder(tmp_path):
    with pytest.raises(RunFolderError, match="not found"):
        runner.evaluate_run(tmp_path / "absent")


def test_eval_missing_adapter(tiny_run):
    shutil.rmtree(tiny_run / "adapter")
    with pytest.raises(RunFolderError, match="no adapter.*physlora train"):
        runner.evaluate_run(tiny_run)


def test_eval_missing_split_file(tiny_run):
    with pytest.raises(RunFolderError, match="validation.jsonl not found.*data build"):
        runner.evaluate_run(tiny_run, split="validation")


def test_eval_rejects_unknown_split(tiny_run):
    with pytest.raises(ConfigError, match="split"):
        runner.evaluate_run(tiny_run, split="train")


def test_eval_uses_configured_data_dir(tmp_path, run_builder):
    data_dir = tmp_path / "elsewhere"
    run_dir = run_builder(tmp_path / "run", overrides=[f"output.data_dir={data_dir}"])
    (run_dir / "data" / "test.jsonl").rename(tmp_path / "moved.jsonl")
    data_dir.mkdir()
    (tmp_path / "moved.jsonl").rename(data_dir / "test.jsonl")
    result = runner.evaluate_run(run_dir, max_items=2)
    assert result["settings"]["data_file"] == str(data_dir / "test.jsonl")


def test_eval_reports_progress(tiny_run):
    calls = []
    runner.evaluate_run(tiny_run, max_items=5, progress=lambda done, total: calls.append((done, total)))
    total = calls[-1][1]
    assert [done for done, _ in calls] == list(range(1, total + 1))
    assert all(call_total == total for _, call_total in calls)


def test_eval_rejects_empty_split(tmp_path, run_builder):
    run_dir = run_builder(tmp_path / "run", records=[])
    with pytest.raises(RunFolderError, match="no records"):
        runner.evaluate_run(run_dir)


def test_eval_json_is_valid_json_without_nan(evaluated_run):
    text = (evaluated_run / "eval.json").read_text(encoding="utf-8")
    assert "NaN" not in text
    assert math.isfinite(json.loads(text)["metrics"]["overall"]["loss"]["base"])


def test_eval_losses_match_training_validation(tmp_path, run_builder, hand_records):
    # Evaluating the validation split must reproduce the trainer's own validation losses: the base
    # model gives the epoch-0 value and the adapted model the final epoch's value. This ties the
    # rebuilt base weights, the adapter loading and the disabled-adapter base to training.
    from physlora.data.records import write_jsonl
    from physlora.train.trainer import train_run

    run_dir = tmp_path / "run"
    write_jsonl([record.with_changes(id=f"train-{index}") for index, record in enumerate(hand_records * 2)],
                run_dir / "data" / "train.jsonl")
    write_jsonl(hand_records[:6], run_dir / "data" / "validation.jsonl")
    config = load_config(preset="tiny", overrides=[f"output.dir={run_dir}", "training.learning_rate=0.01"])
    train_run(config, max_steps=3)

    result = runner.evaluate_run(run_dir, split="validation")
    epochs = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    epochs = [record for record in epochs if record["type"] == "epoch"]
    loss = result["metrics"]["overall"]["loss"]
    assert loss["n_tokens"] == epochs[0]["val_tokens"]
    assert loss["base"] == pytest.approx(epochs[0]["val_loss"], rel=1e-5)
    assert loss["adapted"] == pytest.approx(epochs[-1]["val_loss"], rel=1e-5)
    assert loss["adapted"] != pytest.approx(loss["base"], rel=1e-4)
