"""The blind A/B test: items from a run's test split, answers of base and adapted model in random order.

Answers come from RUN/predictions.jsonl when it has the item, else they are generated on demand and
cached in the SQLite store. Which model is side A is drawn per presentation and kept on the server.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Awaitable, Callable

from physlora.config.schema import RunConfig
from physlora.data.records import read_jsonl
from physlora.eval.runner import data_dir_of
from physlora.serve.abstore import SIDES, AbStore

logger = logging.getLogger(__name__)

AB_DB_FILE = "ab.sqlite"
MAX_COMMENT_CHARS = 2000
RATER_PATTERN = re.compile(r"^[\w .@-]{1,64}$")
# Generates the answer of one side ("base" or "adapted") to a question.
AnswerFunction = Callable[[str, str], Awaitable[str]]


@dataclass(frozen=True)
class AbItem:
    """One question to rate, with the answers already known (keys "base" and "adapted", either may be absent)."""

    id: str
    question: str
    answers: dict[str, str] = field(default_factory=dict)


def load_ab_items(run_dir: Path, config: RunConfig) -> list[AbItem]:
    """Items of the run's test split, with answers from predictions.jsonl where it has them.

    Without a test split file the questions of predictions.jsonl are used; without both the list is empty.
    """
    predicted = _read_predicted_answers(Path(run_dir) / "predictions.jsonl")
    test_file = data_dir_of(config, Path(run_dir)) / "test.jsonl"
    if test_file.is_file():
        items = []
        for record in read_jsonl(test_file):
            answers = predicted[record.id][1] if record.id in predicted else {}
            items.append(AbItem(record.id, record.question, answers))
        return items
    return [AbItem(item_id, question, answers) for item_id, (question, answers) in predicted.items()]


def _read_predicted_answers(path: Path) -> dict[str, tuple[str, dict[str, str]]]:
    if not path.is_file():
        return {}
    found = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            row = json.loads(line)
            answers = {side: row[side]["answer"] for side in SIDES if isinstance(row.get(side), dict)}
            found[row["id"]] = (row["question"], answers)
    return found


def check_rater(rater: str) -> str | None:
    """Return the stripped rater id, or None when it is not 1 to 64 letters, digits, spaces or _ . @ -."""
    rater = rater.strip()
    return rater if RATER_PATTERN.fullmatch(rater) else None


class AbService:
    """Chooses the next unrated item for a rater, shows it blind, and stores judgements."""

    def __init__(
        self,
        items: list[AbItem],
        store: AbStore,
        adapter: str,
        run_dir: Path,
        generate_answer: AnswerFunction,
        rng: random.Random | None = None,
    ) -> None:
        self.items = {item.id: item for item in items}
        self.store = store
        self.adapter = adapter
        self.generate_answer = generate_answer
        self.rng = rng or random.Random()
        store.set_meta(run_dir=str(Path(run_dir).resolve()), adapter=adapter)

    async def next_item(self, rater: str) -> dict:
        """Return the next item for `rater` with its two answers as sides A and B, or {"done": True} when all are rated."""
        rated = self.store.rated_items(rater)
        unrated = [item for item_id, item in self.items.items() if item_id not in rated]
        progress = {"rated": len(rated & self.items.keys()), "total": len(self.items)}
        if not unrated:
            return {"done": True, **progress}
        item = self.rng.choice(unrated)
        a_model = self.rng.choice(SIDES)
        b_model = "base" if a_model == "adapted" else "adapted"
        answer_a, answer_b = await asyncio.gather(self._answer(item, a_model), self._answer(item, b_model))
        token = secrets.token_urlsafe(16)
        self.store.add_presentation(token, rater, item.id, a_model)
        return {
            "done": False,
            "token": token,
            "item_id": item.id,
            "question": item.question,
            "answers": {"A": answer_a, "B": answer_b},
            **progress,
        }

    def rate(self, token: str, choice: str, comment: str) -> dict:
        """Store a judgement (raises AbRatingError for an unknown or used token or an invalid choice)."""
        row = self.store.add_rating(token, choice, comment.strip()[:MAX_COMMENT_CHARS])
        logger.info("A/B rating %s: rater %s, item %s, preferred %s", row["id"], row["rater"], row["item_id"], row["preferred"])
        return row

    async def _answer(self, item: AbItem, side: str) -> str:
        if side in item.answers:
            return item.answers[side]
        cached = self.store.cached_answer(item.id, side)
        if cached is not None:
            return cached
        text = await self.generate_answer(side, item.question)
        self.store.save_answer(item.id, side, text)
        return text
