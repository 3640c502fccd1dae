"""Per-topic adapters through `physlora run --per-topic`: plan, training, stage skipping, routing and the ensemble."""

from __future__ import annotations

import json
import logging
import shutil
from collections import Counter

import pytest
from typer.testing import CliRunner

from physlora.cli import app
from physlora.config import TOPICS, load_config
from physlora.config.schema import TopicAdaptersConfig
from physlora.data.records import read_jsonl
from physlora.data.topics import get_classifier
from physlora.eval.aggregate import MEASURES, BootstrapSettings, is_choice_item
from physlora.eval.bootstrap import paired_intervals
from physlora.pipeline import run_pipeline
from physlora.report import formatting as fmt
from physlora.serve.registry import PARENT_TOPIC
from physlora.train.topic_adapters import plan_topics

MIN_ITEMS = 6
RUN_SETTINGS = [
    "data.sources=[{type: sciq, path: sciq, max_items: 30}, {type: mmlu, path: mmlu, max_items: 20}]",
    "training.epochs=1",
    "evaluation.max_items=8",
    "evaluation.bootstrap_samples=50",
    f"topic_adapters.min_train_items={MIN_ITEMS}",
    "topic_adapters.max_steps=2",
]


def run_config(run_dir, *extra):
    return load_config(preset="tiny", overrides=[*RUN_SETTINGS, f"output.dir={run_dir}",
                                                 "topic_adapters.enabled=true", *extra])


def read_json(path):
    return json.loads(path.read_text(encoding="utf-8"))


