"""`physlora bench data`: data build time at 1x, 2x, 4x ... the input size.

Scale k writes every source k times over into a temporary folder: copy 1 is the original row, and
copies 2..k get " (copy N)" appended to the question text (and to the id where the format has one).
The copies are therefore new questions with new ids that survive duplicate removal. Every stage of the
build (reading, cleaning, topic tagging, deduplication, splitting, writing) thus processes k times the rows.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import shutil
import tempfile
import time
from pathlib import Path

from physlora.bench import results
from physlora.bench.machine import load_average, result_header
from physlora.config.schema import RunConfig, SourceConfig
from physlora.data.build import build_dataset
from physlora.data.sources import source_path
from physlora.data.sources import data_dir as configured_data_dir
from physlora.errors import ConfigError
from physlora.io import write_json_atomic

logger = logging.getLogger(__name__)

DEFAULT_SCALES = (1, 2, 4)
SCALABLE_TYPES = ("sciq", "arc", "mmlu")


def copy_marker(copy: int) -> str:
    """Text appended to the question of copy number `copy` (counting from 1; copy 1 gets none)."""
    return "" if copy == 1 else f" (copy {copy})"


def scale_sciq(source_dir: Path, target_dir: Path, scale: int) -> int:
    """Write every SciQ JSON file of `source_dir` `scale` times over; return the rows written."""
    rows_written = 0
    for path in sorted(source_dir.glob("*.json")):
        rows = json.loads(path.read_text(encoding="utf-8"))
        scaled = [
            {**row, "question": row["question"] + copy_marker(copy)} if isinstance(row, dict) else row
            for copy in range(1, scale + 1)
            for row in rows
        ]
        (target_dir / path.name).write_text(json.dumps(scaled, ensure_ascii=False), encoding="utf-8")
        rows_written += len(scaled)
    return rows_written


def scale_arc(source_dir: Path, target_dir: Path, scale: int) -> int:
    """Write every ARC JSONL file (same relative path) `scale` times over; return the rows written."""
    rows_written = 0
    for path in sorted(source_dir.rglob("*.jsonl")):
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        lines = []
        for copy in range(1, scale + 1):
            marker = copy_marker(copy)
            for row in rows:
                question = row.get("question") if isinstance(row, dict) else None
                if marker and isinstance(question, dict) and isinstance(question.get("stem"), str):
                    row = {**row, "id": f"{row.get('id')}-copy{copy}",
                           "question": {**question, "stem": question["stem"] + marker}}
                lines.append(json.dumps(row, ensure_ascii=False))
        target = target_dir / path.relative_to(source_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("\n".join(lines) + "\n", encoding="utf-8")
        rows_written += len(lines)
    return rows_written


def scale_mmlu(source_dir: Path, target_dir: Path, scale: int) -> int:
    """Write every MMLU CSV file (same relative path) `scale` times over; return the rows written."""
    rows_written = 0
    for path in sorted(source_dir.rglob("*.csv")):
        rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        for copy in range(1, scale + 1):
            for row in rows:
                if row:
                    writer.writerow([row[0] + copy_marker(copy), *row[1:]])
                    rows_written += 1
        target = target_dir / path.relative_to(source_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(buffer.getvalue(), encoding="utf-8")
    return rows_written


_SCALERS = {"sciq": scale_sciq, "arc": scale_arc, "mmlu": scale_mmlu}


def scaled_config(config: RunConfig, root: Path, scale: int) -> tuple[RunConfig, int]:
    """Write the scaled copies of every source under `root`; return a config reading them and the row count.

    Optional sources that are not on disk are left out, as the build would skip them.
    """
    scaled = config.model_copy(deep=True)
    data_root, _ = configured_data_dir(config.data)
    sources: list[SourceConfig] = []
    rows = 0
    for source in config.data.sources:
        original = source_path(source, data_root)
        if not original.exists() and source.optional:
            continue
        if source.type not in _SCALERS:
            raise ConfigError(
                f"bench data can scale {', '.join(SCALABLE_TYPES)} sources, not {source.type} "
                f"({source.label}); remove it from data.sources for the benchmark"
            )
        if not original.exists():
            raise ConfigError(f"{source.label}: {original} not found; set PHYSLORA_DATA_DIR to the local data folder")
        if not original.is_dir():
            raise ConfigError(f"{source.label}: bench data needs a source folder, got the file {original}")
        target = root / source.label
        target.mkdir(parents=True)
        rows += _SCALERS[source.type](original, target, scale)
        sources.append(source.model_copy(update={"path": str(target), "hub_id": None}))
    if not sources:
        raise ConfigError("none of the configured data sources is on disk; set PHYSLORA_DATA_DIR")
    scaled.data.sources = sources
    return scaled, rows


def run_data_benchmark(
    config: RunConfig, out: Path, command: list[str], scales: tuple[int, ...] = DEFAULT_SCALES
) -> dict:
    """Time `build_dataset` at each input scale; write and return the result."""
    if not scales or min(scales) < 1:
        raise ConfigError(f"--scales {list(scales)} must be whole numbers of at least 1")
    result = result_header("data", command)

    measured = []
    for scale in scales:
        with tempfile.TemporaryDirectory(prefix="physlora-bench-data-") as work:
            work_dir = Path(work)
            scaled, rows = scaled_config(config, work_dir / "sources", scale)
            logger.info("building the data set at %dx (%d input rows)", scale, rows)
            started = time.perf_counter()
            audit = build_dataset(scaled, work_dir / "out")
            seconds = time.perf_counter() - started
            shutil.rmtree(work_dir / "sources")
        measured.append({
            "scale": scale,
            "input_rows": rows,
            "records": audit["splits"],
            "time_s": seconds,
            "rows_per_s": results.ratio(rows, seconds),
            "load_average_after": load_average(),
        })

    base = measured[0]
    for entry in measured:
        entry["time_vs_first"] = results.ratio(entry["time_s"], base["time_s"])
        entry["rows_vs_first"] = results.ratio(entry["input_rows"], base["input_rows"])

    result["settings"] = {"data_sources": [source.label for source in config.data.sources], "scales": list(scales)}
    result["scales"] = measured
    result["load_average_end"] = load_average()
    write_json_atomic(out, result)
    return result
