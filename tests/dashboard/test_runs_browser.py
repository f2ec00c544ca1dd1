"""The Runs page in a real browser at 1440 × 900 (``streamlit run`` + headless Chromium): the key
columns fit in the grid's visible width, the filters live in the URL (written by the page, kept
on reload), and a saved view's link opens the page with its filters. Screenshots go to
tests/artifacts/runs_1440.png and runs_saved_view.png."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlparse

import pytest

from tests.dashboard.browser import REPO, chromium, error_texts, running_app, wait_idle
from tests.dashboard.seed import small_lab

ARTIFACTS = REPO / "tests" / "artifacts"
pytestmark = [pytest.mark.browser, pytest.mark.slow]
KEY = ["id", "name", "status", "progress", "loss ÷ baseline", "diagnosis", "tags"]


def _config_widths() -> dict[str, int]:
    """The pixel widths the page gives its columns (read from the page's own column config)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / "dashboard" / "app.py"), default_timeout=60).run()
    return {k: v.get("width") for k, v in json.loads(at.dataframe[0].proto.columns).items()}


def test_key_columns_fit_at_1440_and_the_filters_live_in_the_url(sqlite_url, tmp_path, monkeypatch):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    ids = small_lab(sqlite_url)
    env = {"RNNLAB_DATABASE_URL": sqlite_url, "RNNLAB_HOME": str(tmp_path)}
    monkeypatch.setenv("RNNLAB_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("RNNLAB_HOME", str(tmp_path))
    widths = _config_widths()
    with running_app(env, tmp_path / "app.log") as url:
        pw, browser = chromium()
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.goto(f"{url}/")  # Runs is the default page
            wait_idle(page)
            assert not error_texts(page)
            grid = page.locator("[data-testid=stDataFrame]").first.bounding_box()
            # the row-selection column is 40 px wide or less; every key column ends inside the grid
            # and inside the window
            need = 40 + sum(widths[c] for c in KEY)
            assert need <= grid["width"] and grid["x"] + need <= 1440, (need, grid)
            page.screenshot(path=str(ARTIFACTS / "runs_1440.png"))

            page.goto(f"{url}/?status=succeeded&cell=lstm")
            wait_idle(page)
            assert not error_texts(page)
            assert "2 run(s) match" in page.inner_text("body")
            page.reload()
            wait_idle(page)
            assert parse_qs(urlparse(page.url).query) == {"status": ["succeeded"], "cell": ["lstm"]}
            assert "2 run(s) match" in page.inner_text("body")
            assert len(ids["cells"]) == 6

            # save this view from the sidebar, open the plain page, then the view's link
            page.get_by_label("Name this view").fill("good lstms")
            page.get_by_role("button", name="Save this view").click()
            page.wait_for_timeout(1000)
            wait_idle(page)
            assert not error_texts(page)
            page.goto(f"{url}/")
            wait_idle(page)
            assert "9 run(s) match" in page.inner_text("body")
            page.get_by_role("link", name="good lstms").click()
            page.wait_for_timeout(1000)
            wait_idle(page)
            assert parse_qs(urlparse(page.url).query) == {"status": ["succeeded"], "cell": ["lstm"]}
            assert "2 run(s) match" in page.inner_text("body")
            page.screenshot(path=str(ARTIFACTS / "runs_saved_view.png"))
        finally:
            browser.close()
            pw.stop()
