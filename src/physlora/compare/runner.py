"""Run each method through `train_run` and `evaluate_run` with the same data, seed, steps and items.

Every method gets its own run folder `<out>/<method>/`; the data set is built once into `<out>/data/`.
By default each method runs in a fresh child process, so its peak memory (the process RSS high-water
mark on CPU, which never goes down) is its own and not that of the methods before it.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import traceback
from pathlib import Path
from typing import Callable

import torch

from physlora.compare.measures import evaluation_measures, training_measures
from physlora.config.schema import RunConfig
from physlora.errors import ConfigError, PhysloraError
from physlora.io import create_folder, write_json_atomic
from physlora.models.methods import METHODS, unavailable_reason

logger = logging.getLogger(__name__)

DATA_DIR = "data"
ERROR_FILE = "compare_error.json"
OK, UNAVAILABLE, FAILED = "ok", "unavailable", "failed"


def parse_methods(text: str) -> list[str]:
    """Split a comma-separated method list; raise ConfigError naming any unknown or repeated method."""
    methods = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in methods if name not in METHODS]
    if unknown or not methods:
        raise ConfigError(f"--methods {text!r}: unknown method(s) {unknown}; choose from {', '.join(METHODS)}")
    repeated = sorted({name for name in methods if methods.count(name) > 1})
    if repeated:
        raise ConfigError(f"--methods {text!r}: {repeated} listed more than once")
    return methods


def method_config(config: RunConfig, method: str, out_dir: Path, data_dir: Path, max_steps: int | None) -> RunConfig:
    """The shared config with only the method, its run folder, the data folder and the step budget changed."""
    copy = config.model_copy(deep=True)
    copy.lora.method = method
    copy.output.dir = str(out_dir / method)
    copy.output.data_dir = str(data_dir)
    if max_steps is not None:
        copy.training.max_steps = max_steps
    return copy


def build_shared_data(config: RunConfig, out_dir: Path) -> Path:
    """Build the data set once for all methods, unless output.data_dir names a built one."""
    if config.output.data_dir:
        return Path(config.output.data_dir)
    from physlora.data.build import build_dataset
    from physlora.models.loading import load_tokenizer

    folder = out_dir / DATA_DIR
    if not (folder / "train.jsonl").is_file():
        build_dataset(config, folder, tokenizer=load_tokenizer(config.model),
                      max_source_length=config.training.max_seq_length,
                      max_target_length=config.training.max_target_length)
    return folder


def train_and_evaluate(config_data: dict, log_level: int = logging.INFO) -> None:
    """Train and evaluate one method's run folder. A failure is written to ERROR_FILE in the folder,
    with the stage it happened in, so that the comparison row can give the reason."""
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from physlora.eval.runner import evaluate_run
    from physlora.train.trainer import train_run

    config = RunConfig.model_validate(config_data)
    run_dir = Path(config.output.dir)
    stage = "train"
    try:
        train_run(config, overwrite=True)
        stage = "eval"
        evaluate_run(run_dir)
    except Exception as error:  # noqa: BLE001  (recorded in the row; the other methods still run)
        detail = str(error) if isinstance(error, PhysloraError) else f"{type(error).__name__}: {error}"
        logger.error("%s failed in %s: %s", run_dir.name, stage, detail)
        create_folder(run_dir)
        write_json_atomic(run_dir / ERROR_FILE, {"stage": stage, "error": detail,
                                                 "traceback": traceback.format_exc()})


def run_method(config: RunConfig, isolate: bool) -> None:
    run_dir = Path(config.output.dir)
    (run_dir / ERROR_FILE).unlink(missing_ok=True)
    config_data = config.model_dump(mode="json")
    if not isolate:
        train_and_evaluate(config_data, logging.getLogger().level)
        return
    process = multiprocessing.get_context("spawn").Process(
        target=train_and_evaluate, args=(config_data, logging.getLogger().level), name=f"compare-{run_dir.name}",
    )
    process.start()
    process.join()
    if process.exitcode != 0 and not (run_dir / ERROR_FILE).is_file():
        create_folder(run_dir)
        write_json_atomic(run_dir / ERROR_FILE, {
            "stage": "process", "error": f"the child process exited with code {process.exitcode} (killed for memory?)",
        })


def method_row(method: str, run_dir: Path) -> dict:
    """Comparison row of one method's run folder: its measures, or why it has none."""
    row: dict = {"method": method, "run_dir": str(run_dir), "status": OK, "reason": None}
    error_path = run_dir / ERROR_FILE
    error = json.loads(error_path.read_text(encoding="utf-8")) if error_path.is_file() else None
    if error is not None and error["stage"] != "eval":
        row.update(status=FAILED, reason=f"{error['stage']} failed: {error['error']}")
        return row
    row.update(training_measures(run_dir))
    if error is not None:
        # Trained but not evaluated, for example when the method cannot generate.
        row.update(status=FAILED, reason=f"eval failed: {error['error']}")
        return row
    row.update(evaluation_measures(run_dir))
    return row


