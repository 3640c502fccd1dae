"""Each reader on small files that carry the quirks of its real format."""

from __future__ import annotations

from pathlib import Path

import pytest
from source_files import ARC_TRAIN, SCIQ_TRAIN, write_bytes, write_jsonl_lines

from physlora.config.schema import SourceConfig
from physlora.data.readers.physics_scienceqa import split_options
from physlora.data.sources import SourceData, SourcePlan, read_source


def read(path: Path, seed: int = 42, **source: object) -> SourceData:
    config = SourceConfig(**source)
    return read_source(SourcePlan(0, config, path), seed)


def by_question(data: SourceData) -> dict[str, object]:
    return {item.record.question: item.record for item in data.items}


def test_sciq_reads_every_row_with_answer_among_choices(data_root):
    data = read(data_root / "sciq", type="sciq")
    assert data.stats.read == len(SCIQ_TRAIN) + 1
    assert data.stats.rejected_total == 0
    for item in data.items:
        record = item.record
        assert record.choices[record.answer_index] == record.answer
        assert len(record.choices) == 4
        assert item.physics is None


def test_sciq_keeps_empty_support_and_repeats(data_root):
    records = [item.record for item in read(data_root / "sciq", type="sciq", splits=["train"]).items]
    friction = next(record for record in records if record.answer == "friction")
    assert friction.explanation == ""
    repeated = [record for record in records if record.question.startswith("What happens to the wavelength")]
    assert sorted(record.answer for record in repeated) == ["it decreases", "it gets shorter"]
    assert len({record.id for record in records}) == len(records)


def test_sciq_ids_are_content_hashes(data_root):
    record = read(data_root / "sciq", type="sciq", splits=["test"]).items[0].record
    assert record.id.startswith("sciq-test-")
    assert len(record.id.removeprefix("sciq-test-")) == 12
    assert record.original_split == "test"


def test_sciq_choice_order_depends_only_on_seed(data_root):
    first = [item.record.choices for item in read(data_root / "sciq", seed=1, type="sciq").items]
    again = [item.record.choices for item in read(data_root / "sciq", seed=1, type="sciq").items]
    other = [item.record.choices for item in read(data_root / "sciq", seed=2, type="sciq").items]
    assert first == again
    assert first != other


def test_arc_matches_answer_key_against_labels(data_root):
    records = by_question(read(data_root / "arc", type="arc"))
    numeric = records["Which material is the best conductor of electricity?"]
    assert numeric.answer == "copper wire"
    assert numeric.answer_index == 1
    three = records["A ball rolls down a ramp. Which force pulls it down?"]
    assert len(three.choices) == 3
    assert three.answer == "gravity"
    five = records["Which tool measures the temperature of water being heated?"]
    assert len(five.choices) == 5
    assert five.answer_index == 4
    assert five.answer == "thermometer"


def test_arc_keeps_ids_and_split_from_file_name(data_root):
    data = read(data_root / "arc", type="arc")
    assert data.stats.read == len(ARC_TRAIN)
    assert {item.record.id for item in data.items} == {f"arc-train-{row['id']}" for row in ARC_TRAIN}
    assert {item.record.original_split for item in data.items} == {"train"}


def test_mmlu_reads_headerless_crlf_csv(data_root):
    data = read(data_root / "mmlu", type="mmlu")
    assert data.stats.read == 4
    assert data.stats.rejected_total == 0
    records = by_question(data)
    incline = next(record for question, record in records.items() if question.startswith("A 2 kg block"))
    expected = "A 2 kg block slides down a frictionless incline. What is its acceleration if the incline is 30°?"
    assert incline.question == expected
    assert incline.answer == "4.9 m/s^2"
    assert "\r" not in incline.question


def test_mmlu_normalises_micro_sign_and_keeps_degree(data_root):
    records = by_question(read(data_root / "mmlu", type="mmlu"))
    capacitor = next(record for question, record in records.items() if question.startswith("A capacitor"))
    # NFKC maps the micro sign U+00B5 to the Greek small letter mu U+03BC.
    assert "5 \u03bcF" in capacitor.question
    assert capacitor.answer == "50 \u03bcC"


def test_mmlu_reads_only_physics_subjects(data_root):
    data = read(data_root / "mmlu", type="mmlu")
    assert not any("Sirius" in item.record.answer for item in data.items)
    assert all(item.physics is True for item in data.items)
    assert sorted(item.record.original_split for item in data.items) == ["dev", "test", "test", "test"]


