"""Every number in report.md must appear in the run files or follow from them by a stated computation.

The allowed values are computed here, independently of the report code: raw numbers of every run
file, plus percentages, changes, statistics and parameter arithmetic derived from them.
"""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path

import numpy as np
import pytest

from physlora.report.build import write_report

# A number with no letter, digit, underscore or dot right before it, so "p95" and "t5" are not numbers.
# Thousands separators and dotted versions stay one token.
NUMBER = re.compile(r"(?<![A-Za-z_\d.])[-+]?\d+(?:,\d{3})*(?:\.\d+)*")
# Constants of the report's own rules: the 10% overfitting threshold.
RULE_CONSTANTS = {10.0}


def run_texts(run_dir: Path) -> list[str]:
    paths = [run_dir / name for name in ("config.yaml", "summary.json", "metrics.jsonl", "eval.json",
                                         "predictions.jsonl")]
    paths.append(run_dir / "data" / "audit.json")
    return [path.read_text(encoding="utf-8") for path in paths if path.is_file()] + [str(run_dir)]


def as_float(token: str) -> float | None:
    text = token.replace(",", "")
    if text.count(".") > 1:
        return None  # a version such as 2.13.0
    return float(text)


def floats_in(value) -> list[float]:
    if isinstance(value, bool):
        return []
    if isinstance(value, (int, float)):
        return [float(value)]
    if isinstance(value, dict):
        return [item for child in value.values() for item in floats_in(child)]
    if isinstance(value, list):
        return [item for child in value for item in floats_in(child)]
    return []


def epoch_values(epochs: list[dict]) -> list[float]:
    values = []
    first_val = epochs[0].get("val_loss")
    for index, record in enumerate(epochs):
        train, val = record.get("train_loss"), record.get("val_loss")
        if train is not None and val is not None:
            values.append(100 * (val - train) / train)
        if index == 0:
            continue
        previous = epochs[index - 1]
        for current, reference in ((val, previous.get("val_loss")), (val, first_val),
                                   (train, previous.get("train_loss"))):
            if current is not None and reference is not None:
                values += [current - reference, 100 * (current - reference) / reference]
    return values


def gradient_values(steps: list[dict]) -> list[float]:
    norms = [record["grad_norm"] for record in steps if record.get("grad_norm") is not None]
    clipped = [record["clipped"] for record in steps if "clipped" in record]
    return [statistics.fmean(norms), statistics.median(norms), float(np.percentile(norms, 95)), max(norms),
            float(len(norms)), 100 * sum(clipped) / len(clipped)]


def parameter_values(params: dict) -> list[float]:
    shapes: dict[tuple, int] = {}
    for module in params["lora_modules"]:
        key = (module["in_features"], module["out_features"], module["r"])
        shapes[key] = shapes.get(key, 0) + 1
    values = [100 * params["trainable"] / params["total"]]
    for (d_in, d_out, rank), count in shapes.items():
        values += [count, count * rank * (d_in + d_out)]
    values.append(sum(count * rank * (d_in + d_out) for (d_in, d_out, rank), count in shapes.items()))
    return values


def evaluation_values(evaluation: dict, predictions: list[dict]) -> list[float]:
    values = [100 * value for value in floats_in(evaluation)]
    overall_loss = evaluation["metrics"]["overall"]["loss"]
    values.append(100 * overall_loss["difference"] / overall_loss["base"])
    groups = 1 + len(evaluation["metrics"]["by_topic"]) + len(evaluation["metrics"]["by_source"])
    values += [len(predictions), groups]
    return values


def allowed_values(run_dir: Path) -> tuple[set[str], list[float]]:
    signed_tokens = {token for text in run_texts(run_dir) for token in NUMBER.findall(text)}
    raw_tokens = {token.lstrip("+-") for token in signed_tokens}
    values = [value for token in signed_tokens if (value := as_float(token)) is not None]
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    evaluation = json.loads((run_dir / "eval.json").read_text(encoding="utf-8"))
    predictions = [json.loads(line) for line in (run_dir / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]
    epochs = [record for record in metrics if record["type"] == "epoch"]
    values += epoch_values(epochs) + [float(len(epochs))]
    values += gradient_values([record for record in metrics if record["type"] == "step"])
    values += parameter_values(summary["params"])
    values += evaluation_values(evaluation, predictions)
    values += [value / 2**20 for value in floats_in(summary) + floats_in(metrics)]  # bytes shown in MiB
    audit = json.loads((run_dir / "data" / "audit.json").read_text(encoding="utf-8"))
    values += [sum(audit["splits"].values()), sum(audit["topics"].values())]
    values += sorted(RULE_CONSTANTS)
    return raw_tokens, values


def untraceable_numbers(markdown: str, raw_tokens: set[str], values: list[float]) -> list[str]:
    table = np.array(values)
    unexplained = []
    for token in NUMBER.findall(markdown):
        unsigned = token.lstrip("+-")
        if unsigned in raw_tokens or unsigned.replace(",", "") in raw_tokens:
            continue
        shown = as_float(token)
        decimals = len(unsigned.split(".")[1]) if "." in unsigned else 0
        tolerance = 0.5 * 10.0 ** -decimals + 1e-9
        if shown is None or not np.any(np.abs(table - shown) <= tolerance):
            unexplained.append(token)
    return unexplained


@pytest.fixture
def numbers_setup(run_copy):
    markdown = write_report(run_copy).read_text(encoding="utf-8")
    raw_tokens, values = allowed_values(run_copy)
    return markdown, raw_tokens, values


def test_every_report_number_traceable(numbers_setup):
    markdown, raw_tokens, values = numbers_setup
    assert len(NUMBER.findall(markdown)) > 200
    assert untraceable_numbers(markdown, raw_tokens, values) == []


def test_traceability_check_catches_invented_number(numbers_setup):
    markdown, raw_tokens, values = numbers_setup
    tampered = markdown + "\nAdapted accuracy improved by 37.1234 points.\n"
    assert untraceable_numbers(tampered, raw_tokens, values) == ["37.1234"]


@pytest.mark.slow
def test_full_pipeline_report_on_real_data(tmp_path, shared_data_dir, t5_tokenizer_path, monkeypatch):
    # Data build from the real SciQ, ARC and MMLU files, a short training run, evaluation, report:
    # every check passes and every number is traceable, with the real audit.json in place.
    from physlora.config import load_config
    from physlora.data.build import build_dataset
    from physlora.eval.runner import evaluate_run
    from physlora.models.loading import load_tokenizer
    from physlora.train.trainer import train_run

    monkeypatch.setenv("PHYSLORA_DATA_DIR", str(shared_data_dir))
    run_dir = tmp_path / "run"
    config = load_config(preset="tiny", overrides=[f"output.dir={run_dir}"])
    build_dataset(config, run_dir / "data", tokenizer=load_tokenizer(config.model),
                  max_source_length=config.training.max_seq_length,
                  max_target_length=config.training.max_target_length)
    train_run(config, max_steps=3)
    evaluate_run(run_dir)
    markdown = write_report(run_dir).read_text(encoding="utf-8")

    assert markdown.count("| PASS |") == 7
    assert "| FAIL |" not in markdown
    for source in ("sciq", "arc", "mmlu"):
        assert f"| {source} |" in markdown
    raw_tokens, values = allowed_values(run_dir)
    assert untraceable_numbers(markdown, raw_tokens, values) == []
