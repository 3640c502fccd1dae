"""End to end: a real `physlora serve` process on 127.0.0.1 and headless Chromium rating items on /ab."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from physlora.serve.abreport import write_ab_report
from physlora.serve.process import start_server_process, stop_server_process

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
# A copy for people to look at after a run; the test's own screenshot goes to its tmp_path.
# PHYSLORA_AB_SCREENSHOT chooses another path, for example docs/images/ab-page.png.
SHARED_SCREENSHOT = Path(os.environ.get("PHYSLORA_AB_SCREENSHOT", "/tmp/physlora-ab.png"))
CHOICES = [("#choose-a", "A"), ("#choose-b", "B"), ("#choose-tie", "tie"), ("#choose-a", "A")]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.is_file(), reason="/usr/bin/chromium not found; install it with `apt-get install -y chromium`"
)


@pytest.fixture
def server(serve_runs, tmp_path):
    server = start_server_process(
        ["--adapter", f"mechanics={serve_runs['mechanics']}", "--ab-db", str(tmp_path / "ab.sqlite")], tmp_path / "server"
    )
    yield server
    stop_server_process(server)


def test_rating_in_chromium_stores_rows(server, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    # Each rating waits for the server to generate the next pair of answers. Playwright's default 5 s
    # wait fails on a busy machine, so the expectations wait up to 60 s.
    sync_api.expect.set_options(timeout=60_000)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 700})
            page.goto(f"{server.url}/ab")
            page.fill("#rater", "browser-rater")
            page.dispatch_event("#rater", "change")
            sync_api.expect(page.locator("#progress")).to_have_text("0 of 6 rated")
            for index, (button, _) in enumerate(CHOICES):
                sync_api.expect(page.locator("#answer-a")).not_to_be_empty()
                if index == 1:
                    page.fill("#comment", "B names a unit")
                page.click(button)
                sync_api.expect(page.locator("#progress")).to_have_text(f"{index + 1} of 6 rated")
            sync_api.expect(page.locator("#status")).to_have_text("")
            page.screenshot(path=str(tmp_path / "ab.png"), full_page=True)
        finally:
            browser.close()
    SHARED_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(tmp_path / "ab.png", SHARED_SCREENSHOT)
    assert (tmp_path / "ab.png").stat().st_size > 0

    with sqlite3.connect(tmp_path / "ab.sqlite") as connection:
        connection.row_factory = sqlite3.Row
        rows = [dict(row) for row in connection.execute("SELECT * FROM ratings ORDER BY id")]
    assert [row["choice"] for row in rows] == [choice for _, choice in CHOICES]
    assert {row["rater"] for row in rows} == {"browser-rater"}
    assert len({row["item_id"] for row in rows}) == len(CHOICES)
    assert rows[1]["comment"] == "B names a unit"

    report_dir = tmp_path / "report"
    report_dir.mkdir()
    _, report = write_ab_report(tmp_path / "ab.sqlite", run_dir=report_dir)
    wins = sum(row["preferred"] == "adapted" for row in rows)
    assert report["counts"]["win"] == wins
    assert report["counts"]["tie"] == 1
    assert report["rates"]["win"]["value"] == pytest.approx(wins / len(CHOICES))
