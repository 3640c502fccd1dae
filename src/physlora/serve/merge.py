"""Fold a run's LoRA adapter into its base weights and save a standard transformers model folder.

The merge runs in float32 whatever model.dtype is, so W + (alpha / r) * B @ A is computed once at
full precision. A bfloat16 output is cast after the merge. The folder loads with
AutoModelForSeq2SeqLM / AutoModelForCausalLM.from_pretrained, or as `model.name` in a physlora config.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Literal

import torch

from physlora.errors import ConfigError
from physlora.io import staging_folder, write_json_atomic
from physlora.models.adapters import load_checked_adapter
from physlora.serve.runs import adapter_dir_of, load_base, read_run_config

logger = logging.getLogger(__name__)

MergeDtype = Literal["float32", "bfloat16"]
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
MERGE_INFO_FILE = "physlora_merge.json"


def merge_run(run_dir: Path, out_dir: Path, dtype: MergeDtype = "float32", overwrite: bool = False) -> Path:
    """Write the merged model, its tokenizer and physlora_merge.json into `out_dir`; return `out_dir`.

    The folder is built beside `out_dir` and renamed into place, so a failed merge leaves no partial
    folder. Raises ConfigError when `out_dir` exists and is not empty (unless `overwrite`), and
    ModelError when the adapter does not fit the base model.
    """
    if dtype not in _DTYPES:
        raise ConfigError(f"--dtype {dtype!r} is invalid; use float32 or bfloat16")
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise ConfigError(f"{out_dir} exists and is not empty; choose another --out folder or pass --force")
    config = read_run_config(run_dir)

    bundle = load_base(config, dtype="float32")
    model = load_checked_adapter(bundle.model, adapter_dir_of(run_dir), "default")
    merged = model.merge_and_unload()
    if dtype != "float32":
        merged = merged.to(_DTYPES[dtype])

    staging = staging_folder(out_dir)
    try:
        merged.save_pretrained(staging)
        bundle.tokenizer.save_pretrained(staging)
        write_json_atomic(staging / MERGE_INFO_FILE, {
            "run_dir": str(run_dir.resolve()),
            "adapter_dir": str(adapter_dir_of(run_dir).resolve()),
            "base_model": config.model.name,
            "dtype": dtype,
            "prompt_template": config.model.prompt_template,
            "max_seq_length": config.training.max_seq_length,
        })
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("merged %s into %s (%s)", run_dir, out_dir, dtype)
    return out_dir