def read_rows(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def per_topic_run(tmp_path_factory, shared_data_dir, t5_tokenizer_path):
    run_dir = tmp_path_factory.mktemp("per-topic") / "run"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PHYSLORA_DATA_DIR", str(shared_data_dir))
        arguments = ["run", "--preset", "tiny", "--per-topic", "--set", f"output.dir={run_dir}"]
        for value in RUN_SETTINGS:
            arguments += ["--set", value]
        result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 0, result.output
    return run_dir


def expected_topics(run_dir) -> list[str]:
    counts = Counter(record.topic for record in read_jsonl(run_dir / "data" / "train.jsonl"))
    return [topic for topic in TOPICS if topic != "other" and counts[topic] >= MIN_ITEMS]


def test_plan_skips_small_topics_with_reason(per_topic_run, caplog):
    records = read_jsonl(per_topic_run / "data" / "train.jsonl")
    with caplog.at_level(logging.INFO, logger="physlora.train.topic_adapters"):
        plan = plan_topics(records, TopicAdaptersConfig(min_train_items=MIN_ITEMS))
    counts = Counter(record.topic for record in records)
    assert plan["trained"] == expected_topics(per_topic_run)
    assert set(plan["trained"]) | set(plan["skipped"]) == set(TOPICS)
    assert plan["train_counts"] == {topic: counts.get(topic, 0) for topic in TOPICS}
    for topic, entry in plan["skipped"].items():
        assert entry["n_train"] == counts.get(topic, 0)
        assert f"no adapter for topic {topic}: " in caplog.text
        if topic != "other":
            assert f"fewer than topic_adapters.min_train_items={MIN_ITEMS}" in entry["reason"]
    assert "catch-all" in plan["skipped"]["other"]["reason"]


def test_plan_without_qualifying_topic_warns(per_topic_run, caplog):
    records = read_jsonl(per_topic_run / "data" / "train.jsonl")
    largest = max(count for topic, count in Counter(record.topic for record in records).items() if topic != "other")
    with caplog.at_level(logging.WARNING, logger="physlora.train.topic_adapters"):
        plan = plan_topics(records, TopicAdaptersConfig(min_train_items=largest + 1))
    assert plan["trained"] == []
    assert f"no topic has topic_adapters.min_train_items={largest + 1} training items (the largest has {largest})" in (
        caplog.text
    )


def test_run_trains_one_adapter_per_topic(per_topic_run):
    trained = expected_topics(per_topic_run)
    assert len(trained) >= 2, "the data must give at least two topics above the minimum"
    plan = read_json(per_topic_run / "topics" / "topics.json")
    assert plan["trained"] == trained
    assert sorted(plan["adapters"]) == sorted(trained)
    for topic in trained:
        folder = per_topic_run / "topics" / topic
        assert (folder / "adapter" / "adapter_config.json").is_file()
        summary = read_json(folder / "summary.json")
        assert (summary["status"], summary["steps"]) == ("max_steps", 2)
        topic_records = read_jsonl(folder / "data" / "train.jsonl")
        assert {record.topic for record in topic_records} == {topic}
        assert plan["adapters"][topic]["items"]["train"] == plan["train_counts"][topic] == len(topic_records)
    for topic in plan["skipped"]:
        assert not (per_topic_run / "topics" / topic).exists()
    stages = read_json(per_topic_run / "stages.json")
    assert sorted(stages) == ["data", "eval", "eval_ensemble", "topics", "train"]


def test_rerun_skips_topic_stages(per_topic_run):
    watched = [per_topic_run / "topics" / topic / "summary.json" for topic in expected_topics(per_topic_run)]
    watched.append(per_topic_run / "eval-ensemble.json")
    before = [path.stat().st_mtime_ns for path in watched]
    run_pipeline(run_config(per_topic_run))
    assert [path.stat().st_mtime_ns for path in watched] == before


def test_lower_minimum_trains_only_new_topics(per_topic_run, tmp_path, shared_data_dir, monkeypatch):
    monkeypatch.setenv("PHYSLORA_DATA_DIR", str(shared_data_dir))
    run_dir = tmp_path / "run"
    shutil.copytree(per_topic_run, run_dir)
    plan = read_json(run_dir / "topics" / "topics.json")
    new_minimum = max(entry["n_train"] for topic, entry in plan["skipped"].items() if topic != "other")
    old_topics = plan["trained"]
    before = {topic: (run_dir / "topics" / topic / "summary.json").stat().st_mtime_ns for topic in old_topics}
    ensemble_before = (run_dir / "eval-ensemble.json").stat().st_mtime_ns

    run_pipeline(run_config(run_dir, f"topic_adapters.min_train_items={new_minimum}"))

    plan = read_json(run_dir / "topics" / "topics.json")
    assert len(plan["trained"]) > len(old_topics)
    assert {topic: (run_dir / "topics" / topic / "summary.json").stat().st_mtime_ns for topic in old_topics} == before
    for topic in set(plan["trained"]) - set(old_topics):
        assert (run_dir / "topics" / topic / "adapter" / "adapter_config.json").is_file()
    assert (run_dir / "eval-ensemble.json").stat().st_mtime_ns != ensemble_before
    assert read_json(run_dir / "eval-ensemble.json")["routing"]["topic_adapters"] == plan["trained"]


def test_routing_follows_question_topic(per_topic_run):
    result = read_json(per_topic_run / "eval-ensemble.json")
    adapters = set(result["routing"]["topic_adapters"])
    classifier = get_classifier("lexicon")
    rows = read_rows(per_topic_run / "predictions-ensemble.jsonl")
    for row in rows:
        topic_result = classifier.classify(row["question"])
        expected = "general"
        if topic_result.is_physics and topic_result.topic in adapters:
            expected = topic_result.topic
        elif topic_result.is_physics and PARENT_TOPIC.get(topic_result.topic) in adapters:
            expected = PARENT_TOPIC[topic_result.topic]
        assert row["routed_adapter"] == expected, row["question"]
        assert row["route"]["topic"] == topic_result.topic
    to_general = [row for row in rows if row["route"]["rule"] == "general"]
    assert result["routing"]["to_general"]["n"] == len(to_general)
    not_physics = [row for row in to_general if not classifier.classify(row["question"]).is_physics]
    assert result["routing"]["to_general"]["not_physics"] == len(not_physics)
    assert result["routing"]["to_general"]["no_topic_adapter"] == len(to_general) - len(not_physics)
    assert result["routing"]["items_per_adapter"] == dict(Counter(row["routed_adapter"] for row in rows))


def test_ensemble_metrics_have_eval_fields(per_topic_run):
    evaluation = read_json(per_topic_run / "eval.json")
    result = read_json(per_topic_run / "eval-ensemble.json")
    assert result["settings"]["base_and_general_from"] == "predictions.jsonl"
    for key in ("split", "n_items", "max_new_tokens", "bootstrap_samples", "confidence", "seed"):
        assert result["settings"][key] == evaluation["settings"][key], key
    reference = evaluation["metrics"]["overall"]
    for name, comparison in result["comparisons"].items():
        overall = comparison["metrics"]["overall"]
        assert overall.keys() == reference.keys(), name
        for metric in MEASURES:
            assert overall[metric].keys() == reference[metric].keys(), (name, metric)
    base_vs_general = result["comparisons"]["general_vs_base"]["metrics"]["overall"]
    for metric in MEASURES:
        assert base_vs_general[metric] == reference[metric], metric


def test_ensemble_intervals_recompute_from_rows(per_topic_run):
    result = read_json(per_topic_run / "eval-ensemble.json")
    settings = result["settings"]
    bootstrap = BootstrapSettings(settings["bootstrap_samples"], settings["confidence"], settings["seed"])
    rows = read_rows(per_topic_run / "predictions-ensemble.jsonl")
    overall = result["comparisons"]["ensemble_vs_general"]["metrics"]["overall"]
    for metric, (field, choice_only) in MEASURES.items():
        used = [row for row in rows if is_choice_item(row)] if choice_only else rows
        if not used:
            continue
        expected = paired_intervals([row["general"][field] for row in used], [row["ensemble"][field] for row in used],
                                    bootstrap.samples, bootstrap.confidence, bootstrap.seed)
        assert overall[metric]["n"] == len(used)
        assert overall[metric]["adapted"] == pytest.approx(expected["adapted"]), metric
        assert overall[metric]["difference"] == pytest.approx(expected["difference"]), metric


def test_report_shows_ensemble_numbers(per_topic_run):
    report = (per_topic_run / "report.md").read_text(encoding="utf-8")
    assert "## Topic adapters and ensemble" in report
    result = read_json(per_topic_run / "eval-ensemble.json")
    overall = result["comparisons"]["ensemble_vs_base"]["metrics"]["overall"]["mc_accuracy_sum"]
    general = result["comparisons"]["ensemble_vs_general"]["metrics"]["overall"]["mc_accuracy_sum"]
    ensemble_rows = [line for line in report.split("## Topic adapters and ensemble")[1].splitlines()
                     if line.startswith("| MC accuracy (summed")]
    cells = [cell.strip() for cell in ensemble_rows[0].strip("|").split("|")]
    expected = [fmt.interval(overall["base"]), fmt.interval(general["base"]), fmt.interval(overall["adapted"])]
    assert cells[2:5] == expected
    assert cells[6].startswith(fmt.interval(general["difference"], as_points=True))
    to_general = result["routing"]["to_general"]
    assert (f"{to_general['n']} items went to the general adapter: {to_general['no_topic_adapter']} because their "
            f"topic has no adapter and {to_general['not_physics']} because") in report


def test_eval_ensemble_without_topics_is_an_error(tmp_path):
    (tmp_path / "run").mkdir()
    result = CliRunner().invoke(app, ["eval-ensemble", str(tmp_path / "run")])
    assert result.exit_code != 0
    assert "lists no finished topic adapter" in result.output
