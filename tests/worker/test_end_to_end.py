"""End to end with real services: submit → a real Celery worker trains → statistics in the database,
for each broker (filesystem, Redis) × each database (SQLite, Postgres)."""

import pytest
from sqlalchemy import select

from client.submit import submit
from db import store
from db.engine import session
from db.models import Worker
from rnnlab.spec import parse_spec

TINY = {"hidden_size": 8, "task": {"name": "adding", "seq_len": 12}, "epochs": 2, "steps_per_epoch": 3,
        "batch_size": 8, "probe": {"batch_size": 4}, "device": "cpu"}


@pytest.mark.timeout(180)
def test_submit_run_record(db_url, broker, start_worker, wait_status):
    specs = [parse_spec({**TINY, "seed": 1}), parse_spec({**TINY, "cell": "lstm", "seed": 2})]
    ids = submit(specs, owner="tester", tags=["e2e"], url=db_url, app=broker.app())
    w = start_worker(db_url, broker)
    for run_id, sp in zip(ids, specs):
        run = wait_status(db_url, run_id, {"succeeded", "failed", "diverged", "cancelled"}, 120, [w])
        assert run["status"] == "succeeded", run["message"]
        assert run["worker"] == w.name and run["attempts"] == 1 and run["epochs_done"] == 2
        assert run["metric_name"] and run["diagnosis"] and run["info"]["seq_len"] == 12
        recs = store.epoch_records(run_id, url=db_url)
        assert [r.epoch for r in recs] == [0, 1, 2]
        assert all(len(r.layers) == 1 and len(r.layers[0].grad_h) == 12 for r in recs)
        assert (recs[0].layers[0].grad_c is not None) == (sp.cell == "lstm")
        assert store.load_checkpoint(run_id, url=db_url)[0] == 2
        assert [(a["attempt"], a["outcome"]) for a in run["attempt_history"]] == [(1, "succeeded")]
    with session(db_url) as s:
        (row,) = s.execute(select(Worker.name, Worker.queues, Worker.device, Worker.pid, Worker.heartbeat_at)).all()
    assert row[:3] == (w.name, "cpu", "cpu") and row.pid == w.proc.pid


def test_unreachable_broker_fails_the_runs_with_the_reason(sqlite_url, tmp_path):
    from rnnlab.queue import make_app

    dead = make_app("redis://127.0.0.1:1/0", prefix="rnnlab-test-dead-")
    ids = submit([parse_spec({**TINY, "seed": s}) for s in range(3)], url=sqlite_url, app=dead)
    runs = [store.get_run(i, url=sqlite_url) for i in ids]
    assert [r["status"] for r in runs] == ["failed"] * 3
    assert all("could not enqueue" in r["message"] and "127.0.0.1:1" in r["message"] for r in runs)
