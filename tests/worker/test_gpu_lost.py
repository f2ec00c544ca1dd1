"""A GPU worker whose GPU is gone after it started: the gpu runs it takes go back to the queue (never
'failed'), and the worker stops taking gpu runs, so other GPU workers get them.

On a machine where torch sees no CUDA device (this one), a run taken off the gpu queue is exactly a gpu
worker whose GPU has disappeared: that is a real condition, not a mock. Everything else is real too: a
SQLite database, worker.runner.execute, and real Celery worker processes on both brokers.
"""


import pytest
import torch
from sqlalchemy import update

from client.submit import submit
from db import store
from db.engine import session
from db.models import Run
from rnnlab.spec import parse_spec
from tests.conftest import wait_until
from worker import runner

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: its GPU is not gone")

TINY = {"hidden_size": 4, "task": {"name": "adding", "seq_len": 5}, "batch_size": 4, "probe": {"batch_size": 2},
        "epochs": 1, "steps_per_epoch": 2, "seed": 1}
NO_GPU = "has no usable GPU: torch.cuda.is_available() is False: no CUDA GPU is visible to this process"


def test_a_gpu_run_is_handed_back_and_a_cpu_run_still_fails(sqlite_url):
    """Before, both failed with 'device: got cuda but no CUDA GPU is visible': a gpu worker whose GPU had
    gone failed every run of the gpu queue. Now the gpu-queue run is handed back with the worker and the
    CUDA problem as its reason, its attempt closed as interrupted and not counted; the same spec on the
    cpu queue (a worker with no GPU was asked for one) still fails with the engine's clear message."""
    cuda = parse_spec({**TINY, "device": "cuda"})
    gpu_run, cpu_run = store.create_runs([cuda, cuda], url=sqlite_url)
    with session(sqlite_url, write=True) as s:
        s.execute(update(Run).where(Run.id == cpu_run).values(queue="cpu"))

    status = runner.execute(gpu_run, "gpu0@box", heartbeat_s=5, lost_after_s=60, url=sqlite_url)
    assert status == "gpu-lost"   # runner.GPU_LOST
    run = store.get_run(gpu_run, url=sqlite_url)
    assert (run["status"], run["queue"], run["attempts"], run["max_attempts"]) == ("queued", "gpu", 1, 4)
    assert run["message"].startswith(f"requeued after attempt 1: worker gpu0@box {NO_GPU}"), run["message"]
    (attempt,) = run["attempt_history"]
    assert (attempt["worker"], attempt["outcome"]) == ("gpu0@box", "interrupted") and NO_GPU in attempt["message"]
    assert attempt["ended_at"] is not None and store.epoch_records(gpu_run, url=sqlite_url) == []
    again = store.claim_run(gpu_run, "gpu1@box", url=sqlite_url)   # the next GPU worker takes it: attempt 2 of 4
    assert again is not None and again["attempt"] == 2

    assert runner.execute(cpu_run, "cpu@box", heartbeat_s=5, lost_after_s=60, url=sqlite_url) == "failed"
    run = store.get_run(cpu_run, url=sqlite_url)
    assert run["status"] == "failed" and run["message"].startswith(
        "device: got 'cuda' but no CUDA GPU is visible to this process"), run["message"]
    assert [a["outcome"] for a in run["attempt_history"]] == ["failed"]


def test_a_device_auto_run_on_the_gpu_queue_never_trains_on_the_cpu(sqlite_url):
    """Before, a device: auto run sent to the gpu queue (RNNLAB_AUTO_QUEUE=gpu) trained quietly on the
    CPU of a gpu worker whose GPU had gone, and succeeded there. Now it is handed back untrained, and the
    worker is told which queue to stop taking, why, and which run to send again."""
    (run_id,) = store.create_runs([parse_spec({**TINY, "device": "auto"})], auto_queue="gpu", url=sqlite_url)
    told = []
    status = runner.execute(run_id, "gpu0@box", heartbeat_s=5, lost_after_s=60, url=sqlite_url,
                            on_gpu_lost=lambda queue, problem, rid: told.append((queue, problem, rid)))
    assert status == "gpu-lost"   # runner.GPU_LOST
    run = store.get_run(run_id, url=sqlite_url)
    assert run["status"] == "queued" and NO_GPU in run["message"] and run["epochs_done"] == 0
    assert store.epoch_records(run_id, url=sqlite_url) == []
    assert [(q, rid) for q, _, rid in told] == [("gpu", run_id)]
    assert told[0][1].startswith("torch.cuda.is_available() is False")


