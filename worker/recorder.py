"""One run's recorder: joins the engine's callbacks (models.train) to the store, for both ways a run is
trained: a Celery worker (worker.runner) and ``rnnlab train`` in the foreground (worker.foreground).

``Recorder(run_id, attempt, ...)`` holds the callbacks the engine calls (on_info, on_epoch,
on_checkpoint, should_stop, on_step); ``train(spec)`` runs the engine with them and returns the
engine's outcome; ``failed(exc)`` turns an exception that ended the run into the status and message to
record; ``finish(status, message)`` records them. Both paths use these, so the same failure ends a run
with the same status and message whichever way it was trained.

Every write is fenced by the attempt (db.store raises LostOwnership once another attempt owns the
run) and retries a transient database error (connection lost, a restart, "database is locked", a full
disk) for DB_RETRY_S (db_retry); if the error persists it escapes, and the caller decides: the worker
hands the run back to the queue, ``rnnlab train`` ends it 'failed' (``failed`` words both the same).
With ``run_id=None`` nothing is written (``rnnlab train --no-db``).
"""

from __future__ import annotations

import errno
import logging
import os
import time
import traceback
from collections.abc import Callable

from sqlalchemy.exc import InterfaceError, OperationalError

from db import store
from rnnlab.spec import SpecError

log = logging.getLogger(__name__)

DB_TRANSIENT = (OperationalError, InterfaceError)   # "database is locked", connection refused or dropped
# Postgres ended the session (SQLAlchemy raises InternalError): idle_in_transaction_session_timeout, which a
# worker sets (worker.heartbeat.bound_transactions), hit by a worker that was frozen or starved mid-write
TRANSIENT_SQLSTATES = {"25P03"}
# how long one write retries a transient database error before the run is handed back (or, in the
# foreground, failed)
DB_RETRY_S = float(os.environ.get("RNNLAB_DB_RETRY_SECONDS", "60"))


def transient(exc: BaseException) -> bool:
    """Whether a database error may pass if the write is retried on a new connection."""
    return isinstance(exc, DB_TRANSIENT) or getattr(getattr(exc, "orig", None), "sqlstate", None) in TRANSIENT_SQLSTATES


def disk_full(exc: BaseException) -> bool:
    """Whether an error means the disk (of the database or this worker) is full."""
    orig = getattr(exc, "orig", None)
    if getattr(orig, "sqlstate", None) == "53100" or getattr(exc, "errno", None) == errno.ENOSPC:
        return True
    text = str(exc).lower()
    return any(s in text for s in ("disk is full", "no space left", "could not extend file"))


def db_retry(fn, what: str, run_id: int | None, budget_s: float | None = None):
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


def unavailable_message(exc: BaseException) -> str:
    """Why a run could not go on when a transient database error outlived its retries."""
    return f"disk full: {exc}" if disk_full(exc) else f"database unavailable: {type(exc).__name__}"


def failure_message(exc: BaseException) -> str:
    """The reason recorded on a failed run: the engine's (or the spec's) own message, or the exception
    and where it was raised."""
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


class Recorder:
    """Records one attempt at a run through the engine's callbacks.

    ``monitor``: the run's RunMonitor (heartbeat and cancel flag), polled by ``should_stop``;
    ``stop``: another stop request to poll (Ctrl-C in the foreground); ``on_record(rec)``: called with
    each epoch after it is stored; ``on_progress(epoch, step)``: the engine's step callback."""

    def __init__(self, run_id: int | None, attempt: int | None, *, url: str | None = None, monitor=None,
                 stop: Callable[[], bool] | None = None, on_record: Callable | None = None,
                 on_progress: Callable[[int, int], None] | None = None):
        self.run_id, self.attempt, self.url, self.monitor = run_id, attempt, url, monitor
        self._stop, self._on_record, self._on_progress = stop, on_record, on_progress
        self.info = None      # the engine's RunInfo, once on_info has run
        self.initial = None   # the epoch-0 record (diagnose compares ρ(W_hh) with its value at initialization)

    @property
    def recording(self) -> bool:
        return self.run_id is not None

    def _write(self, fn, what: str) -> None:
        if self.recording:
            db_retry(fn, what, self.run_id)

    # -- the engine's callbacks ------------------------------------------------------------------

    def on_info(self, info) -> None:
        self.info = info
        self._write(lambda: store.record_info(self.run_id, info, attempt=self.attempt, url=self.url), "record info")

    def on_epoch(self, rec) -> None:
        self._write(lambda: store.record_epoch(self.run_id, rec, attempt=self.attempt, url=self.url),
                    f"epoch {rec.epoch}")
        if rec.epoch == 0:
            self.initial = rec
        if self.recording and self.info is not None:
            self._diagnose(rec)
        if self._on_record is not None:
            self._on_record(rec)

    def _diagnose(self, rec) -> None:
        """The run's diagnosis is the newest evidence: every probed epoch's verdict, and an unprobed
        epoch's only when its own numbers show a problem (non-finite values, an exploding or spiking
        gradient norm). An unprobed epoch that shows none keeps the last probed verdict, which it
        cannot check; before, an explosion in an unprobed epoch left an older "healthy" on show."""
        import models

        text = models.diagnose(rec, self.info, self.initial)
        if text.startswith("not probed"):   # models.diagnose of an epoch without layer statistics
            return
        self._write(lambda: store.record_diagnosis(self.run_id, text, attempt=self.attempt, url=self.url),
                    "diagnosis")

    def on_checkpoint(self, epoch: int, state: bytes) -> None:
        self._write(lambda: store.save_checkpoint(self.run_id, epoch, state, attempt=self.attempt, url=self.url),
                    "checkpoint")

    def should_stop(self) -> bool:
        return (self._stop is not None and self._stop()) or (self.monitor is not None and self.monitor.should_stop())

    def on_step(self, epoch: int, step: int) -> None:
        if self._on_progress is not None:
            self._on_progress(epoch, step)

    # -- the run ---------------------------------------------------------------------------------

    @property
    def lost(self) -> bool:
        """Whether the run's monitor found that this attempt no longer owns the run."""
        return self.monitor is not None and self.monitor.lost.is_set()

    def train(self, spec, *, resume: bytes | None = None) -> tuple[str, str]:
        """Train ``spec`` with these callbacks; the engine's outcome (succeeded, diverged or cancelled)
        and message. An exception (the engine's, a write's) propagates: pass it to ``failed``. Raises
        LostOwnership if this attempt lost the run meanwhile."""
        import models  # torch is imported here, in the process that trains, never at module import

        result = models.train(spec, on_info=self.on_info, on_epoch=self.on_epoch, on_checkpoint=self.on_checkpoint,
                              resume=resume, should_stop=self.should_stop,
                              on_step=self.on_step if self._on_progress is not None else None)
        if self.lost:
            raise store.LostOwnership(f"run {self.run_id}: attempt {self.attempt} lost the run while training")
        return result.outcome, result.message

    def failed(self, exc: BaseException) -> tuple[str, str]:
        """The status and message to record for an exception that ended the run (not LostOwnership):
        'failed' with the engine's own message, or the exception and where; "database unavailable: ..."
        for a transient database error that outlived its retries."""
        return "failed", unavailable_message(exc) if transient(exc) else failure_message(exc)

    def finish(self, status: str, message: str | None) -> str | None:
        """Record the final status; a run cancelled on request says so when the engine gave no reason."""
        if status == "cancelled" and self.monitor is not None and self.monitor.cancelled.is_set():
            message = message or "cancelled by request"
        self._write(lambda: store.finish_run(self.run_id, status, message, attempt=self.attempt, url=self.url),
                    "finish")
        return message
