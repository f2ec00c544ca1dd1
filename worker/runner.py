"""The real work behind the task: claim a run, train it with recording callbacks, record the outcome.

Everything is read from the database (the message holds only the run id). Every write is fenced by
the attempt number, so a worker that lost its run (it was reaped and claimed elsewhere) stops
writing. The engine's own outcomes (succeeded, diverged, cancelled) are recorded as they are;
any exception becomes 'failed' with its message, so a run never hangs in 'running', except a transient
database error (connection lost, a restart, "database is locked", a full disk): each write retries it
for DB_RETRY_S, and if it persists the run is handed back to the queue, never failed. A run stopped
because its worker is shutting down is handed back to the queue (db.store.release_run); the
worker's main process sends its task again, and another worker resumes it from its checkpoint.
"""

from __future__ import annotations

import errno
import logging
import os
import time
import traceback

from sqlalchemy.exc import InterfaceError, OperationalError

from db import store
from rnnlab.spec import SPEC_VERSION, SpecError, parse_spec
from worker.heartbeat import RunMonitor

log = logging.getLogger(__name__)

DB_TRANSIENT = (OperationalError, InterfaceError)   # "database is locked", connection refused or dropped
# Postgres ended the session (SQLAlchemy raises InternalError): idle_in_transaction_session_timeout, which a
# worker sets (worker.heartbeat.bound_transactions), hit by a worker that was frozen or starved mid-write
TRANSIENT_SQLSTATES = {"25P03"}


def transient(exc: BaseException) -> bool:
    """Whether a database error may pass if the write is retried on a new connection."""
    return isinstance(exc, DB_TRANSIENT) or getattr(getattr(exc, "orig", None), "sqlstate", None) in TRANSIENT_SQLSTATES
# how long one write retries a transient database error before the run is handed back
DB_RETRY_S = float(os.environ.get("RNNLAB_DB_RETRY_SECONDS", "60"))


def disk_full(exc: BaseException) -> bool:
    """Whether an error means the disk (of the database or this worker) is full."""
    orig = getattr(exc, "orig", None)
    if getattr(orig, "sqlstate", None) == "53100" or getattr(exc, "errno", None) == errno.ENOSPC:
        return True
    text = str(exc).lower()
    return any(s in text for s in ("disk is full", "no space left", "could not extend file"))


def db_retry(fn, what: str, run_id: int, budget_s: float | None = None):
    """``fn()``, retrying a transient database error with backoff (0.5 s doubling to 8 s) for ``budget_s``
    (DB_RETRY_S); then the error is raised. Safe because every worker write is idempotent."""
    deadline = time.monotonic() + (DB_RETRY_S if budget_s is None else budget_s)
    delay = 0.5
    while True:
        try:
            return fn()
        except Exception as e:
            if not transient(e) or time.monotonic() + delay > deadline:
                raise
            log.warning("run %s: %s: %s; retrying in %.1f s", run_id, what,
                        "disk full" if disk_full(e) else "database error", delay)
            time.sleep(delay)
            delay = min(delay * 2, 8.0)


def _failure_message(exc: BaseException) -> str:
    """The reason recorded on a failed run: the engine's own message, or the exception and where."""
    try:
        from models import EngineError
    except ImportError:  # the engine itself failed to import (e.g. no torch on this worker)
        EngineError = SpecError
    if isinstance(exc, (EngineError, SpecError)):
        return str(exc)
    if disk_full(exc):
        return f"disk full: {exc}"
    where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    at = f" (at {where.filename.rsplit('/', 1)[-1]}:{where.lineno})" if where else ""
    return f"{type(exc).__name__}: {exc}{at}"


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
    monitor.start()
    try:
        status, message = _train(run, attempt, monitor, url)
    except store.LostOwnership as e:
        log.warning("run %s: %s; leaving it to its new owner", run_id, e)
        return None
    except Exception as e:  # noqa: BLE001 - every failure is recorded on the run
        if transient(e):   # the database stayed unusable past DB_RETRY_S: hand the run back, never fail it
            monitor.stop()
            why = f"disk full: {e}" if disk_full(e) else f"database unavailable: {type(e).__name__}"
            log.error("run %s: %s; handing it back to the queue", run_id, why)
            return _hand_back(run, attempt, worker, url, reason=f"{why} (worker {worker})"[:500], tries=30)
        status, message = "failed", _failure_message(e)
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
    if status == "cancelled" and monitor.cancelled.is_set():
        message = message or "cancelled by request"
    db_retry(lambda: store.finish_run(run_id, status, message, attempt=attempt, url=url), "finish", run_id)
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


def _train(run: dict, attempt: int, monitor: RunMonitor, url: str | None) -> tuple[str, str]:
    import models  # torch is imported here, in the process that trains, never at module import

    run_id = run["id"]
    if run["spec_version"] != SPEC_VERSION:
        return "failed", (f"spec_version {run['spec_version']} is not supported by this worker "
                          f"(it reads version {SPEC_VERSION}); upgrade the worker")
    spec = load_spec(run)
    ckpt = db_retry(lambda: store.load_checkpoint(run_id, url=url), "load checkpoint", run_id)
    facts: dict = {}

    def on_info(info) -> None:
        facts["info"] = info
        db_retry(lambda: store.record_info(run_id, info, attempt=attempt, url=url), "record info", run_id)

    def on_epoch(rec) -> None:
        db_retry(lambda: store.record_epoch(run_id, rec, attempt=attempt, url=url), f"epoch {rec.epoch}", run_id)
        if rec.epoch == 0:
            facts["initial"] = rec   # diagnose compares ρ(W_hh) with its value at initialization
        if rec.probed and rec.layers and "info" in facts:
            text = models.diagnose(rec, facts["info"], facts.get("initial"))
            db_retry(lambda: store.record_diagnosis(run_id, text, attempt=attempt, url=url), "diagnosis", run_id)

    def on_checkpoint(epoch: int, state: bytes) -> None:
        db_retry(lambda: store.save_checkpoint(run_id, epoch, state, attempt=attempt, url=url), "checkpoint",
                 run_id)

    result = models.train(spec, on_info=on_info, on_epoch=on_epoch, on_checkpoint=on_checkpoint,
                          resume=ckpt[1] if ckpt else None, should_stop=monitor.should_stop)
    if monitor.lost.is_set():
        raise store.LostOwnership(f"run {run_id}: attempt {attempt} lost the run while training")
    return result.outcome, result.message
