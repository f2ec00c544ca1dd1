"""Saved views: the store (db.saved_views) on SQLite and Postgres, and the sidebar box on the Runs
page (save, list as links, delete by the owner or an admin, read-only for viewers)."""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest

from db import saved_views as sv
from tests.dashboard.conftest import no_errors


def test_views_are_stored_listed_for_everyone_and_unique_per_page(db_url):
    a = sv.save_view("runs", "  diverged lstms ", "status=diverged&cell=lstm", owner="ada", url=db_url)
    b = sv.save_view("compare", "diverged lstms", "?runs=1,2,3", owner="bob", url=db_url)  # same name, other page
    c = sv.save_view("runs", "all", "", owner=None, url=db_url)
    every = sv.list_views(url=db_url)
    assert [(v["id"], v["page"], v["name"], v["query"], v["owner"]) for v in every] == [
        (b, "compare", "diverged lstms", "runs=1,2,3", "bob"),
        (c, "runs", "all", "", None),
        (a, "runs", "diverged lstms", "status=diverged&cell=lstm", "ada")]
    assert [v["id"] for v in sv.list_views("runs", url=db_url)] == [c, a]
    with pytest.raises(sv.ViewError, match=r"^name: the runs page already has a view named 'diverged lstms'"):
        sv.save_view("runs", "diverged lstms", "status=failed", owner="bob", url=db_url)
    assert len(sv.list_views(url=db_url)) == 3


@pytest.mark.parametrize("page, name, query, owner, message", [
    ("runs", "x" * 101, "", None, r"^name: at most 100 characters \(this one has 101\)"),
    ("runs", "   ", "", None, r"^name: give the view a name"),
    ("runs", "a\nb", "", None, r"^name: control characters"),
    ("runs", "ok", "q=" + "a" * 4095, None, r"^query: the page's URL query string is at most 4096 characters"),
    ("runs", "ok", "q=two words", None, r"^query: must be a percent-encoded URL query string"),
    ("runs", "ok", "q=<script>", None, r"^query: must be a percent-encoded"),
    ("query", "ok", "", None, r"^page: 'query' cannot be saved as a view; allowed: runs, compare, strategies, "
     r"explorer"),
    ("runs", "ok", "", "o" * 101, r"^owner: 1 to 100 characters"),
    ("runs", "evil\u202egnp.exe", "", None, r"^name: control characters .* U\+202E"),
    ("runs", "a\u200bb", "", None, r"^name: control characters .* U\+200B"),
])
def test_out_of_bounds_views_are_refused_naming_the_field(sqlite_url, page, name, query, owner, message):
    with pytest.raises(sv.ViewError, match=message):
        sv.save_view(page, name, query, owner=owner, url=sqlite_url)
    assert sv.list_views(url=sqlite_url) == []


def test_the_limits_themselves_are_accepted(sqlite_url):
    query = "q=" + "a" * 4094
    vid = sv.save_view("explorer", "n" * 100, "?" + query, owner="o" * 100, url=sqlite_url)
    (v,) = sv.list_views("explorer", url=sqlite_url)
    assert (v["id"], v["name"], len(v["query"]), v["query"]) == (vid, "n" * 100, 4096, query)


def test_only_the_owner_deletes_unless_admin(db_url):
    mine = sv.save_view("strategies", "mine", "sweep=1", owner="ada", url=db_url)
    theirs = sv.save_view("strategies", "theirs", "sweep=2", owner="bob", url=db_url)
    assert sv.delete_view(theirs, owner="ada", url=db_url) is False
    assert sv.delete_view(mine, owner="ada", url=db_url) is True
    assert [v["name"] for v in sv.list_views(url=db_url)] == ["theirs"]
    assert sv.delete_view(theirs, url=db_url) is True        # an admin passes no owner
    assert sv.delete_view(theirs, url=db_url) is False       # already gone
    assert sv.list_views(url=db_url) == []


# --- the box on the Runs page ---------------------------------------------------------------

