"""Saved views are bounded: one owner keeps at most db.saved_views.MAX_VIEWS_PER_OWNER views (the save
past it is refused naming the limit and how to free room), and list_views reads with a SQL LIMIT.
Old code: no cap (3,000 views of 4 KB saved by one user) and list_views read every row (12 MB on each
render of a page that lists them)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event

from db import saved_views as sv
from db.engine import get_engine


@contextmanager
def statements(url: str) -> Iterator[list[str]]:
    """The SQL sent to ``url``'s engine inside the block."""
    seen: list[str] = []

    def record(conn, cursor, statement, *args) -> None:
        seen.append(statement)

    event.listen(get_engine(url), "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(get_engine(url), "before_cursor_execute", record)


def test_the_cap_is_200_and_the_save_past_it_is_refused(sqlite_url):
    assert sv.MAX_VIEWS_PER_OWNER == 200
    pages = sv.PAGES
    for k in range(200):
        sv.save_view(pages[k % len(pages)], f"v{k:03d}", "a=1", owner="alice", url=sqlite_url)
    with pytest.raises(sv.ViewError, match=r"^owner: 'alice' has 200 saved views, and 200 is the limit per "
                                           r"owner; delete one of them"):
        sv.save_view("runs", "one too many", "a=1", owner="alice", url=sqlite_url)
    assert sv.count_views(url=sqlite_url) == 200
    assert sv.count_views(owner="alice", url=sqlite_url) == 200


def test_the_cap_counts_per_owner_and_a_delete_frees_room(db_url, monkeypatch):
    monkeypatch.setattr(sv, "MAX_VIEWS_PER_OWNER", 3)
    ids = [sv.save_view(p, "mine", "a=1", owner="ada", url=db_url) for p in ("runs", "compare", "explorer")]
    with pytest.raises(sv.ViewError, match=r"^owner: 'ada' has 3 saved views, and 3 is the limit per owner; "
                                           r"delete one of them .* to save another$"):
        sv.save_view("strategies", "mine", "a=1", owner="ada", url=db_url)
    assert sv.count_views(url=db_url) == 3                        # nothing written
    sv.save_view("strategies", "bobs", "a=1", owner="bob", url=db_url)   # another owner has room
    assert sv.delete_view(ids[0], owner="ada", url=db_url)
    sv.save_view("strategies", "mine", "a=1", owner="ada", url=db_url)  # room again
    assert sv.count_views(owner="ada", url=db_url) == 3
    # the views saved without an owner are capped as one owner
    for k in range(3):
        sv.save_view("runs", f"anon {k}", "", owner=None, url=db_url)
    with pytest.raises(sv.ViewError, match=r"^owner: the views saved without an owner have 3 saved views"):
        sv.save_view("runs", "anon 3", "", owner=None, url=db_url)


def test_saves_at_once_cannot_both_take_the_last_place(pg_url, monkeypatch):
    """On PostgreSQL the count and the insert are serialized per owner (a transaction lock)."""
    monkeypatch.setattr(sv, "MAX_VIEWS_PER_OWNER", 3)
    for k in range(2):
        sv.save_view("runs", f"v{k}", "", owner="ada", url=pg_url)
    results: list[object] = []
    start = threading.Barrier(8)

    def save(k: int) -> None:
        start.wait()
        try:
            results.append(sv.save_view("compare", f"race {k}", "", owner="ada", url=pg_url))
        except sv.ViewError as e:
            results.append(e)

    threads = [threading.Thread(target=save, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 8
    assert sum(isinstance(r, int) for r in results) == 1, results
    assert sv.count_views(owner="ada", url=pg_url) == 3


def test_list_views_reads_with_a_sql_limit(db_url, monkeypatch):
    for k in range(6):
        sv.save_view("runs", f"view {k}", f"k={k}", owner="ada", url=db_url)
    with statements(db_url) as sent:
        assert [v["name"] for v in sv.list_views("runs", limit=3, url=db_url)] == ["view 0", "view 1", "view 2"]
    (select,) = [q for q in sent if "saved_views" in q]
    assert "LIMIT" in select.upper(), select
    monkeypatch.setattr(sv, "MAX_LISTED", 4)     # the default, and the most a caller may ask for
    assert len(sv.list_views(url=db_url)) == 4
    assert len(sv.list_views("runs", limit=10_000, url=db_url)) == 4
    assert sv.count_views("runs", url=db_url) == 6


def test_find_filters_by_name_in_the_query_any_case_wildcards_literal(db_url):
    for name in ("50%_off", "5000 off", "Diverged LSTMs", "lstm baseline"):
        sv.save_view("compare", name, "", owner="ada", url=db_url)
    assert [v["name"] for v in sv.list_views("compare", find="lstm", url=db_url)] == [
        "Diverged LSTMs", "lstm baseline"]
    assert [v["name"] for v in sv.list_views("compare", find="0%_", url=db_url)] == ["50%_off"]
    assert sv.count_views("compare", find="OFF", url=db_url) == 2
    assert sv.list_views("runs", find="lstm", url=db_url) == []


def test_find_matches_letters_beyond_ascii_in_any_case_on_both_backends(db_url):
    """SQLite's lower() lowers ASCII only: searching 'ärger' (or even 'Ärger') found no view named
    'Ärger mit ÉTÉ' there, while PostgreSQL's lower() found it. Both find it now."""
    for name in ("Ärger mit ÉTÉ", "Öl", "été tanh", "plain"):
        sv.save_view("compare", name, "", owner="ada", url=db_url)
    for find, want in (("ärger", ["Ärger mit ÉTÉ"]), ("Ärger", ["Ärger mit ÉTÉ"]),
                       ("été", ["été tanh", "Ärger mit ÉTÉ"]), ("ÖL", ["Öl"]), ("PLAIN", ["plain"])):
        got = [v["name"] for v in sv.list_views("compare", find=find, url=db_url)]
        assert sorted(got) == sorted(want), (find, got)
        assert sv.count_views("compare", find=find, url=db_url) == len(want)
