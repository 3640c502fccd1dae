"""A small local data folder in the real source formats, and tiny-preset configs that read it."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from physlora.config import load_config
from physlora.config.schema import RunConfig

MASSES = [2, 3, 4, 5, 6, 8]
FORCES = [6, 12, 24, 30, 48, 60]
UNIT_QUESTIONS = [
    ("What is the SI unit of force?", "newton", "joule", "watt", "pascal"),
    ("What is the SI unit of energy?", "joule", "newton", "ampere", "volt"),
    ("What is the SI unit of electric current?", "ampere", "ohm", "volt", "tesla"),
    ("What is the SI unit of power?", "watt", "joule", "newton", "hertz"),
    ("What is the SI unit of frequency of a wave?", "hertz", "metre", "second", "watt"),
    ("What is the SI unit of electric resistance?", "ohm", "ampere", "volt", "farad"),
    ("What is the SI unit of pressure exerted by a force on an area?", "pascal", "newton", "joule", "watt"),
    ("What is the SI unit of momentum?", "kilogram metre per second", "newton", "joule", "watt"),
]


def _mmlu_rows() -> list[list[str]]:
    """36 distinct Newton's-second-law questions with four numeric choices; answer A."""
    rows = []
    for mass in MASSES:
        for force in FORCES:
            answer = force / mass
            rows.append([
                f"A cart of mass {mass} kg is pushed by a net force of {force} N. What is its acceleration?",
                f"{answer:g} m/s^2", f"{answer * 2:g} m/s^2", f"{answer + 1:g} m/s^2", f"{force * mass:g} m/s^2", "A",
            ])
    return rows


def write_source_folder(root: Path) -> Path:
    """Write SciQ, ARC and MMLU files with physics questions only: 50 rows in all."""
    (root / "mmlu" / "test").mkdir(parents=True)
    (root / "mmlu" / "dev").mkdir(parents=True)
    with open(root / "mmlu" / "test" / "high_school_physics_test.csv", "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(_mmlu_rows())
    with open(root / "mmlu" / "dev" / "college_physics_dev.csv", "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([
            ["What is the kinetic energy of a 2 kg ball moving at 3 m/s?", "9 J", "6 J", "3 J", "18 J", "A"],
            ["What is the momentum of a 4 kg cart moving at 5 m/s?", "20 kg m/s", "9 kg m/s", "1 kg m/s", "40 kg m/s", "A"],
        ])

    (root / "sciq").mkdir()
    sciq = [
        {"question": question, "correct_answer": answer, "distractor1": first, "distractor2": second,
         "distractor3": third, "support": ""}
        for question, answer, first, second, third in UNIT_QUESTIONS
    ]
    for name, rows in (("train.json", sciq[:4]), ("valid.json", sciq[4:6]), ("test.json", sciq[6:])):
        (root / "sciq" / name).write_text(json.dumps(rows), encoding="utf-8")

    (root / "arc").mkdir()
    arc_lines = []
    for index, (question, answer, *wrong) in enumerate(UNIT_QUESTIONS[:4]):
        choices = [{"text": text, "label": label} for text, label in zip([answer, *wrong], "ABCD")]
        stem = question.replace("What is", "Which is")
        arc_lines.append(json.dumps({"id": f"ARC_{index}", "question": {"stem": stem, "choices": choices}, "answerKey": "A"}))
    (root / "arc" / "ARC-Easy-Train.jsonl").write_text("\n".join(arc_lines) + "\n", encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def bench_source_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_source_folder(tmp_path_factory.mktemp("bench-sources"))


@pytest.fixture
def tiny_config(bench_source_dir: Path, t5_tokenizer_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Tiny-preset configs whose sources are the files of `bench_source_dir`."""
    monkeypatch.setenv("PHYSLORA_DATA_DIR", str(bench_source_dir))

    def make(*overrides: str) -> RunConfig:
        return load_config(preset="tiny", overrides=list(overrides))

    return make
