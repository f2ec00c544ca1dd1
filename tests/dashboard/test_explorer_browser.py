"""The Explorer in a real browser (``streamlit run`` + headless Chromium) on a seeded SQLite database:
the scatter and the phase diagram draw with no error element, and clicking a phase-diagram cell
offers a link that opens exactly that cell's runs in Compare. Screenshots go to tests/artifacts/."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import pytest

from tests.dashboard.browser import REPO, chromium, error_texts, running_app, wait_idle
from tests.dashboard.seed import small_lab
from tests.dashboard.test_explorer_page import PHASE, _phase_lab

ARTIFACTS = REPO / "tests" / "artifacts"
pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Where the first point of the scatter is on screen, and its run id
POINT_XY = """() => {
  const gd = document.querySelector('.js-plotly-plot'), L = gd._fullLayout, box = gd.getBoundingClientRect();
  const cd = gd.calcdata[0][0];  // the first point, in the axes' linear units
  return [box.left + L._size.l + L.xaxis.l2p(cd.x), box.top + L._size.t + L.yaxis.l2p(cd.y),
          gd._fullData[0].customdata[0]];
}"""
# Where a phase-diagram cell's centre is on screen, from Plotly's own axes (page coordinates).
CELL_XY = """([xi, yi]) => {
  const gd = [...document.querySelectorAll('.js-plotly-plot')].find(g => g.data && g.data[0].type === 'heatmap');
  const L = gd._fullLayout, box = gd.getBoundingClientRect();
  return [box.left + L._size.l + L.xaxis.l2p(xi), box.top + L._size.t + L.yaxis.l2p(yi)];
}"""


def _no_errors(page, where: str) -> None:
    errors = error_texts(page)
    assert not errors, f"{where}: {errors}"


def test_phase_diagram_cell_opens_its_runs_in_compare(sqlite_url, tmp_path):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    small_lab(sqlite_url)
    grid = _phase_lab(sqlite_url)
    env = {"RNNLAB_DATABASE_URL": sqlite_url, "RNNLAB_HOME": str(tmp_path)}
    with running_app(env, tmp_path / "app.log") as url:
        pw, browser = chromium()
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.goto(f"{url}/explorer?src=Tag&tag=phase&x=init.spectral_radius&color=task.seq_len")
            wait_idle(page)
            _no_errors(page, "explorer scatter")
            assert page.locator(".js-plotly-plot").count() == 1
            page.screenshot(path=str(ARTIFACTS / "explorer_scatter.png"), full_page=True)
            x, y, rid = page.evaluate(POINT_XY)
            page.mouse.click(x, y)
            page.wait_for_timeout(1500)
            wait_idle(page)
            href = page.get_by_role("link", name="Open the 1 run of the selection in Compare").get_attribute("href")
            assert parse_qs(urlparse(href).query)["runs"] == [str(int(rid))]

            query = "&".join(f"{k}={v}" for k, v in PHASE.items())
            page.goto(f"{url}/explorer?{query}")
            wait_idle(page)
            _no_errors(page, "phase diagram")
            page.wait_for_function("() => [...document.querySelectorAll('.js-plotly-plot')].some(g => g.data)")
            page.screenshot(path=str(ARTIFACTS / "explorer_phase.png"), full_page=True)
            x, y = page.evaluate(CELL_XY, [0, 0])  # radius 0.5, T 20: two seeds that succeeded, one that died
            page.mouse.click(x, y)
            page.wait_for_timeout(1500)
            wait_idle(page)
            page.screenshot(path=str(ARTIFACTS / "explorer_phase_clicked.png"), full_page=True)
            link = page.get_by_role("link", name=re.compile(r"Open the 3 runs of the selected cells in Compare"))
            link.click()
            wait_idle(page)
            _no_errors(page, "compare from the phase diagram")
            opened = parse_qs(urlparse(page.url).query)["runs"][0]
            assert urlparse(page.url).path.endswith("/compare")
            assert opened == ",".join(str(r) for r, _, _ in grid[(0.5, 20)])
        finally:
            browser.close()
            pw.stop()
