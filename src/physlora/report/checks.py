"""Consistency checks between the files of a run folder, run before the report is written.

Each check returns pass, fail or skipped (when a file it needs is missing) with a one-line detail.
A failure does not stop the report; it is shown in it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from physlora.report.analysis import lora_groups
from physlora.report.runfolder import RunFiles

PASS, FAIL, SKIPPED = "pass", "fail", "skipped"

# eval.json metric name -> per-item field in predictions.jsonl ("base"/"adapted" objects). Items whose
# field is null (no choices) do not count, as in evaluation.
METRIC_FIELDS = {
    "mc_accuracy_sum": "correct_sum",
    "mc_accuracy_mean": "correct_mean",
    "exact_match": "exact_match",
    "token_f1": "token_f1",
    "rouge_l": "rouge_l",
}
MODELS = ("base", "adapted")


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str


def _close(first: float | None, second: float | None, tolerance: float = 1e-9) -> bool:
    if first is None or second is None:
        return first is None and second is None
    return math.isclose(first, second, rel_tol=tolerance, abs_tol=tolerance)


def eval_groups(evaluation: dict) -> dict[str, dict]:
    """Return every group of eval.json metrics keyed by a readable scope name: overall, topic X, source Y."""
    metrics = evaluation.get("metrics", {})
    groups = {"overall": metrics.get("overall", {})}
    groups.update({f"topic {name}": group for name, group in metrics.get("by_topic", {}).items()})
    groups.update({f"source {name}": group for name, group in metrics.get("by_source", {}).items()})
    return groups


def check_group_counts(files: RunFiles) -> Check:
    name = "eval.json: per-topic and per-source item counts sum to the total"
    if files.eval is None:
        return Check(name, SKIPPED, "eval.json missing")
    metrics = files.eval.get("metrics", {})
    total = metrics.get("overall", {}).get("n_items")
    sums = {key: sum(group.get("n_items", 0) for group in metrics.get(key, {}).values())
            for key in ("by_topic", "by_source")}
    detail = f"total {total}, topics sum to {sums['by_topic']}, sources sum to {sums['by_source']}"
    return Check(name, PASS if sums["by_topic"] == total == sums["by_source"] else FAIL, detail)


def check_prediction_counts(files: RunFiles) -> Check:
    name = "eval.json item counts match predictions.jsonl"
    if files.eval is None or files.predictions is None:
        return Check(name, SKIPPED, "eval.json or predictions.jsonl missing")
    lines = len(files.predictions)
    stated = files.eval.get("settings", {}).get("n_items")
    problems = [] if stated == lines else [f"settings.n_items {stated} but {lines} lines"]
    for key, field in (("by_topic", "topic"), ("by_source", "source")):
        counted: dict[str, int] = {}
        for row in files.predictions:
            counted[row.get(field)] = counted.get(row.get(field), 0) + 1
        stored = {group: values.get("n_items") for group, values in files.eval.get("metrics", {}).get(key, {}).items()}
        if counted != stored:
            problems.append(f"{field} counts {stored} in eval.json but {counted} in predictions.jsonl")
    detail = "; ".join(problems) or f"{lines} items in both"
    return Check(name, FAIL if problems else PASS, detail)


def _rows_of(files: RunFiles, scope: str) -> list[dict]:
    if scope == "overall":
        return files.predictions
    kind, _, value = scope.partition(" ")
    return [row for row in files.predictions if row.get(kind) == value]


def _recompute(rows: list[dict], field: str, model: str) -> tuple[int, float | None]:
    values = [row[model][field] for row in rows if row.get(model, {}).get(field) is not None]
    return len(values), (sum(values) / len(values) if values else None)


def _metric_mismatches(scope: str, group: dict, rows: list[dict]) -> list[str]:
    problems = []
    for metric, field in METRIC_FIELDS.items():
        stored = group.get(metric)
        if not isinstance(stored, dict):
            continue
        recomputed = {}
        for model in MODELS:
            count, recomputed[model] = _recompute(rows, field, model)
            value = (stored.get(model) or {}).get("value")
            if count != stored.get("n") or not _close(value, recomputed[model]):
                problems.append(f"{scope} {metric} {model}: {value} stored, {recomputed[model]} from {count} items")
        if stored.get("difference") and None not in recomputed.values():
            if not _close(stored["difference"]["value"], recomputed["adapted"] - recomputed["base"]):
                problems.append(f"{scope} {metric} difference does not equal adapted minus base")
    loss = group.get("loss") or {}
    tokens = sum(row.get("target_tokens", 0) for row in rows)
    for model in MODELS:
        recomputed = -sum(row[model]["target_sum_logprob"] for row in rows) / tokens if tokens else None
        if not _close(loss.get(model), recomputed):
            problems.append(f"{scope} loss {model}: {loss.get(model)} stored, {recomputed} from predictions")
    return problems


def check_metrics_recomputed(files: RunFiles) -> Check:
    name = "eval.json metrics equal their recomputation from predictions.jsonl"
    if files.eval is None or files.predictions is None:
        return Check(name, SKIPPED, "eval.json or predictions.jsonl missing")
    problems: list[str] = []
    groups = eval_groups(files.eval)
    for scope, group in groups.items():
        try:
            problems += _metric_mismatches(scope, group, _rows_of(files, scope))
        except (KeyError, TypeError) as error:
            problems.append(f"{scope}: predictions.jsonl lacks a field ({error})")
    if problems:
        return Check(name, FAIL, f"{len(problems)} mismatch(es), first: {problems[0]}")
    return Check(name, PASS, f"accuracies, exact match, F1, ROUGE-L and loss agree in {len(groups)} groups")


def check_epochs(files: RunFiles) -> Check:
    name = "summary.json epoch table matches the epoch records of metrics.jsonl"
    if files.summary is None or files.metrics is None:
        return Check(name, SKIPPED, "summary.json or metrics.jsonl missing")
    summary_epochs = files.summary.get("epochs", [])
    logged = files.epoch_records
    if [record.get("epoch") for record in summary_epochs] != [record.get("epoch") for record in logged]:
        return Check(name, FAIL, f"epochs {[r.get('epoch') for r in summary_epochs]} in summary.json but "
                                 f"{[r.get('epoch') for r in logged]} in metrics.jsonl")
    for stored, measured in zip(summary_epochs, logged):
        for key in sorted(set(stored) | set(measured)):
            first, second = stored.get(key), measured.get(key)
            same = _close(first, second) if isinstance(first, float) or isinstance(second, float) else first == second
            if not same:
                return Check(name, FAIL, f"epoch {stored.get('epoch')} {key}: {first} in summary.json, {second} in metrics.jsonl")
    return Check(name, PASS, f"{len(logged)} epoch records agree")


def check_train_loss_from_steps(files: RunFiles) -> Check:
    name = "each epoch's train loss is the token-weighted mean of its step losses"
    if files.metrics is None:
        return Check(name, SKIPPED, "metrics.jsonl missing")
    verified, problems = [], []
    for epoch in files.epoch_records:
        steps = [record for record in files.step_records if record.get("epoch") == epoch.get("epoch")]
        if epoch.get("train_loss") is None or not steps or len(steps) != epoch.get("steps"):
            continue  # not every step of the epoch was logged (training.log_every > 1), or no training
        tokens = sum(record["tokens"] for record in steps)
        mean = sum(record["loss"] * record["tokens"] for record in steps) / tokens
        verified.append(epoch["epoch"])
        if not _close(mean, epoch["train_loss"], 1e-6):
            problems.append(f"epoch {epoch['epoch']}: {epoch['train_loss']} stored, {mean} from steps")
    if problems:
        return Check(name, FAIL, "; ".join(problems))
    if not verified:
        return Check(name, SKIPPED, "no epoch has all of its steps logged")
    return Check(name, PASS, f"epochs {', '.join(str(epoch) for epoch in verified)} agree")


def check_parameters(files: RunFiles) -> Check:
    name = "LoRA parameter arithmetic equals the trainable count"
    params = (files.summary or {}).get("params")
    if not params or "lora_modules" not in params:
        return Check(name, SKIPPED, "summary.json params missing")
    method = (((files.summary or {}).get("config") or {}).get("lora") or {}).get("method", "lora")
    if method not in ("lora", "qlora"):
        # DoRA adds a magnitude vector per layer; the other methods have no LoRA pairs at all.
        return Check(name, SKIPPED, f"lora.method={method} is not plain LoRA")
    computed = sum(group["params"] for group in lora_groups(params["lora_modules"]))
    problems = []
    if computed != params.get("trainable"):
        problems.append(f"sum of n x r x (in + out) is {computed:,} but params.trainable is {params.get('trainable')}")
    if params.get("total") != (params.get("trainable") or 0) + (params.get("frozen") or 0):
        problems.append("params.total is not trainable + frozen")
    return Check(name, FAIL if problems else PASS, "; ".join(problems) or f"{computed:,} trainable parameters")


def check_audit(files: RunFiles) -> Check:
    name = "data audit: topic counts sum to the split sizes"
    audit = files.audit
    if audit is None or not isinstance(audit.get("splits"), dict) or not isinstance(audit.get("topics"), dict):
        return Check(name, SKIPPED, "audit.json or its splits/topics counts missing")
    split_total = sum(audit["splits"].values())
    topic_total = sum(audit["topics"].values())
    detail = f"{topic_total} records by topic, {split_total} by split"
    return Check(name, PASS if split_total == topic_total else FAIL, detail)


def run_checks(files: RunFiles) -> list[Check]:
    return [check(files) for check in (
        check_group_counts, check_prediction_counts, check_metrics_recomputed, check_epochs,
        check_train_loss_from_steps, check_parameters, check_audit,
    )]
