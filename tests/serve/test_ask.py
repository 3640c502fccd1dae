"""`physlora ask`: one question, --base, and files of questions answered in batches."""

from __future__ import annotations

import csv
import json

import pytest
from typer.testing import CliRunner

from physlora.cli import app
from physlora.errors import DataError
from physlora.serve.ask import answer_questions, load_run_registry, read_questions

QUESTIONS = [
    "What is the SI unit of force?",
    "Why does a ball thrown upwards slow down?",
    "What is the speed of light in a vacuum?",
    "What does a voltmeter measure?",
    "How does a lever reduce the force needed to lift a load?",
]


@pytest.fixture(scope="module")
def run_dir(serve_runs):
    return serve_runs["mechanics"]


@pytest.fixture(scope="module")
def run_registry(run_dir):
    return load_run_registry(run_dir)


def _ask(*args: str):
    result = CliRunner().invoke(app, ["ask", *args])
    assert result.exit_code == 0, result.output
    return result


def test_ask_adapted_and_base_differ(run_dir, run_registry):
    adapted = _ask(str(run_dir), QUESTIONS[0], "--max-new-tokens", "8").stdout.strip()
    base = _ask(str(run_dir), QUESTIONS[0], "--base", "--max-new-tokens", "8").stdout.strip()
    assert adapted
    assert base
    assert adapted != base
    assert adapted == answer_questions(run_registry, [QUESTIONS[0]], max_new_tokens=8)[0].text
    assert base == answer_questions(run_registry, [QUESTIONS[0]], base=True, max_new_tokens=8)[0].text


def test_ask_jsonl_file_matches_inputs(run_dir, run_registry, tmp_path):
    questions_file = tmp_path / "questions.jsonl"
    rows = [{"id": f"q{index}", "question": question} for index, question in enumerate(QUESTIONS)]
    questions_file.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    out = tmp_path / "answers.jsonl"
    result = _ask(str(run_dir), "--file", str(questions_file), "--out", str(out), "--batch-size", "2",
                  "--max-new-tokens", "6")
    assert str(out) in result.stdout

    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [line["id"] for line in lines] == [row["id"] for row in rows]
    assert [line["question"] for line in lines] == QUESTIONS
    assert all(line["model"] == "adapted" for line in lines)
    assert all(1 <= line["completion_tokens"] <= 6 for line in lines)
    # Batched answers equal one-by-one answers: padding inside a batch must not change the result.
    single = [answer_questions(run_registry, [question], max_new_tokens=6)[0].text for question in QUESTIONS]
    assert [line["answer"] for line in lines] == single


def test_ask_csv_file_with_base(run_dir, run_registry, tmp_path):
    questions_file = tmp_path / "questions.csv"
    with open(questions_file, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["topic", "question"])
        writer.writeheader()
        writer.writerows({"topic": "mechanics", "question": question} for question in QUESTIONS[:3])
    out = tmp_path / "answers.jsonl"
    _ask(str(run_dir), "--file", str(questions_file), "--out", str(out), "--base", "--max-new-tokens", "6")

    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [line["question"] for line in lines] == QUESTIONS[:3]
    assert all("id" not in line for line in lines)
    assert all(line["model"] == "base" for line in lines)
    expected = answer_questions(run_registry, QUESTIONS[:3], base=True, max_new_tokens=6)
    assert [line["answer"] for line in lines] == [answer.text for answer in expected]


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("q.csv", "text\nWhat is a newton?\n", "no 'question' column"),
        ("q.jsonl", '{"question": "ok"}\n{"text": "no question"}\n', "line 2: missing or empty 'question'"),
        ("q.jsonl", '{"question": "ok"}\n{broken\n', "line 2: invalid JSON"),
        ("q.txt", "What is a newton?\n", "use .jsonl or .csv"),
    ],
)
def test_read_questions_rejects_bad_files(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        read_questions(path)


def test_ask_needs_question_or_file(run_dir, tmp_path):
    neither = CliRunner().invoke(app, ["ask", str(run_dir)])
    assert neither.exit_code == 2
    assert "give either a QUESTION or --file" in neither.output
    without_out = CliRunner().invoke(app, ["ask", str(run_dir), "--file", str(tmp_path / "q.jsonl")])
    assert without_out.exit_code == 2
    assert "--file needs --out" in without_out.output


def test_ask_missing_run_folder(tmp_path):
    result = CliRunner().invoke(app, ["ask", str(tmp_path / "absent"), "What is a newton?"])
    assert result.exit_code == 2
    assert "run folder" in result.output
