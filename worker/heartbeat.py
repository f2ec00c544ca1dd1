"""Background threads: the worker's heartbeat and reaper, and the per-run monitor (heartbeat + cancel flag).

WorkerHeartbeat runs in each Celery worker's main process: every ``heartbeat_seconds`` it refreshes
the workers row and reaps runs whose heartbeat is older than ``lost_after_seconds`` (requeueing them
by sending their task again, or failing them when their attempts are used up). Every worker reaps,
so there is no single point of failure and nothing extra to deploy; the reap is a conditional
UPDATE, so concurrent reapers cannot requeue a run twice. With the filesystem broker and Redis it
also re-sends the task of a run left ``queued`` with no message in the broker (worker.orphans): a
worker killed after taking a message but before claiming its run, a task that gave up on a database
outage.

A worker frozen (SIGSTOP, a paused VM) inside a write transaction must not hold its lost run hostage:
on Postgres the worker's sessions are ended by the server once idle in a transaction for
``lost_after_seconds`` (bound_transactions), and the reaper skips a locked row until then; on SQLite,
where a frozen process keeps the file's write lock, FrozenWriterWatch kills a stopped pool child that
holds it once its run is lost.

RunMonitor runs beside each training run: it refreshes the run's heartbeat, and polls the cancel
flag about once a second so that ``should_stop`` is a cheap in-memory check the engine can call
every step. It also stops the run when its worker shuts down (worker_stopping).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path

from db import liveness, store

log = logging.getLogger(__name__)

# The warm-shutdown flag: set when the worker begins a warm shutdown; every RunMonitor then asks its
# run to stop, so the run is handed back to the queue at once instead of holding the shutdown until
# it finishes. It is a multiprocessing.RawValue: shared memory with no lock, created by the worker's
# main process before the pool forks (share_stop_flag, called by worker.app), so prefork children read what
# the main process's signal handler writes, and neither side can block on a lock (a lock taken in a
# signal handler, or held by a child that was killed, could hang them). Without it (``rnnlab train``,
# tests of the monitor alone) only stop_this_process() sets the local flag. (Not a signal to the
# children: billiard routes a child's SIGUSR1/SIGUSR2 to its own exit handler.)
SHARED_STOP = None
_LOCAL_STOP = [False]


def bound_transactions(lost_after_s: float) -> None:
    """Make Postgres end any session of this process (and of the children it forks) that sits idle inside
    a transaction for ``lost_after_s``: a worker frozen mid-write (SIGSTOP, a paused VM) would otherwise
    hold its run's row lock, and the reaper of every other worker would wait on it until the frozen one
    woke, so its run would never be taken over. Once woken, its next statement fails on the ended
    session, and its retried write is refused by the fence (the run has a new attempt). Call it before
    the first connection. SQLite has no such setting: a process frozen inside a write transaction holds
    the file's write lock until it wakes (see docs/reliability.md)."""
    from db import engine

    engine.PG_SESSION_SETTINGS["idle_in_transaction_session_timeout"] = str(max(1000, int(lost_after_s * 1000)))


def share_stop_flag() -> None:
    """Create the shared flag (in the worker's main process, before the pool forks)."""
    global SHARED_STOP
    import ctypes
    import multiprocessing

    SHARED_STOP = multiprocessing.RawValue(ctypes.c_bool, False)


def stop_this_process() -> None:
    """Raise the flag: safe inside a signal handler (two plain stores, no lock)."""
    _LOCAL_STOP[0] = True
    if SHARED_STOP is not None:
        SHARED_STOP.value = True


def worker_stopping() -> bool:
    """Whether this process's worker is shutting down."""
    return _LOCAL_STOP[0] or (SHARED_STOP is not None and bool(SHARED_STOP.value))


