"""Pages on PostgreSQL where it differs from SQLite: runs.id is a 32-bit integer, and a spec field
compared with a number may hold text."""

from __future__ import annotations

import pytest

from tests.dashboard.conftest import APP, _reset_caches
from tests.dashboard.seed import small_lab
from tests.dashboard.test_compare_page import go


@pytest.fixture
def pg_lab(pg_url, tmp_path, monkeypatch):
    """The seeded lab of seed.small_lab on the test PostgreSQL database, which the app reads."""
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("RNNLAB_DATABASE_URL", pg_url)
    monkeypatch.setenv("RNNLAB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RNNLAB_QUEUE_PREFIX", f"dash-pg-{tmp_path.name}-")
    _reset_caches()
    ids = small_lab(pg_url)
    yield pg_url, ids
    _reset_caches()


def _open(page: str, **query: str):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    return go(at, page, **query)


@pytest.mark.parametrize("page,key", [("run_detail", "run"), ("compare", "runs"), ("strategies", "runs")])
def test_a_run_id_above_the_int4_range_is_named_and_ignored(pg_lab, page, key):
    """2**31 does not fit runs.id on PostgreSQL: the page names it as no run id instead of showing
    the database's 'integer out of range'."""
    _, ids = pg_lab
    first = ids["cells"][0]
    at = _open(page, **{key: str(2 ** 31) if page == "run_detail" else f"{first},{2 ** 31}"})
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert any("2147483648" in w.value and "2147483647" in w.value for w in at.warning), \
        [w.value for w in at.warning]


def test_the_any_spec_field_filter_compares_a_number_with_a_text_field_without_error(pg_lab):
    """Runs page, 'Any spec field … equals': task.variant holds text, so = 1 is no run (not an SQL error)."""
    at = _open("runs", field="task.variant", equals="1")
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert any(c.value.startswith("0 run(s) match") for c in at.caption), [c.value for c in at.caption]
