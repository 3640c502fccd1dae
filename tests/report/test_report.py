"""write_report on a real tiny run: files, consistency checks, missing files, tampering, CLI."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from physlora.cli import app
from physlora.errors import RunFolderError
from physlora.report.build import write_report

PLOTS = ["loss_per_step.png", "validation_loss.png", "gradient_norm.png", "accuracy_by_topic.png"]


def check_results(markdown: str) -> dict[str, str]:
    """Consistency-check name -> PASS / FAIL / SKIPPED, read from the report's checks table."""
    section = markdown.split("## Consistency checks", 1)[1].split("\n## ", 1)[0]
    results = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[1] in {"PASS", "FAIL", "SKIPPED"}:
            results[cells[0]] = cells[1]
    return results


def result_of(results: dict[str, str], fragment: str) -> str:
    matches = [status for name, status in results.items() if fragment in name]
    assert len(matches) == 1, (fragment, results)
    return matches[0]


def test_report_writes_markdown_html_and_plots(run_copy):
    path = write_report(run_copy)
    assert path == run_copy / "report.md"
    markdown = path.read_text(encoding="utf-8")
    for name in PLOTS:
        assert (run_copy / "plots" / name).stat().st_size > 1000
        assert f"(plots/{name})" in markdown
    for heading in ["Findings", "Configuration", "Data audit", "Parameters", "Training", "Gradient norms",
                    "Evaluation", "Example predictions", "Consistency checks", "Missing measurements"]:
        assert f"## {heading}\n" in markdown


def test_report_shows_training_processes(run_copy):
    markdown = write_report(run_copy).read_text(encoding="utf-8")
    assert "| training processes | 1 (data-parallel) |" in markdown

    summary_path = run_copy / "summary.json"
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    summary["distributed"] = {"engine": "fsdp", "processes": 2}
    summary_path.write_text(json.dumps(summary), encoding="utf-8")
    assert "| training processes | 2 (fsdp) |" in write_report(run_copy).read_text(encoding="utf-8")


def test_report_html_is_self_contained(run_copy):
    write_report(run_copy)
    page = (run_copy / "report.html").read_text(encoding="utf-8")
    assert page.count('src="data:image/png;base64,') == len(PLOTS)
    assert not re.search(r'src="(?!data:)', page)
    assert "<details><summary>config.yaml (complete)</summary>" in page


def test_report_checks_pass_on_real_run(run_copy):
    results = check_results(write_report(run_copy).read_text(encoding="utf-8"))
    assert len(results) == 7
    assert set(results.values()) == {"PASS"}, results


def test_report_shows_partial_epoch_and_status(run_copy):
    markdown = write_report(run_copy).read_text(encoding="utf-8")
    assert "| 2 (partial) |" in markdown
    assert "Status max_steps after 5 optimizer steps" in markdown


def test_report_without_eval_lists_it_missing(run_copy):
    (run_copy / "eval.json").unlink()
    (run_copy / "predictions.jsonl").unlink()
    markdown = write_report(run_copy).read_text(encoding="utf-8")
    missing = markdown.split("## Missing measurements", 1)[1]
    assert "eval.json: not found" in missing
    assert "predictions.jsonl: not found" in missing
    assert f"Missing: eval.json not found; run `physlora eval {run_copy}`." in markdown
    assert not (run_copy / "plots" / "accuracy_by_topic.png").exists()
    results = check_results(markdown)
    assert result_of(results, "recomputation from predictions.jsonl") == "SKIPPED"
    assert "FAIL" not in results.values()


def test_report_without_audit_or_summary(run_copy):
    (run_copy / "data" / "audit.json").unlink()
    (run_copy / "summary.json").unlink()
    markdown = write_report(run_copy).read_text(encoding="utf-8")
    assert "Missing: no data audit at" in markdown
    assert "Missing: summary.json has no parameter counts." in markdown
    assert "- summary.json: not found" in markdown
    assert "- data/audit.json: not found" in markdown


def test_report_audit_with_missing_keys(run_copy):
    audit_path = run_copy / "data" / "audit.json"
    audit = json.loads(audit_path.read_text(encoding="utf-8"))
    del audit["duplicates"], audit["tokens"]
    audit_path.write_text(json.dumps(audit), encoding="utf-8")
    markdown = write_report(run_copy).read_text(encoding="utf-8")
    assert "Missing from audit.json: duplicates, tokens." in markdown


def test_report_unreadable_json_listed(run_copy):
    (run_copy / "eval.json").write_text("{not json", encoding="utf-8")
    markdown = write_report(run_copy).read_text(encoding="utf-8")
    assert "- eval.json: unreadable" in markdown


def tamper_json(path, change):
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data), encoding="utf-8")


def test_report_flags_tampered_accuracy(run_copy):
    def raise_accuracy(data):
        data["metrics"]["overall"]["exact_match"]["adapted"]["value"] += 0.25

    tamper_json(run_copy / "eval.json", raise_accuracy)
    markdown = write_report(run_copy).read_text(encoding="utf-8")
    assert result_of(check_results(markdown), "recomputation from predictions.jsonl") == "FAIL"
    assert "overall exact_match adapted" in markdown
    assert "Consistency checks FAILED: eval.json metrics equal their recomputation" in markdown


