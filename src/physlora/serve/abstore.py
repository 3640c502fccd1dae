"""SQLite store of the blind A/B test: what each rater was shown, their judgements, and cached answers.

Tables:
- `meta`: key/value pairs, `run_dir` and `adapter` of the adapted model being rated.
- `presentations`: one row per item shown, with a random token and which model was side A. The page
  only receives the token, so which side is which stays on the server.
- `ratings`: one row per judgement: rater, item, the model behind A and B, the choice (A, B or tie),
  the model it prefers (adapted, base or tie), the comment and the UTC time. A token is rated once.
- `answers`: answers generated on demand, so an item shown again is not generated again.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing, contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from physlora.errors import DataError

SIDES = ("base", "adapted")
CHOICES = ("A", "B", "tie")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS presentations (
    token TEXT PRIMARY KEY,
    rater TEXT NOT NULL,
    item_id TEXT NOT NULL,
    a_model TEXT NOT NULL CHECK (a_model IN ('base', 'adapted')),
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ratings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    token TEXT NOT NULL UNIQUE REFERENCES presentations (token),
    rater TEXT NOT NULL,
    item_id TEXT NOT NULL,
    a_model TEXT NOT NULL CHECK (a_model IN ('base', 'adapted')),
    b_model TEXT NOT NULL CHECK (b_model IN ('base', 'adapted')),
    choice TEXT NOT NULL CHECK (choice IN ('A', 'B', 'tie')),
    preferred TEXT NOT NULL CHECK (preferred IN ('base', 'adapted', 'tie')),
    comment TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS answers (
    item_id TEXT NOT NULL,
    side TEXT NOT NULL CHECK (side IN ('base', 'adapted')),
    text TEXT NOT NULL,
    PRIMARY KEY (item_id, side)
);
"""

RATING_COLUMNS = ("id", "rater", "item_id", "a_model", "b_model", "choice", "preferred", "comment", "created_at")


class AbRatingError(Exception):
    """A rating that cannot be stored: unknown token, token already rated, or invalid choice.

    `param` names the request field at fault ("token" or "choice").
    """

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def preferred_model(a_model: str, choice: str) -> str:
    """Return the model the rater preferred: the one behind the chosen side, or 'tie'."""
    if choice == "tie":
        return "tie"
    b_model = "base" if a_model == "adapted" else "adapted"
    return a_model if choice == "A" else b_model


class AbStore:
    """One SQLite file. Each call opens its own connection, so the store is safe to use from any thread."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connection() as connection:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.executescript(_SCHEMA)

    @classmethod
    def open_existing(cls, path: Path) -> AbStore:
        """Open a store for reading; raises DataError when the file does not exist."""
        if not Path(path).is_file():
            raise DataError(f"A/B database {path} not found; it is written by `physlora serve` when raters use /ab")
        return cls(path)

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.path, timeout=10)) as connection:
            connection.row_factory = sqlite3.Row
            with connection:  # commits on success, rolls back on error
                yield connection

    def set_meta(self, **values: str) -> None:
        with self._connection() as connection:
            connection.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                list(values.items()),
            )

    def meta(self) -> dict[str, str]:
        with self._connection() as connection:
            return {row["key"]: row["value"] for row in connection.execute("SELECT key, value FROM meta")}

    def cached_answer(self, item_id: str, side: str) -> str | None:
        with self._connection() as connection:
            row = connection.execute(
                "SELECT text FROM answers WHERE item_id = ? AND side = ?", (item_id, side)
            ).fetchone()
        return None if row is None else row["text"]

    def save_answer(self, item_id: str, side: str, text: str) -> None:
        with self._connection() as connection:
            connection.execute(
                "INSERT OR REPLACE INTO answers (item_id, side, text) VALUES (?, ?, ?)", (item_id, side, text)
            )

    def rated_items(self, rater: str) -> set[str]:
        with self._connection() as connection:
            rows = connection.execute("SELECT DISTINCT item_id FROM ratings WHERE rater = ?", (rater,))
            return {row["item_id"] for row in rows}

    def add_presentation(self, token: str, rater: str, item_id: str, a_model: str) -> None:
        with self._connection() as connection:
            connection.execute(
                "INSERT INTO presentations (token, rater, item_id, a_model, created_at) VALUES (?, ?, ?, ?, ?)",
                (token, rater, item_id, a_model, utc_now()),
            )

    def add_rating(self, token: str, choice: str, comment: str) -> dict:
        """Store the judgement of the presentation `token`; return the stored row."""
        if choice not in CHOICES:
            raise AbRatingError(f"choice {choice!r} is invalid; use A, B or tie", "choice")
        with self._connection() as connection:
            presentation = connection.execute("SELECT * FROM presentations WHERE token = ?", (token,)).fetchone()
            if presentation is None:
                raise AbRatingError("unknown token; load the next item and rate it", "token")
            earlier = connection.execute(
                "SELECT id FROM ratings WHERE rater = ? AND item_id = ?", (presentation["rater"], presentation["item_id"])
            ).fetchone()
            if earlier is not None:
                raise AbRatingError(f"rater {presentation['rater']!r} already rated item {presentation['item_id']!r}", "token")
            a_model = presentation["a_model"]
            row = {
                "rater": presentation["rater"],
                "item_id": presentation["item_id"],
                "a_model": a_model,
                "b_model": "base" if a_model == "adapted" else "adapted",
                "choice": choice,
                "preferred": preferred_model(a_model, choice),
                "comment": comment,
                "created_at": utc_now(),
            }
            try:
                cursor = connection.execute(
                    "INSERT INTO ratings (token, rater, item_id, a_model, b_model, choice, preferred, comment, "
                    "created_at) VALUES (:token, :rater, :item_id, :a_model, :b_model, :choice, :preferred, "
                    ":comment, :created_at)",
                    {"token": token, **row},
                )
            except sqlite3.IntegrityError as error:
                raise AbRatingError("this item was already rated; load the next item", "token") from error
        return {"id": cursor.lastrowid, **row}

    def ratings(self) -> list[dict]:
        with self._connection() as connection:
            rows = connection.execute(f"SELECT {', '.join(RATING_COLUMNS)} FROM ratings ORDER BY id")
            return [dict(row) for row in rows]
