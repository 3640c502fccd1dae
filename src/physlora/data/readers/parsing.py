"""File decoding and row iteration for JSON, JSONL and CSV, with a Location for every row.

Files are decoded as UTF-8 with errors='surrogateescape', so one bad byte rejects only the row that contains it
instead of the whole file. A leading UTF-8 byte order mark is removed.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any, Iterator, Union

from physlora.data.readers.base import Location, Rejection, invalid_utf8

_BOM = b"\xef\xbb\xbf"
_JSON_WHITESPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()

JsonRow = Union[tuple[Location, Any], Rejection]
CsvRow = Union[tuple[Location, list[str]], Rejection]


def decode_file(path: Path) -> str | Rejection:
    """Return the file's text, or a Rejection for an unreadable or empty file."""
    try:
        data = path.read_bytes()
    except OSError as error:
        return Rejection("unreadable file", Location(str(path)), error.strerror or str(error))
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    if not data.strip():
        return Rejection("empty file", Location(str(path), 1))
    return data.decode("utf-8", errors="surrogateescape")


def json_error_detail(error: json.JSONDecodeError) -> str:
    """Return e.g. "Expecting ',' delimiter at column 12"; some messages already end in "at"."""
    return f"{error.msg.removesuffix(' at')} at column {error.colno}"


def iter_jsonl(path: Path) -> Iterator[JsonRow]:
    """Yield (location, object) per non-blank line, or a Rejection for a line that is not one JSON object."""
    text = decode_file(path)
    if isinstance(text, Rejection):
        yield text
        return
    # Split on "\n" only: str.splitlines would also break at U+2028 and similar characters that JSON strings may hold.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        location = Location(str(path), number)
        problem = invalid_utf8(line)
        if problem is not None:
            yield Rejection("not UTF-8", location, problem)
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            yield Rejection("invalid JSON", location, json_error_detail(error))
            continue
        if not isinstance(value, dict):
            yield Rejection("not a JSON object", location, f"got {type(value).__name__}")
            continue
        yield location, value


def iter_json_document(path: Path, expected: str = "array") -> Iterator[JsonRow]:
    """Yield (location, element) per element of a top-level JSON array (`expected="array"`), or
    (location, (key, value)) per member of a top-level object (`expected="object"`). The location is the
    line the element starts on.

    Elements before a syntax error are still yielded, and the error becomes one Rejection at its line,
    because nothing after it can be located reliably.
    """
    text = decode_file(path)
    if isinstance(text, Rejection):
        yield text
        return
    tracker = _LineTracker(text)
    try:
        yield from _iter_container(text, str(path), tracker, expected)
    except json.JSONDecodeError as error:
        yield Rejection("invalid JSON", Location(str(path), error.lineno), json_error_detail(error))


class _LineTracker:
    """Line numbers of increasing offsets, counted incrementally so a large document stays linear in time."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.offset = 0
        self.line = 1

    def line_at(self, offset: int) -> int:
        self.line += self.text.count("\n", self.offset, offset)
        self.offset = offset
        return self.line


def _skip_whitespace(text: str, position: int) -> int:
    return _JSON_WHITESPACE.match(text, position).end()


def _iter_container(text: str, file: str, tracker: _LineTracker, expected: str) -> Iterator[tuple[Location, Any]]:
    position = _skip_whitespace(text, 0)
    opener = text[position : position + 1]
    if opener != ("[" if expected == "array" else "{"):
        value = json.loads(text)  # raises JSONDecodeError with the position when the text is not JSON at all
        found = {list: "array", dict: "object"}.get(type(value), type(value).__name__)
        raise json.JSONDecodeError(f"top level is {found}, expected {expected}", text, position)
    closer = "]" if opener == "[" else "}"
    position = _skip_whitespace(text, position + 1)
    if text.startswith(closer, position):
        position += 1
    else:
        while True:
            start = position
            key = None
            if opener == "{":
                key, position = _DECODER.raw_decode(text, position)
                if not isinstance(key, str):
                    raise json.JSONDecodeError("object key must be a string", text, start)
                position = _skip_whitespace(text, position)
                if not text.startswith(":", position):
                    raise json.JSONDecodeError("expected ':' after object key", text, position)
                position = _skip_whitespace(text, position + 1)
            value, position = _DECODER.raw_decode(text, position)
            location = Location(file, tracker.line_at(start))
            yield location, (value if opener == "[" else (key, value))
            position = _skip_whitespace(text, position)
            if text.startswith(",", position):
                position = _skip_whitespace(text, position + 1)
                continue
            if text.startswith(closer, position):
                position += 1
                break
            raise json.JSONDecodeError(f"expected ',' or '{closer}'", text, position)
    if _skip_whitespace(text, position) != len(text):
        raise json.JSONDecodeError("extra data after the top-level value", text, position)


def iter_csv(path: Path) -> Iterator[CsvRow]:
    """Yield (location, stripped fields) per non-blank CSV record; the location is the record's first line.

    Quoted fields may span lines and contain CR LF; line endings may be mixed within a file.
    """
    text = decode_file(path)
    if isinstance(text, Rejection):
        yield text
        return
    reader = csv.reader(io.StringIO(text, newline=""))
    last_line = 0
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            yield Rejection("invalid CSV", Location(str(path), last_line + 1), str(error))
            if reader.line_num == last_line:
                return
            last_line = reader.line_num
            continue
        location = Location(str(path), last_line + 1)
        last_line = reader.line_num
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue
        problem = next((found for found in map(invalid_utf8, fields) if found), None)
        if problem is not None:
            yield Rejection("not UTF-8", location, problem)
            continue
        yield location, [field.strip() for field in fields]
