"""Derived numbers of a benchmark result: rates, ratios, and the targets they are reported against."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

# Fields every training runner reports; docs/benchmarks.md describes them.
RUNNER_FIELDS = (
    "runner",
    "fine_tuning",
    "precision",
    "steps",
    "examples",
    "input_tokens",
    "supervised_tokens",
    "train_time_s",
    "wall_time_s",
    "examples_per_s",
    "supervised_tokens_per_s",
    "input_tokens_per_s",
    "step_times_s",
    "median_step_time_s",
    "examples_per_s_median_step",
    "peak_memory_bytes",
    "peak_memory_kind",
    "last_step_loss",
    "heldout_loss",
    "estimated_flops",
    "flops_per_s",
    "mfu_bf16",
    "mfu_fp32",
    "params",
    "load_average_after",
)

# Quantities compared between physlora and each baseline as physlora / baseline.
RATIO_FIELDS = (
    "examples_per_s",
    "examples_per_s_median_step",
    "supervised_tokens_per_s",
    "train_time_s",
    "wall_time_s",
    "peak_memory_bytes",
    "last_step_loss",
    "heldout_loss",
)


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, or None when either is missing or the denominator is 0."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def relative_difference(value: float | None, reference: float | None) -> float | None:
    """|value - reference| / |reference|, or None when either is missing or the reference is 0."""
    if value is None or reference is None or reference == 0:
        return None
    return abs(value - reference) / abs(reference)


def add_rates(runner: dict) -> dict:
    """Add examples, supervised and input tokens per second of training time to a runner's numbers.

    Also adds the median step time and the examples per second it implies, which a few slow steps
    on a busy machine change far less than the total.
    """
    seconds = runner.get("train_time_s")
    for count, rate in (
        ("examples", "examples_per_s"),
        ("supervised_tokens", "supervised_tokens_per_s"),
        ("input_tokens", "input_tokens_per_s"),
    ):
        runner[rate] = ratio(runner.get(count), seconds) if seconds and seconds > 0 else None
    step_times = runner.get("step_times_s") or []
    runner["median_step_time_s"] = statistics.median(step_times) if step_times else None
    steps = runner.get("steps")
    per_step = ratio(runner.get("examples"), steps) if steps else None
    runner["examples_per_s_median_step"] = ratio(per_step, runner["median_step_time_s"])
    return runner


def compare(candidate: dict, baseline: dict) -> dict:
    """Ratios candidate / baseline of RATIO_FIELDS, plus the relative difference of the held-out loss."""
    ratios = {field: ratio(candidate.get(field), baseline.get(field)) for field in RATIO_FIELDS}
    ratios["heldout_loss_relative_difference"] = relative_difference(
        candidate.get("heldout_loss"), baseline.get("heldout_loss")
    )
    return ratios


@dataclass(frozen=True)
class Target:
    """A goal for one measured number: `value >= goal` or `value <= goal`."""

    name: str
    goal: float
    at_least: bool
    applies_to: str
    model: str | None = None
    """Part of the benchmarked model's name the goal was set for; None for any model."""

    def check(self, value: float | None, model_name: str | None = None) -> dict:
        """Compare `value` with the goal. `met` is None when there is no value, or when `model_name` is
        given and is not the model the goal was set for (a tiny test model, say)."""
        other_model = self.model is not None and model_name is not None and self.model not in model_name.lower()
        if value is None or other_model:
            met = None
        elif self.at_least:
            met = value >= self.goal
        else:
            met = value <= self.goal
        return {
            "name": self.name,
            "value": value,
            "target": self.goal,
            "comparison": ">=" if self.at_least else "<=",
            "met": met,
            "applies_to": self.applies_to,
        }


SEED_LIKE_SPEEDUP = Target(
    "examples/s, {runner} / seed-like baseline", 12.0, True, "flan-t5-base architecture", "flan-t5-base"
)
SEED_LIKE_LOSS = Target(
    "held-out loss, relative difference of {runner} from seed-like", 0.02, False, "flan-t5-base architecture",
    "flan-t5-base",
)
BEST_PRACTICE_SPEEDUP = Target(
    "examples/s, {runner} / HF best-practice baseline", 1.5, True, "Gemma 3 270M", "gemma-3-270m"
)
MFU_TARGET = Target("{runner} MFU, fraction of the measured bf16 matmul peak", 0.5, True, "LoRA training")
LORA_MEMORY = Target("peak memory, LoRA / full fine-tuning ({runner} runners, same model and batch)", 0.4, False,
                     "any model")
BATCHED_SPEEDUP = Target("answers/s, batched / one-by-one generation", 5.0, True, "any model")

# The physlora runners whose numbers are checked against the targets, in the order they are reported.
PHYSLORA_VARIANTS = ("physlora", "physlora_packed")


def train_targets(result: dict) -> list[dict]:
    """Check the training targets that the runners in `result` allow; a missing runner gives no entry.

    Each physlora runner (default and packed) is checked on its own; `{runner}` in a target's name
    becomes the runner's name.
    """
    checked = []
    ratios = result.get("ratios", {})
    model = result.get("settings", {}).get("model")
    for runner in PHYSLORA_VARIANTS:
        seed_like = ratios.get(f"{runner}_vs_seed_like")
        if seed_like is not None:
            checked.append(_named(SEED_LIKE_SPEEDUP.check(seed_like["examples_per_s"], model), runner))
            checked.append(_named(SEED_LIKE_LOSS.check(seed_like["heldout_loss_relative_difference"], model), runner))
        best_practice = ratios.get(f"{runner}_vs_hf_best_practice")
        if best_practice is not None:
            checked.append(_named(BEST_PRACTICE_SPEEDUP.check(best_practice["examples_per_s"], model), runner))
        measured = result.get("runners", {}).get(runner)
        if measured is not None:
            checked.append(_named(MFU_TARGET.check(measured.get("mfu_bf16")), runner))
    lora_vs_full = result.get("lora_vs_full")
    if lora_vs_full is not None:
        for runner, field in (("hf_best_practice", "peak_memory_ratio"), ("physlora", "physlora_peak_memory_ratio")):
            if lora_vs_full.get(field) is not None:
                checked.append(_named(LORA_MEMORY.check(lora_vs_full[field]), runner))
    return checked


def _named(checked: dict, runner: str) -> dict:
    checked["name"] = checked["name"].format(runner=runner)
    checked["runner"] = runner
    return checked
