"""The real work behind the task: claim a run, train it with recording callbacks, record the outcome.

Everything is read from the database (the message holds only the run id). The recording is
worker.recorder's, shared with ``rnnlab train``: every write is fenced by the attempt number, so a
worker that lost its run (it was reaped and claimed elsewhere) stops writing. The engine's own
outcomes (succeeded, diverged, cancelled) are recorded as they are; any exception becomes 'failed'
with its message (worker.recorder.failure_message), so a run never hangs in 'running', except a
transient database error (connection lost, a restart, "database is locked", a full disk): each write
retries it for DB_RETRY_S, and if it persists the run is handed back to the queue, never failed. A run
stopped because its worker is shutting down is handed back to the queue (db.store.release_run); the
worker's main process sends its task again, and another worker resumes it from its checkpoint.

A run taken off the gpu queue must train on this worker's GPU: before training, the slot checks that
torch sees a CUDA device and can compute on it (gpu_problem). If it cannot (the GPU fell off the bus, a
driver reset, CUDA_ERROR_NO_DEVICE), the run is handed back to the queue, never failed, with the
worker and the CUDA problem as its reason, and ``on_gpu_lost`` is called so that the worker stops
taking gpu runs (worker.app.stop_taking) and another GPU worker gets it; a ``device: auto`` run never
quietly trains on the CPU of a gpu worker. An exception raised before the engine has its model on the
device (before on_info) is checked the same way. A CUDA error after training started fails the run as
any error does: this process's CUDA context is then unusable whatever caused it, so a run whose own
computation breaks CUDA cannot be told from a lost GPU, and handing it back would let that one run take
every GPU worker off the gpu queue in turn; its checkpoint stays, and ``rnnlab requeue`` resumes it.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

from db import store
from rnnlab.spec import SPEC_VERSION, parse_spec
from worker.heartbeat import RunMonitor
from worker.recorder import (  # noqa: F401 - re-exported: worker.tasks and tests import them from here
    DB_RETRY_S,
    DB_TRANSIENT,
    TRANSIENT_SQLSTATES,
    Recorder,
    db_retry,
    disk_full,
    failure_message,
    transient,
    unavailable_message,
)

log = logging.getLogger(__name__)

GPU_QUEUE = "gpu"
GPU_LOST = "gpu-lost"   # execute's answer for a run handed back because this worker's GPU is unusable


def gpu_problem() -> str | None:
    """Why this process cannot train on a GPU now, or None when it can: torch sees no CUDA device, or
    CUDA fails on it (a small tensor is made, computed on and synchronized). Initializes CUDA in this
    process (a pool child of a gpu worker; never the worker's main process). Without torch, None: the
    engine's own failure says so."""
    try:
        import torch
    except ImportError:
        return None
    try:
        if not torch.cuda.is_available() or torch.cuda.device_count() < 1:
            visible = os.environ.get("CUDA_VISIBLE_DEVICES")
            build = (f"built for CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build")
            return ("torch.cuda.is_available() is False: no CUDA GPU is visible to this process"
                    + (f" (CUDA_VISIBLE_DEVICES={visible})" if visible is not None else "")
                    + f"; torch {torch.__version__}, {build}")
        torch.ones(8, device="cuda").mul_(2).sum().item()   # a context, an allocation, a kernel and a sync
    except Exception as e:  # noqa: BLE001 - whatever CUDA raises, the GPU is not usable here
        return f"CUDA fails on this worker's GPU: {type(e).__name__}: {e}"[:400]
    return None


def execute(run_id: int, worker: str, *, heartbeat_s: float, lost_after_s: float,
            url: str | None = None,
            on_gpu_lost: Callable[[str, str, int | None], None] | None = None) -> str | None:
    """Run one run to its end; returns its final status, "requeued" if the worker's shutdown
    interrupted it (the worker's main process sends its task again once it has stopped consuming:
    worker.app), GPU_LOST if it came off the gpu queue and this worker has no usable GPU (it is
    handed back to the queue), or None if it was not ours to run.

    ``on_gpu_lost(queue, problem, run_id)``: called after such a hand-back, with the run's queue, the
    CUDA problem and the run's id (None when the run was not put back in the queue: cancelled meanwhile,
    or the hand-back failed); the Celery task has the worker stop consuming that queue and send the
    run's task again."""
    run = store.claim_run(run_id, worker, stale_after_s=lost_after_s, url=url)
    if run is None:
        log.info("run %s: not claimable (already taken, finished, cancelled or deleted); skipping", run_id)
        return None
    attempt = run["attempt"]
    log.info("run %s: attempt %s on %s", run_id, attempt, worker)
    monitor = RunMonitor(run_id, attempt, heartbeat_s=heartbeat_s, url=url)
    recorder = Recorder(run_id, attempt, url=url, monitor=monitor)
    monitor.start()
    needs_gpu = run.get("queue") == GPU_QUEUE
    problem = None
    try:
        problem = gpu_problem() if needs_gpu else None
        if problem is None:
            status, message = _train(run, recorder, url)
    except store.LostOwnership as e:
        log.warning("run %s: %s; leaving it to its new owner", run_id, e)
        return None
    except Exception as e:  # noqa: BLE001 - every failure is recorded on the run
        if transient(e):   # the database stayed unusable past DB_RETRY_S: hand the run back, never fail it
            monitor.stop()
            why = unavailable_message(e)
            log.error("run %s: %s; handing it back to the queue", run_id, why)
            return _hand_back(run, attempt, worker, url, reason=f"{why} (worker {worker})"[:500], tries=30)
        if needs_gpu and recorder.info is None:   # before the engine had its model on the device: is it the GPU?
            problem = gpu_problem()
        if problem is not None:
            log.error("run %s: %s: %s, before training started", run_id, type(e).__name__, e)
        else:
            status, message = recorder.failed(e)
            if message == str(e):   # the engine's own clear message: no traceback needed
                log.warning("run %s failed: %s", run_id, message)
            else:
                log.exception("run %s failed", run_id)
    finally:
        monitor.stop()
    if monitor.lost.is_set():
        return None
    if problem is not None:
        return _gpu_lost(run, attempt, worker, url, problem, on_gpu_lost)
    if status == "cancelled" and monitor.interrupted:
        return _hand_back(run, attempt, worker, url)
    recorder.finish(status, message)
    return status


def _hand_back(run: dict, attempt: int, worker: str, url: str | None, tries: int = 5,
               reason: str | None = None) -> str | None:
    """Release the run to the queue as its worker shuts down (db.store.release_run), retrying a
    database error for a few seconds: if it stays down, the run stays 'running' and the reaper
    requeues it later (as a lost attempt). Returns "requeued", "cancelled" or None."""
    run_id = run["id"]
    for i in range(tries):
        try:
            status = store.release_run(run_id, reason or f"worker {worker} shut down during the run",
                                       attempt=attempt, url=url)
            break
        except DB_TRANSIENT:
            if i == tries - 1:
                log.exception("run %s: could not hand the run back (database error); the reaper will requeue "
                              "it once its heartbeat is stale", run_id)
                return None
            time.sleep(1.0)
    if status == "queued":
        log.warning("run %s: %s; run handed back to the %s queue", run_id,
                    reason or f"worker {worker} is shutting down", run["queue"])
        return "requeued"
    if status == "cancelled":
        log.warning("run %s: cancelled while worker %s was shutting down", run_id, worker)
    return status


def _gpu_lost(run: dict, attempt: int, worker: str, url: str | None, problem: str,
              on_gpu_lost: Callable[[str, str, int | None], None] | None) -> str | None:
    """Hand a gpu run back to its queue because this worker has no usable GPU (db.store.release_run:
    the attempt is closed as 'interrupted' and does not count against max_attempts), then tell the
    worker (``on_gpu_lost``) to stop taking runs from that queue."""
    reason = f"worker {worker} has no usable GPU: {problem}"[:500]
    status = _hand_back(run, attempt, worker, url, reason=reason)
    if on_gpu_lost is not None:
        on_gpu_lost(run["queue"], problem, run["id"] if status == "requeued" else None)
    return GPU_LOST if status == "requeued" else status


def load_spec(run: dict):
    """The run's JobSpec, validated again under this deployment's limits (RNNLAB_MAX_*, RNNLAB_DATA_DIR):
    the spec was accepted under them at submit, so the defaults would wrongly refuse raised limits."""
    from rnnlab.settings import get_settings

    return parse_spec(run["spec"], get_settings().limits)


def _train(run: dict, recorder: Recorder, url: str | None) -> tuple[str, str]:
    run_id = run["id"]
    if run["spec_version"] != SPEC_VERSION:
        return "failed", (f"spec_version {run['spec_version']} is not supported by this worker "
                          f"(it reads version {SPEC_VERSION}); upgrade the worker")
    spec = load_spec(run)
    ckpt = db_retry(lambda: store.load_checkpoint(run_id, url=url), "load checkpoint", run_id)
    return recorder.train(spec, resume=ckpt[1] if ckpt else None)
