"""A sweep older than the 500 newest that the Runs page's sweep list holds is still a sweep: ?sweep=ID
filters by it (a primary-key lookup), instead of being called missing."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import insert

from dashboard import runs_query
from db import reads
from db.engine import get_engine
from db.models import Sweep
from tests.dashboard.conftest import no_errors


def _sweeps(url: str, n: int) -> list[int]:
    now = dt.datetime.now(dt.UTC)
    with get_engine(url).begin() as conn:
        conn.execute(insert(Sweep), [{"name": f"s{k}", "spec": {}, "n_runs": k % 7, "created_at": now}
                                     for k in range(n)])
    return sorted(s["id"] for s in reads.filter_options(url=url)["sweeps"])


def test_sweep_summary_finds_any_sweep_by_id(db_url):
    listed = _sweeps(db_url, 503)
    assert len(listed) == 500
    oldest = min(listed) - 3            # not in filter_options' list
    assert reads.sweep_summary(oldest, url=db_url) == {"id": oldest, "name": "s0", "n_runs": 0}
    assert reads.sweep_summary(max(listed) + 1, url=db_url) is None
    assert reads.sweep_summary(2 ** 31, url=db_url) is None


def test_from_params_asks_about_a_sweep_not_in_the_list():
    opts = {"sweeps": [{"id": 900}]}
    values, problems = runs_query.from_params({"sweep": ["3"]}, opts, lambda i: i == 3)
    assert values["flt_sweep"] == 3 and problems == []
    values, problems = runs_query.from_params({"sweep": ["4"]}, opts, lambda i: i == 3)
    assert values["flt_sweep"] is None and problems and "'sweep'" in problems[0]


def test_the_runs_page_filters_by_an_old_sweep(lab, open_page):
    url, _ = lab
    listed = _sweeps(url, 502)
    oldest = min(listed) - 2
    at = open_page("runs", sweep=str(oldest))
    no_errors(at)
    assert not [w.value for w in at.warning if "sweep" in w.value], [w.value for w in at.warning]
    assert at.selectbox(key="flt_sweep").value == oldest
