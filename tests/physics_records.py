"""Short physics question-answer records written into a temporary data folder for training tests."""

from __future__ import annotations

from pathlib import Path

from physlora.data.records import Record, write_jsonl

QUESTION_ANSWERS = [
    ("What is the SI unit of force?", "newton"),
    ("What is the SI unit of energy?", "joule"),
    ("What is the SI unit of power?", "watt"),
    ("What is the SI unit of electric charge?", "coulomb"),
    ("What is the SI unit of electric current?", "ampere"),
    ("What is the SI unit of resistance?", "ohm"),
    ("What is the SI unit of frequency?", "hertz"),
    ("What is the SI unit of pressure?", "pascal"),
    ("What quantity is mass times acceleration?", "force"),
    ("What quantity is mass times velocity?", "momentum"),
    ("What is the rate of change of velocity called?", "acceleration"),
    ("What is the rate of change of position called?", "velocity"),
    ("Which force keeps the planets in orbit around the Sun?", "gravity"),
    ("What kind of energy does a moving car have?", "kinetic energy"),
    ("What kind of energy does a raised book have?", "gravitational potential energy"),
    ("What is the speed of light in vacuum, roughly?", "300,000 kilometres per second"),
    ("What particle carries a negative elementary charge?", "electron"),
    ("What particle in the nucleus has no charge?", "neutron"),
    ("What happens to the wavelength of a wave when its frequency doubles at fixed speed?", "it halves"),
    ("What is the bending of light entering glass from air called?", "refraction"),
    ("What is the bouncing of light off a mirror called?", "reflection"),
    ("At what temperature in Celsius does pure water boil at sea level?", "100 degrees"),
    ("What is the absolute zero of temperature in kelvin?", "0 kelvin"),
    ("Which law states that current equals voltage divided by resistance?", "Ohm's law"),
    ("What does a transformer change in an alternating current circuit?", "the voltage"),
    ("What is the unit of magnetic flux density?", "tesla"),
    ("Which colour of visible light has the longest wavelength?", "red"),
    ("What type of wave is sound in air?", "longitudinal"),
    ("What type of wave is light?", "transverse electromagnetic"),
    ("What is the acceleration due to gravity at Earth's surface?", "about 9.8 metres per second squared"),
    ("What is the product of force and distance moved along the force?", "work"),
    ("What is the energy transferred per unit time?", "power"),
    ("What is heat transfer through direct contact called?", "conduction"),
    ("What is heat transfer by moving fluid called?", "convection"),
    ("What is heat transfer by electromagnetic waves called?", "radiation"),
    ("Which quantity is conserved in an elastic collision besides momentum?", "kinetic energy"),
    ("What is the resistance of two 2 ohm resistors in series?", "4 ohms"),
    ("What is the resistance of two 2 ohm resistors in parallel?", "1 ohm"),
    ("What is the period of a wave with frequency 50 hertz?", "0.02 seconds"),
    ("What does E equal in Einstein's mass-energy relation?", "m c squared"),
]


def physics_records(count: int, prefix: str = "q") -> list[Record]:
    """Return `count` records cycling through QUESTION_ANSWERS. Repeats get a numbered question, so ids stay unique."""
    records = []
    for index in range(count):
        question, answer = QUESTION_ANSWERS[index % len(QUESTION_ANSWERS)]
        if index >= len(QUESTION_ANSWERS):
            question = f"{question} (variant {index // len(QUESTION_ANSWERS)})"
        records.append(Record(id=f"{prefix}-{index}", source="test", question=question, answer=answer,
                              topic="mechanics", original_split="train", target=answer))
    return records


def write_data(folder: Path, train_count: int = 40, validation_count: int = 10) -> Path:
    """Write train.jsonl and validation.jsonl into `folder` and return it."""
    write_jsonl(physics_records(train_count), folder / "train.jsonl")
    write_jsonl(physics_records(validation_count, prefix="v"), folder / "validation.jsonl")
    return folder