class WorkerHeartbeat(threading.Thread):
    """Keeps the workers row fresh and reaps lost runs, until stop()."""

    def __init__(self, name: str, *, host: str, pid: int, queues: str, device: str | None,
                 period_s: float, lost_after_s: float, send_run, url: str | None = None, waiting=None,
                 setup=None, slots: int | None = None):
        """``waiting``: a function returning the run ids with a message waiting in the broker
        (worker.orphans.waiting_function); given, queued runs with none are re-sent after
        ``lost_after_s``. None (another broker, or tests of the reaper alone): no such check.
        ``setup``: called before the first beat until it succeeds (the worker's ensure_schema), so a
        database that is not up yet when the worker starts is retried on every beat."""
        super().__init__(name=f"rnnlab-heartbeat-{name}", daemon=True)
        self.worker, self.host, self.pid, self.queues, self.device = name, host, pid, queues, device
        self.slots = slots   # runs at a time, reported on the workers row (the time estimate counts them)
        self.period_s, self.lost_after_s, self.send_run, self.url = period_s, lost_after_s, send_run, url
        self._stop_event = threading.Event()
        self._pending: list[dict] = []   # requeued runs whose message is not sent yet
        self.orphans = None
        if waiting is not None:
            from worker.orphans import OrphanWatch

            self.orphans = OrphanWatch(waiting, worker=name, grace_s=lost_after_s, url=url)
        # reading every waiting message file is not free: look a few times per grace period only
        self.orphan_every_s = max(period_s, lost_after_s / 4)
        self._orphan_next = 0.0
        self._setup = setup
        self._registered = False   # the first successful beat is the start (db.liveness.heartbeat)
        self.watch: FrozenWriterWatch | None = None   # SQLite: started by run()

    def beat(self) -> None:
        if self._setup is not None:
            self._setup()
            self._setup = None
        if self._stop_event.is_set() and self._registered:
            return   # stopping: a late beat must not race worker_stopped (the store refuses one anyway)
        store.heartbeat(self.worker, host=self.host, pid=self.pid, queues=self.queues, device=self.device,
                        start=not self._registered, slots=self.slots, url=self.url)
        self._registered = True
        reaped = store.reap_lost(self.lost_after_s, url=self.url)
        for run_id in reaped.failed:
            log.warning("run %s lost its worker too often; failed", run_id)
        for run_id in reaped.cancelled:
            log.warning("run %s lost its worker after a cancel was requested; cancelled", run_id)
        for run in reaped.requeued:
            log.warning("run %s lost its worker; requeued", run["id"])
        self._pending += reaped.requeued
        self._pending += self._check_orphans()
        while self._pending:  # a broker hiccup: keep the messages and try again on the next beat
            run = self._pending[0]
            self.send_run(run["id"], run["queue"])
            self._pending.pop(0)

    def _check_orphans(self) -> list[dict]:
        if self.orphans is None or time.monotonic() < self._orphan_next:
            return []
        self._orphan_next = time.monotonic() + self.orphan_every_s
        try:
            resend = self.orphans.check()
        except Exception:  # noqa: BLE001 - an unreadable broker folder must not stop the reaper
            log.exception("lost-message check failed; retrying in %.1f s", self.orphan_every_s)
            return []
        for run in resend:
            log.warning("run %s is queued but its task message is gone from the broker; re-sent", run["id"])
        return resend

    def run(self) -> None:
        from sqlalchemy.engine import make_url

        from db.engine import default_url

        if make_url(self.url or default_url()).get_backend_name() == "sqlite":
            self.watch = FrozenWriterWatch(self.host, self.lost_after_s, self.period_s, self.url)
            self.watch.start()
        while not self._stop_event.is_set():
            try:
                self.beat()
            except Exception:  # noqa: BLE001 - a database hiccup must not kill the heartbeat
                log.exception("heartbeat failed; retrying in %.1f s", self.period_s)
            self._stop_event.wait(self.period_s)

    def stop(self) -> None:
        self._stop_event.set()
        if self.watch is not None:
            self.watch.stop()
        self.join(timeout=10)
        try:
            store.worker_stopped(self.worker, url=self.url)
        except Exception:  # noqa: BLE001
            log.exception("could not mark worker %s stopped", self.worker)