def test_mmlu_split_selection_uses_aliases(data_root):
    data = read(data_root / "mmlu", type="mmlu", splits=["dev"])
    assert [item.record.original_split for item in data.items] == ["dev"]


def test_scienceqa_labels_physics_from_topic(data_root):
    data = read(data_root / "scienceqa", type="scienceqa")
    labels = {item.record.question: item.physics for item in data.items}
    assert labels["Which animal has fur?"] is False
    thermal = next(item.record for item in data.items if item.physics and "thermal" in item.record.question)
    assert thermal.question.startswith("The objects are identical except for their temperatures.")
    assert thermal.explanation == "The hotter cup has more thermal energy."
    assert thermal.id == "scienceqa-train-11"


def test_scienceqa_filters_splits_from_field(data_root):
    data = read(data_root / "scienceqa", type="scienceqa", splits=["test"])
    assert [item.record.id for item in data.items] == ["scienceqa-test-13"]


def test_physics_scienceqa_parses_options_and_output(data_root):
    records = [item.record for item in read(data_root / "physics-scienceqa", type="physics_scienceqa").items]
    magnet, heat, unit = records
    assert magnet.question == "Which is a magnet likely to attract?"
    assert magnet.choices == ["a paper clip", "a wooden spoon"]
    assert magnet.answer == "a paper clip"
    assert heat.answer_index == 1
    assert heat.choices == ["from the water to the pan", "from the pan to the water"]
    assert unit.choices == []
    assert unit.answer == "the newton"


def test_split_options_line_labels():
    question, options = split_options("Which is hotter?\nChoices:\nA. ice\nB. steam")
    assert question.strip() == "Which is hotter?"
    assert options == ["ice", "steam"]


def test_generic_jsonl_with_column_mapping(tmp_path):
    rows = [
        {"prompt": "Which unit measures power?", "response": "B", "options": ["joule", "watt"], "why": "1 W = 1 J/s"},
        {"prompt": "What is g near Earth's surface?", "response": "9.8 m/s^2", "domain": "kinematics"},
    ]
    write_jsonl_lines(tmp_path / "qa" / "validation.jsonl", rows)
    columns = {
        "question": "prompt", "answer": "response", "choices": "options", "explanation": "why", "topic": "domain",
    }  # fmt: skip
    data = read(tmp_path / "qa", type="jsonl", name="qa", columns=columns)
    power, gravity = (item.record for item in data.items)
    assert power.answer == "watt"
    assert power.answer_index == 1
    assert power.explanation == "1 W = 1 J/s"
    assert power.original_split == "validation"
    assert data.items[1].topic_from_source is True
    assert gravity.topic == "kinematics"
    assert gravity.choices == []


def test_generic_csv_with_header_and_pipe_choices(tmp_path):
    text = "id,q,a,opts\r\n7,What is the unit of charge?,coulomb,volt|coulomb|ohm\r\n8,Unit of resistance?,ohm,\r\n"
    write_bytes(tmp_path / "train.csv", text.encode("utf-8"))
    columns = {"question": "q", "answer": "a", "choices": "opts"}
    data = read(tmp_path / "train.csv", type="csv", name="extra", columns=columns)
    charge, resistance = (item.record for item in data.items)
    assert charge.id == "extra-train-7"
    assert charge.answer_index == 1
    assert resistance.choices == []
    assert resistance.answer == "ohm"


def test_utf8_bom_is_accepted(tmp_path):
    row = '{"question": "What is the unit of energy?", "answer": "joule"}\n'
    write_bytes(tmp_path / "train.jsonl", b"\xef\xbb\xbf" + row.encode("utf-8"))
    data = read(tmp_path / "train.jsonl", type="jsonl")
    assert data.stats.rejected_total == 0
    assert data.items[0].record.question == "What is the unit of energy?"


def test_cleaning_normalises_text(tmp_path):
    row = {"question": "  What is\u00a0the  unit\tof\u200b power?\x07 ", "answer": "\uff37att"}
    write_jsonl_lines(tmp_path / "train.jsonl", [row])
    record = read(tmp_path / "train.jsonl", type="jsonl").items[0].record
    assert record.question == "What is the unit of power?"
    assert record.answer == "Watt"


@pytest.mark.parametrize("source_type", ["sciq", "arc", "mmlu", "scienceqa", "physics_scienceqa"])
def test_unknown_split_is_config_error(data_root, source_type):
    from physlora.errors import ConfigError

    folder = {"physics_scienceqa": "physics-scienceqa"}.get(source_type, source_type)
    with pytest.raises(ConfigError, match="unknown split 'holdout'"):
        read(data_root / folder, type=source_type, splits=["holdout"])
