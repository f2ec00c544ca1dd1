"""Atomic fencing on both backends: a worker write that is paused after its ownership check cannot land
after another worker claimed the run, and delete_run cannot remove a run that a worker claimed between
its check and its delete. The pause is a real one: a SQLAlchemy cursor hook holds the paused thread just
before a chosen statement while the other thread runs against the same database (old code: the check
was a plain SELECT, so on Postgres the other thread went ahead and the paused write landed after it)."""

import threading
from contextlib import contextmanager

import pytest
from sqlalchemy import event

from db import store
from db.engine import get_engine
from rnnlab.spec import parse_spec
from tests.synthetic import epoch_record, run_info

TINY = {"hidden_size": 8, "task": {"name": "adding", "seq_len": 10}, "epochs": 5, "steps_per_epoch": 2}


@contextmanager
def pause_before(url: str, prefix: str, thread_name: str):
    """Hold thread ``thread_name`` just before its first statement starting with ``prefix``; yields
    (paused, go): ``paused`` is set once it waits, ``go.set()`` lets it continue."""
    engine = get_engine(url)
    paused, go = threading.Event(), threading.Event()

    def hook(conn, cursor, statement, params, context, executemany):
        if threading.current_thread().name == thread_name and not paused.is_set() \
                and statement.lstrip().upper().startswith(prefix):
            paused.set()
            go.wait(60)

    event.listen(engine, "before_cursor_execute", hook)
    try:
        yield paused, go
    finally:
        go.set()
        event.remove(engine, "before_cursor_execute", hook)


def race(url: str, prefix: str, first, second) -> None:
    """Run ``first`` in thread A until it reaches ``prefix``, then ``second`` in thread B (given up to 3 s
    to finish: with atomic fencing it waits for A's transaction instead), then let A go on."""
    with pause_before(url, prefix, "A") as (paused, go):
        a = threading.Thread(target=first, name="A")
        a.start()
        assert paused.wait(30), f"thread A never reached {prefix!r}"
        b = threading.Thread(target=second, name="B")
        b.start()
        b.join(3)
        go.set()
        a.join(60)
        b.join(60)
    assert not a.is_alive() and not b.is_alive()


def test_worker_writes_need_the_attempt(sqlite_url):
    (run_id,) = store.create_runs([parse_spec(TINY)], url=sqlite_url)
    store.claim_run(run_id, "w1", url=sqlite_url)
    with pytest.raises(TypeError, match="attempt"):
        store.record_epoch(run_id, epoch_record(0, seq_len=10), url=sqlite_url)
    with pytest.raises(TypeError, match="attempt"):
        store.finish_run(run_id, "succeeded", "ok", url=sqlite_url)


def _running_with_checkpoint(url: str) -> int:
    (run_id,) = store.create_runs([parse_spec(TINY)], url=url)
    store.claim_run(run_id, "A", url=url)
    store.record_info(run_id, run_info("rnn", 10), attempt=1, url=url)
    for e in range(3):
        store.record_epoch(run_id, epoch_record(e, seq_len=10), attempt=1, url=url)
    store.save_checkpoint(run_id, 1, b"state-1", attempt=1, url=url)
    return run_id


def test_a_paused_record_epoch_cannot_land_after_another_worker_claims(db_url):
    run_id = _running_with_checkpoint(db_url)
    out = {}

    def worker_a():   # paused after its ownership check, before its epoch rows
        try:
            store.record_epoch(run_id, epoch_record(3, seq_len=10), attempt=1, url=db_url)
            out["a"] = "written"
        except store.LostOwnership:
            out["a"] = "lost"

    def worker_b():   # A looks dead: B takes the run over
        out["b"] = store.claim_run(run_id, "B", stale_after_s=0.0, url=db_url)

    race(db_url, "DELETE FROM EPOCHS", worker_a, worker_b)
    claim = out["b"]
    assert claim is not None and claim["attempt"] == 2 and claim["epochs_done"] == 1
    run = store.get_run(run_id, url=db_url)
    # nothing of A's lands after B's claim: B replays from the checkpoint (epoch 1)
    assert (run["attempts"], run["worker"], run["epochs_done"]) == (2, "B", 1)
    assert [r.epoch for r in store.epoch_records(run_id, url=db_url)] == [0, 1]
    assert run["heartbeat_at"] >= claim["heartbeat_at"]   # never backwards
    with pytest.raises(store.LostOwnership):
        store.record_epoch(run_id, epoch_record(2, seq_len=10), attempt=1, url=db_url)


def test_a_paused_checkpoint_cannot_replace_the_new_owners(db_url):
    run_id = _running_with_checkpoint(db_url)
    out = {}

    def worker_a():
        try:
            store.save_checkpoint(run_id, 2, b"stale-from-A", attempt=1, url=db_url)
        except store.LostOwnership:
            pass

    def worker_b():
        out["b"] = store.claim_run(run_id, "B", stale_after_s=0.0, url=db_url)
        if out["b"] is not None:
            store.save_checkpoint(run_id, 1, b"state-from-B", attempt=2, url=db_url)

    race(db_url, "DELETE FROM CHECKPOINTS", worker_a, worker_b)
    assert out["b"] is not None
    assert store.load_checkpoint(run_id, url=db_url) == (1, b"state-from-B")


def test_delete_cannot_remove_a_run_that_a_worker_claims_meanwhile(db_url):
    (run_id,) = store.create_runs([parse_spec(TINY)], url=db_url)
    out = {}

    def admin():   # paused after its status check (queued), before its deletes
        try:
            store.delete_run(run_id, url=db_url)
            out["deleted"] = True
        except store.RunStateError:
            out["deleted"] = False

    def worker():
        out["claim"] = store.claim_run(run_id, "w1", url=db_url)

    race(db_url, "DELETE FROM EPOCHS", admin, worker)
    run = store.get_run(run_id, url=db_url)
    if out["claim"] is not None:   # the worker won: the run must still be there, running
        assert run is not None and run["status"] == "running" and out["deleted"] is False
    else:                          # the delete won: the worker got nothing
        assert run is None and out["deleted"] is True


def test_forced_delete_of_a_running_run_stops_its_worker_writes(db_url):
    (run_id,) = store.create_runs([parse_spec(TINY)], url=db_url)
    store.claim_run(run_id, "w1", url=db_url)
    with pytest.raises(store.RunStateError, match="running"):
        store.delete_run(run_id, url=db_url)
    store.delete_run(run_id, force=True, url=db_url)
    assert store.get_run(run_id, url=db_url) is None
    with pytest.raises(store.LostOwnership):
        store.record_epoch(run_id, epoch_record(0, seq_len=10), attempt=1, url=db_url)
    assert store.finish_run(run_id, "succeeded", "ok", attempt=1, url=db_url) is False
