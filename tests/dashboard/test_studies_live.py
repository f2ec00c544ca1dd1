"""The Studies result page: the 'Run this study' button lives in the page's live part, so what the click
did (queued, refused, an error) is shown there; the live part polls only while runs are queued or
running."""

from __future__ import annotations

import pytest

import studies
from tests.conftest import REPO

PAGE = str(REPO / "dashboard" / "app_pages" / "studies.py")
ADDING = studies.get("adding")


def open_result(scale: str = "cpu"):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(PAGE, default_timeout=60)
    at.query_params["study"], at.query_params["scale"] = ADDING.name, scale
    return at.run()


@pytest.fixture
def fragments(monkeypatch):
    """Watches st.fragment: the run_every of each fragment the page defines, and the alerts (st.error,
    st.warning, st.success) drawn while a fragment runs. AppTest reruns the whole script on a click,
    where the browser reruns only the fragment that holds the button: an alert drawn outside that
    fragment would not be seen there."""
    import functools

    import streamlit as st

    seen = {"run_every": [], "alerts_in_fragment": [], "alerts_outside": []}
    depth = [0]
    real_fragment = st.fragment

    def fragment(func=None, *, run_every=None):
        def wrap(f):
            seen["run_every"].append(run_every)

            @functools.wraps(f)
            def inner(*a, **kw):
                depth[0] += 1
                try:
                    return f(*a, **kw)
                finally:
                    depth[0] -= 1
            return real_fragment(inner, run_every=run_every)
        return wrap(func) if func is not None else wrap

    def alert(real):
        def draw(body, *a, **kw):
            seen["alerts_in_fragment" if depth[0] else "alerts_outside"].append(str(body))
            return real(body, *a, **kw)
        return draw

    monkeypatch.setattr(st, "fragment", fragment)
    for kind in ("error", "warning", "success"):
        monkeypatch.setattr(st, kind, alert(getattr(st, kind)))
    return seen


def test_a_refused_run_says_why_inside_the_live_part(page_db, fragments):
    """The study's runs appear after the page was drawn (another user, the CLI): the click is refused,
    and the page says so, naming the study's tag, inside the fragment that holds the button."""
    from db import store

    at = open_result()
    button = next(b for b in at.button if b.label.startswith("Run this study"))
    store.create_runs(ADDING.specs("cpu"), tags=[ADDING.tag("cpu")], url=page_db)
    at = button.click().run()
    assert not at.exception, [e.value for e in at.exception]
    said = [e.replace("\\", "") for e in fragments["alerts_in_fragment"]]
    assert any("already has" in e and ADDING.tag("cpu") in e for e in said), fragments


def test_the_live_part_polls_only_while_runs_are_queued_or_running(page_db, fragments):
    from db import store

    open_result()
    assert fragments["run_every"] == [None]           # nothing submitted: nothing to poll
    store.create_runs(ADDING.specs("cpu"), tags=[ADDING.tag("cpu")], url=page_db)   # created: queued
    import streamlit as st
    st.cache_data.clear()
    open_result()
    assert fragments["run_every"][-1] == 5


def test_the_result_page_gives_a_group_one_colour_in_every_figure(page_db):
    """The page's figures take the outcome's colours (studies.svg.group_colours), as the report does:
    temporal-order's two figures list the cells in different orders, and the tanh RNN was blue in the
    first and green in the second."""
    from streamlit.testing.v1 import AppTest

    from tests.dashboard.conftest import figures
    from tests.studies.helpers import plant

    order = studies.get("temporal-order")
    plant(order, page_db, lambda spec: {"val_metric": 0.25 if spec.cell == "rnn" else 1.0, "val_loss": 0.5})
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.query_params["study"], at.query_params["scale"] = order.name, "cpu"
    at.run()
    assert not at.exception
    seen: dict[str, set[str]] = {}
    figs = figures(at)
    assert len(figs) == 2
    for fig in figs:
        for tr in fig["data"]:
            group = tr.get("legendgroup")
            if group:
                seen.setdefault(group, set()).add(tr["marker"]["color"])
    assert set(seen) == {"rnn", "lstm", "gru"} and all(len(c) == 1 for c in seen.values()), seen


