"""`physlora ab report DB` writes RUN/ab.json and rebuilds the run's report with a blind A/B section."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from physlora.cli import app
from physlora.report import formatting as fmt
from physlora.report.build import write_report
from physlora.serve.abstore import AbStore
from physlora.serve.tinyrun import build_tiny_run

# 5 adapted wins, 2 base wins and 1 tie; the adapted model is shown on both sides.
OUTCOMES = [("adapted", "A")] * 3 + [("base", "B")] * 2 + [("base", "A")] * 2 + [("base", "tie")]


def rated_db(path, run_dir):
    store = AbStore(path)
    store.set_meta(run_dir=str(run_dir), adapter="general")
    for index, (a_model, choice) in enumerate(OUTCOMES):
        store.add_presentation(f"token-{index}", f"rater-{index % 3}", f"item-{index}", a_model)
        store.add_rating(f"token-{index}", choice, "")


def section_of(report: str, heading: str) -> str:
    return report.split(heading, 1)[1].split("\n## ", 1)[0]


def test_ab_report_rebuilds_run_report(tmp_path, t5_tokenizer_path):
    run_dir = build_tiny_run(tmp_path / "run")
    rated_db(tmp_path / "ab.sqlite", run_dir)

    result = CliRunner().invoke(app, ["ab", "report", str(tmp_path / "ab.sqlite")])
    assert result.exit_code == 0, result.output
    assert f"run report: {run_dir / 'report.md'}" in result.output

    ab = json.loads((run_dir / "ab.json").read_text(encoding="utf-8"))
    assert ab["counts"] == {"win": 5, "tie": 1, "loss": 2}
    section = section_of((run_dir / "report.md").read_text(encoding="utf-8"), "## Blind A/B ratings")
    assert "8 judgements of 8 items by 3 raters" in section
    for name in ("win", "tie", "loss"):
        assert f"| {name} | {ab['counts'][name]} | {fmt.interval(ab['rates'][name])} |" in section
    assert f"| win without ties | 5 | {fmt.interval(ab['win_rate_without_ties'])} |" in section
    assert "Blind A/B ratings" in (run_dir / "report.html").read_text(encoding="utf-8")


def test_report_without_ab_file_has_no_section(tmp_path, t5_tokenizer_path):
    run_dir = build_tiny_run(tmp_path / "run")
    report = write_report(run_dir).read_text(encoding="utf-8")
    assert "Blind A/B ratings" not in report
    assert "Topic adapters and ensemble" not in report


def test_unreadable_ab_file_is_named(tmp_path, t5_tokenizer_path):
    run_dir = build_tiny_run(tmp_path / "run")
    (run_dir / "ab.json").write_text("{not json", encoding="utf-8")
    report = write_report(run_dir).read_text(encoding="utf-8")
    section = section_of(report, "## Blind A/B ratings")
    assert "ab.json is unreadable" in section
    assert f"physlora ab report DB --run {run_dir}" in section
