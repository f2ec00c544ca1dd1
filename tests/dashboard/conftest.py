"""Fixtures of the dashboard tests: a real, migrated SQLite database seeded through db.store with
realistic runs, the environment pointing the app at it, and an AppTest factory for a page."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # `from tests.dashboard.seed import …` under any pytest invocation
    sys.path.insert(0, str(REPO))

from tests.dashboard.seed import small_lab  # noqa: E402

APP = str(REPO / "dashboard" / "app.py")


def _reset_caches() -> None:
    import streamlit as st

    from rnnlab.queue import get_app
    from rnnlab.settings import get_settings

    get_settings.cache_clear()
    get_app.cache_clear()
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def lab(sqlite_url, tmp_path, monkeypatch):
    """A seeded database (see seed.small_lab) that the app reads: returns (url, ids by role)."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    monkeypatch.setenv("RNNLAB_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("RNNLAB_HOME", str(home))
    monkeypatch.setenv("RNNLAB_QUEUE_PREFIX", f"dash-test-{tmp_path.name}-")
    _reset_caches()
    ids = small_lab(sqlite_url)
    yield sqlite_url, ids
    _reset_caches()


@pytest.fixture
def open_page():
    """open_page('compare', runs='1,2') -> an AppTest that has run the app on that page."""
    from streamlit.testing.v1 import AppTest

    def open_(page: str, **query: str) -> AppTest:
        at = AppTest.from_file(APP, default_timeout=60)
        at.run()                          # the default page (Runs) writes its own filters to the URL
        at.switch_page(f"app_pages/{page}.py")
        at.query_params.clear()           # so the target page's query is set after it, as a link would be
        for k, v in query.items():
            at.query_params[k] = v
        return at.run()

    return open_


def no_errors(at) -> None:
    """No exception element and no error alert on the page."""
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def decode_plotly(o):
    """A Plotly JSON value with its typed arrays ({dtype, bdata[, shape]}) decoded to numpy."""
    import base64

    import numpy as np

    if isinstance(o, dict):
        if set(o) >= {"dtype", "bdata"}:
            a = np.frombuffer(base64.b64decode(o["bdata"]), dtype=np.dtype(o["dtype"]))
            if "shape" not in o:
                return a
            shape = o["shape"]
            return a.reshape([int(n) for n in shape.split(",")] if isinstance(shape, str) else shape)
        return {k: decode_plotly(v) for k, v in o.items()}
    return [decode_plotly(v) for v in o] if isinstance(o, list) else o


def figures(at) -> list[dict]:
    """The Plotly figures an AppTest page drew, as dicts with their typed arrays decoded to numpy."""
    import json

    return [decode_plotly(json.loads(c.proto.spec)) for c in at.get("plotly_chart")]


def offered_csv(monkeypatch) -> dict[str, str]:
    """The files the page offers through st.download_button, by file name (captured as the page
    runs; call before at.run())."""
    import streamlit as st

    got: dict[str, str] = {}
    real = st.download_button

    def capture(label, data, file_name=None, *a, **kw):
        got[file_name] = data.decode() if isinstance(data, bytes) else data
        return real(label, data, file_name, *a, **kw)

    monkeypatch.setattr(st, "download_button", capture)
    return got
