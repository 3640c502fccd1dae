"""Load a run config from a preset or a YAML file, apply `--set key=value` overrides, validate it."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from physlora.config.schema import RunConfig
from physlora.errors import ConfigError

_PRESET_PACKAGE = "physlora.config.presets"


def preset_names() -> list[str]:
    """Names of the presets shipped inside the package."""
    folder = resources.files(_PRESET_PACKAGE)
    return sorted(entry.name[: -len(".yaml")] for entry in folder.iterdir() if entry.name.endswith(".yaml"))


def read_preset(name: str) -> dict[str, Any]:
    """Return the raw mapping of a shipped preset."""
    if name not in preset_names():
        raise ConfigError(f"unknown preset {name!r}; available presets: {', '.join(preset_names())}")
    text = resources.files(_PRESET_PACKAGE).joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    return _parse_yaml(text, source=f"preset {name}")


def read_yaml_file(path: str | Path) -> dict[str, Any]:
    """Return the raw mapping of a config file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} not found; pass an existing YAML file or use --preset NAME")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(f"config file {path} is not UTF-8 text ({error.reason} at byte {error.start}); save it as UTF-8") from error
    return _parse_yaml(text, source=str(path))


def _parse_yaml(text: str, source: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError(f"{source}{where}: invalid YAML: {problem}") from error
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of sections, got {type(data).__name__}")
    return data


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `section.key=value` strings; values are parsed as YAML scalars, lists or mappings."""
    for item in overrides:
        key, sep, value_text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"override {item!r} is not of the form section.key=value (for example training.epochs=1)")
        try:
            value = yaml.safe_load(value_text) if value_text.strip() else None
        except yaml.YAMLError as error:
            raise ConfigError(f"override {item!r}: the value is not valid YAML ({error})") from error
        node = raw
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {item!r}: {part!r} is a value, not a section")
            node = child
        node[parts[-1]] = value
    return raw


def validate(raw: dict[str, Any], source: str = "config", overridden: set[str] = frozenset()) -> RunConfig:
    """Validate a raw mapping; every problem is reported at once, each with key, value and what is allowed.

    Keys in `overridden` came from --set, and their lines are marked "(from --set)" instead of naming `source`.
    """
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(format_validation_error(error, source, overridden)) from error


def format_validation_error(error: ValidationError, source: str, overridden: set[str] = frozenset()) -> str:
    lines = [f"{source}: {error.error_count()} invalid value(s):"]
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        if any(key == name or key.startswith(name + ".") for name in overridden):
            key = f"{key} (from --set)"
        if item["type"] == "extra_forbidden":
            lines.append(f"  {key}: unknown key; check the spelling (see `physlora config show tiny` for all keys)")
            continue
        # pydantic prefixes the text of a ValueError raised by a validator with "Value error, ".
        message = item["msg"].removeprefix("Value error, ")
        received = item.get("input")
        if item["type"].startswith("value_error") or isinstance(received, dict):
            lines.append(f"  {key}: {message}")
        else:
            lines.append(f"  {key}: got {received!r}; {message}")
    return "\n".join(lines)


def load_config(
    preset: str | None = None,
    config_file: str | Path | None = None,
    overrides: list[str] | None = None,
) -> RunConfig:
    """Build the run config: preset or file (not both), then overrides, then validation."""
    if preset and config_file:
        raise ConfigError("pass either --preset or --config, not both")
    if config_file:
        raw, source = read_yaml_file(config_file), str(config_file)
    elif preset:
        raw, source = read_preset(preset), f"preset {preset}"
    else:
        raise ConfigError("no configuration given; pass --config FILE or --preset NAME")
    overrides = list(overrides or [])
    raw = apply_overrides(raw, overrides)
    overridden = {item.partition("=")[0].strip() for item in overrides}
    return validate(raw, source, overridden)


def dump_yaml(config: RunConfig) -> str:
    """Resolved config as YAML, every default filled in."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
