"""Rows of a Hugging Face hub dataset, for sources whose local copy is missing."""

from __future__ import annotations

from typing import Any, Iterator

from physlora.data.readers.base import Location


def iter_hub_rows(hub_id: str, config_name: str | None, split: str) -> Iterator[tuple[Location, dict[str, Any]]]:
    """Yield (location, row) for one split of a hub dataset; the location's line is the 1-based row number.

    Raises whatever `datasets.load_dataset` raises when the dataset, config or split cannot be fetched.
    """
    import datasets

    # NOTE: this path needs the Hugging Face hub, which the tests cannot reach, so it has never run.
    # The row layouts the readers expect come from the dataset cards, not from a download.
    dataset = datasets.load_dataset(hub_id, config_name, split=split)
    name = f"hub:{hub_id}" + (f"/{config_name}" if config_name else "") + f"[{split}]"
    for index, row in enumerate(dataset, start=1):
        yield Location(name, index), dict(row)


def iter_hub_splits(hub_id: str, config_name: str | None = None) -> Iterator[tuple[str, Location, dict[str, Any]]]:
    """Yield (split, location, row) for every split of a hub dataset whose split names are not known in advance."""
    import datasets

    splits = datasets.get_dataset_split_names(hub_id, config_name)
    for split in splits:
        for location, row in iter_hub_rows(hub_id, config_name, split):
            yield split, location, row
