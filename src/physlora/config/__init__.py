"""Run configuration: typed schema, shipped presets, loading with overrides."""

from physlora.config.loading import dump_yaml, load_config, preset_names
from physlora.config.schema import TOPICS, RunConfig

__all__ = ["TOPICS", "RunConfig", "dump_yaml", "load_config", "preset_names"]
