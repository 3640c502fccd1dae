"""Experiment trackers (TensorBoard, MLflow) that receive the same values as metrics.jsonl.

`training.report_to` selects them. By default there are none, and metrics.jsonl is the only record.
accelerate's tracker classes do the writing. Each step record goes to the tracker as `train/<field>`
at the record's step, and each epoch record as `epoch/<field>` at the epoch number. Every numeric
field is sent (booleans as 0 or 1). Null values, which trackers cannot store, and event records are
left out. The resolved config goes in as parameters, flattened to dotted keys.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from physlora.config.schema import RunConfig
from physlora.errors import ConfigError
from physlora.train.metrics import MetricsWriter
from physlora.tracking import read_mlflow_run, write_mlflow_run

logger = logging.getLogger(__name__)

TENSORBOARD_DIR = "tensorboard"
TENSORBOARD_RUN = "train"
MLFLOW_DIR = "mlflow"
RECORD_PREFIXES = {"step": ("train", "step"), "epoch": ("epoch", "epoch")}
# MLflow run status for each metrics.jsonl event that ends a training session.
MLFLOW_END_STATUS = {"end": "FINISHED", "interrupted": "KILLED", "nan": "FAILED"}


def flatten_config(values: dict, prefix: str = "") -> dict[str, str | int | float | bool]:
    """Flatten nested config sections to dotted keys. Lists and nulls become JSON text."""
    flat = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten_config(value, f"{name}."))
        elif isinstance(value, (str, int, float, bool)):
            flat[name] = value
        else:
            flat[name] = json.dumps(value)
    return flat


def tracker_values(record: dict) -> tuple[int, dict[str, int | float]] | None:
    """Return the tracker step and values of a step or epoch record, or None for other records."""
    if record.get("type") not in RECORD_PREFIXES:
        return None
    prefix, step_field = RECORD_PREFIXES[record["type"]]
    values = {}
    for field, value in record.items():
        if field in ("type", step_field) or value is None or isinstance(value, str):
            continue
        values[f"{prefix}/{field}"] = int(value) if isinstance(value, bool) else value
    return record[step_field], values


def mlflow_tracking_uri(config: RunConfig) -> str:
    """training.mlflow_tracking_uri, else MLFLOW_TRACKING_URI, else an SQLite file in the run folder."""
    if config.training.mlflow_tracking_uri:
        return config.training.mlflow_tracking_uri
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    database = (Path(config.output.dir) / MLFLOW_DIR / "mlflow.db").resolve()
    return f"sqlite:///{database}"


def _artifact_location(tracking_uri: str) -> str | None:
    """Return the artifact folder beside an SQLite store's database file, or None (the store's default)."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    return (Path(tracking_uri.removeprefix("sqlite:///")).parent / "artifacts").resolve().as_uri()


class TrackedMetricsWriter(MetricsWriter):
    """metrics.jsonl writer that also sends every step and epoch record to the trackers of
    `training.report_to` (none by default)."""

    def __init__(self, path: Path, config: RunConfig, resume: bool) -> None:
        self.trackers = start_trackers(config, resume)
        self.mlflow_status = "FAILED"  # until an event record shows how the session ended
        super().__init__(path)

    def write(self, record: dict) -> None:
        super().write(record)
        if record.get("type") == "event" and record["event"] in MLFLOW_END_STATUS:
            self.mlflow_status = MLFLOW_END_STATUS[record["event"]]
        found = tracker_values(record)
        if found is None:
            return
        step, values = found
        for tracker in self.trackers:
            tracker.log(values, step=step)

    def log_adapter(self, folder: Path) -> None:
        """Attach the trained adapter to the MLflow run as artifacts under `adapter/`."""
        for tracker in self.trackers:
            if tracker.name == "mlflow":
                tracker.log_artifacts(str(folder), artifact_path="adapter")

    def close(self) -> None:
        """Close metrics.jsonl and end the trackers. The MLflow run ends with the status of the last end event."""
        super().close()
        for tracker in self.trackers:
            if tracker.name == "mlflow":
                import mlflow

                mlflow.end_run(status=self.mlflow_status)
            tracker.finish()
        self.trackers = []


class DiscardingMetricsWriter:
    """Writer of the processes other than the first in a multi-process run: records are discarded,
    because the first process writes the same values."""

    def write(self, record: dict) -> None:
        pass

    def log_adapter(self, folder: Path) -> None:
        pass

    def close(self) -> None:
        pass


def start_trackers(config: RunConfig, resume: bool) -> list:
    """Start the trackers of `training.report_to` and send them the resolved config as parameters."""
    names = list(dict.fromkeys(config.training.report_to))
    run_dir = Path(config.output.dir)
    params = flatten_config(config.model_dump(mode="json"))
    trackers = []
    for name in names:
        tracker = _tensorboard(run_dir) if name == "tensorboard" else _mlflow(config, run_dir, resume)
        tracker.start()
        if name == "mlflow" and resume:
            # NOTE: MLflow rejects a changed parameter value, so a resumed run keeps the parameters
            # of its first session even when --set changed them.
            logger.info("resuming MLflow run %s", tracker.active_run.info.run_id)
        else:
            tracker.store_init_configuration(params)
        if name == "mlflow":
            info = tracker.active_run.info
            write_mlflow_run(run_dir, mlflow_tracking_uri(config), info.experiment_id, info.run_id)
        trackers.append(tracker)
    return trackers


def _tensorboard(run_dir: Path):
    try:
        import tensorboard  # noqa: F401  (torch.utils.tensorboard needs the package)
        from accelerate.tracking import TensorBoardTracker
    except ImportError:
        raise ConfigError(
            "training.report_to includes tensorboard, which is not installed; install physlora[trackers] "
            "or remove tensorboard from training.report_to"
        ) from None
    return TensorBoardTracker(TENSORBOARD_RUN, run_dir / TENSORBOARD_DIR)


def _mlflow(config: RunConfig, run_dir: Path, resume: bool):
    try:
        import mlflow
        from accelerate.tracking import MLflowTracker
    except ImportError:
        raise ConfigError("training.report_to includes mlflow, which is not installed; install physlora[trackers] "
                          "or remove mlflow from training.report_to") from None
    uri = mlflow_tracking_uri(config)
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    earlier = read_mlflow_run(run_dir) if resume else None
    run_id = earlier["run_id"] if earlier and earlier["tracking_uri"] == uri else None
    return MLflowTracker(experiment_name=config.training.mlflow_experiment, logging_dir=_artifact_location(uri),
                         run_id=run_id, run_name=run_dir.name)


def open_metrics_writer(path: Path, config: RunConfig, *, resume: bool, is_main: bool):
    """Return the metrics writer of this process: JSONL plus trackers on the first process, else a discarding one."""
    if not is_main:
        return DiscardingMetricsWriter()
    return TrackedMetricsWriter(path, config, resume)
