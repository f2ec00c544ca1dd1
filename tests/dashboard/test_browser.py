"""End to end in a real browser: the dashboard (``streamlit run``) and a real Celery worker share a
SQLite database and a filesystem broker. A sweep is submitted from the form, its runs are trained
by the worker until they succeed, and the Compare page draws every chart with no error element.
Screenshots go to tests/artifacts/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from db import store
from tests.dashboard.browser import REPO, chromium, error_texts, running_app, wait_idle

ARTIFACTS = REPO / "tests" / "artifacts"
pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _fill(page, label: str, value: str) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(value)
    box.press("Enter")
    wait_idle(page)


def _no_errors(page, where: str) -> None:
    errors = error_texts(page)
    assert not errors, f"{where}: {errors}"


def test_submit_from_the_form_train_and_compare(sqlite_url, fs_broker, start_worker, tmp_path):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    # the worker starts only once the Runs page is open, so the page must show the runs finish live
    env = {**fs_broker.env, "RNNLAB_DATABASE_URL": sqlite_url}
    with running_app(env, tmp_path / "app.log") as url:
        pw, browser = chromium()
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100}, accept_downloads=True)
            page.goto(f"{url}/new")
            wait_idle(page)
            _no_errors(page, "new experiment")
            page.get_by_role("radio", name="Sweep", exact=True).click()
            wait_idle(page)
            _fill(page, "Values of cell", "rnn, lstm")
            _fill(page, "Seeds", "0")
            for label, value in [("Sequence length T", "12"), ("Hidden size", "8"), ("Epochs", "2"),
                                 ("Steps per epoch", "3"), ("Batch size", "8"), ("Probe batch", "4")]:
                _fill(page, label, value)
            _no_errors(page, "filled form")
            page.screenshot(path=str(ARTIFACTS / "new_experiment.png"), full_page=True)
            page.get_by_role("button", name=re.compile(r"Submit 2 run")).click()
            wait_idle(page)
            done = page.get_by_text(re.compile(r"Submitted 2 run\(s\): \d+, \d+"))
            ids = [int(i) for i in re.findall(r"\d+", done.inner_text().split(":", 1)[1])]
            assert len(ids) == 2

            # the Runs page, opened now and never reloaded: its live fragment shows the runs finish
            page.goto(f"{url}/")  # Runs is the default page, served at /
            wait_idle(page)
            page.get_by_text(re.compile(r"queued: 2")).wait_for(timeout=30_000)
            worker = start_worker(sqlite_url, fs_broker)
            page.get_by_text(re.compile(r"succeeded: 2")).wait_for(timeout=240_000)
            statuses = [store.get_run(i, url=sqlite_url)["status"] for i in ids]
            assert statuses == ["succeeded", "succeeded"], f"{statuses}\n{worker.log()[-3000:]}"
            _no_errors(page, "runs")
            page.screenshot(path=str(ARTIFACTS / "runs.png"))

            page.goto(f"{url}/compare?runs={ids[0]},{ids[1]}")
            wait_idle(page)
            drawn = 0
            for tab in ["Loss & norms", "Spectra & health", "Per-timestep profile", "Heatmaps", "Histograms",
                        "Histograms over time", "Spec diff"]:
                page.get_by_role("tab", name=tab, exact=True).click()
                wait_idle(page)
                if tab != "Spec diff":
                    page.locator("[role=tabpanel]:not([hidden]) .js-plotly-plot").first.wait_for(timeout=30_000)
                    page.wait_for_timeout(500)
                drawn += page.locator("[role=tabpanel]:not([hidden]) .js-plotly-plot").count()
                _no_errors(page, f"compare / {tab}")
                page.screenshot(path=str(ARTIFACTS / f"compare_{tab.split()[0].lower()}.png"))
                if tab == "Heatmaps":  # the open tab is part of the shareable URL
                    assert "view=Heatmaps" in page.url
            assert drawn >= 11, drawn
            assert f"runs={ids[0]}%2C{ids[1]}" in page.url or f"runs={ids[0]},{ids[1]}" in page.url
            # every chart downloads as SVG once the sidebar switch says so (PNG is the default)
            page.get_by_text("SVG", exact=True).click()
            wait_idle(page)
            page.get_by_role("tab", name="Loss & norms").click()
            wait_idle(page)
            plot = page.locator(".js-plotly-plot").first
            plot.hover()
            with page.expect_download(timeout=30_000) as download:
                page.locator(".js-plotly-plot .modebar-btn[data-title*='Download']").first.click()
            saved = ARTIFACTS / download.value.suggested_filename
            download.value.save_as(saved)
            assert saved.suffix == ".svg" and saved.read_text().startswith("<svg")

            page.goto(f"{url}/run?run={ids[1]}")
            wait_idle(page)
            _no_errors(page, "run detail")
            page.goto(f"{url}/strategies?runs={ids[0]},{ids[1]}&factor=cell")
            wait_idle(page)
            _no_errors(page, "strategies")
            page.screenshot(path=str(ARTIFACTS / "strategies.png"))
        finally:
            browser.close()
            pw.stop()
    assert Path(ARTIFACTS / "compare_heatmaps.png").exists()
