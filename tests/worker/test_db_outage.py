"""A short database outage mid-run does not fail the run: a real worker (filesystem broker) trains on a
private PostgreSQL server that is stopped for a few seconds after the run's first epoch and started
again. Every write retries the transient error (worker.runner.db_retry), so the run ends succeeded
(old code: the OperationalError from record_epoch was caught and the run marked failed)."""

import time

import pytest

from client.submit import submit
from db import store
from db.engine import dispose_all
from rnnlab.spec import parse_spec
from tests.worker.pg_server import PrivatePostgres

# many short epochs: the run writes every second or two, so writes are sure to hit the 4 s outage
SLOW = {"hidden_size": 16, "task": {"name": "adding", "seq_len": 30}, "epochs": 16, "steps_per_epoch": 10,
        "batch_size": 8, "probe": {"batch_size": 4}, "device": "cpu", "seed": 3}


@pytest.fixture
def private_pg():
    pg = PrivatePostgres()
    pg.start()
    yield pg
    dispose_all()
    pg.remove()


def _wait_epoch(url: str, run_id: int, n: int, worker, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = store.get_run(run_id, url=url)
        if run["status"] == "running" and run["epochs_done"] >= n:
            return
        assert run["status"] in ("queued", "running"), (run, worker.log()[-3000:])
        time.sleep(0.1)
    raise TimeoutError(f"run {run_id} did not reach epoch {n}:\n{worker.log()[-3000:]}")


@pytest.mark.timeout(300)
def test_a_short_postgres_outage_mid_run_does_not_fail_the_run(private_pg, fs_broker, start_worker, wait_status):
    url = private_pg.create_database("outage")
    w = start_worker(url, fs_broker)
    (run_id,) = submit([parse_spec(SLOW)], url=url, app=fs_broker.app())
    _wait_epoch(url, run_id, 1, w)
    dispose_all()              # this process's pooled connections die with the server too
    private_pg.stop("fast")    # every client is disconnected; new connections are refused
    time.sleep(4)
    private_pg.start()
    run = wait_status(url, run_id, {"succeeded", "failed", "diverged", "cancelled"}, 180, [w])
    assert run["status"] == "succeeded", (run["message"], w.log()[-4000:])
    assert [r.epoch for r in store.epoch_records(run_id, url=url)] == list(range(SLOW["epochs"] + 1))
    assert "database error; retrying in" in w.log()   # a write did hit the outage


@pytest.mark.timeout(300)
def test_an_outage_longer_than_the_write_retries_hands_the_run_back(private_pg, fs_broker, start_worker,
                                                                      wait_status):
    """Writes retry for 2 s only (RNNLAB_DB_RETRY_SECONDS) and the reaper waits 60 s: an 8 s outage
    makes the worker hand the run back (closed as 'interrupted', with the reason) and send its task
    again; the next attempt resumes and the run ends succeeded."""
    url = private_pg.create_database("handback")
    w = start_worker(url, fs_broker, RNNLAB_DB_RETRY_SECONDS="2", RNNLAB_LOST_AFTER_SECONDS="60")
    (run_id,) = submit([parse_spec(SLOW)], url=url, app=fs_broker.app())
    _wait_epoch(url, run_id, 1, w)
    dispose_all()
    private_pg.stop("fast")
    time.sleep(8)
    private_pg.start()
    run = wait_status(url, run_id, {"succeeded", "failed", "diverged", "cancelled"}, 180, [w])
    assert run["status"] == "succeeded", (run["message"], w.log()[-4000:])
    first = run["attempt_history"][0]
    assert first["outcome"] == "interrupted" and "database unavailable" in first["message"], first
    assert [r.epoch for r in store.epoch_records(run_id, url=url)] == list(range(SLOW["epochs"] + 1))
