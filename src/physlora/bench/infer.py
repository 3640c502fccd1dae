"""`physlora bench infer`: batched greedy generation against one-by-one generation of the same items.

Both modes use `generate_answers`, the generation path of `physlora eval`, on the model with a freshly
attached (unmerged) LoRA adapter, as evaluation runs it, with the same prompts and the same
max_new_tokens. Only the batch size differs.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

import torch

from physlora.bench import results
from physlora.bench.machine import load_average, result_header
from physlora.bench.setup import build_local_dataset
from physlora.config.schema import RunConfig
from physlora.data.records import read_jsonl
from physlora.errors import ConfigError, DataError
from physlora.eval.generation import Generated, generate_answers
from physlora.io import write_json_atomic
from physlora.models.adapters import attach_lora
from physlora.models.encoding import build_prompt
from physlora.models.loading import load_model

logger = logging.getLogger(__name__)

DEFAULT_ITEMS = 32
DEFAULT_MAX_NEW_TOKENS = 32
DEFAULT_BATCH_SIZE = 16
MODE_FIELDS = ("batch_size", "items", "time_s", "answers_per_s", "new_tokens", "tokens_per_s", "stopped_at_eos")


def run_infer_benchmark(
    config: RunConfig,
    out: Path,
    command: list[str],
    items: int = DEFAULT_ITEMS,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> dict:
    """Time one-by-one and batched generation on the first `items` test records; write and return the result."""
    if items < 1 or max_new_tokens < 1 or batch_size < 1:
        raise ConfigError(
            f"--items={items}, --max-new-tokens={max_new_tokens} and --batch-size={batch_size} must be at least 1"
        )
    result = result_header("infer", command)
    with tempfile.TemporaryDirectory(prefix="physlora-bench-") as work:
        build_local_dataset(config, Path(work) / "data")
        records = read_jsonl(Path(work) / "data" / "test.jsonl")[:items]
    if not records:
        raise DataError(
            "the test split of the data set is empty, so there are no questions to generate for; add data sources"
        )
    prompts = [build_prompt(config.model.prompt_template, record.question) for record in records]

    bundle = load_model(config.model, seed=config.training.seed)
    model = attach_lora(bundle.model, bundle.family, config.lora, seed=config.training.seed)
    model.eval()
    if config.training.num_threads:
        torch.set_num_threads(config.training.num_threads)

    def generate(size: int) -> list[Generated]:
        return generate_answers(model, bundle.tokenizer, bundle.family, prompts, max_new_tokens,
                                config.training.max_seq_length, size)

    # One short call first, so one-time costs (kernel selection, allocator growth) fall outside both timings.
    generate_answers(model, bundle.tokenizer, bundle.family, prompts[:1], 2, config.training.max_seq_length, 1)
    one_by_one = _timed(generate, 1)
    batched = _timed(generate, batch_size)

    result["settings"] = {
        "model": config.model.name,
        "model_init": config.model.init,
        "family": bundle.family,
        "items": len(records),
        "max_new_tokens": max_new_tokens,
        "batch_size": batch_size,
        "threads": torch.get_num_threads(),
        "order": "one-by-one first, then batched",
    }
    result["modes"] = {"one_by_one": one_by_one["summary"], "batched": batched["summary"]}
    result["identical_answers"] = sum(
        left.text == right.text for left, right in zip(one_by_one["answers"], batched["answers"])
    )
    result["ratios"] = {
        "answers_per_s": results.ratio(batched["summary"]["answers_per_s"], one_by_one["summary"]["answers_per_s"]),
        "tokens_per_s": results.ratio(batched["summary"]["tokens_per_s"], one_by_one["summary"]["tokens_per_s"]),
    }
    result["targets"] = [results.BATCHED_SPEEDUP.check(result["ratios"]["answers_per_s"])]
    result["load_average_end"] = load_average()
    write_json_atomic(out, result)
    return result


def _timed(generate, batch_size: int) -> dict:
    logger.info("generating with batch size %d", batch_size)
    started = time.perf_counter()
    answers = generate(batch_size)
    seconds = time.perf_counter() - started
    new_tokens = sum(answer.n_tokens for answer in answers)
    summary = {
        "batch_size": batch_size,
        "items": len(answers),
        "time_s": seconds,
        "answers_per_s": results.ratio(len(answers), seconds),
        "new_tokens": new_tokens,
        "tokens_per_s": results.ratio(new_tokens, seconds),
        "stopped_at_eos": sum(answer.stopped_at_eos for answer in answers),
        "load_average_after": load_average(),
    }
    return {"summary": summary, "answers": answers}
