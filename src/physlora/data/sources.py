"""Locate each configured source (local folder or hub dataset) and read it into items and counts."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from physlora.config.schema import DataConfig, SourceConfig
from physlora.data.readers import Item, ReadContext, Rejection, get_reader
from physlora.data.stats import SourceStats
from physlora.errors import ConfigError, DataError, PhysloraError

logger = logging.getLogger(__name__)

DATA_DIR_ENV = "PHYSLORA_DATA_DIR"


@dataclass(frozen=True)
class SourcePlan:
    """Origin of one source: the local `path` when it exists, else the hub dataset `source.hub_id`."""

    index: int
    source: SourceConfig
    path: Path
    use_hub: bool = False


@dataclass(frozen=True)
class SkippedSource:
    """An optional source that was not available, and why."""

    label: str
    reason: str


@dataclass
class SourceData:
    items: list[Item]
    stats: SourceStats


def data_dir(config: DataConfig) -> tuple[Path, str]:
    """Return the data folder and where it came from: $PHYSLORA_DATA_DIR, then data.data_dir, then the cwd."""
    from_env = os.environ.get(DATA_DIR_ENV)
    if from_env:
        return Path(os.path.expanduser(from_env)), f"environment variable {DATA_DIR_ENV}"
    if config.data_dir:
        return Path(os.path.expanduser(os.path.expandvars(config.data_dir))), "config key data.data_dir"
    return Path.cwd(), "the current folder (neither PHYSLORA_DATA_DIR nor data.data_dir is set)"


def source_path(source: SourceConfig, root: Path) -> Path:
    reader = get_reader(source.type)
    relative = source.path if source.path is not None else reader.default_path
    if relative is None:
        raise ConfigError(f"{source.label}: type {source.type} needs `path` (a file or folder) or `hub_id`")
    path = Path(os.path.expanduser(os.path.expandvars(relative)))
    return path if path.is_absolute() else root / path


def plan_sources(config: DataConfig) -> list[SourcePlan | SkippedSource]:
    """Decide where every source comes from; raise one DataError naming every required source that is missing."""
    root, root_origin = data_dir(config)
    plans: list[SourcePlan | SkippedSource] = []
    missing = []
    for index, source in enumerate(config.sources):
        path = source_path(source, root)
        if path.exists():
            plans.append(SourcePlan(index, source, path))
        elif source.hub_id:
            plans.append(SourcePlan(index, source, path, use_hub=True))
        elif source.optional:
            reason = f"{path} not found and no hub_id set"
            logger.info("skipping optional source %s: %s", source.label, reason)
            plans.append(SkippedSource(source.label, reason))
        else:
            missing.append(f"{source.label} at {path} (data.sources[{index}].path)")
    if missing:
        raise DataError(
            f"data not found: {'; '.join(missing)}. The data folder {root} comes from {root_origin}; "
            f"set {DATA_DIR_ENV} or data.data_dir to the folder holding the sources, "
            "or give the source an absolute path, a hub_id or optional: true"
        )
    return plans


def read_source(plan: SourcePlan, seed: int) -> SourceData | SkippedSource:
    """Read every row of a planned source, counting and logging rejected rows instead of raising.

    A hub dataset that cannot be loaded skips an optional source and raises DataError for a required one.
    """
    source = plan.source
    reader = get_reader(source.type)
    context = ReadContext(source=source, seed=seed)
    splits = reader.resolve_splits(source.splits, source.label)
    if plan.use_hub:
        stats = SourceStats(source.label, source.type, f"hub:{source.hub_id}")
        try:
            rows = list(reader.read_hub(context, splits))
        except PhysloraError:
            raise
        except Exception as error:  # datasets raises many unrelated types: connection, missing dataset, bad split
            reason = f"{plan.path} not found and loading hub dataset {source.hub_id} failed: {error}"
            if source.optional:
                logger.warning("skipping optional source %s: %s", source.label, reason)
                return SkippedSource(source.label, reason)
            raise DataError(
                f"{source.label}: {reason}. Set {DATA_DIR_ENV} or data.data_dir to the folder holding a local copy"
            ) from error
    else:
        files = reader.find_files(plan.path, splits)
        if not files:
            raise DataError(
                f"{source.label}: no {source.type} files found in {plan.path}; "
                f"check data.sources[{plan.index}].path and splits"
            )
        stats = SourceStats(source.label, source.type, str(plan.path), files=[str(file.path) for file in files])
        rows = (row for file in files for row in reader.read_file(file, context))

    items = []
    for row in rows:
        stats.read += 1
        if isinstance(row, Rejection):
            stats.add_rejection(row)
        else:
            items.append(row)
    stats.log_rejection_totals()
    logger.info("%s: read %d rows from %s (%s)", source.label, stats.read, stats.origin, stats.rejection_summary())
    return SourceData(items, stats)
