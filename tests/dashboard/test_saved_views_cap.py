"""The saved-views box when the user has reached db.saved_views.MAX_VIEWS_PER_OWNER: the refusal is an
error message in the sidebar (naming the limit and how to free room), not a traceback; and the box
reads a bounded number of views (SQL LIMIT) however many the team has saved. Old code: no cap, and the
box read every view of the page on each render."""

from __future__ import annotations

from db import saved_views as sv
from tests.dashboard.conftest import no_errors


def _as_user(monkeypatch, name: str, role: str) -> None:
    from dashboard import auth

    monkeypatch.setattr(auth, "current_user", lambda: auth.User(name=name, role=role))


def test_a_save_past_the_cap_shows_the_refusal_and_stores_nothing(lab, open_page, monkeypatch):
    url, _ = lab
    monkeypatch.setattr(sv, "MAX_VIEWS_PER_OWNER", 2)
    sv.save_view("compare", "one", "runs=1", owner="ada", url=url)
    sv.save_view("explorer", "two", "x=1", owner="ada", url=url)
    _as_user(monkeypatch, "ada", "member")
    at = open_page("runs")
    no_errors(at)
    at.sidebar.text_input(key="sv_runs_name").set_value("three")
    at.button(key="sv_runs_save").click().run()
    assert not at.exception, [e.value for e in at.exception]
    shown = [e.value.replace("\\", "") for e in at.error]      # Markdown escapes removed
    assert any(e.startswith("owner: 'ada' has 2 saved views, and 2 is the limit per owner; delete one")
               for e in shown), shown
    assert sv.count_views(url=url) == 2


def test_the_box_reads_a_bounded_number_of_views(lab, open_page, monkeypatch):
    url, _ = lab
    from dashboard.saved_views import MAX_LISTED

    for k in range(MAX_LISTED + 30):
        sv.save_view("runs", f"view {k:03d}", "sort=horizon", owner=f"user{k % 3}", url=url)
    asked: list[int | None] = []
    real = sv.list_views

    def spy(*args, **kwargs):
        asked.append(kwargs.get("limit"))
        return real(*args, **kwargs)

    monkeypatch.setattr(sv, "list_views", spy)
    at = open_page("runs")
    no_errors(at)
    assert asked and all(n is not None and n <= MAX_LISTED + 1 for n in asked), asked
    assert len(at.get("page_link")) == MAX_LISTED
    assert any(f"The first {MAX_LISTED} of {MAX_LISTED + 30} views" in m.value for m in at.markdown)
    at.text_input(key="sv_runs_find").set_value("VIEW 07").run()        # found in the query, past the first rows
    assert [lk.proto.label for lk in at.get("page_link")] == [f"view {k:03d}" for k in range(70, 80)]
    at.text_input(key="sv_runs_find").set_value("no such view").run()
    no_errors(at)
    assert not at.get("page_link")
