"""Markdown tables of benchmark results, printed by the CLI and pasted into docs/benchmarks.md."""

from __future__ import annotations


def _number(value, digits: int = 2) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def train_table(result: dict) -> str:
    """Render one row per runner: throughput, times, memory, losses and MFU."""
    header = ["runner", "precision", "examples/s", "examples/s (median step)", "supervised tokens/s", "training s",
              "process s", "peak memory MB", "last-step loss", "held-out loss", "MFU vs bf16 peak", "MFU vs fp32 peak"]
    rows = []
    for name, runner in result["runners"].items():
        rows.append([
            name, runner["precision"], _number(runner["examples_per_s"]), _number(runner["examples_per_s_median_step"]),
            _number(runner["supervised_tokens_per_s"], 1),
            _number(runner["train_time_s"], 1), _number(runner["wall_time_s"], 1),
            _number(runner["peak_memory_bytes"] / 2**20, 0), _number(runner["last_step_loss"], 4),
            _number(runner["heldout_loss"], 4), _percent(runner["mfu_bf16"]), _percent(runner["mfu_fp32"]),
        ])
    return _table(header, rows)


def ratio_table(result: dict) -> str:
    """Render the physlora / baseline ratios, one row per baseline."""
    header = ["comparison", "examples/s", "examples/s (median step)", "supervised tokens/s", "training time",
              "peak memory", "held-out loss", "held-out loss difference"]
    rows = []
    for name, ratios in result["ratios"].items():
        rows.append([
            name.replace("_vs_", " / "), _times(ratios["examples_per_s"]), _times(ratios["examples_per_s_median_step"]),
            _times(ratios["supervised_tokens_per_s"]),
            _times(ratios["train_time_s"]), _times(ratios["peak_memory_bytes"]), _number(ratios["heldout_loss"], 4),
            _percent(ratios["heldout_loss_relative_difference"]),
        ])
    return _table(header, rows)


def targets_table(result: dict) -> str:
    header = ["target", "measured", "goal", "met", "set for"]
    rows = []
    for target in result["targets"]:
        met = {None: "n/a", True: "yes", False: "no"}[target["met"]]
        rows.append([target["name"], _number(target["value"], 3), f"{target['comparison']} {target['target']}",
                     met, target["applies_to"]])
    return _table(header, rows)


def infer_table(result: dict) -> str:
    header = ["mode", "batch size", "items", "seconds", "answers/s", "new tokens", "tokens/s"]
    rows = [
        [name, str(mode["batch_size"]), str(mode["items"]), _number(mode["time_s"], 1), _number(mode["answers_per_s"]),
         _number(mode["new_tokens"]), _number(mode["tokens_per_s"], 1)]
        for name, mode in result["modes"].items()
    ]
    return _table(header, rows)


def data_table(result: dict) -> str:
    header = ["scale", "input rows", "train/validation/test records", "seconds", "rows/s", "time vs 1st scale"]
    rows = []
    for entry in result["scales"]:
        records = entry["records"]
        rows.append([
            f"{entry['scale']}x", _number(entry["input_rows"]),
            f"{records['train']:,}/{records['validation']:,}/{records['test']:,}", _number(entry["time_s"], 1),
            _number(entry["rows_per_s"], 0), _times(entry["time_vs_first"]),
        ])
    return _table(header, rows)


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _times(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"
