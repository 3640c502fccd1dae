"""`physlora bench train`: physlora's training path against two transformers baselines, same inputs.

Every runner trains the same model folder on the same training records for the same number of
optimizer steps, one after another in its own process. Afterwards each trained adapter is scored on
the same held-out records with the same code, so the losses are comparable.
"""

from __future__ import annotations

import logging
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM

from physlora.bench import flops, results
from physlora.bench.machine import load_average, matmul_peaks, result_header
from physlora.bench.runners import (
    HF_BEST_PRACTICE,
    HF_BEST_PRACTICE_FULL,
    PHYSLORA,
    PHYSLORA_FULL,
    PHYSLORA_PACKED,
    PHYSLORA_RUNNERS,
    RUNNERS,
    SEED_LIKE,
    SharedInputs,
    baseline_plan,
    physlora_plan,
    run_runner,
    runner_environment,
)
from physlora.bench.setup import build_local_dataset, prepare_model_folder, write_subset
from physlora.config.schema import ModelConfig, RunConfig
from physlora.data.records import read_jsonl
from physlora.errors import ConfigError
from physlora.io import write_json_atomic
from physlora.models.adapters import load_adapter
from physlora.models.architectures import DEFAULT_LORA_TARGETS, family_of, is_t5
from physlora.models.loading import load_model
from physlora.models.scoring import mean_loss
from physlora.train.batching import encode_records
from physlora.train.precision import resolve_precision

logger = logging.getLogger(__name__)

DEFAULT_STEPS = 4
DEFAULT_HELDOUT_ITEMS = 32


@contextmanager
def _work_folder(work_dir: Path | None) -> Iterator[Path]:
    """Yield `work_dir` (kept afterwards), or a temporary folder removed at the end."""
    if work_dir is not None:
        if work_dir.exists() and any(work_dir.iterdir()):
            raise ConfigError(f"--work-dir {work_dir} is not empty; give a new or empty folder")
        work_dir.mkdir(parents=True, exist_ok=True)
        yield work_dir
        return
    with tempfile.TemporaryDirectory(prefix="physlora-bench-") as temporary:
        yield Path(temporary)


def run_train_benchmark(
    config: RunConfig,
    out: Path,
    command: list[str],
    steps: int = DEFAULT_STEPS,
    runners: tuple[str, ...] = RUNNERS,
    include_full: bool = False,
    heldout_items: int = DEFAULT_HELDOUT_ITEMS,
    work_dir: Path | None = None,
    repeats: int = 1,
) -> dict:
    """Run the training benchmark, write the result JSON to `out`, and return it.

    With `repeats` above 1 the runners run in rounds, in reversed order every other round. Each runner
    then reports its run with the median training time and lists the times of all its runs.
    """
    unknown = [name for name in runners if name not in RUNNERS]
    if unknown or not runners:
        raise ConfigError(f"runners {unknown or list(runners)} are not valid; choose from {', '.join(RUNNERS)}")
    if steps < 1 or repeats < 1:
        raise ConfigError(f"--steps={steps} and --repeats={repeats} must be at least 1")
    result = result_header("train", command)
    training = config.training
    per_step = training.batch_size * training.gradient_accumulation_steps

    with _work_folder(work_dir) as work:
        logger.info("building the data set from local files")
        audit = build_local_dataset(config, work / "data-full")
        subset = write_subset(work / "data-full", work / "data", steps * per_step, heldout_items)
        model_dir, tokenizer = prepare_model_folder(config, work / "model")
        model_config = AutoConfig.from_pretrained(model_dir)
        family = family_of(model_config)
        device_type = "cuda" if torch.cuda.is_available() else "cpu"
        precision = resolve_precision(training.precision, device_type, is_t5(model_config)).name
        inputs = SharedInputs(config, family, model_dir, tokenizer, work / "data", steps, precision)
        groups = _parameter_groups(model_dir, family, config)

        result["settings"] = _settings(config, family, steps, subset, audit, precision)
        result["settings"]["repeats"] = repeats
        names = list(runners) + ([HF_BEST_PRACTICE_FULL, PHYSLORA_FULL] if include_full else [])
        measured, peaks = _run_rounds(names, inputs, work, repeats, runner_environment(training.num_threads))
        result["matmul_peak"] = _combine_peaks(peaks)
        result["heldout_loss_initial"], heldout = _heldout_losses(config, model_dir, tokenizer, work / "data", measured)

    result["flops"] = {"formula": flops.__doc__.strip(), "parameter_groups": groups.__dict__}
    for name, runner in measured.items():
        runner["heldout_loss"] = heldout.get(name)
        results.add_rates(runner)
        _add_flops(runner, groups, result["matmul_peak"])
    result["runners"] = measured
    result["ratios"] = {
        f"{candidate}_vs_{name}": results.compare(measured[candidate], measured[name])
        for candidate in (PHYSLORA, PHYSLORA_PACKED)
        for name in (SEED_LIKE, HF_BEST_PRACTICE)
        if candidate in measured and name in measured
    }
    if include_full:
        result["lora_vs_full"] = _lora_vs_full(measured)
    result["targets"] = results.train_targets(result)
    result["load_average_end"] = load_average()
    write_json_atomic(out, result)
    return result


def _settings(config: RunConfig, family: str, steps: int, subset: dict, audit: dict, precision: str) -> dict:
    training = config.training
    return {
        "model": config.model.name,
        "model_init": config.model.init,
        "family": family,
        "steps": steps,
        "batch_size": training.batch_size,
        "gradient_accumulation_steps": training.gradient_accumulation_steps,
        "examples_per_step": training.batch_size * training.gradient_accumulation_steps,
        "max_seq_length": training.max_seq_length,
        "max_target_length": training.max_target_length,
        "learning_rate": training.learning_rate,
        "warmup_steps": training.warmup_steps,
        "lora": config.lora.model_dump(mode="json"),
        "physlora_precision": precision,
        "train_records": subset["train"],
        "heldout_records": subset["heldout"],
        "data_sources": [source.label for source in config.data.sources],
        "data_set_splits": audit["splits"],
    }