def _proc_state(pid: int) -> tuple[str, int] | None:
    """(state letter, parent pid) of a process from /proc; None if it is gone or there is no /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return fields[0], int(fields[1])


_FROZEN_SEEN: set[int] = set()   # stopped lock holders already logged


def free_frozen_writer(host: str, lost_after_s: float, url: str | None = None) -> int | None:
    """SQLite: a training process frozen (SIGSTOP) inside a write transaction holds the database's write
    lock, so every other process's writes (the reapers' too) wait on it until it wakes, and its run is
    never taken over. Once its run is lost (no heartbeat for ``lost_after_s``) and it is still stopped,
    kill it (SIGKILL): the lock goes with it, the reaper requeues the run, and its worker's pool starts a
    new child when the worker wakes. Only a pool child of a worker on this host with a lost run is killed,
    never a worker's main process or anything else. Returns the pid killed, else None."""
    pid = liveness.sqlite_writer_pid(url)
    state = None if pid is None else _proc_state(pid)
    if state is None or state[0] != "T":
        return None
    if state[1] not in liveness.lost_worker_pids(lost_after_s, host, url=url):
        if pid not in _FROZEN_SEEN:
            _FROZEN_SEEN.add(pid)
            log.error("process %s is stopped while it holds the SQLite write lock, blocking every worker; it is "
                      "killed once it is the pool child of a worker with a lost run, else SIGCONT or end it", pid)
        return None
    log.error("process %s (pool child of worker pid %s) is stopped while it holds the SQLite write lock and its "
              "run is lost; killing it so the run can be taken over", pid, state[1])
    os.kill(pid, signal.SIGKILL)
    return pid


class FrozenWriterWatch(threading.Thread):
    """Calls free_frozen_writer every ``period_s`` (SQLite only), beside the heartbeat: the heartbeat's own
    writes wait on the frozen process's lock, this thread only reads."""

    def __init__(self, host: str, lost_after_s: float, period_s: float, url: str | None = None):
        super().__init__(name="rnnlab-frozen-writer-watch", daemon=True)
        self.host, self.lost_after_s, self.period_s, self.url = host, lost_after_s, period_s, url
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.period_s):
            try:
                free_frozen_writer(self.host, self.lost_after_s, self.url)
            except Exception:  # noqa: BLE001 - a failed look must not end the watch
                log.exception("frozen-writer check failed")

    def stop(self) -> None:
        self._stop_event.set()


class RunMonitor(threading.Thread):
    """Heartbeats one run and watches its cancel flag; ``should_stop()`` is what the engine polls."""

    def __init__(self, run_id: int, attempt: int, *, heartbeat_s: float, poll_s: float = 1.0,
                 url: str | None = None):
        super().__init__(name=f"rnnlab-run-{run_id}", daemon=True)
        self.run_id, self.attempt, self.url = run_id, attempt, url
        self.heartbeat_s, self.poll_s = heartbeat_s, min(poll_s, heartbeat_s)
        self.cancelled = threading.Event()
        self.lost = threading.Event()
        self._done = threading.Event()

    def should_stop(self) -> bool:
        return self.cancelled.is_set() or self.lost.is_set() or worker_stopping()

    @property
    def interrupted(self) -> bool:
        """The worker is shutting down (and nobody cancelled the run): hand the run back."""
        return worker_stopping() and not self.cancelled.is_set() and not self.lost.is_set()

    def run(self) -> None:
        last_beat = time.monotonic()
        while not self._done.wait(self.poll_s):
            try:
                if store.cancel_requested(self.run_id, url=self.url):
                    self.cancelled.set()
                if time.monotonic() - last_beat >= self.heartbeat_s:
                    last_beat = time.monotonic()
                    if not store.run_heartbeat(self.run_id, self.attempt, url=self.url):
                        log.warning("run %s: attempt %s no longer owns the run; stopping", self.run_id,
                                    self.attempt)
                        self.lost.set()
            except Exception:  # noqa: BLE001 - keep beating through transient database errors
                log.exception("run %s: monitor check failed", self.run_id)

    def stop(self) -> None:
        self._done.set()
        self.join(timeout=10)
