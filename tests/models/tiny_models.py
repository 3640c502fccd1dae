"""Tiny randomly initialised models with the real T5 tokenizer."""

from __future__ import annotations

from pathlib import Path

from physlora.config.schema import ModelConfig
from physlora.models.loading import ModelBundle, load_model

# T5 dropout is off so that repeated forward passes agree. Gemma 3 gets a logit soft-cap so that the
# scoring code's soft-cap path runs.
ARCHITECTURES = {
    "t5": {"name": "tiny-t5", "architecture": "t5", "config": {"dropout_rate": 0.0}},
    "gemma3": {"name": "tiny-gemma3", "architecture": "gemma3", "config": {"final_logit_softcapping": 30.0}},
    "llama": {"name": "tiny-llama", "architecture": "llama"},
}


def tiny_model(t5_tokenizer_path: Path, architecture: str) -> ModelBundle:
    """A random tiny model of `architecture` (a key of ARCHITECTURES), in eval mode."""
    config = ModelConfig(init="random", tokenizer=str(t5_tokenizer_path), **ARCHITECTURES[architecture])
    bundle = load_model(config, seed=0)
    bundle.model.eval()
    return bundle
