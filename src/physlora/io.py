"""Atomic file writes: a reader sees the old file or the complete new one, never a partial file."""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from physlora.errors import PhysloraError


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is fsynced and renamed onto `path`."""
    path = Path(path)
    create_folder(path.parent)
    try:
        descriptor, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as error:
        raise PhysloraError(
            f"cannot write {path}: {error.strerror or error}; choose an output folder you can write to"
        ) from error
    os.close(descriptor)
    temp_path = Path(temp_name)
    try:
        yield temp_path
        with open(temp_path, "rb") as handle:
            os.fsync(handle.fileno())
        # mkstemp creates the file with mode 0600; give it the mode a plain open() would have.
        os.chmod(temp_path, 0o666 & ~_current_umask())
        os.replace(temp_path, path)
    finally:
        temp_path.unlink(missing_ok=True)


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def create_folder(folder: str | Path) -> Path:
    """Create `folder` and its parents, or raise PhysloraError naming the folder.

    Creating it fails, for example, below a regular file, on a read-only file system or without permission.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise PhysloraError(
            f"cannot create the folder {folder}: {error.strerror or error}; choose an output folder you can write to"
        ) from error
    return folder


def staging_folder(target: Path) -> Path:
    """Create an empty hidden folder beside `target`, to be filled and then renamed onto it.

    mkdtemp creates the folder with mode 0700; it gets the mode a plain mkdir would give, so a renamed
    adapter or checkpoint folder is as readable as the rest of the run folder.
    """
    create_folder(target.parent)
    folder = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    os.chmod(folder, 0o777 & ~_current_umask())
    return folder


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_path(path) as temp_path:
        temp_path.write_text(text, encoding="utf-8")


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Write indented UTF-8 JSON; non-finite floats are written as null so any JSON reader accepts the file."""
    write_text_atomic(path, json.dumps(_finite(data), indent=2, ensure_ascii=False) + "\n")


def _finite(value: Any) -> Any:
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value
