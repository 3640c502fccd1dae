"""Readers of the supported source formats, looked up by the config's `type` name."""

from __future__ import annotations

from physlora.data.readers.arc import ArcReader
from physlora.data.readers.base import Item, Location, ReadContext, Reader, Rejection, Row, SourceFile
from physlora.data.readers.generic import CsvReader, JsonlReader
from physlora.data.readers.mmlu import MmluReader
from physlora.data.readers.physics_scienceqa import PhysicsScienceQaReader
from physlora.data.readers.scienceqa import ScienceQaReader
from physlora.data.readers.sciq import SciQReader

READERS: dict[str, Reader] = {
    reader.name: reader
    for reader in (
        SciQReader(),
        ArcReader(),
        MmluReader(),
        ScienceQaReader(),
        PhysicsScienceQaReader(),
        JsonlReader(),
        CsvReader(),
    )
}


def get_reader(type_name: str) -> Reader:
    """Return the reader registered for a source type (the schema only admits registered names)."""
    return READERS[type_name]


__all__ = ["READERS", "Item", "Location", "ReadContext", "Reader", "Rejection", "Row", "SourceFile", "get_reader"]
