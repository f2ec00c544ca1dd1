"""One clock: heartbeats and staleness are judged by the database's time, so a worker whose own clock
runs ahead cannot requeue healthy runs; and a heartbeat still in flight when a worker stopped cannot
mark it alive again. The skew is real for the code under test: the Python clock the store used to
read (db.attempts.now, imported by name into db.liveness and db.store) is moved 5 minutes ahead."""

import datetime as dt

import pytest
from sqlalchemy import select

import db.attempts
import db.liveness
import db.store
from db import store
from db.engine import session
from db.models import Worker
from rnnlab.spec import parse_spec

TINY = {"hidden_size": 8, "task": {"name": "adding", "seq_len": 10}, "epochs": 2, "steps_per_epoch": 2}
AHEAD = dt.timedelta(minutes=5)


@pytest.fixture
def skew_clock(monkeypatch):
    """skew_clock(): from now on, this process's clock runs 5 minutes ahead (the healthy workers wrote
    their heartbeats before, with a right clock)."""
    def ahead() -> dt.datetime:
        return dt.datetime.now(dt.UTC) + AHEAD

    def apply() -> None:
        for module in (db.attempts, db.liveness, db.store):
            monkeypatch.setattr(module, "now", ahead, raising=False)

    return apply


def test_a_worker_clock_5_minutes_ahead_does_not_requeue_healthy_runs(db_url, skew_clock):
    a, b = store.create_runs([parse_spec(TINY), parse_spec({**TINY, "seed": 1})], url=db_url)
    store.claim_run(a, "w1", url=db_url)
    store.claim_run(b, "w2", url=db_url)
    store.heartbeat("w1", host="h", pid=1, queues="cpu", device="cpu", url=db_url)
    assert store.run_heartbeat(a, 1, url=db_url)
    skew_clock()   # the reaping worker's clock is ahead
    reaped = store.reap_lost(60, url=db_url)
    assert (reaped.requeued, reaped.failed, reaped.cancelled) == ([], [], [])
    assert store.claim_run(b, "w3", stale_after_s=60, url=db_url) is None   # a takeover judges the same way
    for run_id in (a, b):
        run = store.get_run(run_id, url=db_url)
        assert (run["status"], run["attempts"]) == ("running", 1)
    (w1,) = [w for w in store.list_workers(url=db_url) if w["name"] == "w1"]
    assert abs(w1["heartbeat_age_s"]) < 60


def test_a_run_is_still_reaped_once_its_heartbeat_is_stale_by_the_database_clock(db_url, skew_clock):
    (run_id,) = store.create_runs([parse_spec(TINY)], url=db_url)
    store.claim_run(run_id, "w1", url=db_url)
    skew_clock()
    assert store.reap_lost(0.0, url=db_url).requeued == [{"id": run_id, "queue": "cpu"}]


def _stopped_at(url: str, name: str):
    with session(url) as s:
        return s.execute(select(Worker.stopped_at).where(Worker.name == name)).scalar_one()


def test_a_late_heartbeat_does_not_revive_a_stopped_worker(db_url):
    store.heartbeat("w1", host="h", pid=1, queues="cpu", device="cpu", url=db_url)
    store.worker_stopped("w1", url=db_url)
    store.heartbeat("w1", host="h", pid=1, queues="cpu", device="cpu", url=db_url)   # in flight at shutdown
    assert _stopped_at(db_url, "w1") is not None
    # a worker (re)starting under that name does come back
    assert store.heartbeat("w1", host="h", pid=2, queues="cpu", device="cpu", start=True, url=db_url) is True
    assert _stopped_at(db_url, "w1") is None
