"""Contents of small source files with the quirks of each real format, and helpers to write them.

Every file is built here so that each test can state exactly which rows it expects to be read, rejected,
filtered and kept.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# SciQ: one physics item without support, a biology item, a question repeated with another answer, and an
# exact repeat (same question and answer, different case and spacing) that deduplication must remove.
SCIQ_TRAIN = [
    {"question": "What is the SI unit of electric current?", "distractor1": "volt", "distractor2": "ohm",
     "distractor3": "watt", "correct_answer": "ampere", "support": "Current is measured in amperes."},
    {"question": "What force opposes the motion of a box sliding across a rough floor?", "distractor1": "tension",
     "distractor2": "magnetism", "distractor3": "buoyancy", "correct_answer": "friction", "support": ""},
    {"question": "Which organelle carries out photosynthesis in plant cells?", "distractor1": "nucleus",
     "distractor2": "ribosome", "distractor3": "vacuole", "correct_answer": "chloroplast",
     "support": "Chloroplasts capture light energy."},
    {"question": "What happens to the wavelength of a wave when its frequency increases?", "distractor1": "it grows",
     "distractor2": "it stays the same", "distractor3": "it vanishes", "correct_answer": "it decreases",
     "support": "Wave speed equals frequency times wavelength."},
    {"question": "What happens to the wavelength of a wave when its frequency increases?", "distractor1": "it grows",
     "distractor2": "it doubles", "distractor3": "it vanishes", "correct_answer": "it gets shorter", "support": ""},
    {"question": "what is the SI unit of  electric current", "distractor1": "tesla", "distractor2": "henry",
     "distractor3": "farad", "correct_answer": "Ampere", "support": ""},
]  # fmt: skip
SCIQ_TEST = [
    {"question": "What is the energy of motion called?", "distractor1": "potential energy",
     "distractor2": "chemical energy", "distractor3": "nuclear energy", "correct_answer": "kinetic energy",
     "support": "Moving objects have kinetic energy."},
]  # fmt: skip

# ARC: compact JSON, numeric labels with a numeric answer key, one 3-choice and one 5-choice question.
ARC_TRAIN = [
    {"id": "ARC_1", "question": {"stem": "Which material is the best conductor of electricity?", "choices": [
        {"text": "wood", "label": "1"}, {"text": "copper wire", "label": "2"}, {"text": "rubber", "label": "3"},
        {"text": "glass", "label": "4"}]}, "answerKey": "2"},
    {"id": "ARC_2", "question": {"stem": "A ball rolls down a ramp. Which force pulls it down?", "choices": [
        {"text": "gravity", "label": "A"}, {"text": "magnetism", "label": "B"}, {"text": "friction", "label": "C"}]},
     "answerKey": "A"},
    {"id": "ARC_3", "question": {"stem": "Which tool measures the temperature of water being heated?", "choices": [
        {"text": "ruler", "label": "A"}, {"text": "balance", "label": "B"}, {"text": "stopwatch", "label": "C"},
        {"text": "magnet", "label": "D"}, {"text": "thermometer", "label": "E"}]}, "answerKey": "E"},
    {"id": "ARC_4", "question": {"stem": "Which animals are mammals that live in the ocean?", "choices": [
        {"text": "sharks", "label": "A"}, {"text": "whales", "label": "B"}, {"text": "tuna", "label": "C"},
        {"text": "squid", "label": "D"}]}, "answerKey": "B"},
]  # fmt: skip

# MMLU: no header, CR LF row ends, a quoted question spanning lines with CR LF inside, micro and degree signs.
MMLU_TEST_ROWS = (
    b'"A 2 kg block slides down a frictionless incline.\r\nWhat is its acceleration if the incline is 30\xc2\xb0?",'
    b"4.9 m/s^2,9.8 m/s^2,2.5 m/s^2,0 m/s^2,A\r\n"
    b"A capacitor of 5 \xc2\xb5F is charged to 10 V. What charge does it store?,50 \xc2\xb5C,5 \xc2\xb5C,2 \xc2\xb5C,"
    b"500 \xc2\xb5C,A\r\n"
    b"Which quantity is conserved in a perfectly inelastic collision?,kinetic energy,momentum,velocity,speed,B\r\n"
)
MMLU_DEV_ROWS = b"What is the unit of frequency?,hertz,joule,newton,pascal,A\n"
MMLU_OTHER_SUBJECT = b"What is the brightest star in the night sky?,Sirius,Vega,Polaris,Rigel,A\n"

SCIENCEQA_PROBLEMS = {
    "11": {"question": "Which object has more thermal energy?", "choices": ["a hot cup of tea", "a cold cup of tea"],
           "answer": 0, "hint": "The objects are identical except for their temperatures.",
           "subject": "natural science", "topic": "physics", "split": "train",
           "lecture": "Thermal energy depends on temperature.", "solution": "The hotter cup has more thermal energy."},
    "12": {"question": "Which animal has fur?", "choices": ["frog", "rabbit"], "answer": 1, "hint": "",
           "subject": "natural science", "topic": "biology", "split": "train", "lecture": "", "solution": ""},
    "13": {"question": "What is the direction of this push?", "choices": ["away from the hand", "toward the hand"],
           "answer": 0, "hint": "", "subject": "natural science", "topic": "physics", "split": "test",
           "lecture": "", "solution": "A push moves an object away."},
}  # fmt: skip

PHYSICS_SCIENCEQA_LINES = [
    {"input": "Question: Which is a magnet likely to attract?\nOptions: (A) a paper clip (B) a wooden spoon",
     "output": "The answer is A."},
    {"input": "Which way does heat flow between a hot pan and cold water? (A) from the water to the pan "
              "(B) from the pan to the water", "output": "(B) from the pan to the water"},
    {"input": "What is the SI unit of force?", "output": "the newton"},
]  # fmt: skip

PHYSICS_TEMPLATES = [
    ("A car moves at a constant speed of {a} m/s. How far does it travel in {b} s?", "{ab} m", "kinematics"),
    ("What current flows through a {a} ohm resistor connected to a {b} volt battery?", "{b_a} amperes",
     "electromagnetism"),
    ("What is the kinetic energy of a {a} kg ball moving at {b} m/s?", "{kinetic} joules", "energy"),
    ("How much heat raises the temperature of {a} kg of water by {b} kelvin?", "{heat} kilojoules",
     "thermodynamics"),
]  # fmt: skip


def generated_physics_rows(count: int) -> list[dict[str, str]]:
    """Distinct physics questions cycling through four topics (answers follow the template formulas)."""
    rows = []
    for index in range(count):
        template, answer, _ = PHYSICS_TEMPLATES[index % len(PHYSICS_TEMPLATES)]
        a, b = 2 + index, 3 + index % 7
        values = {"a": a, "b": b, "ab": a * b, "b_a": round(b / a, 3), "kinetic": a * b * b / 2,
                  "heat": round(4.18 * a * b, 2)}  # fmt: skip
        rows.append({"question": template.format(**values), "answer": answer.format(**values)})
    return rows


def write_jsonl_lines(path: Path, rows: list[Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(row, separators=(",", ":")) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_json(path: Path, value: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=4), encoding="utf-8")
    return path


def write_bytes(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


ALL_SOURCES = [
    {"type": "sciq"},
    {"type": "arc"},
    {"type": "mmlu"},
    {"type": "scienceqa"},
    {"type": "physics_scienceqa"},
    {"type": "jsonl", "name": "generated", "path": "generated"},
]
