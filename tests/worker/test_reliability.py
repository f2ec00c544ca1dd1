"""Exactly-once and failure handling with real worker processes: a SIGKILLed worker's run resumes
from its checkpoint on another worker with identical records; a duplicate message runs a run once;
cancel stops a long epoch within seconds; engine errors fail and divergence is recorded."""

import dataclasses
import time

import pytest

from client.submit import submit
from db import store
from rnnlab.queue import send_run
from rnnlab.spec import parse_spec

BASE = {"hidden_size": 8, "task": {"name": "adding", "seq_len": 12}, "batch_size": 8,
        "probe": {"batch_size": 4}, "device": "cpu"}
FINAL = {"succeeded", "failed", "diverged", "cancelled"}
TIMING = ("train_seconds", "diag_seconds")


def spec(**kw):
    return parse_spec({**BASE, **kw})


def comparable(rec):
    d = dataclasses.asdict(rec)
    for k in TIMING:
        d.pop(k)
    return d


def wait_epochs(db_url, run_id, n, timeout=60, workers=()):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = store.get_run(run_id, url=db_url)
        # the epoch's checkpoint is written just after its records: wait for both
        ckpt = store.load_checkpoint(run_id, url=db_url)
        if run["status"] == "running" and run["epochs_done"] >= n and ckpt and ckpt[0] >= n:
            return run
        time.sleep(0.1)
    raise TimeoutError(f"run {run_id} did not reach epoch {n}: {run}\n" + "\n".join(w.log()[-3000:] for w in workers))


@pytest.mark.timeout(240)
@pytest.mark.parametrize("backend, broker_kind", [("sqlite", "filesystem"), ("postgres", "redis")])
def test_killed_worker_run_resumes_identically(backend, broker_kind, request, broker_factory, start_worker,
                                               wait_status):
    db_url = request.getfixturevalue("sqlite_url" if backend == "sqlite" else "pg_url")
    broker = broker_factory(broker_kind)
    slow = spec(hidden_size=16, task={"name": "adding", "seq_len": 30}, epochs=4, steps_per_epoch=150, seed=7)
    (crashed,) = submit([slow], url=db_url, app=broker.app())
    w1 = start_worker(db_url, broker)
    wait_epochs(db_url, crashed, 1, workers=[w1])
    w1.kill()
    assert store.get_run(crashed, url=db_url)["status"] == "running"
    (reference,) = submit([slow], url=db_url, app=broker.app())
    w2 = start_worker(db_url, broker)
    run = wait_status(db_url, crashed, FINAL, 150, [w1, w2])
    ref = wait_status(db_url, reference, FINAL, 150, [w2])
    assert (run["status"], ref["status"]) == ("succeeded", "succeeded"), (run["message"], w2.log()[-3000:])
    hist = run["attempt_history"]
    assert run["attempts"] == 2 and [(a["attempt"], a["worker"], a["outcome"]) for a in hist] == \
        [(1, w1.name, "lost"), (2, w2.name, "succeeded")]
    assert hist[1]["resumed_from_epoch"] >= 1
    got, want = store.epoch_records(crashed, url=db_url), store.epoch_records(reference, url=db_url)
    assert [r.epoch for r in got] == [0, 1, 2, 3, 4]
    assert [comparable(r) for r in got] == [comparable(r) for r in want]


@pytest.mark.timeout(120)
def test_duplicate_delivery_runs_once(sqlite_url, fs_broker, start_worker, wait_status):
    app = fs_broker.app()
    (run_id,) = submit([spec(epochs=2, steps_per_epoch=20, seed=3)], url=sqlite_url, app=app)
    send_run(app, run_id, "cpu")  # the same message, delivered again
    w = start_worker(sqlite_url, fs_broker, concurrency=2)
    run = wait_status(sqlite_url, run_id, FINAL, 90, [w])
    assert run["status"] == "succeeded"
    deadline = time.monotonic() + 30
    while "not claimable" not in w.log() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "not claimable" in w.log(), w.log()[-3000:]
    send_run(app, run_id, "cpu")  # and once more after it finished
    deadline = time.monotonic() + 30   # wait for the event itself: the worker has seen and skipped it
    while w.log().count("not claimable") < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert w.log().count("not claimable") >= 2, w.log()[-3000:]
    run = store.get_run(run_id, url=sqlite_url)
    assert run["status"] == "succeeded" and run["attempts"] == 1 and len(run["attempt_history"]) == 1
    assert [r.epoch for r in store.epoch_records(run_id, url=sqlite_url)] == [0, 1, 2]


@pytest.mark.timeout(120)
def test_cancel_stops_within_a_long_epoch(db_url, fs_broker, start_worker, wait_status):
    long = spec(hidden_size=32, task={"name": "adding", "seq_len": 50}, epochs=20, steps_per_epoch=800)
    (run_id,) = submit([long], url=db_url, app=fs_broker.app())
    w = start_worker(db_url, fs_broker)
    wait_epochs(db_url, run_id, 1, workers=[w])
    time.sleep(0.5)  # well inside epoch 2, which takes several seconds
    t0 = time.monotonic()
    assert store.request_cancel(run_id, url=db_url)
    run = wait_status(db_url, run_id, FINAL, 60, [w])
    latency = time.monotonic() - t0
    epoch_s = store.epoch_records(run_id, url=db_url)[1].train_seconds
    print(f"cancel latency {latency:.2f} s (an epoch takes {epoch_s:.1f} s)")
    assert run["status"] == "cancelled", run["message"]
    assert latency < min(epoch_s, 5.0), (latency, epoch_s)
    assert run["epochs_done"] >= 1 and len(store.epoch_records(run_id, url=db_url)) >= 2   # data kept
    assert run["attempt_history"][-1]["outcome"] == "cancelled"


@pytest.mark.timeout(120)
def test_engine_error_fails_and_divergence_is_recorded(sqlite_url, fs_broker, start_worker, wait_status):
    # an engine error on every machine: a missing data file (a cuda run on a machine without a GPU is
    # handed back to the gpu queue, not failed: tests/worker/test_gpu_lost.py)
    bad, words = spec(task={"name": "charlm", "path": "/nonexistent/rnnlab.txt"}), ("task.path", "not found")
    no_gpu, exploding = submit([
        bad,
        spec(activation="relu", init={"recurrent": "identity", "scale": 3.0},
             optimizer={"name": "sgd", "lr": 1.0}, epochs=3, steps_per_epoch=3),
    ], url=sqlite_url, app=fs_broker.app())
    w = start_worker(sqlite_url, fs_broker, queues="cpu,gpu")
    failed = wait_status(sqlite_url, no_gpu, FINAL, 60, [w])
    assert failed["status"] == "failed" and all(word in failed["message"] for word in words), failed["message"]
    diverged = wait_status(sqlite_url, exploding, FINAL, 60, [w])
    assert diverged["status"] == "diverged" and "non-finite" in diverged["message"]
    assert len(store.epoch_records(exploding, url=sqlite_url)) >= 2   # the epoch it diverged in is kept
