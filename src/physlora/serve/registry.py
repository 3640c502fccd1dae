"""Several LoRA adapters loaded once into one base model, switched per request, with topic routing.

Model names: `base` is the base model with every adapter disabled, `auto` routes by topic, and every
other name is a registered adapter. An adapter named after a topic of physlora.config.TOPICS serves
questions of that topic. Routing classifies the question with the run's topic classifier and tries that
topic, then its broader topic (kinematics, dynamics, energy and momentum belong to mechanics), then the
general adapter, then the base model.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from peft import PeftModel

from physlora.config.schema import TOPICS, RunConfig
from physlora.data.topics import get_classifier
from physlora.errors import ConfigError
from physlora.eval.generation import Generated, generate_answers
from physlora.models.encoding import build_prompt, encode_prompt
from physlora.models.adapters import load_checked_adapter
from physlora.models.methods import base_model_view, load_trained, trained_weights_file
from physlora.serve.runs import (
    GenerationSettings,
    adapter_dir_of,
    generation_settings,
    inference_device,
    load_base,
    read_run_config,
)

logger = logging.getLogger(__name__)

BASE = "base"
AUTO = "auto"
RESERVED_NAMES = (BASE, AUTO)
ADAPTER_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.-]+$")
# Topics the lexicon classifier prefers over the broad "mechanics" topic they belong to.
PARENT_TOPIC = {"kinematics": "mechanics", "dynamics": "mechanics", "energy": "mechanics", "momentum": "mechanics"}


@dataclass(frozen=True)
class AdapterSpec:
    """One adapter to serve: its public name and the run folder whose adapter/ it loads."""

    name: str
    run_dir: Path


@dataclass(frozen=True)
class Route:
    """Routing decision of `auto`: the chosen model, the classified topic and the rule that chose the model."""

    model: str
    topic: str
    rule: str  # "topic", "parent_topic", "general" or "base"


def check_adapter_name(name: str) -> str:
    """Return `name` if it can name an adapter; raise ConfigError for paths, reserved and empty names."""
    if not ADAPTER_NAME_PATTERN.fullmatch(name) or name in (".", ".."):
        raise ConfigError(
            f"invalid adapter name {name!r}: use letters, digits, '_', '.' and '-' only (no slashes, not a path)"
        )
    if name in RESERVED_NAMES:
        raise ConfigError(f"adapter name {name!r} is reserved for the {name} model; choose another name")
    return name


def parse_adapter_spec(text: str) -> AdapterSpec:
    """Parse `NAME=RUN` (a command-line --adapter value)."""
    name, sep, run = text.partition("=")
    if not sep or not name or not run:
        raise ConfigError(f"--adapter {text!r} is not of the form NAME=RUN (for example mechanics=runs/mechanics)")
    return AdapterSpec(check_adapter_name(name), Path(run))


def base_identity(config: RunConfig) -> dict:
    """Return the config values that decide the base model's weights; runs sharing one base must agree on them."""
    identity = config.model.model_dump(exclude={"prompt_template"})
    if config.model.init == "random":
        identity["seed"] = config.training.seed
    return identity


