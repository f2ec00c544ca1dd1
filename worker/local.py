"""Train runs that already exist in the results database here, one after another, through the same
Recorder as a Celery worker and `rnnlab train` (claim, heartbeat, info, epochs, diagnosis, checkpoints,
final status and message). Used by `rnnlab study run NAME --local`; imports the engine (torch) when called.

Each run heartbeats like a worker's (so no reaper on the same database takes it away) and stops at its
next step when cancelled. The first Ctrl-C stops the current run at its next step (recorded cancelled)
and cancels the runs not started yet, so nothing is left queued with no message to start it; a second
Ctrl-C aborts at once."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence

from db import store
from rnnlab.settings import get_settings
from rnnlab.spec import JobSpec
from worker.heartbeat import RunMonitor
from worker.recorder import Recorder


def train_here(ids: Sequence[int], specs: Sequence[JobSpec], *, url: str | None = None,
               on_run: Callable[[int, str, float], None] | None = None) -> dict[int, str]:
    """Claim and train each run; returns run id → final status (a run another worker holds, or took over
    meanwhile, is left to it and absent). ``on_run(run_id, status, seconds)`` after each run."""
    s = get_settings()
    name = f"local-{os.getpid()}@{socket.gethostname()}"
    out: dict[int, str] = {}
    interrupted = {"n": 0}

    def on_sigint(signum, frame):
        interrupted["n"] += 1
        if interrupted["n"] > 1:
            raise KeyboardInterrupt

    main = threading.current_thread() is threading.main_thread()   # signal handlers: main thread only
    old_handler = signal.signal(signal.SIGINT, on_sigint) if main else None
    try:
        for run_id, spec in zip(ids, specs, strict=True):
            if interrupted["n"]:
                store.request_cancel(run_id, url=url)   # not started: cancelled at once
                out[run_id] = "cancelled"
                continue
            t0 = time.perf_counter()
            status = _train_one(run_id, spec, name, s.heartbeat_seconds, url, lambda: interrupted["n"] > 0)
            if status is not None:
                out[run_id] = status
                if on_run is not None:
                    on_run(run_id, status, time.perf_counter() - t0)
    finally:
        if main:
            signal.signal(signal.SIGINT, old_handler)
    return out


def _train_one(run_id: int, spec: JobSpec, name: str, heartbeat_s: float, url: str | None,
               stop: Callable[[], bool]) -> str | None:
    """Claim, train and finish one run with a heartbeat; its final status, or None if it was not ours."""
    claimed = store.claim_run(run_id, name, url=url)
    if claimed is None:
        return None
    attempt = claimed["attempt"]
    monitor = RunMonitor(run_id, attempt, heartbeat_s=heartbeat_s, url=url)
    monitor.start()
    rec = Recorder(run_id, attempt, url=url, monitor=monitor, stop=stop)
    try:
        try:
            status, message = rec.train(spec)
        except KeyboardInterrupt:
            status, message = "cancelled", "aborted with Ctrl-C"
        except store.LostOwnership:
            return None
        except Exception as e:  # noqa: BLE001 - the run fails with the worker's wording; the next one goes on
            status, message = rec.failed(e)
        if status == "cancelled" and stop() and not monitor.cancelled.is_set():
            message = message or "stopped with Ctrl-C"
    finally:
        monitor.stop()
    if rec.lost:
        return None
    try:
        rec.finish(status, message)
    except store.LostOwnership:
        return None
    return status
