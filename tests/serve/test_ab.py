"""Blind A/B test: the page, blind presentation, SQLite rows written by ratings, and `physlora ab report`."""

from __future__ import annotations

import csv
import json
import shutil
import sqlite3

import pytest
from serve_helpers import run_with_client
from typer.testing import CliRunner

from physlora.cli import app as cli_app
from physlora.errors import DataError, RunFolderError
from physlora.serve.abreport import summarize_ratings, wilson_interval, write_ab_report
from physlora.serve.abstore import AbStore
from physlora.serve.app import create_app
from physlora.serve.registry import AdapterRegistry, AdapterSpec
from physlora.serve.server import attach_ab_page
from physlora.serve.tinyrun import QUESTIONS

N_ITEMS = len(QUESTIONS)


def _db_rows(db_path) -> list[dict]:
    with sqlite3.connect(db_path) as connection:
        connection.row_factory = sqlite3.Row
        return [dict(row) for row in connection.execute("SELECT * FROM ratings ORDER BY id")]


def _ab_app(registry, db_path, adapter="mechanics"):
    app = create_app(registry)
    attach_ab_page(app, registry, adapter, db_path)
    return app


def _expected_answer(registry, adapter: str, side: str, question: str) -> str:
    settings = registry.settings(adapter)
    model = "base" if side == "base" else adapter
    prompt = registry.prompt_for(adapter, question)
    limit = min(settings.default_max_new_tokens, 256)
    return registry.generate(model, [prompt], limit, settings.max_seq_length)[0].text


def test_ab_page_is_self_contained(registry, tmp_path):
    async def scenario(client):
        return await client.get("/ab")

    response = run_with_client(_ab_app(registry, tmp_path / "ab.sqlite"), scenario)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "/ab/api/next" in page
    assert "http://" not in page
    assert "https://" not in page
    assert "<script src" not in page
    assert 'href="/' not in page


def test_rating_posts_write_rows(registry, tmp_path):
    db_path = tmp_path / "ab.sqlite"

    async def scenario(client):
        presented = (await client.get("/ab/api/next", params={"rater": "alice"})).json()
        saved = await client.post("/ab/api/rate", json={"token": presented["token"], "choice": "A", "comment": " clearer "})
        again = await client.post("/ab/api/rate", json={"token": presented["token"], "choice": "B"})
        return presented, saved, again

    presented, saved, again = run_with_client(_ab_app(registry, db_path), scenario)
    assert presented["done"] is False
    assert presented["total"] == N_ITEMS
    assert set(presented) == {"done", "token", "item_id", "question", "answers", "rated", "total"}
    assert set(presented["answers"]) == {"A", "B"}
    assert saved.status_code == 200
    assert again.status_code == 400
    assert again.json()["error"]["param"] == "token"

    [row] = _db_rows(db_path)
    assert row["rater"] == "alice"
    assert row["item_id"] == presented["item_id"]
    assert row["choice"] == "A"
    assert row["comment"] == "clearer"
    assert row["preferred"] == row["a_model"]
    assert {row["a_model"], row["b_model"]} == {"base", "adapted"}
    assert row["created_at"]
    # The stored sides must be the models that produced the presented answers.
    assert presented["answers"]["A"] == _expected_answer(registry, "mechanics", row["a_model"], presented["question"])
    assert presented["answers"]["B"] == _expected_answer(registry, "mechanics", row["b_model"], presented["question"])


def test_all_items_rated_then_done(registry, tmp_path):
    db_path = tmp_path / "ab.sqlite"

    async def scenario(client):
        seen = []
        for _ in range(N_ITEMS):
            presented = (await client.get("/ab/api/next", params={"rater": "bob"})).json()
            seen.append(presented["item_id"])
            await client.post("/ab/api/rate", json={"token": presented["token"], "choice": "tie"})
        final = (await client.get("/ab/api/next", params={"rater": "bob"})).json()
        other = (await client.get("/ab/api/next", params={"rater": "carol"})).json()
        return seen, final, other

    seen, final, other = run_with_client(_ab_app(registry, db_path), scenario)
    assert sorted(seen) == sorted(f"tiny-test-{index}" for index in range(N_ITEMS))
    assert final == {"done": True, "rated": N_ITEMS, "total": N_ITEMS}
    assert other["done"] is False
    assert len(_db_rows(db_path)) == N_ITEMS


@pytest.mark.parametrize(
    "request_kind, payload, param",
    [
        ("next", {"rater": ""}, "rater"),
        ("next", {"rater": "x" * 65}, "rater"),
        ("rate", {"token": "unknown", "choice": "A"}, "token"),
        ("rate", {"token": "TOKEN", "choice": "C"}, "choice"),
    ],
)
def test_invalid_ab_requests_are_400(registry, tmp_path, request_kind, payload, param):
    async def scenario(client):
        presented = (await client.get("/ab/api/next", params={"rater": "dave"})).json()
        if request_kind == "next":
            return await client.get("/ab/api/next", params=payload)
        body = {**payload, "token": presented["token"] if payload["token"] == "TOKEN" else payload["token"]}
        return await client.post("/ab/api/rate", json=body)

    response = run_with_client(_ab_app(registry, tmp_path / "ab.sqlite"), scenario)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


