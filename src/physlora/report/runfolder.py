"""Read every file of a run folder that the report uses, tolerating absent or unreadable ones.

A file that is absent or cannot be parsed becomes None here and an entry in `RunFiles.missing`,
which names the command that produces it. The report lists those entries instead of failing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from physlora.errors import RunFolderError


@dataclass
class RunFiles:
    """Parsed run-folder files; None where a file is missing or unreadable."""

    run_dir: Path
    config_text: str | None = None
    config: dict | None = None
    summary: dict | None = None
    metrics: list[dict] | None = None
    eval: dict | None = None
    predictions: list[dict] | None = None
    audit: dict | None = None
    audit_path: Path | None = None
    forgetting: dict | None = None
    missing: list[str] = field(default_factory=list)

    @property
    def step_records(self) -> list[dict]:
        return [record for record in self.metrics or [] if record.get("type") == "step"]

    @property
    def epoch_records(self) -> list[dict]:
        return [record for record in self.metrics or [] if record.get("type") == "epoch"]

    @property
    def epochs(self) -> list[dict]:
        """Epoch records from metrics.jsonl, or from summary.json when metrics.jsonl is missing."""
        if self.metrics is not None:
            return self.epoch_records
        return list((self.summary or {}).get("epochs", []))

    @property
    def event_records(self) -> list[dict]:
        return [record for record in self.metrics or [] if record.get("type") == "event"]

    def config_value(self, dotted: str, default: Any = None) -> Any:
        """Value at `section.key` in config.yaml (or summary.json's config), else `default`."""
        node: Any = self.config if self.config is not None else (self.summary or {}).get("config")
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node


def _read_json(path: Path, files: RunFiles, remedy: str, label: str | None = None) -> Any:
    label = label or path.name
    if not path.is_file():
        files.missing.append(f"{label}: not found ({remedy})")
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        files.missing.append(f"{label}: unreadable ({error}); {remedy}")
        return None


def _read_jsonl(path: Path, files: RunFiles, remedy: str) -> list[dict] | None:
    if not path.is_file():
        files.missing.append(f"{path.name}: not found ({remedy})")
        return None
    records, bad_lines = [], 0
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            bad_lines += 1
    if bad_lines:
        files.missing.append(f"{path.name}: {bad_lines} unreadable line(s) skipped")
    return records


def _read_config(files: RunFiles) -> None:
    path = files.run_dir / "config.yaml"
    if not path.is_file():
        files.missing.append("config.yaml: not found (written by `physlora train`)")
        return
    files.config_text = path.read_text(encoding="utf-8")
    try:
        parsed = yaml.safe_load(files.config_text)
    except yaml.YAMLError as error:
        files.missing.append(f"config.yaml: invalid YAML ({error})")
        return
    files.config = parsed if isinstance(parsed, dict) else None


def read_run_folder(run_dir: Path) -> RunFiles:
    """Read config.yaml, summary.json, metrics.jsonl, eval.json, predictions.jsonl and the data audit.

    Raises RunFolderError when `run_dir` does not exist or contains none of the training files.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunFolderError(f"run folder {run_dir} not found; train a model first (`physlora run` or `physlora train`)")
    if not any((run_dir / name).is_file() for name in ("config.yaml", "summary.json", "metrics.jsonl")):
        raise RunFolderError(
            f"{run_dir} contains no config.yaml, summary.json or metrics.jsonl; run `physlora train` into it first"
        )
    files = RunFiles(run_dir=run_dir)
    _read_config(files)
    files.summary = _read_json(run_dir / "summary.json", files, "written when `physlora train` ends")
    files.metrics = _read_jsonl(run_dir / "metrics.jsonl", files, "written by `physlora train`")
    files.eval = _read_json(run_dir / "eval.json", files, f"run `physlora eval {run_dir}`")
    files.predictions = _read_jsonl(run_dir / "predictions.jsonl", files, f"run `physlora eval {run_dir}`")
    data_dir = files.config_value("output.data_dir")
    files.audit_path = (Path(data_dir) if data_dir else run_dir / "data") / "audit.json"
    label = "data/audit.json" if files.audit_path == run_dir / "data" / "audit.json" else str(files.audit_path)
    files.audit = _read_json(files.audit_path, files, "written by `physlora data build`", label=label)
    # Only a run trained from another run's adapter has a forgetting measurement to miss.
    if files.config_value("training.init_from") or (run_dir / "forgetting.json").is_file():
        files.forgetting = _read_json(run_dir / "forgetting.json", files, f"run `physlora forgetting {run_dir}`")
    return files
