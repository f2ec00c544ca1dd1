"""Run detail and Compare keep redrawing while a selected run is queued, not only while it runs: a queued
run starts on its own, and its first epochs should reach the open page."""

from __future__ import annotations

from tests.dashboard.conftest import no_errors
from tests.dashboard.test_compare_page import auto_reruns  # noqa: F401  (a fixture)


def test_run_detail_of_a_queued_run_polls(lab, open_page, auto_reruns):  # noqa: F811
    _, ids = lab
    at = open_page("run_detail", run=str(ids["queued"][0]))
    no_errors(at)
    auto_reruns.clear()
    at.run()
    assert auto_reruns and {iv for _, iv in auto_reruns} == {5.0}
    assert [t for t in at.toggle if t.key == "det_live"]


def test_compare_with_a_queued_run_polls(lab, open_page, auto_reruns):  # noqa: F811
    _, ids = lab
    at = open_page("compare", runs=f"{ids['cells'][0]},{ids['queued'][0]}")
    no_errors(at)
    auto_reruns.clear()
    at.run()
    assert [iv for _, iv in auto_reruns] == [5.0]
    assert [t for t in at.toggle if t.key == "cmp_live"]
