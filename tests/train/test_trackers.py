"""training.report_to: TensorBoard event files and a local MLflow store receive the metrics.jsonl values."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from typer.testing import CliRunner

from physlora.cli import app
from physlora.train import train_run
from physlora.train.trackers import flatten_config, tracker_values


def _records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]


def _expected_series(records: list[dict]) -> dict[str, list[tuple[int, float]]]:
    """Tracker key -> [(step, value)] built from metrics.jsonl, in file order."""
    series: dict[str, list[tuple[int, float]]] = {}
    for record in records:
        found = tracker_values(record)
        if found is None:
            continue
        step, values = found
        for key, value in values.items():
            series.setdefault(key, []).append((step, value))
    return series


@pytest.fixture
def tracked_run(make_config, tmp_path) -> tuple[Path, str]:
    """A finished two-epoch run that reported to TensorBoard and to an SQLite MLflow store in tmp_path."""
    tracking_uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    config = make_config("training.epochs=2", "training.report_to=[tensorboard, mlflow]",
                         f"training.mlflow_tracking_uri={tracking_uri}", "training.mlflow_experiment=trackers-test")
    train_run(config)
    return Path(config.output.dir), tracking_uri


def test_tensorboard_scalars_match_metrics(tracked_run):
    run_dir, _ = tracked_run
    expected = _expected_series(_records(run_dir))
    assert {"train/loss", "train/lr", "train/grad_norm", "train/tokens", "epoch/train_loss", "epoch/val_loss"} <= expected.keys()

    events = EventAccumulator(str(run_dir / "tensorboard" / "train"), size_guidance={"scalars": 0})
    events.Reload()
    assert set(events.Tags()["scalars"]) == expected.keys()
    for key, points in expected.items():
        logged = [(event.step, event.value) for event in events.Scalars(key)]
        assert [step for step, _ in logged] == [step for step, _ in points], key
        # TensorBoard stores scalars as float32.
        assert [value for _, value in logged] == pytest.approx([value for _, value in points], rel=1e-6), key


def test_mlflow_metrics_params_and_adapter(tracked_run):
    run_dir, tracking_uri = tracked_run
    stored = json.loads((run_dir / "mlflow_run.json").read_text(encoding="utf-8"))
    assert stored["tracking_uri"] == tracking_uri
    client = MlflowClient(tracking_uri=tracking_uri)
    run = client.get_run(stored["run_id"])
    assert run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == "trackers-test"

    expected = _expected_series(_records(run_dir))
    assert set(run.data.metrics) == expected.keys()
    for key, points in expected.items():
        history = sorted(client.get_metric_history(stored["run_id"], key), key=lambda metric: metric.step)
        assert [(metric.step, metric.value) for metric in history] == [(step, float(value)) for step, value in points], key

    config_values = flatten_config(json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))["config"])
    assert run.data.params == {key: str(value) for key, value in config_values.items()}
    assert run.data.params["training.learning_rate"] == "0.001"

    adapter_files = {Path(item.path).name for item in client.list_artifacts(stored["run_id"], "adapter")}
    assert {"adapter_model.safetensors", "adapter_config.json"} <= adapter_files


def test_report_command_logs_report_to_mlflow(tracked_run):
    run_dir, tracking_uri = tracked_run
    result = CliRunner().invoke(app, ["report", str(run_dir)])
    assert result.exit_code == 0, result.output
    run_id = json.loads((run_dir / "mlflow_run.json").read_text(encoding="utf-8"))["run_id"]
    assert f"report logged to MLflow run {run_id}" in result.output

    client = MlflowClient(tracking_uri=tracking_uri)
    report_files = {Path(item.path).name for item in client.list_artifacts(run_id, "report")}
    assert {"report.md", "report.html", "plots"} <= report_files
    assert client.list_artifacts(run_id, "report/plots")


def test_default_run_writes_no_tracker_files(make_config):
    config = make_config("training.epochs=1")
    train_run(config)
    run_dir = Path(config.output.dir)
    assert not (run_dir / "tensorboard").exists()
    assert not (run_dir / "mlflow").exists()
    assert not (run_dir / "mlflow_run.json").exists()


def test_report_to_option_sets_config(tmp_path, data_dir, t5_tokenizer_path, monkeypatch):
    # The default MLflow store is an SQLite file inside the run folder unless MLFLOW_TRACKING_URI is set.
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    run_dir = tmp_path / "cli-tracked"
    result = CliRunner().invoke(app, [
        "train", "--preset", "tiny", "--set", f"output.dir={run_dir}", "--set", f"output.data_dir={data_dir}",
        "--max-steps", "2", "--report-to", "tensorboard,mlflow",
    ])
    assert result.exit_code == 0, result.output
    assert "report_to:\n  - tensorboard\n  - mlflow" in (run_dir / "config.yaml").read_text(encoding="utf-8")
    assert list((run_dir / "tensorboard" / "train").glob("events.out.tfevents.*"))
    assert (run_dir / "mlflow" / "mlflow.db").is_file()
    stored = json.loads((run_dir / "mlflow_run.json").read_text(encoding="utf-8"))
    client = MlflowClient(tracking_uri=stored["tracking_uri"])
    assert [metric.step for metric in client.get_metric_history(stored["run_id"], "train/loss")] == [1, 2]


def test_unknown_tracker_rejected(tmp_path, data_dir, t5_tokenizer_path):
    result = CliRunner().invoke(app, [
        "train", "--preset", "tiny", "--set", f"output.dir={tmp_path / 'run'}", "--set", f"output.data_dir={data_dir}",
        "--report-to", "wandb",
    ])
    assert result.exit_code == 2
    assert "training.report_to" in result.output
    assert "wandb" in result.output


def test_resumed_run_continues_mlflow_run(make_config, tmp_path):
    tracking_uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    config = make_config("training.epochs=2", "training.checkpoint_every=2", "training.report_to=[mlflow]",
                         f"training.mlflow_tracking_uri={tracking_uri}")
    run_dir = Path(config.output.dir)

    def send_sigint_at_step_3(event):
        if event.kind == "step" and event.step == 3:
            signal.raise_signal(signal.SIGINT)

    assert train_run(config, progress=send_sigint_at_step_3)["status"] == "interrupted"
    first_run_id = json.loads((run_dir / "mlflow_run.json").read_text(encoding="utf-8"))["run_id"]
    client = MlflowClient(tracking_uri=tracking_uri)
    assert client.get_run(first_run_id).info.status == "KILLED"

    assert train_run(config, resume=True)["status"] == "finished"
    assert json.loads((run_dir / "mlflow_run.json").read_text(encoding="utf-8"))["run_id"] == first_run_id
    assert client.get_run(first_run_id).info.status == "FINISHED"
    # The interruption checkpointed step 3, so no step was logged twice.
    expected = _expected_series(_records(run_dir))["train/loss"]
    history = sorted(client.get_metric_history(first_run_id, "train/loss"), key=lambda metric: metric.step)
    assert [(metric.step, metric.value) for metric in history] == expected
    assert [step for step, _ in expected] == list(range(1, 11))
