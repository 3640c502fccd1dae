"""The main job: data build, training, evaluation, the forgetting measurement of continued runs, and report.

A stage is skipped when its outputs exist and were produced from the same settings. Each finished
stage records a fingerprint (a hash of the config values that determine its output, and those of the
stages before it) in RUN/stages.json. An interrupted training run with the same fingerprint is
resumed from its last checkpoint instead of started again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Callable

from physlora.config import RunConfig, dump_yaml
from physlora.io import write_json_atomic, write_text_atomic

logger = logging.getLogger(__name__)

STATE_FILE = "stages.json"
ProgressFactory = Callable[[str], Callable | None]


def data_dir_of(config: RunConfig) -> Path:
    return Path(config.output.data_dir) if config.output.data_dir else Path(config.output.dir) / "data"


def stage_fingerprints(config: RunConfig) -> dict[str, str]:
    """Fingerprint of each stage; a change in an earlier stage changes every later one."""
    dumped = config.model_dump(mode="json")
    data_inputs = {
        "data": dumped["data"],
        "data_dir_env": os.environ.get("PHYSLORA_DATA_DIR"),
        "tokenizer": dumped["model"]["tokenizer"] or dumped["model"]["name"],
        "lengths": [config.training.max_seq_length, config.training.max_target_length],
    }
    fingerprints = {"data": _digest(data_inputs)}
    fingerprints["train"] = _digest([fingerprints["data"], dumped["model"], dumped["lora"], dumped["training"]])
    fingerprints["eval"] = _digest([fingerprints["train"], dumped["evaluation"]])
    # Forgetting is measured with the evaluation settings, and only for runs with training.init_from.
    fingerprints["forgetting"] = fingerprints["eval"]
    return fingerprints


def _digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode("utf-8")).hexdigest()[:16]


def _read_state(run_dir: Path) -> dict:
    path = run_dir / STATE_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _record_stage(run_dir: Path, state: dict, stage: str, fingerprint: str, seconds: float) -> None:
    state[stage] = {"fingerprint": fingerprint, "seconds": round(seconds, 1),
                    "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    write_json_atomic(run_dir / STATE_FILE, state)


def _outputs_present(config: RunConfig, stage: str) -> bool:
    run_dir = Path(config.output.dir)
    required = {
        "data": [data_dir_of(config) / name for name in ("train.jsonl", "validation.jsonl", "test.jsonl", "audit.json")],
        "train": [run_dir / "summary.json", run_dir / "adapter" / "adapter_config.json"],
        "eval": [run_dir / "eval.json", run_dir / "predictions.jsonl"],
        "forgetting": [run_dir / "forgetting.json"],
    }[stage]
    return all(path.is_file() for path in required)


def _training_finished(run_dir: Path) -> bool:
    summary_path = run_dir / "summary.json"
    if not summary_path.is_file():
        return False
    status = json.loads(summary_path.read_text(encoding="utf-8")).get("status")
    return status in {"finished", "max_steps", "early_stopped"}


def run_pipeline(config: RunConfig, *, force: bool = False, progress_for: ProgressFactory | None = None) -> Path:
    """Run every stage that is not already up to date and return the path of report.md."""
    from physlora.data.build import build_dataset
    from physlora.eval.runner import evaluate_run
    from physlora.models.loading import load_tokenizer
    from physlora.report.build import write_report
    from physlora.tracking import log_report_artifacts
    from physlora.train.trainer import train_run

    run_dir = Path(config.output.dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    state = {} if force else _read_state(run_dir)
    fingerprints = stage_fingerprints(config)
    progress_for = progress_for or (lambda stage: None)

    def up_to_date(stage: str) -> bool:
        current = state.get(stage, {}).get("fingerprint") == fingerprints[stage]
        if current and _outputs_present(config, stage) and (stage != "train" or _training_finished(run_dir)):
            logger.info("skipping %s: its outputs exist and match the config", stage)
            return True
        return False

    if not up_to_date("data"):
        started = time.perf_counter()
        tokenizer = load_tokenizer(config.model)
        build_dataset(config, data_dir_of(config), tokenizer=tokenizer,
                      max_source_length=config.training.max_seq_length,
                      max_target_length=config.training.max_target_length)
        _record_stage(run_dir, state, "data", fingerprints["data"], time.perf_counter() - started)
        state.pop("train", None)

    if not up_to_date("train"):
        started = time.perf_counter()
        resume = _can_resume(run_dir, state, fingerprints["train"])
        if not resume:
            state["train"] = {"fingerprint": fingerprints["train"], "status": "started"}
            write_json_atomic(run_dir / STATE_FILE, state)
        # A run folder trained with other settings is replaced, not mixed into the new run.
        train_run(config, resume=resume, overwrite=not resume, progress=progress_for("train"))
        _record_stage(run_dir, state, "train", fingerprints["train"], time.perf_counter() - started)
        state.pop("eval", None)

    if not up_to_date("eval"):
        started = time.perf_counter()
        # evaluate_run reads RUN/config.yaml. Training settings there already match (same fingerprint),
        # so rewriting it only brings in a changed evaluation section.
        write_text_atomic(run_dir / "config.yaml", dump_yaml(config))
        evaluate_run(run_dir, progress=progress_for("eval"))
        _record_stage(run_dir, state, "eval", fingerprints["eval"], time.perf_counter() - started)
        state.pop("forgetting", None)

    if config.training.init_from is not None and not up_to_date("forgetting"):
        from physlora.eval.forgetting import evaluate_forgetting

        started = time.perf_counter()
        evaluate_forgetting(run_dir)
        _record_stage(run_dir, state, "forgetting", fingerprints["forgetting"], time.perf_counter() - started)

    if config.topic_adapters.enabled:
        run_topic_stages(config, state, fingerprints, progress_for)

    report_path = write_report(run_dir)
    log_report_artifacts(run_dir)
    return report_path


def _can_resume(run_dir: Path, state: dict, fingerprint: str) -> bool:
    """True when an unfinished training run with the same settings left a checkpoint behind."""
    started_here = state.get("train", {}).get("fingerprint") == fingerprint
    checkpoints = run_dir / "checkpoints"
    has_checkpoint = checkpoints.is_dir() and any(checkpoints.iterdir())
    if started_here and has_checkpoint:
        logger.info("resuming the unfinished training run in %s", run_dir)
        return True
    return False


# Topic adapters and the ensemble evaluation: two more stages, run only with topic_adapters.enabled.


def topic_fingerprints(config: RunConfig, fingerprints: dict[str, str]) -> dict[str, str]:
    """Fingerprints of the topic-adapter stage and of the ensemble evaluation that uses its adapters."""
    dumped = config.model_dump(mode="json")
    topics = _digest([fingerprints["data"], dumped["model"], dumped["lora"], dumped["training"],
                      dumped["topic_adapters"]])
    return {"topics": topics, "eval_ensemble": _digest([topics, fingerprints["eval"]])}


def _topic_adapter_fingerprint(config: RunConfig, data_fingerprint: str, topic: str) -> str:
    """Fingerprint of one topic adapter: its data, model, LoRA and training settings and its topic.

    It leaves out min_train_items, so changing the minimum trains only the topics that newly qualify.
    """
    dumped = config.model_dump(mode="json")
    return _digest([data_fingerprint, dumped["model"], dumped["lora"], dumped["training"], topic])


def run_topic_stages(config: RunConfig, state: dict, fingerprints: dict[str, str],
                     progress_for: ProgressFactory) -> None:
    """Train the topic adapters that are not up to date, then evaluate the ensemble unless it is up to date."""
    from physlora.eval.ensemble import ENSEMBLE_FILE, PREDICTIONS_FILE, evaluate_ensemble
    from physlora.train.topic_adapters import trained_topic_runs

    run_dir = Path(config.output.dir)
    stages = topic_fingerprints(config, fingerprints)
    if state.get("topics", {}).get("fingerprint") == stages["topics"] and _topics_complete(run_dir):
        logger.info("skipping topics: every topic adapter exists and matches the config")
    else:
        started = time.perf_counter()
        if not _train_topic_adapters(config, fingerprints["data"], progress_for):
            return
        _record_stage(run_dir, state, "topics", stages["topics"], time.perf_counter() - started)
        state.pop("eval_ensemble", None)

    outputs = [run_dir / ENSEMBLE_FILE, run_dir / PREDICTIONS_FILE]
    current = state.get("eval_ensemble", {}).get("fingerprint") == stages["eval_ensemble"]
    if current and all(path.is_file() for path in outputs):
        logger.info("skipping eval_ensemble: its outputs exist and match the config")
        return
    started = time.perf_counter()
    evaluate_ensemble(run_dir, trained_topic_runs(run_dir), progress=progress_for("eval"))
    _record_stage(run_dir, state, "eval_ensemble", stages["eval_ensemble"], time.perf_counter() - started)


def _topics_complete(run_dir: Path) -> bool:
    from physlora.train.topic_adapters import read_plan, topic_run_dir

    plan = read_plan(run_dir)
    if "trained" not in plan:
        return False
    return all(_training_finished(topic_run_dir(run_dir, topic))
               and (topic_run_dir(run_dir, topic) / "adapter" / "adapter_config.json").is_file()
               for topic in plan["trained"])


def _train_topic_adapters(config: RunConfig, data_fingerprint: str, progress_for: ProgressFactory) -> bool:
    """Train each planned topic adapter that is not up to date; return False when one was interrupted.

    RUN/topics/topics.json is rewritten before and after each topic, so an interrupted topic is resumed
    from its checkpoint and finished topics are skipped on the next run.
    """
    from physlora.data.records import read_jsonl
    from physlora.train.topic_adapters import plan_path, plan_topics, read_plan, topic_config, write_topic_data
    from physlora.train.trainer import train_run

    run_dir = Path(config.output.dir)
    previous = read_plan(run_dir).get("adapters", {})
    plan = plan_topics(read_jsonl(data_dir_of(config) / "train.jsonl"), config.topic_adapters)
    plan["adapters"] = {}
    for topic in plan["trained"]:
        topic_run = topic_config(config, topic)
        folder = Path(topic_run.output.dir)
        fingerprint = _topic_adapter_fingerprint(topic_run, data_fingerprint, topic)
        earlier = previous.get(topic, {})
        if earlier.get("fingerprint") == fingerprint and _training_finished(folder):
            logger.info("skipping topic adapter %s: it exists and matches the config", topic)
            plan["adapters"][topic] = earlier
            continue
        resume = earlier.get("fingerprint") == fingerprint and _can_resume(
            folder, {"train": {"fingerprint": fingerprint}}, fingerprint)
        counts = earlier.get("items") if resume else write_topic_data(data_dir_of(config), topic, folder / "data")
        plan["adapters"][topic] = {"folder": f"topics/{topic}", "fingerprint": fingerprint, "status": "started",
                                   "items": counts}
        write_json_atomic(plan_path(run_dir), plan)
        logger.info("training the %s adapter on %d items into %s", topic, counts["train"], folder)
        summary = train_run(topic_run, resume=resume, overwrite=not resume, progress=progress_for("train"))
        plan["adapters"][topic].update(status=summary["status"], steps=summary["steps"])
        write_json_atomic(plan_path(run_dir), plan)
        if summary["status"] not in {"finished", "max_steps"}:
            logger.warning("topic adapter %s stopped with status %s; run again to resume it", topic, summary["status"])
            return False
    write_json_atomic(plan_path(run_dir), plan)
    return True
