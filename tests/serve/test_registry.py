"""AdapterRegistry: several adapters in one base model, switching, topic routing, name checks."""

from __future__ import annotations

import pytest
from serve_helpers import MECHANICS_QUESTION

from physlora.errors import ConfigError
from physlora.eval.generation import generate_answers
from physlora.serve.registry import AdapterRegistry, AdapterSpec, check_adapter_name, parse_adapter_spec
from physlora.serve.runs import load_base, read_run_config
from physlora.serve.tinyrun import build_tiny_run

QUESTIONS = ["What is the SI unit of force?", "Why does a ball thrown upwards slow down?", MECHANICS_QUESTION]
MAX_NEW_TOKENS = 8


def _answers(registry: AdapterRegistry, name: str) -> list[str]:
    settings = registry.settings(name)
    prompts = [registry.prompt_for(name, question) for question in QUESTIONS]
    return [answer.text for answer in registry.generate(name, prompts, MAX_NEW_TOKENS, settings.max_seq_length)]


@pytest.fixture(scope="module")
def mechanics_only(serve_runs) -> AdapterRegistry:
    return AdapterRegistry.load([AdapterSpec("mechanics", serve_runs["mechanics"])])


@pytest.fixture(scope="module")
def general_only(serve_runs) -> AdapterRegistry:
    return AdapterRegistry.load([AdapterSpec("general", serve_runs["general"])])


def test_registry_lists_models(registry):
    assert registry.adapter_names == ["mechanics", "general"]
    assert registry.model_names == ["base", "mechanics", "general", "auto"]


def test_switching_matches_single_adapter_loads(registry, mechanics_only, general_only):
    shared = {name: _answers(registry, name) for name in ("mechanics", "general", "base")}
    # Interleave the calls once more: switching back must not leave state of the previous adapter.
    assert _answers(registry, "mechanics") == shared["mechanics"]
    assert shared["mechanics"] == _answers(mechanics_only, "mechanics")
    assert shared["general"] == _answers(general_only, "general")
    assert shared["mechanics"] != shared["general"]
    assert shared["mechanics"] != shared["base"]


def test_base_matches_plain_base_model(registry, serve_runs):
    config = read_run_config(serve_runs["mechanics"])
    bundle = load_base(config)
    bundle.model.eval()
    prompts = [registry.prompt_for("base", question) for question in QUESTIONS]
    plain = generate_answers(bundle.model, bundle.tokenizer, bundle.family, prompts, MAX_NEW_TOKENS,
                             config.training.max_seq_length, batch_size=len(prompts))
    assert _answers(registry, "base") == [answer.text for answer in plain]


def test_auto_routes_mechanics_question_to_topic_adapter(registry):
    route = registry.route(MECHANICS_QUESTION)
    assert route.topic == "mechanics"
    assert route.model == "mechanics"
    assert route.rule == "topic"


def test_auto_routes_kinematics_question_to_mechanics(registry):
    route = registry.route("A car accelerates from rest at 2 m/s2 for 5 s. What is its final velocity?")
    assert route.topic == "kinematics"
    assert route.model == "mechanics"
    assert route.rule == "parent_topic"


@pytest.mark.parametrize(
    "question",
    ["What is the voltage across a resistor in an electric circuit?", "Which organelle performs photosynthesis in plant cells?"],
)
def test_auto_falls_back_to_general(registry, question):
    route = registry.route(question)
    assert route.model == "general"
    assert route.rule == "general"


def test_auto_falls_back_to_base_without_general(mechanics_only):
    route = mechanics_only.route("What is the voltage across a resistor in an electric circuit?")
    assert route.model == "base"
    assert route.rule == "base"


@pytest.mark.parametrize("name", ["a/b", "../run", "..", "runs\\x", "with space", "", "base", "auto"])
def test_invalid_adapter_names_rejected(name):
    with pytest.raises(ConfigError):
        check_adapter_name(name)


def test_adapter_spec_parsing(tmp_path):
    spec = parse_adapter_spec(f"mechanics.v2={tmp_path}")
    assert spec.name == "mechanics.v2"
    assert spec.run_dir == tmp_path
    for text in ("mechanics", f"={tmp_path}", "mechanics=", f"a/b={tmp_path}"):
        with pytest.raises(ConfigError):
            parse_adapter_spec(text)


def test_duplicate_adapter_names_rejected(serve_runs):
    specs = [AdapterSpec("mechanics", serve_runs["mechanics"]), AdapterSpec("mechanics", serve_runs["general"])]
    with pytest.raises(ConfigError, match="more than once"):
        AdapterRegistry.load(specs)


def test_adapters_on_different_bases_rejected(serve_runs, tmp_path):
    other = build_tiny_run(tmp_path / "other", overrides=["model.config.d_ff=96"])
    specs = [AdapterSpec("mechanics", serve_runs["mechanics"]), AdapterSpec("other", other)]
    with pytest.raises(ConfigError, match="another base model") as raised:
        AdapterRegistry.load(specs)
    assert "config" in str(raised.value)