def test_runs_sent_to_a_queue_no_live_worker_serves_say_so(page_db, fragments):
    """The paper scale goes to the gpu queue: with no live GPU worker the click said "Queued 9 runs"
    and the runs waited without a word. It now says which queue waits and how to serve it; with a
    live worker on that queue it says only that they were queued."""
    from db import liveness

    at = open_result("paper")
    at = next(b for b in at.button if b.label.startswith("Run this study")).click().run()
    assert not at.exception, [e.value for e in at.exception]
    said = [e.replace("\\", "") for e in fragments["alerts_in_fragment"]]
    assert any("on the gpu queue, which no live worker serves" in e and "rnnlab worker --queues gpu --gpu 0" in e
               for e in said), said
    liveness.heartbeat("w1@box", host="box", pid=1, queues="cpu", device="cpu", start=True, url=page_db)
    import streamlit as st
    st.cache_data.clear()   # the page reads the workers list through a short cache
    fragments["alerts_in_fragment"].clear()
    at = open_result("cpu")
    at = next(b for b in at.button if b.label.startswith("Run this study")).click().run()
    said = [e.replace("\\", "") for e in fragments["alerts_in_fragment"]]
    assert any(e.startswith(f"Queued {ADDING.n_runs('cpu')} runs of adding (cpu).") for e in said), said
    assert not any("no live worker" in e for e in said), said


def test_the_result_pages_figures_show_a_nan_seed_and_say_what_its_marker_means(page_db):
    """As the report's SVG (studies.svg): the tanh RNN's accuracy is NaN on seed 1, so its check fails
    there; the page's figure draws that seed as ✕ on the top edge (not two seeds at chance and nothing
    else), in the group's colour, and its note says what ✕ means. A figure without such a value has no note."""
    import math

    from streamlit.testing.v1 import AppTest

    from tests.dashboard.conftest import figures
    from tests.studies.helpers import plant

    order = studies.get("temporal-order")
    plant(order, page_db, lambda spec: {"val_loss": 1.3, "val_metric": (
        math.nan if (spec.cell, spec.seed) == ("rnn", 1) else 0.26 if spec.cell == "rnn" else 1.0)})
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.query_params["study"], at.query_params["scale"] = order.name, "cpu"
    at.run()
    assert not at.exception
    final = figures(at)[0]
    assert "Final held-out accuracy" in final["layout"]["title"]["text"]
    rnn = [tr for tr in final["data"] if tr.get("legendgroup") == "rnn"]
    drawn = [y for tr in rnn if tr["marker"].get("symbol") is None for y in tr["y"] if y is not None
             and not (isinstance(y, float) and math.isnan(y))]
    assert sorted(drawn) == [0.26, 0.26]                     # seeds 0 and 2 as points
    (cross,) = [tr for tr in rnn if tr["marker"].get("symbol") == "x"]
    assert list(cross["y"]) == [cross["y"][0]] and cross["y"][0] > 1.0   # one ✕, above every value (the top edge)
    top = final["layout"]["yaxis"]["range"][1]
    assert cross["y"][0] < top
    notes = [a["text"] for a in final["layout"].get("annotations", [])]
    assert "✕ NaN: top edge" in notes, notes
    # the accuracy curves: seed 1's tanh-RNN curve ends at NaN (its first epoch has a value): one ✕, keyed
    curves = figures(at)[1]
    crosses = [(tr["name"], list(tr["x"])) for tr in curves["data"] if tr["marker"].get("symbol") == "x"]
    assert crosses == [("rnn s1 (NaN)", [1])], crosses
    assert "✕ NaN: top edge" in [a["text"] for a in curves["layout"].get("annotations", [])]


def test_a_study_figure_without_undrawable_values_has_no_key(page_db):
    from streamlit.testing.v1 import AppTest

    from tests.dashboard.conftest import figures
    from tests.studies.helpers import plant

    plant(ADDING, page_db, lambda spec: {"val_loss": 0.17 if spec.cell == "rnn" else 0.001})
    at = open_result()
    assert not at.exception and isinstance(at, AppTest)
    figs = figures(at)
    assert figs
    for f in figs:
        assert not [a for a in f["layout"].get("annotations", []) if "edge" in a.get("text", "")], f["layout"]
        assert not [tr for tr in f["data"] if tr["marker"].get("symbol") in ("x", "triangle-up", "triangle-down")]
