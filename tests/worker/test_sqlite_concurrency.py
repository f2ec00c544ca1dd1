"""SQLite under load: two worker processes writing epochs while readers poll; no 'database is locked'."""

import threading

import pytest

from client.submit import submit
from db import store
from rnnlab.spec import parse_spec

TINY = {"hidden_size": 8, "task": {"name": "adding", "seq_len": 12}, "epochs": 4, "steps_per_epoch": 10,
        "batch_size": 8, "probe": {"batch_size": 4}, "device": "cpu"}


@pytest.mark.timeout(240)
def test_two_workers_and_readers_never_lock(sqlite_url, fs_broker, start_worker, wait_status):
    workers = [start_worker(sqlite_url, fs_broker), start_worker(sqlite_url, fs_broker)]
    ids = submit([parse_spec({**TINY, "seed": s}) for s in range(8)], url=sqlite_url, app=fs_broker.app())
    errors: list[str] = []
    reads = {"n": 0}
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            try:
                store.list_runs(url=sqlite_url)
                for run_id in ids[:3]:
                    store.epoch_records(run_id, url=sqlite_url)
                reads["n"] += 1
            except Exception as e:  # noqa: BLE001 - collected and asserted on below
                errors.append(f"{type(e).__name__}: {e}")

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        runs = [wait_status(sqlite_url, i, {"succeeded", "failed", "diverged", "cancelled"}, 180, workers)
                for i in ids]
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert [r["status"] for r in runs] == ["succeeded"] * len(ids), [r["message"] for r in runs]
    assert {r["worker"] for r in runs} == {w.name for w in workers}   # both workers wrote
    assert not errors, errors[:5]
    assert reads["n"] > 10
    logs = "".join(w.log() for w in workers)
    assert "database is locked" not in logs and "Traceback" not in logs, logs[-3000:]