class AdapterRegistry:
    """One base model holding several named adapters; `generate` switches to the requested one.

    The first adapter's run is the primary run: it supplies the tokenizer, the base model's prompt
    template and generation settings, and the topic classifier. Generation calls are serialised by a lock
    because the active adapter is state of the shared model.
    """

    def __init__(self, model, bundle, configs: dict[str, RunConfig], run_dirs: dict[str, Path], general: str | None):
        self.model = model
        self.tokenizer = bundle.tokenizer
        self.family = bundle.family
        self.base_name = bundle.name
        self.configs = configs
        self.run_dirs = run_dirs
        self.primary = next(iter(configs))
        self.general = general if general in configs else None
        self.topic_adapters = {name: name for name in configs if name in TOPICS}
        self.classifier = get_classifier(configs[self.primary].data.topic_classifier)
        self._lock = threading.Lock()

    @classmethod
    def load(cls, specs: list[AdapterSpec], general: str | None = "general") -> AdapterRegistry:
        """Load the base model once and every adapter into it; raises ConfigError when the runs differ in base."""
        if not specs:
            raise ConfigError("no adapter given; pass at least one --adapter NAME=RUN")
        names = [check_adapter_name(spec.name) for spec in specs]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ConfigError(f"adapter name(s) {duplicates} given more than once; each --adapter needs its own name")
        configs = {spec.name: read_run_config(spec.run_dir) for spec in specs}
        _check_same_base(configs, {spec.name: spec.run_dir for spec in specs})

        first = specs[0]
        bundle = load_base(configs[first.name])
        model = bundle.model
        if len(specs) == 1 and configs[first.name].lora.method != "lora":
            # One run of any method: full fine-tuning, QLoRA, DoRA, IA3 or prefix tuning.
            lora = configs[first.name].lora
            model = load_trained(model, lora, adapter_dir_of(first.run_dir, trained_weights_file(lora)), first.name)
            specs = []
        else:
            _check_lora_only(configs, {spec.name: spec.run_dir for spec in specs})
        for spec in specs:
            model = load_checked_adapter(model, adapter_dir_of(spec.run_dir), spec.name)
            logger.info("loaded adapter %s from %s", spec.name, spec.run_dir)
        model.to(inference_device())
        model.eval()
        return cls(model, bundle, configs, {spec.name: spec.run_dir for spec in specs}, general)

    @property
    def adapter_names(self) -> list[str]:
        return list(self.configs)

    @property
    def model_names(self) -> list[str]:
        """Every value the `model` field of a request may take."""
        return [BASE, *self.configs, AUTO]

    def settings(self, name: str) -> GenerationSettings:
        """Return the generation settings of an adapter's run; the base model uses the primary run's."""
        return generation_settings(self.configs[self.primary if name == BASE else name])

    def prompt_for(self, name: str, question: str) -> str:
        return build_prompt(self.settings(name).prompt_template, question)

    def prompt_tokens(self, prompt: str) -> int:
        """Count the prompt's tokens as generation feeds them to the model (with EOS or BOS), before truncation."""
        # A limit above any possible count (byte fallback gives at most 4 tokens per character) disables truncation.
        no_truncation = 4 * len(prompt) + 8
        return len(encode_prompt(self.tokenizer, self.family, prompt, no_truncation))

    def route(self, question: str) -> Route:
        """Choose the model for a question sent to `auto`."""
        result = self.classifier.classify(question)
        if result.is_physics and result.topic in self.topic_adapters:
            return Route(self.topic_adapters[result.topic], result.topic, "topic")
        parent = PARENT_TOPIC.get(result.topic)
        if result.is_physics and parent in self.topic_adapters:
            return Route(self.topic_adapters[parent], result.topic, "parent_topic")
        if self.general is not None:
            return Route(self.general, result.topic, "general")
        return Route(BASE, result.topic, "base")

    def generate(
        self,
        name: str,
        prompts: list[str],
        max_new_tokens: int,
        max_seq_length: int,
        batch_size: int | None = None,
        on_batch: Callable[[], None] | None = None,
    ) -> list[Generated]:
        """Generate greedy answers of model `name` (an adapter or `base`) to ready-built prompts, in order."""
        if name != BASE and name not in self.configs:
            raise ConfigError(f"unknown model {name!r}; available: {', '.join(self.model_names)}")
        batch_size = batch_size or max(1, len(prompts))
        with self._lock:
            if name == BASE:
                with base_model_view(self.model, self._load_base_copy) as base:
                    return self._generate(base, prompts, max_new_tokens, max_seq_length, batch_size, on_batch)
            if isinstance(self.model, PeftModel):
                self.model.set_adapter(name)
            return self._generate(self.model, prompts, max_new_tokens, max_seq_length, batch_size, on_batch)

    def _load_base_copy(self) -> torch.nn.Module:
        """Load the untrained base of a fully fine-tuned run, for one base request (freed after it)."""
        return load_base(self.configs[self.primary]).model.to(inference_device()).eval()

    def _generate(self, model, prompts, max_new_tokens, max_seq_length, batch_size, on_batch) -> list[Generated]:
        return generate_answers(
            model, self.tokenizer, self.family, prompts, max_new_tokens, max_seq_length, batch_size, on_batch
        )


def _check_lora_only(configs: dict[str, RunConfig], run_dirs: dict[str, Path]) -> None:
    """Raise ConfigError unless every run is a LoRA run: only LoRA adapters share one base model here."""
    others = {name: config.lora.method for name, config in configs.items() if config.lora.method != "lora"}
    if others:
        listed = ", ".join(f"{name!r} ({run_dirs[name]}: lora.method={method})" for name, method in others.items())
        raise ConfigError(
            f"adapters {listed} cannot be served beside other adapters: only lora.method=lora adapters share one "
            "base model; serve such a run on its own"
        )


def _check_same_base(configs: dict[str, RunConfig], run_dirs: dict[str, Path]) -> None:
    first_name = next(iter(configs))
    first = base_identity(configs[first_name])
    for name, config in configs.items():
        identity = base_identity(config)
        if identity != first:
            changed = sorted(key for key in first.keys() | identity.keys() if first.get(key) != identity.get(key))
            raise ConfigError(
                f"adapter {name!r} ({run_dirs[name]}) was trained on another base model than {first_name!r} "
                f"({run_dirs[first_name]}): they differ in {', '.join(changed)}. "
                "Adapters served together must share one base model."
            )