def test_report_flags_tampered_epoch(run_copy):
    path = run_copy / "metrics.jsonl"
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record["type"] == "epoch" and record["epoch"] == 1:
            record["val_loss"] += 0.5
        lines.append(json.dumps(record))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    results = check_results(write_report(run_copy).read_text(encoding="utf-8"))
    assert result_of(results, "summary.json epoch table") == "FAIL"


def test_report_flags_tampered_step_loss(run_copy):
    path = run_copy / "metrics.jsonl"
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    next(record for record in records if record["type"] == "step")["loss"] += 1.0
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    results = check_results(write_report(run_copy).read_text(encoding="utf-8"))
    assert result_of(results, "token-weighted mean of its step losses") == "FAIL"


def test_report_flags_missing_prediction_line(run_copy):
    path = run_copy / "predictions.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    results = check_results(write_report(run_copy).read_text(encoding="utf-8"))
    assert result_of(results, "item counts match predictions.jsonl") == "FAIL"


def test_report_flags_wrong_trainable_count(run_copy):
    tamper_json(run_copy / "summary.json", lambda data: data["params"].update(trainable=data["params"]["trainable"] + 1))
    markdown = write_report(run_copy).read_text(encoding="utf-8")
    assert result_of(check_results(markdown), "LoRA parameter arithmetic") == "FAIL"
    assert "does NOT equal the trainable count" in markdown


def test_report_flags_group_count_mismatch(run_copy):
    def drop_topic(data):
        data["metrics"]["by_topic"].popitem()

    tamper_json(run_copy / "eval.json", drop_topic)
    results = check_results(write_report(run_copy).read_text(encoding="utf-8"))
    assert result_of(results, "per-topic and per-source item counts") == "FAIL"


def test_report_calls_overfitting(run_copy):
    # Make the final validation loss far above the train loss and above the previous epoch.
    def inflate(records):
        final = max(record["epoch"] for record in records if record["type"] == "epoch")
        for record in records:
            if record["type"] == "epoch" and record["epoch"] == final:
                record["val_loss"] = record["train_loss"] * 1.5

    path = run_copy / "metrics.jsonl"
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    inflate(records)
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    tamper_json(run_copy / "summary.json", lambda data: inflate(data["epochs"]))
    markdown = write_report(run_copy).read_text(encoding="utf-8")
    assert "Overfitting at epoch 2: validation loss exceeds train loss by 50.0% and rose over the epoch." in markdown


def test_report_is_deterministic(run_copy):
    first = write_report(run_copy).read_text(encoding="utf-8")
    second = write_report(run_copy).read_text(encoding="utf-8")
    assert first == second


def test_report_missing_run_folder(tmp_path):
    with pytest.raises(RunFolderError, match="not found"):
        write_report(tmp_path / "absent")


def test_report_folder_without_training_files(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunFolderError, match="physlora train"):
        write_report(tmp_path / "empty")


def test_report_imports_no_model_code(run_copy):
    # The report must run where torch is absent: build it in a fresh interpreter and list what got imported.
    script = (
        "import sys; from physlora.report.build import write_report; write_report(sys.argv[1]); "
        "bad = [name for name in sys.modules if name == 'torch' or name.startswith(('physlora.models', "
        "'physlora.train', 'physlora.eval'))]; print(bad)"
    )
    completed = subprocess.run([sys.executable, "-c", script, str(run_copy)], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == "[]", completed.stdout


def test_cli_report_prints_paths(run_copy):
    result = CliRunner().invoke(app, ["report", str(run_copy)])
    assert result.exit_code == 0, result.output
    assert str(run_copy / "report.md") in result.output
    assert str(run_copy / "report.html") in result.output


def test_cli_report_missing_folder(tmp_path):
    result = CliRunner().invoke(app, ["report", str(tmp_path / "absent")])
    assert result.exit_code == RunFolderError.exit_code
    assert "not found" in result.output


def test_report_with_config_only(tmp_path, run_copy):
    # A run folder where training never started: only config.yaml. Every section states what is missing.
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "config.yaml").write_text((run_copy / "config.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    markdown = write_report(bare).read_text(encoding="utf-8")
    assert "Missing: no epoch records in metrics.jsonl or summary.json." in markdown
    assert "Missing: no step records with a gradient norm in metrics.jsonl." in markdown
    assert "Missing: predictions.jsonl not found or empty." in markdown
    for name in ("summary.json", "metrics.jsonl", "eval.json", "predictions.jsonl"):
        assert f"- {name}: not found" in markdown
    assert "| FAIL |" not in markdown
    assert not list((bare / "plots").glob("*.png"))


def test_report_uses_summary_epochs_without_metrics(run_copy):
    (run_copy / "metrics.jsonl").unlink()
    markdown = write_report(run_copy).read_text(encoding="utf-8")
    assert "| 2 (partial) |" in markdown
    assert "- metrics.jsonl: not found" in markdown
