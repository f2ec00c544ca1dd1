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
"""

from __future__ import annotations

import logging
import time

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


def execute(run_id: int, worker: str, *, heartbeat_s: float, lost_after_s: float,
            url: str | None = None) -> str | None:
    """Run one run to its end; returns its final status, "requeued" if the worker's shutdown
    interrupted it (the worker's main process sends its task again once it has stopped consuming:
    worker.app), or None if it was not ours to run."""
    run = store.claim_run(run_id, worker, stale_after_s=lost_after_s, url=url)
    if run is None:
        log.info("run %s: not claimable (already taken, finished, cancelled or deleted); skipping", run_id)
        return None
    attempt = run["attempt"]
    log.info("run %s: attempt %s on %s", run_id, attempt, worker)
    monitor = RunMonitor(run_id, attempt, heartbeat_s=heartbeat_s, url=url)
    recorder = Recorder(run_id, attempt, url=url, monitor=monitor)
    monitor.start()
    try:
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
        status, message = recorder.failed(e)
        if message == str(e):   # the engine's own clear message: no traceback needed
            log.warning("run %s failed: %s", run_id, message)
        else:
            log.exception("run %s failed", run_id)
    finally:
        monitor.stop()
    if monitor.lost.is_set():
        return None
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