def _parameter_groups(model_dir: Path, family: str, config: RunConfig) -> flops.ParameterGroups:
    """Count the model's weights by token group on the meta device, without loading its weights."""
    auto_class = AutoModelForSeq2SeqLM if family == "seq2seq" else AutoModelForCausalLM
    with torch.device("meta"):
        model = auto_class.from_config(AutoConfig.from_pretrained(model_dir))
    targets = config.lora.target_modules or DEFAULT_LORA_TARGETS[family]
    return flops.parameter_groups(model, targets, config.lora.r)


def _run_rounds(
    names: list[str], inputs: SharedInputs, work: Path, repeats: int, env: dict[str, str]
) -> tuple[dict[str, dict], list[dict]]:
    """Run every runner `repeats` times with a matmul peak measurement before each run and one at the end.

    Returns each runner's median-time run (with `train_time_s_runs` listing all its times) and the
    peak measurements.
    """
    runs: dict[str, list[dict]] = {name: [] for name in names}
    peaks = []
    for round_index in range(repeats):
        order = names if round_index % 2 == 0 else list(reversed(names))
        for name in order:
            tag = f"{name}-{round_index + 1}"
            if name in PHYSLORA_RUNNERS:
                plan = physlora_plan(inputs, work, tag, name)
            else:
                plan = baseline_plan(name, inputs, work, tag)
            peak = matmul_peaks()
            peaks.append(peak)
            measured = run_runner(plan, env)
            measured["matmul_peak_before"] = {key: value["flops_per_s"] for key, value in peak.items()}
            runs[name].append(measured)
    peaks.append(matmul_peaks())
    chosen = {}
    for name, runner_runs in runs.items():
        ordered = sorted(runner_runs, key=lambda run: run["train_time_s"])
        median = ordered[(len(ordered) - 1) // 2]
        median["train_time_s_runs"] = [run["train_time_s"] for run in runner_runs]
        chosen[name] = median
    return chosen, peaks


def _combine_peaks(peaks: list[dict]) -> dict:
    """Collect the peak measurements and take the highest per precision, because load only slows a product down."""
    combined: dict = {"measurements": peaks}
    for name in ("bf16", "fp32"):
        combined[f"{name}_flops_per_s"] = max(peak[name]["flops_per_s"] for peak in peaks)
    return combined


def _add_flops(runner: dict, groups: flops.ParameterGroups, peaks: dict) -> None:
    """Estimated training FLOPs, achieved FLOP/s and MFU against both measured peaks."""
    full = runner["fine_tuning"] == "full"
    used_groups = flops.ParameterGroups(groups.input_weights, groups.target_weights) if full else groups
    estimate = flops.training_flops(
        used_groups, runner["input_tokens"], runner["supervised_tokens"], runner["fine_tuning"]
    )
    seconds = runner["train_time_s"]
    runner["estimated_flops"] = estimate
    runner["flops_per_s"] = estimate / seconds if seconds > 0 else None
    runner["mfu_bf16"] = flops.model_flops_utilisation(estimate, seconds, peaks["bf16_flops_per_s"])
    runner["mfu_fp32"] = flops.model_flops_utilisation(estimate, seconds, peaks["fp32_flops_per_s"])


def _lora_vs_full(measured: dict) -> dict:
    """Peak memory of LoRA against full fine-tuning, within each runner family (same code, model and batch)."""

    def peak(name: str) -> int | None:
        return measured[name]["peak_memory_bytes"] if name in measured else None

    return {
        "runner": HF_BEST_PRACTICE,
        "lora_peak_memory_bytes": peak(HF_BEST_PRACTICE),
        "full_peak_memory_bytes": peak(HF_BEST_PRACTICE_FULL),
        "peak_memory_ratio": results.ratio(peak(HF_BEST_PRACTICE), peak(HF_BEST_PRACTICE_FULL)),
        "physlora_lora_peak_memory_bytes": peak(PHYSLORA),
        "physlora_full_peak_memory_bytes": peak(PHYSLORA_FULL),
        "physlora_peak_memory_ratio": results.ratio(peak(PHYSLORA), peak(PHYSLORA_FULL)),
    }


def _heldout_losses(
    config: RunConfig, model_dir: Path, tokenizer: str | None, data_dir: Path, measured: dict
) -> tuple[float, dict[str, float]]:
    """Mean loss per supervised token on the held-out records: of the untrained model, and with each
    runner's adapter. All are computed here in float32 with physlora's loss code, whatever precision
    the runner trained in."""
    records = read_jsonl(data_dir / "validation.jsonl")
    model_config = ModelConfig(name=str(model_dir), tokenizer=tokenizer, prompt_template=config.model.prompt_template)
    training = config.training

    def loss_with(adapter_dir: str | None) -> float:
        bundle = load_model(model_config)
        model = load_adapter(bundle.model, adapter_dir) if adapter_dir else bundle.model
        examples = encode_records(records, bundle.tokenizer, bundle.family, model_config.prompt_template,
                                  training.max_seq_length, training.max_target_length)
        loss, _ = mean_loss(model, bundle.family, examples, training.eval_batch_size, bundle.tokenizer.pad_token_id)
        return loss

    initial = loss_with(None)
    losses = {name: loss_with(runner["adapter_dir"]) for name, runner in measured.items() if runner.get("adapter_dir")}
    return initial, losses