def test_precomputed_predictions_are_shown(serve_runs, tmp_path):
    run_copy = tmp_path / "run"
    shutil.copytree(serve_runs["mechanics"], run_copy)
    items = [json.loads(line) for line in (run_copy / "data" / "test.jsonl").read_text(encoding="utf-8").splitlines()]
    with open(run_copy / "predictions.jsonl", "w", encoding="utf-8") as handle:
        for item in items:
            row = {"id": item["id"], "question": item["question"], "base": {"answer": f"base says {item['id']}"},
                   "adapted": {"answer": f"adapted says {item['id']}"}}
            handle.write(json.dumps(row) + "\n")
    app = _ab_app(AdapterRegistry.load([AdapterSpec("mechanics", run_copy)]), tmp_path / "ab.sqlite")

    async def scenario(client):
        presented = (await client.get("/ab/api/next", params={"rater": "erin"})).json()
        await client.post("/ab/api/rate", json={"token": presented["token"], "choice": "B"})
        return presented

    presented = run_with_client(app, scenario)
    [row] = _db_rows(tmp_path / "ab.sqlite")
    assert presented["answers"]["A"] == f"{row['a_model']} says {presented['item_id']}"
    assert presented["answers"]["B"] == f"{row['b_model']} says {presented['item_id']}"
    assert row["preferred"] == row["b_model"]


def _hand_made_db(path, run_dir, outcomes):
    """A store with one rating per (a_model, choice) pair in `outcomes`, by two raters."""
    store = AbStore(path)
    store.set_meta(run_dir=str(run_dir), adapter="mechanics")
    for index, (a_model, choice) in enumerate(outcomes):
        token = f"token-{index}"
        store.add_presentation(token, f"rater-{index % 2}", f"item-{index}", a_model)
        store.add_rating(token, choice, "")
    return store


# 6 adapted wins, 3 base wins and 1 tie, with the adapted model on both sides.
OUTCOMES = ([("adapted", "A")] * 3 + [("base", "B")] * 3 + [("base", "A")] * 2 + [("adapted", "B")] + [("base", "tie")])


def test_wilson_interval_known_values():
    interval = wilson_interval(6, 10)
    assert interval["value"] == pytest.approx(0.6)
    assert interval["low"] == pytest.approx(0.3127, abs=1e-4)
    assert interval["high"] == pytest.approx(0.8318, abs=1e-4)
    assert wilson_interval(0, 5)["low"] == pytest.approx(0.0, abs=1e-12)
    assert wilson_interval(5, 5)["high"] == pytest.approx(1.0)


def test_ab_report_on_hand_made_db(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    db_path = tmp_path / "ab.sqlite"
    _hand_made_db(db_path, run_dir, OUTCOMES)

    path, report = write_ab_report(db_path)
    assert path == run_dir / "ab.json"
    assert json.loads(path.read_text(encoding="utf-8")) == report
    assert report["counts"] == {"win": 6, "tie": 1, "loss": 3}
    assert report["n_judgements"] == 10
    assert report["n_raters"] == 2
    assert report["rates"]["win"]["value"] == pytest.approx(0.6)
    assert report["rates"]["win"]["low"] == pytest.approx(0.3127, abs=1e-4)
    assert report["rates"]["win"]["high"] == pytest.approx(0.8318, abs=1e-4)
    assert report["rates"]["loss"]["value"] == pytest.approx(0.3)
    assert report["win_rate_without_ties"]["value"] == pytest.approx(6 / 9)
    assert report["interval"] == {"method": "wilson", "confidence": 0.95}
    assert report["adapter"] == "mechanics"


def test_ab_report_cli_exports_csv(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    other_run = tmp_path / "other"
    other_run.mkdir()
    db_path = tmp_path / "ab.sqlite"
    _hand_made_db(db_path, run_dir, OUTCOMES)
    out = tmp_path / "ratings.csv"

    result = CliRunner().invoke(cli_app, ["ab", "report", str(db_path), "--run", str(other_run), "--export", "csv",
                                          "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "win: 60.0% (95% Wilson interval 31.3% to 83.2%)" in result.stdout
    assert (other_run / "ab.json").is_file()
    assert not (run_dir / "ab.json").exists()
    with open(out, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 10
    assert [row["preferred"] for row in rows].count("adapted") == 6


def test_ab_report_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        write_ab_report(tmp_path / "absent.sqlite")
    AbStore(tmp_path / "empty.sqlite")
    with pytest.raises(RunFolderError, match="pass --run"):
        write_ab_report(tmp_path / "empty.sqlite")
    with pytest.raises(DataError, match="no ratings"):
        write_ab_report(tmp_path / "empty.sqlite", run_dir=tmp_path)
    with pytest.raises(DataError):
        summarize_ratings([])
