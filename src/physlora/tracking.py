"""The MLflow run of a run folder: where it is recorded (mlflow_run.json) and report artifacts.

This module imports neither torch nor the training code, so `physlora report` can use it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from physlora.io import write_json_atomic

logger = logging.getLogger(__name__)

MLFLOW_RUN_FILE = "mlflow_run.json"
REPORT_FILES = ("report.md", "report.html", "plots")


def write_mlflow_run(run_dir: Path, tracking_uri: str, experiment_id: str, run_id: str) -> None:
    write_json_atomic(run_dir / MLFLOW_RUN_FILE,
                      {"tracking_uri": tracking_uri, "experiment_id": experiment_id, "run_id": run_id})


def read_mlflow_run(run_dir: Path) -> dict | None:
    """Return the MLflow record of a run folder (tracking_uri, experiment_id, run_id), or None."""
    path = run_dir / MLFLOW_RUN_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def log_report_artifacts(run_dir: Path) -> str | None:
    """Attach report.md, report.html and plots/ to the run's MLflow run under `report/`; return the run id.

    Returns None without doing anything when the run folder records no MLflow run. When it records one
    but mlflow is not installed, it logs a warning and returns None.
    """
    record = read_mlflow_run(run_dir)
    if record is None:
        return None
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        logger.warning("%s records MLflow run %s, but mlflow is not installed, so the report was not logged "
                       "to it; install physlora[trackers]", run_dir / MLFLOW_RUN_FILE, record["run_id"])
        return None
    client = MlflowClient(tracking_uri=record["tracking_uri"])
    for path in (run_dir / name for name in REPORT_FILES):
        if path.is_dir():
            client.log_artifacts(record["run_id"], str(path), artifact_path=f"report/{path.name}")
        elif path.is_file():
            client.log_artifact(record["run_id"], str(path), artifact_path="report")
    logger.info("logged the report to MLflow run %s at %s", record["run_id"], record["tracking_uri"])
    return record["run_id"]
