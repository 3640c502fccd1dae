"""Config schema, presets, overrides and the messages for invalid values."""

from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

from physlora.cli import app
from physlora.config import dump_yaml, load_config, preset_names
from physlora.config.loading import apply_overrides
from physlora.errors import ConfigError

runner = CliRunner()


def test_presets_shipped():
    assert preset_names() == ["offline-demo", "report", "tiny"]


def test_report_preset_reference_values():
    config = load_config(preset="report")
    assert config.model.name == "google/flan-t5-base"
    assert (config.lora.r, config.lora.alpha, config.lora.dropout) == (8, 32, 0.1)
    assert config.lora.target_modules == ["q", "v"]
    assert config.lora.bias == "none"
    training = config.training
    assert (training.batch_size, training.gradient_accumulation_steps) == (4, 4)
    assert training.learning_rate == 1e-4
    assert training.warmup_steps == 500
    assert training.weight_decay == 0.01
    assert training.max_grad_norm == 1.0
    assert training.optimizer == "adamw"
    assert training.epochs == 3
    assert training.seed == 42
    assert training.max_seq_length == 512


def test_override_sets_nested_value():
    config = load_config(preset="tiny", overrides=["training.learning_rate=2e-4", "lora.target_modules=[q, k]"])
    assert config.training.learning_rate == 2e-4
    assert config.lora.target_modules == ["q", "k"]


def test_override_creates_missing_section():
    raw = apply_overrides({}, ["output.dir=/tmp/x"])
    assert raw == {"output": {"dir": "/tmp/x"}}


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("lora.rank=4", "lora.rank (from --set): unknown key"),
        ("training.batch_size=abc", "training.batch_size (from --set): got 'abc'"),
        ("training.batch_size=0", "training.batch_size (from --set): got 0; Input should be greater than or equal to 1"),
        ("training.learning_rate=-1", "training.learning_rate (from --set): got -1; Input should be greater than 0"),
        ("training.epochs=0", "training.epochs (from --set): got 0"),
        ("lora.r=0", "lora.r (from --set): got 0"),
        ("training.precision=fp8", "training.precision (from --set): got 'fp8'"),
        ("data.split_fractions=[0.5, 0.1, 0.1]", "must be three non-negative numbers summing to 1"),
        ("model.init=random", "model.init=random needs model.architecture"),
    ],
)
def test_invalid_value_message_names_key(override, expected):
    with pytest.raises(ConfigError) as caught:
        load_config(preset="report", overrides=[override])
    assert expected in str(caught.value)


def test_all_problems_reported_at_once():
    with pytest.raises(ConfigError) as caught:
        load_config(preset="report", overrides=["lora.r=0", "training.epochs=0"])
    message = str(caught.value)
    assert "2 invalid value(s)" in message
    assert "lora.r" in message
    assert "training.epochs" in message


def test_file_value_not_marked_as_override(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("data:\n  sources: [{type: sciq}]\ntraining:\n  epochs: 0\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(config_file=path, overrides=["lora.r=0"])
    message = str(caught.value)
    assert f"{path}: 2 invalid value(s)" in message
    assert "training.epochs: got 0" in message
    assert "lora.r (from --set): got 0" in message


def test_malformed_override_rejected():
    with pytest.raises(ConfigError, match="not of the form section.key=value"):
        load_config(preset="tiny", overrides=["training.epochs"])


def test_yaml_file_error_names_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("training:\n  epochs: [1,\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad.yaml line \d+, column \d+: invalid YAML"):
        load_config(config_file=path)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(config_file=tmp_path / "absent.yaml")


def test_unknown_preset():
    with pytest.raises(ConfigError, match="available presets: offline-demo, report, tiny"):
        load_config(preset="huge")


def test_dump_round_trips(tmp_path):
    config = load_config(preset="offline-demo")
    path = tmp_path / "config.yaml"
    path.write_text(dump_yaml(config), encoding="utf-8")
    assert load_config(config_file=path) == config


def test_cli_config_show_prints_resolved_yaml():
    result = runner.invoke(app, ["config", "show", "report", "--set", "training.epochs=5"])
    assert result.exit_code == 0, result.output
    shown = yaml.safe_load(result.output)
    assert shown["training"]["epochs"] == 5
    assert shown["training"]["weight_decay"] == 0.01


def test_cli_invalid_config_exits_2_without_traceback(monkeypatch, capsys):
    from physlora.cli import main

    monkeypatch.setattr("sys.argv", ["physlora", "config", "show", "report", "--set", "lora.r=0"])
    with pytest.raises(SystemExit) as caught:
        main()
    assert caught.value.code == 2
    error_output = capsys.readouterr().err
    assert "lora.r (from --set): got 0" in error_output
    assert "Traceback" not in error_output


def test_every_command_has_help():
    for command in (["--help"], ["config", "--help"], ["config", "show", "--help"], ["data", "--help"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 0, (command, result.output)
        assert "Usage" in result.output
