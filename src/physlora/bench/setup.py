"""Preparation shared by the benchmarks: the config, a data set from local files, and a model folder."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import torch

from physlora.config import load_config
from physlora.config.schema import RunConfig
from physlora.data.build import build_dataset
from physlora.data.records import read_jsonl, write_jsonl
from physlora.errors import ConfigError, DataError
from physlora.models.loading import expand_path, load_model, resolve_name

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[3]
RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"

DEFAULT_PRESET = "report"
# Without --config or --preset the benchmarks use the reference configuration with a randomly
# initialised model of the flan-t5-base shape and the real T5 tokenizer, because the pretrained
# weights are not available offline.
RANDOM_FLAN_T5_BASE = [
    "model.name=flan-t5-base",
    "model.init=random",
    "model.architecture=t5",
    "model.family=seq2seq",
    "model.tokenizer=${PHYSLORA_T5_TOKENIZER}",
]


def load_bench_config(config_file: Path | None, preset: str | None, overrides: list[str] | None) -> RunConfig:
    """Load the run config to benchmark: --config or --preset as given, else the default described above."""
    if config_file is None and preset is None:
        return load_config(preset=DEFAULT_PRESET, overrides=RANDOM_FLAN_T5_BASE + list(overrides or []))
    return load_config(preset=preset, config_file=config_file, overrides=list(overrides or []))


def local_only(config: RunConfig) -> RunConfig:
    """Return a copy of `config` whose sources are read from local files only (no hub downloads)."""
    local = config.model_copy(deep=True)
    for source in local.data.sources:
        source.hub_id = None
    return local


def build_local_dataset(config: RunConfig, out_dir: Path) -> dict:
    """Build the data set of `config` from local files into `out_dir`; return the audit."""
    return build_dataset(local_only(config), out_dir)


def write_subset(full_dir: Path, subset_dir: Path, train_count: int, heldout_count: int) -> dict:
    """Write the first `train_count` training records and the first `heldout_count` validation records.

    The validation records go to validation.jsonl, the held-out set of the loss comparison (and the
    validation split physlora measures). Raises DataError when the built set is too small.
    """
    train = read_jsonl(full_dir / "train.jsonl")
    validation = read_jsonl(full_dir / "validation.jsonl")
    if len(train) < train_count:
        raise DataError(
            f"the benchmark needs {train_count} training records but the data set has {len(train)}; "
            "lower --steps or add data sources"
        )
    if not validation:
        raise DataError(f"{full_dir / 'validation.jsonl'} contains no records, so there is no held-out set")
    write_jsonl(train[:train_count], subset_dir / "train.jsonl")
    write_jsonl(validation[:heldout_count], subset_dir / "validation.jsonl")
    write_jsonl([], subset_dir / "test.jsonl")
    return {"train": train_count, "heldout": min(heldout_count, len(validation))}


def prepare_model_folder(config: RunConfig, folder: Path) -> tuple[Path, str | None]:
    """Prepare a local model folder every runner can load; return it and the tokenizer reference to pass.

    A randomly initialised model is built once with the config's seed and saved (with its tokenizer)
    into `folder`, so all runners start from the same weights. A pretrained model must already be a
    local folder (or a pulled alias); its tokenizer is `model.tokenizer` when that is set.
    """
    model_config = config.model
    if model_config.init == "random":
        bundle = load_model(model_config, seed=config.training.seed)
        _redraw_equal_output_projection(bundle.model, config.training.seed)
        bundle.model.save_pretrained(folder)
        bundle.tokenizer.save_pretrained(folder)
        return folder, None
    resolved = Path(resolve_name(model_config))
    if not resolved.is_dir():
        raise ConfigError(
            f"model.name={model_config.name!r} is not a local folder; the benchmark runs its baselines "
            "offline, so give a model folder or a pulled alias (physlora models pull gemma-3-270m)"
        )
    tokenizer = expand_path(model_config.tokenizer) if model_config.tokenizer else None
    return resolved, tokenizer


def _redraw_equal_output_projection(model: torch.nn.Module, seed: int) -> None:
    """Give a separate output projection values of its own when it equals the input embedding.

    A randomly built untied T5 gets its output projection as a copy of the embedding. transformers 5.25
    ties the two again when it loads a checkpoint holding two equal tensors, so the runners would train
    a model with 24.7M fewer parameters than flan-t5-base. A fresh normal draw with the embedding's
    standard deviation (T5 initialises both with the same one) keeps the two apart after loading.
    """
    output, embedding = model.get_output_embeddings(), model.get_input_embeddings()
    if output is None or output.weight is embedding.weight or not torch.equal(output.weight, embedding.weight):
        return
    generator = torch.Generator().manual_seed(seed + 1)
    std = embedding.weight.detach().float().std().item()
    with torch.no_grad():
        fresh = torch.randn(output.weight.shape, generator=generator) * std
        output.weight.copy_(fresh.to(output.weight.dtype))


def model_slug(config: RunConfig) -> str:
    """Short file-name-safe name of the benchmarked model, for example flan-t5-base or gemma-3-270m."""
    name = Path(config.model.name.rstrip("/")).name or "model"
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name)


def default_result_path(kind: str, config: RunConfig) -> Path:
    return RESULTS_DIR / f"{kind}-{model_slug(config)}.json"
