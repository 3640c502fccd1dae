"""Run one training runner in its own process and collect its measurements.

Each runner gets a fresh Python process, so its peak memory belongs to it alone and no runner
inherits warm caches or allocator state from another.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from physlora.bench.machine import load_average
from physlora.bench.setup import REPO_ROOT
from physlora.config.schema import RunConfig
from physlora.errors import PhysloraError
from physlora.models.architectures import DEFAULT_LORA_TARGETS, Family

logger = logging.getLogger(__name__)

BASELINES_DIR = REPO_ROOT / "benchmarks" / "baselines"
PHYSLORA = "physlora"
PHYSLORA_PACKED = "physlora_packed"
PHYSLORA_FULL = "physlora_full"
SEED_LIKE = "seed_like"
HF_BEST_PRACTICE = "hf_best_practice"
HF_BEST_PRACTICE_FULL = "hf_best_practice_full"
RUNNERS = (PHYSLORA, PHYSLORA_PACKED, SEED_LIKE, HF_BEST_PRACTICE)
# Runners that train through physlora's own `train_run`; PHYSLORA_FULL only runs with --include-full.
PHYSLORA_RUNNERS = (PHYSLORA, PHYSLORA_PACKED, PHYSLORA_FULL)
# Padded-token budget of the packed runner's micro-batches when the config sets none: 16 examples of up
# to 128 input plus label tokens, which holds a whole reference window of short physics questions.
PACKED_MICRO_BATCH_TOKENS = 2048
_LOG_TAIL_LINES = 30


class BenchmarkError(PhysloraError):
    """A benchmark runner failed or wrote no result."""

    exit_code = 1


@dataclass(frozen=True)
class RunnerPlan:
    """The command of one runner and where its result and log go."""

    name: str
    command: list[str]
    result_path: Path
    log_path: Path


@dataclass(frozen=True)
class SharedInputs:
    """Inputs shared by every runner of one benchmark: model folder, tokenizer, data subset, config."""

    config: RunConfig
    family: Family
    model_dir: Path
    tokenizer: str | None
    data_dir: Path
    steps: int
    precision: str


def physlora_plan(inputs: SharedInputs, work_dir: Path, tag: str = PHYSLORA, name: str = PHYSLORA) -> RunnerPlan:
    """Plan a physlora runner: `train_run` on the same model folder and data subset as the baselines.

    `name` PHYSLORA trains with the config as it is; PHYSLORA_PACKED sets `training.micro_batch_tokens`
    (to PACKED_MICRO_BATCH_TOKENS unless the config sets a budget); PHYSLORA_FULL trains every parameter
    (`lora.method=full`). `tag` names this run's files in `work_dir`, so repeated runs of one runner keep
    their own.
    """
    config = inputs.config.model_copy(deep=True)
    if name == PHYSLORA_PACKED and config.training.micro_batch_tokens is None:
        config.training.micro_batch_tokens = PACKED_MICRO_BATCH_TOKENS
    if name == PHYSLORA_FULL:
        config.lora.method = "full"
    config.model.name = str(inputs.model_dir)
    config.model.init = "pretrained"
    config.model.architecture = None
    config.model.config = {}
    config.model.tokenizer = inputs.tokenizer
    config.output.dir = str(work_dir / "runs" / tag)
    config.output.data_dir = str(inputs.data_dir)
    config.training.max_steps = inputs.steps
    spec_path = work_dir / f"{tag}-spec.json"
    spec_path.write_text(
        json.dumps({"config": config.model_dump(mode="json"), "steps": inputs.steps, "runner": name}, indent=2),
        encoding="utf-8",
    )
    result_path = work_dir / f"{tag}-result.json"
    command = [sys.executable, "-m", "physlora.bench.physlora_runner", str(spec_path), str(result_path)]
    return RunnerPlan(name, command, result_path, work_dir / f"{tag}.log")


def baseline_plan(name: str, inputs: SharedInputs, work_dir: Path, tag: str | None = None) -> RunnerPlan:
    """Plan a baseline script run with the hyperparameters of `inputs.config` as options.

    `tag` names this run's files in `work_dir` and defaults to the runner name.
    """
    tag = tag or name

    script = {SEED_LIKE: "seed_like.py", HF_BEST_PRACTICE: "hf_best_practice.py",
              HF_BEST_PRACTICE_FULL: "hf_best_practice.py"}[name]
    script_path = BASELINES_DIR / script
    if not script_path.is_file():
        raise BenchmarkError(
            f"{script_path} not found; `physlora bench train` runs its baselines from the benchmarks/ folder "
            "of a source checkout, so run it from a clone of the repository"
        )

    config = inputs.config
    training, lora = config.training, config.lora
    result_path = work_dir / f"{tag}-result.json"
    command = [
        sys.executable, str(script_path),
        "--model", str(inputs.model_dir),
        "--data", str(inputs.data_dir),
        "--out", str(result_path),
        "--steps", str(inputs.steps),
        "--batch-size", str(training.batch_size),
        "--accumulation", str(training.gradient_accumulation_steps),
        "--learning-rate", repr(training.learning_rate),
        "--warmup-steps", str(training.warmup_steps),
        "--weight-decay", repr(training.weight_decay),
        "--max-grad-norm", repr(training.max_grad_norm),
        "--lora-r", str(lora.r),
        "--lora-alpha", repr(lora.alpha),
        "--lora-dropout", repr(lora.dropout),
        "--target-modules", *(lora.target_modules or DEFAULT_LORA_TARGETS[inputs.family]),
        "--max-source-length", str(training.max_seq_length),
        "--max-target-length", str(training.max_target_length),
        # The = form keeps a template that starts with "-" from being read as an option.
        f"--prompt-template={config.model.prompt_template}",
        "--seed", str(training.seed),
    ]

    if inputs.tokenizer:
        command += ["--tokenizer", inputs.tokenizer]
    if name == SEED_LIKE:
        command += ["--precision", "fp32"]
    else:
        command += ["--precision", "bf16" if inputs.precision == "bf16" else "fp32"]
    if name == HF_BEST_PRACTICE_FULL:
        command.append("--full")
    else:
        command += ["--adapter-out", str(work_dir / "runs" / tag / "adapter")]
    return RunnerPlan(name, command, result_path, work_dir / f"{tag}.log")


def runner_environment(num_threads: int | None) -> dict[str, str]:
    """Build the runners' environment: offline Hugging Face libraries and, when set, a fixed thread count."""
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false", PYTHONUNBUFFERED="1")
    if num_threads:
        env["OMP_NUM_THREADS"] = str(num_threads)
    return env


def run_runner(plan: RunnerPlan, env: dict[str, str]) -> dict:
    """Run one runner to completion; return its measurements plus wall time, command and load average.

    Raises BenchmarkError with the end of the runner's log when it exits non-zero or writes no result.
    """
    logger.info("running %s: %s", plan.name, " ".join(plan.command))
    started = time.perf_counter()
    with open(plan.log_path, "w", encoding="utf-8") as log:
        completed = subprocess.run(plan.command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT)
    wall = time.perf_counter() - started
    if completed.returncode != 0 or not plan.result_path.is_file():
        raise BenchmarkError(
            f"runner {plan.name} failed with exit status {completed.returncode}; "
            f"the end of its log {plan.log_path}:\n{_tail(plan.log_path)}"
        )
    result = json.loads(plan.result_path.read_text(encoding="utf-8"))
    result["wall_time_s"] = wall
    result["command"] = plan.command
    result["load_average_after"] = load_average()
    logger.info("%s finished in %.1f s (training %.1f s)", plan.name, wall, result["train_time_s"])
    return result


def _tail(path: Path) -> str:
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return "\n".join(lines[-_LOG_TAIL_LINES:])
