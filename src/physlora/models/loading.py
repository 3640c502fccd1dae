"""Load a base model and its tokenizer: pretrained (hub id, local folder, pulled alias) or random init."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

from physlora.config.schema import ModelConfig
from physlora.errors import ConfigError, ModelError
from physlora.models import pull
from physlora.models.architectures import (
    ARCHITECTURE_FAMILY,
    NAMED_SHAPES,
    TINY_DEFAULTS,
    Family,
    family_of,
)

logger = logging.getLogger(__name__)

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


@dataclass
class ModelBundle:
    """A base model (later wrapped by PEFT), its tokenizer and its family."""

    model: torch.nn.Module
    tokenizer: object
    family: Family
    name: str


def expand_path(value: str) -> str:
    """Expand environment variables and ~ in a model or tokenizer reference."""
    return os.path.expanduser(os.path.expandvars(value))


def resolve_name(config: ModelConfig) -> str:
    """Local folder of a pulled alias (pulling it first when needed), or the name as given."""
    name = expand_path(config.name)
    if config.init == "pretrained" and name in pull.PULLABLE:
        return str(pull.ensure_pulled(name, cache_root=config.cache_dir))
    return name


def load_tokenizer(config: ModelConfig, resolved_name: str | None = None):
    reference = expand_path(config.tokenizer) if config.tokenizer else (resolved_name or resolve_name(config))
    if "$" in reference:
        raise ConfigError(
            f"model.tokenizer={config.tokenizer!r} names an environment variable that is not set; "
            "set it (for example PHYSLORA_T5_TOKENIZER=/path/to/t5-tokenizer) or give a folder or hub id"
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(reference)
    except (OSError, ValueError) as error:
        raise ModelError(
            f"cannot load the tokenizer {reference!r} (model.tokenizer / model.name): {_first_line(error)}. "
            "Give an existing local folder, or a hub id when online."
        ) from error
    if tokenizer.pad_token_id is None:
        # Decoder-only tokenizers often lack a pad token; padding positions are masked, so EOS is safe.
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(config: ModelConfig, seed: int = 42) -> ModelBundle:
    """Load the base model described by `config` (no adapter yet)."""
    resolved = resolve_name(config)
    tokenizer = load_tokenizer(config, resolved)
    if config.init == "random":
        model = _random_model(config, tokenizer, seed)
    else:
        model = _pretrained_model(config, resolved)
    family = family_of(model.config)
    if config.family != "auto" and config.family != family:
        raise ConfigError(
            f"model.family={config.family!r} but {config.name!r} is a {family} model; "
            f"set model.family to {family!r} or 'auto'"
        )
    if len(tokenizer) > model.get_input_embeddings().num_embeddings:
        raise ModelError(
            f"the tokenizer has {len(tokenizer)} tokens but the model's embedding has only "
            f"{model.get_input_embeddings().num_embeddings} rows; model and tokenizer do not match"
        )
    return ModelBundle(model=model, tokenizer=tokenizer, family=family, name=config.name)


def _pretrained_model(config: ModelConfig, resolved: str) -> torch.nn.Module:
    local = Path(resolved)
    looks_like_path = resolved.startswith((".", "/", "~")) or os.sep in resolved.strip("/").split("/", 2)[-1]
    if looks_like_path and not local.exists():
        raise ModelError(f"model folder {resolved!r} (model.name) does not exist; give an existing folder or a hub id")
    try:
        hf_config = AutoConfig.from_pretrained(resolved)
    except (OSError, ValueError) as error:
        raise ModelError(
            f"cannot load the model config of {resolved!r} (model.name): {_first_line(error)}. "
            "Offline, give a local folder, or run `physlora models pull gemma-3-270m` and use model.name=gemma-3-270m."
        ) from error
    auto_class = AutoModelForSeq2SeqLM if family_of(hf_config) == "seq2seq" else AutoModelForCausalLM
    logger.info("loading %s (%s) in %s", resolved, hf_config.model_type, config.dtype)
    return auto_class.from_pretrained(resolved, dtype=_DTYPES[config.dtype])


def _random_model(config: ModelConfig, tokenizer, seed: int) -> torch.nn.Module:
    architecture = config.architecture
    values = dict(NAMED_SHAPES.get(config.name, TINY_DEFAULTS[architecture]))
    values.update(config.config)
    values.setdefault("vocab_size", len(tokenizer))
    values.update(pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    if ARCHITECTURE_FAMILY[architecture] == "seq2seq":
        values["decoder_start_token_id"] = tokenizer.pad_token_id
        values.setdefault("feed_forward_proj", "gated-gelu")
    if tokenizer.bos_token_id is not None:
        values["bos_token_id"] = tokenizer.bos_token_id
    model_type = {"t5": "t5", "gemma3": "gemma3_text", "llama": "llama"}[architecture]
    try:
        hf_config = AutoConfig.for_model(model_type, **values)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"model.config={config.config!r} is not valid for {architecture}: {error}") from error
    auto_class = AutoModelForSeq2SeqLM if ARCHITECTURE_FAMILY[architecture] == "seq2seq" else AutoModelForCausalLM
    torch.manual_seed(seed)
    model = auto_class.from_config(hf_config, dtype=_DTYPES[config.dtype])
    if values.get("tie_word_embeddings") is False:
        _untie_output_embeddings(model)
    logger.info("built a randomly initialised %s (%s parameters)", architecture, f"{model.num_parameters():,}")
    return model


def _untie_output_embeddings(model: torch.nn.Module) -> None:
    """Give the model its own output projection, as FLAN-T5 checkpoints have.

    transformers 5 always ties T5's lm_head to the shared embedding at construction (a config value of
    tie_word_embeddings=False only switches off the decoder output scaling) and unties it only when a
    checkpoint holds both tensors, so a randomly built model needs the copy made here.
    """
    output, embedding = model.get_output_embeddings(), model.get_input_embeddings()
    if output is not None and output.weight is embedding.weight:
        output.weight = torch.nn.Parameter(embedding.weight.detach().clone())
        tied = getattr(model, "all_tied_weights_keys", None)
        if isinstance(tied, dict):
            tied.pop("lm_head.weight", None)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
