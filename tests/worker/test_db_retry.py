"""A transient database error before the run is claimed retries the task instead of losing the run
(a real worker process on Redis, whose lost-message check is off, and a real SQLite file that
vanishes for a moment)."""

import time

import pytest

from db import store
from db.migrate import upgrade
from rnnlab.queue import send_run
from rnnlab.spec import parse_spec
from worker import tasks

TINY = {"hidden_size": 8, "task": {"name": "adding", "seq_len": 10}, "epochs": 1, "steps_per_epoch": 2,
        "batch_size": 8, "probe": {"batch_size": 4}, "device": "cpu"}


def test_task_retries_transient_database_errors_with_bounded_backoff():
    from sqlalchemy.exc import OperationalError

    t = tasks.run
    assert OperationalError in t.autoretry_for and t.retry_backoff and 0 < t.max_retries <= 20


@pytest.mark.timeout(180)
def test_claim_failing_on_a_database_blip_is_retried(tmp_path, broker_factory, start_worker, wait_status):
    here, away = tmp_path / "db", tmp_path / "db-away"
    here.mkdir()
    db_url = f"sqlite:///{here / 'rnnlab.db'}"
    upgrade(db_url)
    broker = broker_factory("redis")
    w = start_worker(db_url, broker)
    (run_id,) = store.create_runs([parse_spec(TINY)], url=db_url)
    here.rename(away)          # new connections cannot open the file: the worker's claim fails
    try:
        send_run(broker.app(), run_id, "cpu")
        deadline = time.monotonic() + 60
        while "unable to open database file" not in w.log() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "unable to open database file" in w.log(), w.log()[-3000:]
        time.sleep(1.0)
    finally:
        away.rename(here)      # the database is back
    run = wait_status(db_url, run_id, {"succeeded", "failed"}, 90, [w])
    assert run["status"] == "succeeded", run["message"]
    assert "Retry in" in w.log()
