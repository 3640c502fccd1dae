"""Ensemble evaluation: each question answered by its topic's adapter, against the general adapter and the base model.

Routing is the rule of the `auto` model of `physlora serve` (AdapterRegistry.route). The question text
alone is classified with the run's topic classifier (data.topic_classifier, the one that tagged the data
set). The question goes to the adapter of that topic, else of its broader topic, else to the general
adapter (RUN/adapter). The record's stored topic is not used for routing because it was
computed with the reference answer, which a served question does not have.

Every metric comes from physlora.eval.aggregate.summarize, the code behind eval.json, applied to three
pairs of models on the same items: ensemble against base, ensemble against general, general against base.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections import Counter
from pathlib import Path
from typing import Callable

from physlora.data.records import Record
from physlora.eval.aggregate import BootstrapSettings, metrics_by, summarize
from physlora.eval.generation import resolve_max_new_tokens
from physlora.eval.likelihood import PairScores, batch_count
from physlora.eval.predictions import ModelOutputs, build_rows, write_predictions
from physlora.eval.runner import _plan, _run_base, _run_model, data_dir_of, evaluation_settings, read_split, run_config_of
from physlora.io import write_json_atomic
from physlora.serve.registry import BASE, AdapterRegistry, AdapterSpec, Route

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
ENSEMBLE_FILE = "eval-ensemble.json"
PREDICTIONS_FILE = "predictions-ensemble.jsonl"
GENERAL = "general"
# (candidate, reference) pairs. In each comparison's metrics the "base" fields contain the reference model
# and the "adapted" fields contain the candidate, so "difference" is candidate minus reference as in eval.json.
COMPARISONS = (("ensemble", "base"), ("ensemble", GENERAL), (GENERAL, "base"))
Progress = Callable[[int, int], None]


def route_records(registry: AdapterRegistry, records: list[Record]) -> list[Route]:
    """Route each record's question as the server's `auto` model would."""
    return [registry.route(record.question) for record in records]


def routing_summary(
    records: list[Record], routes: list[Route], is_physics: list[bool], topic_adapters: list[str]
) -> dict:
    """Count items per adapter and per routing rule, and the items sent to the general adapter by topic.

    `is_physics` is the classifier's verdict on each question text. A question that is not physics goes
    to the general adapter even when its best topic has an adapter.
    """
    to_general = [(route, physics) for route, physics in zip(routes, is_physics) if route.rule == "general"]
    return {
        "input": "question text only, routed as the auto model of `physlora serve` routes",
        "topic_adapters": topic_adapters,
        "items_per_adapter": dict(Counter(route.model for route in routes)),
        "items_per_rule": dict(Counter(route.rule for route in routes)),
        "to_general": {
            "n": len(to_general),
            "no_topic_adapter": sum(1 for _, physics in to_general if physics),
            "not_physics": sum(1 for _, physics in to_general if not physics),
            "by_topic": dict(Counter(route.topic for route, _ in to_general)),
        },
        "agrees_with_record_topic": sum(route.topic == record.topic for route, record in zip(routes, records)),
    }


def merge_outputs(records: list[Record], parts: list[tuple[list[int], ModelOutputs]]) -> ModelOutputs:
    """Put the outputs of several item subsets back into item order.

    Each part is (item indices into `records`, the outputs of those items in that order); together the
    parts must cover every item once.
    """
    target_sums, target_tokens, answers = [None] * len(records), [None] * len(records), [None] * len(records)
    choice_sums, choice_tokens = [None] * len(records), [None] * len(records)
    for indices, outputs in parts:
        offset = 0
        for position, item in enumerate(indices):
            count = len(records[item].choices)
            target_sums[item] = outputs.targets.sum_logprob[position]
            target_tokens[item] = outputs.targets.n_tokens[position]
            answers[item] = outputs.answers[position]
            choice_sums[item] = outputs.choices.sum_logprob[offset : offset + count]
            choice_tokens[item] = outputs.choices.n_tokens[offset : offset + count]
            offset += count
    missing = [item for item, answer in enumerate(answers) if answer is None]
    if missing:
        raise ValueError(f"no outputs for items {missing[:5]}: the parts must cover every item")
    return ModelOutputs(
        targets=PairScores(target_sums, target_tokens),
        choices=PairScores([value for item in choice_sums for value in item],
                           [value for item in choice_tokens for value in item]),
        answers=answers,
    )


def compare(rows: list[dict], candidate: str, reference: str, settings: BootstrapSettings) -> dict:
    """eval.json metrics of `candidate` against `reference`, overall, per topic, per source and per routed adapter."""
    view = [{**row, "base": row[reference], "adapted": row[candidate]} for row in rows]
    metrics = summarize(view, settings)
    metrics["by_adapter"] = metrics_by(view, "routed_adapter", settings)
    return {"candidate": candidate, "reference": reference, "metrics": metrics}


def evaluate_ensemble(run_dir: Path, topic_runs: dict[str, Path], progress: Progress | None = None) -> dict:
    """Evaluate the ensemble of `topic_runs` ({topic: run folder}) with RUN/adapter as the general adapter.

    Writes RUN/predictions-ensemble.jsonl and RUN/eval-ensemble.json and returns the latter's content.
    The split, item limit, generation limit and bootstrap settings are the run's evaluation section.
    """
    started = time.perf_counter()
    run_dir = Path(run_dir)
    config = run_config_of(run_dir)
    evaluation = evaluation_settings(config)
    data_file = data_dir_of(config, run_dir) / f"{evaluation.split}.jsonl"
    records = read_split(data_file, evaluation.max_items)
    specs = [AdapterSpec(GENERAL, run_dir), *(AdapterSpec(topic, Path(path)) for topic, path in topic_runs.items())]
    registry = AdapterRegistry.load(specs, general=GENERAL)
    routes = route_records(registry, records)
    is_physics = [registry.classifier.classify(record.question).is_physics for record in records]

    references = [record.answer for record in records]
    limit = resolve_max_new_tokens(evaluation, registry.tokenizer, registry.family, references)
    stored = stored_rows(run_dir, records, evaluation.split, limit["max_new_tokens"])
    models = ("ensemble",) if stored is not None else ("base", GENERAL, "ensemble")
    plan = _plan(config, evaluation, records, limit)
    on_batch = _batch_counter(plan, len(models), progress)
    source = "stored predictions.jsonl" if stored is not None else "computed"
    logger.info("evaluating the ensemble of %s on %d %s items (base and general: %s)",
                ", ".join(topic_runs) or "no topic", len(records), evaluation.split, source)
    outputs = {}
    if stored is None:
        outputs["base"] = _run_base(registry.model, registry, plan, on_batch, config)
        registry.model.set_adapter(GENERAL)
        outputs[GENERAL] = _run_model(registry.model, registry, plan, on_batch)
    outputs["ensemble"] = _ensemble_outputs(registry, config, evaluation, records, routes, limit, on_batch)

    rows = build_rows(records, outputs)
    for item, (row, route) in enumerate(zip(rows, routes)):
        if stored is not None:
            row["base"], row[GENERAL] = stored[item]["base"], stored[item]["adapted"]
        row["routed_adapter"] = route.model
        row["route"] = {"topic": route.topic, "rule": route.rule, "is_physics": is_physics[item]}

    bootstrap = BootstrapSettings(evaluation.bootstrap_samples, evaluation.confidence, evaluation.seed)
    result = {
        "format_version": FORMAT_VERSION,
        "settings": {
            "split": evaluation.split, "data_file": str(data_file), "n_items": len(records),
            "max_items": evaluation.max_items, "batch_size": evaluation.batch_size, **limit,
            "bootstrap_samples": evaluation.bootstrap_samples, "confidence": evaluation.confidence,
            "seed": evaluation.seed, "model": config.model.name, "family": registry.family,
            "adapters": {GENERAL: str(run_dir), **{topic: str(path) for topic, path in topic_runs.items()}},
            "base_and_general_from": "predictions.jsonl" if stored is not None else "computed",
        },
        "routing": routing_summary(records, routes, is_physics, list(topic_runs)),
        "comparisons": {f"{candidate}_vs_{reference}": compare(rows, candidate, reference, bootstrap)
                        for candidate, reference in COMPARISONS},
        "time_s": time.perf_counter() - started,
    }
    write_predictions(run_dir / PREDICTIONS_FILE, rows)
    write_json_atomic(run_dir / ENSEMBLE_FILE, result)
    logger.info("wrote %s and %s", run_dir / ENSEMBLE_FILE, run_dir / PREDICTIONS_FILE)
    return result


def _ensemble_outputs(registry, config, evaluation, records, routes, limit, on_batch) -> ModelOutputs:
    """Run each routed adapter on its own items, then put the outputs back into item order."""
    parts = []
    for name in sorted({route.model for route in routes}):
        indices = [item for item, route in enumerate(routes) if route.model == name]
        subset = [records[item] for item in indices]
        if name != BASE:
            registry.model.set_adapter(name)
        plan = _plan(config, evaluation, subset, limit)
        run = _run_model if name != BASE else functools.partial(_run_base, config=config)
        parts.append((indices, run(registry.model, registry, plan, on_batch)))
    return merge_outputs(records, parts)


def stored_rows(run_dir: Path, records: list[Record], split: str, max_new_tokens: int) -> list[dict] | None:
    """Return the rows of RUN/predictions.jsonl when they measured the same items and adapter, else None.

    They qualify when eval.json has the same split and generation limit, the rows have the records' ids in
    order, and eval.json is newer than the adapter weights (so the general adapter is the one evaluated).
    """
    eval_path, predictions_path = run_dir / "eval.json", run_dir / "predictions.jsonl"
    weights = run_dir / "adapter" / "adapter_model.safetensors"
    if not (eval_path.is_file() and predictions_path.is_file() and weights.is_file()):
        return None
    settings = json.loads(eval_path.read_text(encoding="utf-8")).get("settings", {})
    if settings.get("split") != split or settings.get("max_new_tokens") != max_new_tokens:
        logger.info("eval.json used other settings; the base and general models are evaluated again")
        return None
    if eval_path.stat().st_mtime < weights.stat().st_mtime:
        logger.info("the adapter is newer than eval.json; the base and general models are evaluated again")
        return None
    lines = predictions_path.read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    if [row.get("id") for row in rows] != [record.id for record in records]:
        logger.info("predictions.jsonl contains other items; the base and general models are evaluated again")
        return None
    return rows


def _batch_counter(plan: dict, n_models: int, progress: Progress | None) -> Callable[[], None]:
    # Per model: target and generation batches over the items, and choice batches over the choice pairs.
    # The ensemble's per-adapter subsets can need a few more batches than this estimate.
    per_model = 2 * batch_count(len(plan["prompts"]), plan["batch_size"])
    per_model += batch_count(len(plan["choice_pairs"]), plan["batch_size"])
    state = {"done": 0, "total": n_models * per_model}

    def on_batch() -> None:
        state["done"] += 1
        state["total"] = max(state["total"], state["done"])
        if progress is not None:
            progress(state["done"], state["total"])

    return on_batch