def _as_user(monkeypatch, name: str, role: str) -> None:
    from dashboard import auth

    monkeypatch.setattr(auth, "current_user", lambda: auth.User(name=name, role=role))


def test_save_the_runs_view_and_open_it_from_the_list(lab, open_page, monkeypatch):
    url, ids = lab
    _as_user(monkeypatch, "ada", "member")
    at = open_page("runs")
    at.multiselect(key="flt_status").set_value(["succeeded"]).run()
    at.multiselect(key="flt_cell").set_value(["lstm"]).run()
    at.sidebar.text_input(key="sv_runs_name").set_value("good lstms")
    at.button(key="sv_runs_save").click().run()
    no_errors(at)
    (v,) = sv.list_views("runs", url=url)
    assert (v["name"], v["owner"]) == ("good lstms", "ada")
    assert parse_qs(v["query"]) == {"status": ["succeeded"], "cell": ["lstm"]}
    assert any(s.value.startswith("Saved the view") for s in at.success)
    links = at.get("page_link")
    assert [(lk.proto.label, parse_qs(lk.proto.query_string)) for lk in links] == [
        ("good lstms", {"status": ["succeeded"], "cell": ["lstm"]})]
    # opening the view's URL in a fresh session shows exactly those runs
    fresh = open_page("runs", **{k: vs for k, vs in parse_qs(v["query"]).items()})
    no_errors(fresh)
    assert sorted(fresh.dataframe[0].value["id"]) == sorted(
        i for i in ids["cells"] if store_cell(url, i) == "lstm")
    # a second view of the same name is refused with the field named
    at.sidebar.text_input(key="sv_runs_name").set_value("good lstms")
    at.button(key="sv_runs_save").click().run()
    shown = [e.value.replace("\\", "") for e in at.error]  # Markdown escapes removed
    assert any(e.startswith("name: the runs page already has a view named 'good lstms'") for e in shown), shown


def store_cell(url: str, run_id: int) -> str:
    from db import store

    return store.get_run(run_id, url=url)["cell"]


def test_viewers_only_open_views_and_members_delete_only_their_own(lab, open_page, monkeypatch):
    url, _ = lab
    own = sv.save_view("runs", "mine", "status=failed", owner="ada", url=url)
    sv.save_view("runs", "bobs", "status=queued", owner="bob", url=url)
    _as_user(monkeypatch, "vera", "viewer")
    at = open_page("runs")
    no_errors(at)
    assert len(at.get("page_link")) == 2
    assert not [b for b in at.button if (b.key or "").startswith("sv_")]  # no save, no delete
    _as_user(monkeypatch, "ada", "member")
    at = open_page("runs")
    assert [b.key for b in at.button if (b.key or "").startswith("sv_del_")] == [f"sv_del_{own}"]
    at.button(key=f"sv_del_{own}").click().run()
    no_errors(at)
    assert [v["name"] for v in sv.list_views("runs", url=url)] == ["bobs"]
    _as_user(monkeypatch, "root", "admin")
    at = open_page("runs")
    (bobs,) = [b for b in at.button if (b.key or "").startswith("sv_del_")]
    bobs.click().run()
    assert sv.list_views("runs", url=url) == []


def test_a_long_list_is_cut_and_can_be_searched_by_name(lab, open_page):
    url, _ = lab
    from dashboard.saved_views import MAX_LISTED

    for k in range(MAX_LISTED + 5):
        sv.save_view("runs", f"view {k:03d}", f"sort=horizon&per={(25, 50)[k % 2]}", owner="ada", url=url)
    at = open_page("runs")
    no_errors(at)
    assert [lk.proto.label for lk in at.get("page_link")] == [f"view {k:03d}" for k in range(MAX_LISTED)]
    at.text_input(key="sv_runs_find").set_value("VIEW 05").run()
    assert [lk.proto.label for lk in at.get("page_link")] == [f"view {k:03d}" for k in range(50, MAX_LISTED + 5)]
