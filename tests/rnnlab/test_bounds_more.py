"""More of "everything a user can type is bounded": the number of tags per run (checked by
check_submission and by the store, before any loop), the notes' length, a study created to train here
under the operator's limits (nothing written when refused), and `rnnlab sql -` reading at most one byte
more than the console takes. Real SQLite/Postgres databases."""

from __future__ import annotations

import io

import pytest
import typer

from client.submit import check_submission
from db import store
from db.store import MAX_NOTES, MAX_TAGS
from rnnlab.spec import Limits, SpecError, parse_spec

SPEC = {"hidden_size": 8, "task": {"name": "adding", "seq_len": 10}, "epochs": 1, "device": "cpu"}


def test_the_tag_limit_is_a_small_documented_number():
    from pathlib import Path

    assert MAX_TAGS == 50
    doc = (Path(__file__).resolve().parents[2] / "docs" / "schema.md").read_text()
    assert f"at most {MAX_TAGS} tags per run" in doc and f"at most {MAX_NOTES:,} characters" in doc


def test_check_submission_refuses_too_many_tags_once_naming_the_count():
    tags = [f"t{i}" for i in range(60_000)]
    errors = check_submission([parse_spec(SPEC)], tags, Limits())
    assert errors == [f"tags: 60,000 tags; at most {MAX_TAGS} per run"]
    assert check_submission([parse_spec(SPEC)], tags[:MAX_TAGS], Limits()) == []
    # a generator is not read past the limit
    endless = (f"t{i}" for i in range(10 ** 12))
    assert check_submission([parse_spec(SPEC)], endless, Limits()) == [
        f"tags: more than {MAX_TAGS} tags; at most {MAX_TAGS} per run"]


def _tags_that_refuse_to_be_read_past_the_bound(n: int):
    """A generator of ``n`` tags (as many as a user could pipe in: 10**12) that fails the test as soon
    as more than MAX_TAGS + 1 of them are pulled, so code that expands it first fails, never hangs."""
    pulled = 0
    for i in range(n):
        pulled += 1
        if pulled > MAX_TAGS + 1:
            raise AssertionError(f"tags read past MAX_TAGS + 1 = {MAX_TAGS + 1} items")
        yield f"t{i}"


def test_submit_bounds_a_tags_iterable_before_expanding_it(sqlite_url, fs_broker):
    """submit() did list(tags) before check_submission counted them: a huge tags iterable was expanded
    before the bound was checked. It is read up to MAX_TAGS + 1 items, refused naming the field and the
    limit, and nothing is created; exactly MAX_TAGS from a generator are taken whole."""
    from client.submit import submit

    with pytest.raises(SpecError) as e:
        submit([parse_spec(SPEC)], tags=_tags_that_refuse_to_be_read_past_the_bound(10 ** 12), url=sqlite_url,
               app=fs_broker.app(), limits=Limits())
    assert f"tags: more than {MAX_TAGS} tags; at most {MAX_TAGS} per run" in str(e.value)
    assert store.list_runs(url=sqlite_url)[1] == 0
    (rid,) = submit([parse_spec(SPEC)], tags=_tags_that_refuse_to_be_read_past_the_bound(MAX_TAGS), url=sqlite_url,
                    app=fs_broker.app(), limits=Limits())
    assert sorted(store.get_run(rid, url=sqlite_url)["tags"]) == sorted(f"t{i}" for i in range(MAX_TAGS))


def test_the_store_refuses_too_many_tags_and_writes_nothing(db_url):
    too_many = [f"t{i}" for i in range(MAX_TAGS + 1)]
    with pytest.raises(ValueError, match=f"tags: {MAX_TAGS + 1} tags; at most {MAX_TAGS} per run"):
        store.create_runs([parse_spec(SPEC)], tags=too_many, url=db_url)
    assert store.list_runs(url=db_url)[1] == 0
    with pytest.raises(ValueError, match=f"at most {MAX_TAGS} per run"):
        store.create_runs([parse_spec(SPEC)], tags=(t for t in too_many), url=db_url)
    assert store.list_runs(url=db_url)[1] == 0
    (rid,) = store.create_runs([parse_spec(SPEC)], tags=["a", " b ", "a", "b", "c"], url=db_url)
    assert store.get_run(rid, url=db_url)["tags"] == ["a", "b", "c"]    # deduped, first order kept
    with pytest.raises(ValueError, match=f"tags: {MAX_TAGS + 1} tags; at most {MAX_TAGS} per run"):
        store.set_tags(rid, too_many, url=db_url)
    assert store.get_run(rid, url=db_url)["tags"] == ["a", "b", "c"]    # unchanged
    assert store.set_tags(rid, too_many[:MAX_TAGS], url=db_url) == too_many[:MAX_TAGS]
    assert sorted(store.get_run(rid, url=db_url)["tags"]) == sorted(too_many[:MAX_TAGS])


def test_the_store_refuses_notes_over_the_limit_and_keeps_the_old_ones(db_url):
    (rid,) = store.create_runs([parse_spec(SPEC)], url=db_url)
    store.set_notes(rid, "é" * MAX_NOTES, url=db_url)
    assert store.get_run(rid, url=db_url)["notes"] == "é" * MAX_NOTES
    with pytest.raises(ValueError, match=f"notes: {MAX_NOTES + 1:,} characters; at most {MAX_NOTES:,}"):
        store.set_notes(rid, "x" * (MAX_NOTES + 1), url=db_url)
    assert store.get_run(rid, url=db_url)["notes"] == "é" * MAX_NOTES


def test_a_study_created_here_keeps_the_operators_limits_and_writes_nothing_when_refused(sqlite_url, monkeypatch):
    import studies
    from rnnlab.settings import get_settings
    from studies import service

    st = studies.get("adding")
    assert {s.task.seq_len for s in st.specs("paper")} == {200}
    monkeypatch.setenv("RNNLAB_MAX_SEQ_LEN", "50")
    get_settings.cache_clear()
    try:
        with pytest.raises(SpecError) as e:
            service.create(st, "paper", url=sqlite_url)
        assert "seq_len" in str(e.value) and "50" in str(e.value)
        assert store.list_runs(url=sqlite_url)[1] == 0
        ids = service.create(st, "cpu", url=sqlite_url)       # T=50: within the limit
        assert len(ids) == st.n_runs("cpu") == store.list_runs(url=sqlite_url)[1]
    finally:
        monkeypatch.delenv("RNNLAB_MAX_SEQ_LEN")
        get_settings.cache_clear()


def test_sql_from_stdin_reads_at_most_one_byte_more_than_the_console_takes(monkeypatch, capsys):
    from cli.sql import sql
    from db.console import limits

    cap = limits().max_sql_bytes
    raw = io.BytesIO(b"SELECT 1 " + b"-" * (10 * cap))
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(raw, encoding="utf-8"))
    with pytest.raises(typer.Exit) as e:
        sql("-", csv=False, limit=None, timeout=None)
    assert e.value.exit_code == 1
    assert raw.tell() == cap + 1
    assert f"more than {cap:,} bytes; the console takes at most {cap:,}" in capsys.readouterr().err