def compare_methods(
    config: RunConfig,
    methods: list[str],
    out_dir: Path,
    *,
    max_steps: int | None = None,
    isolate: bool = True,
    on_method: Callable[[str, int, int], None] | None = None,
) -> list[dict]:
    """Train and evaluate each method into `out_dir/<method>` and return one row per method, in order.

    A method that cannot run here (unavailable_reason) gets a row with the reason. A method that fails
    gets a row with the error, and the others still run. `isolate` runs each method in its own process.
    """
    create_folder(out_dir)
    data_dir = build_shared_data(config, out_dir)
    rows = []
    for index, method in enumerate(methods):
        if on_method is not None:
            on_method(method, index, len(methods))
        run_dir = out_dir / method
        reason = unavailable_reason(method)
        if reason is not None:
            logger.warning("skipping %s: %s", method, reason)
            rows.append({"method": method, "run_dir": str(run_dir), "status": UNAVAILABLE, "reason": reason})
            continue
        logger.info("comparing %s (%d of %d) in %s", method, index + 1, len(methods), run_dir)
        run_method(method_config(config, method, out_dir, data_dir, max_steps), isolate)
        rows.append(method_row(method, run_dir))
    return rows


def run_comparison(
    config: RunConfig,
    methods: list[str],
    out_dir: Path,
    *,
    max_steps: int | None = None,
    isolate: bool = True,
    on_method: Callable[[str, int, int], None] | None = None,
) -> dict:
    """Compare `methods` into `out_dir` and write comparison.json, comparison.md and plots/; return the JSON."""
    from physlora.compare.plots import write_plots
    from physlora.compare.tables import write_comparison

    out_dir = Path(out_dir)
    rows = compare_methods(config, methods, out_dir, max_steps=max_steps, isolate=isolate, on_method=on_method)
    training, evaluation = config.training, config.evaluation
    settings = {
        "model": config.model.name, "methods": methods, "max_steps": training.max_steps if max_steps is None else max_steps,
        "epochs": training.epochs, "batch_size": training.batch_size,
        "gradient_accumulation_steps": training.gradient_accumulation_steps, "seed": training.seed,
        "eval_split": evaluation.split, "eval_items": _eval_items(rows, evaluation.max_items),
        "confidence": evaluation.confidence, "isolated_processes": isolate,
        "device": "cuda" if torch.cuda.is_available() else "cpu", "num_threads": training.num_threads,
    }
    plots = write_plots(rows, out_dir)
    document = write_comparison(out_dir, rows, settings, plots)
    logger.info("wrote %s, %s and %d plots", out_dir / "comparison.json", out_dir / "comparison.md", len(plots))
    return document


def _eval_items(rows: list[dict], max_items: int | None) -> int | None:
    """Items every evaluated method was measured on (they are the same first items of the split)."""
    counts = {row["eval_items"] for row in rows if "eval_items" in row}
    return counts.pop() if len(counts) == 1 else max_items
