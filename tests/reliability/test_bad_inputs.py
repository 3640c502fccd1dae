"""Every case of the bad-input corpus (bad_inputs/cases.yaml) through the real `physlora` console entry.

A case passes when the command exits with the expected code and stderr contains the expected texts and
no traceback. A failing command must print exactly one `error:` message. A data build must count every
skipped row by reason in audit.json, with counts that reconcile.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml
from console_runs import ConsoleResult, run_in_process, run_subprocess

CORPUS = Path(__file__).resolve().parent / "bad_inputs"
MANIFEST = CORPUS / "cases.yaml"
CASES: list[dict[str, Any]] = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))["cases"]
CASE_KEYS = {"id", "what", "case", "generate", "args", "env", "exit", "stderr", "audit", "runner", "xfail"}
RECONCILED_FIELDS = (
    "rejected", "filtered_non_physics", "duplicates_removed", "subsampled_away", "leakage_removed", "kept"
)


def write_large_row(folder: Path) -> Path:
    """Three ordinary rows and one whose question is about 5 MB of text on a single line."""
    filler = "A charged particle moves through a uniform magnetic field at constant speed. " * 65_000
    rows = [
        {"id": "g1", "question": "What is the SI unit of force?", "answer": "newton"},
        {"id": "big", "question": filler + "What is the shape of its path?", "answer": "a circle"},
        {"id": "g2", "question": "What is the SI unit of energy?", "answer": "joule"},
        {"id": "g3", "question": "What is the SI unit of power?", "answer": "watt"},
    ]
    path = folder / "large_row.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    assert path.stat().st_size > 4_000_000
    return path


GENERATORS: dict[str, Callable[[Path], Path]] = {"large_row": write_large_row}


def flatten(args: list[Any]) -> list[str]:
    """Arguments of a case; nested lists come from YAML aliases of shared argument prefixes."""
    flat = []
    for arg in args:
        flat.extend(flatten(arg) if isinstance(arg, list) else [str(arg)])
    return flat


def substitute(text: str, values: dict[str, str]) -> str:
    # str.format would trip over the braces of YAML flow mappings inside --set values.
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


def case_params() -> list:
    params = []
    for case in CASES:
        marks = [pytest.mark.xfail(reason=case["xfail"], strict=True)] if "xfail" in case else []
        params.append(pytest.param(case, id=case["id"], marks=marks))
    return params


def prepare_input(case: dict[str, Any], folder: Path) -> Path | None:
    """Copy the case's file or folder into `folder` (or generate it there) and return the copy."""
    folder.mkdir()
    if "generate" in case:
        return GENERATORS[case["generate"]](folder)
    if "case" not in case:
        return None
    source = CORPUS / case["case"]
    target = folder / source.name
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        shutil.copy2(source, target)
    return target


def run_case(case: dict[str, Any], values: dict[str, str]) -> ConsoleResult:
    args = [substitute(arg, values) for arg in flatten(case["args"])]
    env = {key: None if value is None else substitute(str(value), values) for key, value in case.get("env", {}).items()}
    if case.get("runner", "in-process") == "subprocess":
        return run_subprocess(args, env)
    return run_in_process(args, env)


def check_audit(audit_file: Path, expected: dict[str, Any], input_path: Path | None) -> None:
    audit = json.loads(audit_file.read_text(encoding="utf-8"))
    source = audit["sources"]["bad"]
    assert source["read"] == expected["read"]
    assert source["rejected_by_reason"] == expected["rejected"]
    assert source["kept"] == expected["kept"]
    if "duplicates_removed" in expected:
        assert source["duplicates_removed"] == expected["duplicates_removed"]
    if "ids_renamed" in expected:
        assert audit["duplicates"]["ids_renamed"] == expected["ids_renamed"]

    # Every rejected row is kept as an example naming its file and line.
    for reason, examples in source["rejected_examples"].items():
        assert examples, reason
        for example in examples:
            assert str(input_path) in example, example

    for label, counts in audit["sources"].items():
        accounted = sum(counts[field] for field in RECONCILED_FIELDS)
        assert counts["read"] == accounted, f"{label}: read {counts['read']} but {accounted} accounted for"
    assert audit["checks"]["counts_reconcile"] is True
    assert sum(audit["splits"].values()) == sum(counts["kept"] for counts in audit["sources"].values())


@pytest.mark.parametrize("case", case_params())
def test_bad_input(case, tmp_path, request):
    values = {"tmp": str(tmp_path), "corpus": str(CORPUS)}
    if "{train_data}" in json.dumps(case["args"]):
        values["train_data"] = str(request.getfixturevalue("train_data"))
    if "tiny" in flatten(case["args"]) or "--resume" in flatten(case["args"]):
        request.getfixturevalue("t5_tokenizer_path")  # sets PHYSLORA_T5_TOKENIZER for preset tiny
    input_path = prepare_input(case, tmp_path / "input")
    if input_path is not None:
        values["case"] = str(input_path)

    result = run_case(case, values)

    assert result.exit_code == case["exit"], result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert "Traceback" not in result.stdout, result.stdout
    for text in case["stderr"]:
        assert substitute(text, values) in result.stderr, result.stderr
    if case["exit"] != 0:
        assert result.stderr.count("error:") == 1, result.stderr
    if "audit" in case:
        check_audit(tmp_path / "out" / "audit.json", case["audit"], input_path)


def test_corpus_size_and_manifest():
    ids = [case["id"] for case in CASES]
    assert len(ids) >= 30
    assert len(set(ids)) == len(ids)
    for case in CASES:
        assert set(case) <= CASE_KEYS, case["id"]
        assert {"id", "what", "args", "exit", "stderr"} <= set(case), case["id"]
        if "case" in case:
            assert (CORPUS / case["case"]).exists(), case["id"]


def test_corpus_has_no_unused_files():
    used = [CORPUS / case["case"] for case in CASES if "case" in case]
    for path in CORPUS.rglob("*"):
        if path.is_dir() or path.parent == CORPUS:
            continue
        assert any(path == entry or entry in path.parents for entry in used), f"{path} belongs to no case"


def test_debug_shows_traceback(tmp_path):
    config = tmp_path / "unknown_key.yaml"
    shutil.copy2(CORPUS / "config" / "unknown_key.yaml", config)
    result = run_subprocess(["--debug", "train", "--config", str(config)])
    assert result.exit_code == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "physlora.errors.ConfigError: " in result.stderr
    assert "training.batchsize: unknown key" in result.stderr