def _ended_attempts(url: str, run_id: int, n: int):
    run = store.get_run(url=url, run_id=run_id)
    return run if len([a for a in run["attempt_history"] if a["ended_at"] is not None]) >= n else None


def _worker_row(url: str, name: str) -> dict:
    return next(w for w in store.list_workers(url=url) if w["name"] == name)


def _consumed(broker, name: str) -> set[str]:
    """The broker queues worker ``name`` consumes, as it answers itself (Celery's inspect active_queues)."""
    replies = broker.app().control.inspect(destination=[name], timeout=10).active_queues() or {}
    assert name in replies, f"worker {name} did not answer: {replies}"
    return {q["name"] for q in replies[name]}


@pytest.mark.timeout(300)
def test_a_worker_whose_gpu_is_gone_stops_taking_gpu_runs(sqlite_url, broker, start_worker, wait_status):
    """A real worker serving cpu and gpu, whose GPU is gone, takes a gpu run: the run goes back to the
    queue (before: 'failed', and the worker went on failing every gpu run), the worker stops consuming the
    gpu queue and says why, goes on serving the cpu queue, and the run's task is sent again: a second gpu
    worker takes it."""
    (gpu_run,) = submit([parse_spec({**TINY, "device": "cuda"})], url=sqlite_url, app=broker.app())
    first = start_worker(sqlite_url, broker, queues="cpu,gpu")
    run = wait_until(lambda: _ended_attempts(sqlite_url, gpu_run, 1), 90, "the gpu run's first attempt did not end",
                     first)
    assert [a["outcome"] for a in run["attempt_history"]] == ["interrupted"], run["message"]
    assert f"worker {first.name} {NO_GPU}" in run["message"]

    row = wait_until(lambda: (w := _worker_row(sqlite_url, first.name))["queues"] == "cpu" and w, 90,
                     "the worker's row still lists the gpu queue", first)
    assert row["alive"] and row["device"].startswith("GPU unusable: torch.cuda.is_available() is False")
    assert _consumed(broker, first.name) == {f"{broker.prefix}cpu"}
    log = first.log()
    assert f"rnnlab worker {first.name}: its GPU is unusable" in log and "no longer takes runs from the gpu" in log
    assert f"run {gpu_run} handed back by {first.name} (no usable GPU); its task is sent again" in log

    (cpu_run,) = submit([parse_spec({**TINY, "device": "cpu", "seed": 2})], url=sqlite_url, app=broker.app())
    assert wait_status(sqlite_url, cpu_run, {"succeeded", "failed"}, 90, [first])["status"] == "succeeded"
    run = store.get_run(gpu_run, url=sqlite_url)
    assert run["status"] == "queued" and run["attempts"] == 1   # the first worker did not take it again

    second = start_worker(sqlite_url, broker, queues="gpu")     # another gpu worker gets the re-sent task
    run = wait_until(lambda: _ended_attempts(sqlite_url, gpu_run, 2), 90, "the second gpu worker did not take the run",
                     first, second)
    assert [(a["worker"], a["outcome"]) for a in run["attempt_history"]] == [
        (first.name, "interrupted"), (second.name, "interrupted")]   # its GPU is gone too, here
    assert run["status"] == "queued" and run["max_attempts"] == 5   # neither hand-back used up an attempt
    row = wait_until(lambda: (w := _worker_row(sqlite_url, second.name))["queues"] == "" and w, 90,
                     "the second worker's row still lists the gpu queue", second)
    assert row["alive"] and _consumed(broker, second.name) == set()
