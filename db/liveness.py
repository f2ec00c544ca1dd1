"""Workers' heartbeats and the reaper that requeues (or fails) runs whose worker went silent, plus
the two reads/writes behind the lost-message check (worker.orphans): queued runs, and the
compare-and-set that records a re-sent message exactly once across workers; and the runs a worker
handed back while shutting down."""

from __future__ import annotations

import datetime as dt
import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import and_, insert, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from db.attempts import aware, close_attempt, db_now, forward, owned
from db.engine import default_url, session
from db.models import Run, RunAttempt, Worker


def heartbeat(worker: str, *, host: str, pid: int | None, queues: str, device: str | None, start: bool = False,
              slots: int | None = None, url: str | None = None) -> bool:
    """Insert or refresh the worker's row, with the database's time. Only ``start=True`` (a worker's
    first beat) marks a stopped worker of that name alive again; any other beat (say, one still in
    flight when the worker shut down) leaves a stopped worker stopped and returns False. ``slots``: the
    runs it trains at a time (None: not reported)."""
    with session(url, write=True) as s:
        t = db_now(s)
        cond = [Worker.name == worker]
        values = dict(host=host, pid=pid, queues=queues, device=device, slots=slots,
                      heartbeat_at=forward(Worker.heartbeat_at, t))
        if start:
            values.update(started_at=t, stopped_at=None)
        else:
            cond.append(Worker.stopped_at.is_(None))
        if s.execute(update(Worker).where(*cond).values(**values)).rowcount == 1:
            return True
        if s.execute(select(Worker.name).where(Worker.name == worker)).first() is not None:
            return False   # stopped, and this is not a start
        s.execute(insert(Worker).values(name=worker, host=host, pid=pid, queues=queues, device=device, slots=slots,
                                        started_at=t, heartbeat_at=t))
        return True


def worker_stopped(worker: str, *, url: str | None = None) -> None:
    """Mark a worker as stopped (clean shutdown)."""
    with session(url, write=True) as s:
        s.execute(update(Worker).where(Worker.name == worker).values(stopped_at=db_now(s), current_run_id=None))


def run_heartbeat(run_id: int, attempt: int, *, url: str | None = None) -> bool:
    """Refresh a running run's heartbeat; False if this attempt no longer owns it."""
    with session(url, write=True) as s:
        res = s.execute(update(Run).where(*owned(run_id, attempt))
                        .values(heartbeat_at=forward(Run.heartbeat_at, db_now(s))))
        return res.rowcount == 1


def lost_run(cutoff: dt.datetime):
    """The one rule of a lost run: still 'running' but silent since before ``cutoff`` (the database's
    time minus lost_after_seconds). The reaper, claim_run's takeover and lost_worker_pids all use it."""
    return and_(Run.status == "running", Run.heartbeat_at < cutoff)


@dataclass
class Reaped:
    requeued: list[dict]   # runs put back in the queue: [{"id", "queue"}]
    failed: list[int]      # runs whose attempts are exhausted
    cancelled: list[int] = field(default_factory=list)   # runs whose cancel was requested: cancelled


def reap_lost(stale_after_s: float, *, url: str | None = None) -> Reaped:
    """Find running runs whose heartbeat is older than ``stale_after_s``: requeue them (the caller
    sends their messages) or fail them when max_attempts is used up; a run whose cancel was
    requested is cancelled instead (nobody would claim it again). Safe to run concurrently. Staleness
    is judged by the database's clock, the one heartbeats are written with, never this host's."""
    out = Reaped([], [])
    with session(url) as s:
        t = db_now(s)
        cutoff = t - dt.timedelta(seconds=stale_after_s)
        stale = s.execute(select(Run.id).where(lost_run(cutoff))).scalars().all()
    for run_id in stale:
        try:
            _reap_one(run_id, cutoff, t, out, url)
        except OperationalError as e:
            if getattr(e.orig, "sqlstate", None) != LOCK_NOT_AVAILABLE:
                raise
            # its row is locked by a transaction still open, typically of the frozen worker itself: Postgres
            # ends that session after idle_in_transaction_session_timeout (worker.heartbeat.bound_transactions)
            # and a later beat reaps the run; meanwhile this reaper and its heartbeat go on
            continue
    return out


LOCK_NOT_AVAILABLE = "55P03"   # Postgres: lock_timeout expired
REAP_LOCK_TIMEOUT_MS = 500


def _reap_one(run_id: int, cutoff: dt.datetime, t: dt.datetime, out: Reaped, url: str | None) -> None:
    with session(url, write=True) as s:
        if s.get_bind().dialect.name == "postgresql":
            s.execute(text(f"SET LOCAL lock_timeout = {REAP_LOCK_TIMEOUT_MS}"))
        row = s.execute(
            update(Run).where(Run.id == run_id, lost_run(cutoff))
            .values(status="queued").returning(Run.attempts, Run.max_attempts, Run.worker, Run.queue,
                                               Run.heartbeat_at, Run.cancel_requested)
        ).one_or_none()
        if row is None:
            return  # another reaper or a live heartbeat got there first
        silent = (t - aware(row.heartbeat_at)).total_seconds()
        why = f"worker {row.worker} lost (no heartbeat for {silent:.0f} s)"
        close_attempt(s, run_id, row.attempts, "lost", why, t, only_open=True)
        if row.cancel_requested:  # claim_run refuses it: requeued, it would stay queued forever
            s.execute(update(Run).where(Run.id == run_id).values(
                status="cancelled", finished_at=t, message=f"cancelled; {why} before it stopped"))
            out.cancelled.append(run_id)
        elif row.attempts >= row.max_attempts:
            s.execute(update(Run).where(Run.id == run_id).values(
                status="failed", finished_at=t,
                message=f"{why}; gave up after {row.attempts} attempts (max_attempts {row.max_attempts})"))
            out.failed.append(run_id)
        else:
            s.execute(update(Run).where(Run.id == run_id).values(
                message=f"requeued after attempt {row.attempts}: {why}"))
            out.requeued.append({"id": run_id, "queue": row.queue})
        s.execute(update(Worker).where(Worker.name == row.worker, Worker.current_run_id == run_id)
                  .values(current_run_id=None))


def released_by(worker: str, *, since: dt.datetime | None = None, url: str | None = None) -> list[dict]:
    """The runs ``worker`` handed back to the queue while shutting down (db.store.release_run) and that
    are still queued: [{"id", "queue"}]; its main process sends their tasks once it stops consuming.
    ``since``: only hand-backs from this shutdown (a worker name is reused across restarts)."""
    cond = [Run.status == "queued", RunAttempt.worker == worker, RunAttempt.outcome == "interrupted"]
    if since is not None:
        cond.append(RunAttempt.ended_at >= since)
    with session(url) as s:
        rows = s.execute(select(Run.id, Run.queue).join(RunAttempt, (RunAttempt.run_id == Run.id)
                                                        & (RunAttempt.attempt == Run.attempts))
                         .where(*cond).order_by(Run.id)).all()
    return [{"id": r.id, "queue": r.queue} for r in rows]


def queued_runs(*, url: str | None = None) -> list[dict]:
    """Every queued run (no cancel requested) with what its queued state is compared on: ``id``,
    ``queue``, ``attempts``, ``message``."""
    with session(url) as s:
        rows = s.execute(select(Run.id, Run.queue, Run.attempts, Run.message)
                         .where(Run.status == "queued", Run.cancel_requested.is_(False))
                         .order_by(Run.id)).all()
    return [{"id": r.id, "queue": r.queue, "attempts": r.attempts, "message": r.message} for r in rows]


def note_resent(run_id: int, attempts: int, message: str | None, note: str, *, url: str | None = None) -> bool:
    """Set a queued run's message to ``note`` if it is still queued with this ``attempts`` and
    ``message`` (a compare-and-set): True for the one caller that should re-send its task message.
    Every other worker that saw the old state gets False, so concurrent reapers do not re-send twice."""
    same = Run.message.is_(None) if message is None else Run.message == message
    with session(url, write=True) as s:
        res = s.execute(update(Run).where(Run.id == run_id, Run.status == "queued", Run.attempts == attempts,
                                          Run.cancel_requested.is_(False), same).values(message=note))
        return res.rowcount == 1


def worker_state(heartbeat_age_s: float | None, stopped: bool, lost_after_s: float) -> str:
    """The one rule of a worker's state: 'stopped' once it shut down cleanly, else 'lost' when its last
    heartbeat is older than ``lost_after_s`` (by the database's clock; the reaper's threshold for its
    runs), else 'alive'."""
    if stopped:
        return "stopped"
    return "alive" if heartbeat_age_s is not None and heartbeat_age_s <= lost_after_s else "lost"


def list_workers(*, lost_after_s: float | None = None, url: str | None = None,
                 engine: Engine | None = None) -> list[dict]:
    """Every worker row, newest heartbeat first (datetimes aware), with ``heartbeat_age_s`` (by the
    database's clock), ``state`` (worker_state) and ``alive`` (state == 'alive'). ``lost_after_s``:
    default the settings' lost_after_seconds."""
    from db.reads import engine_of

    if lost_after_s is None:
        from rnnlab.settings import get_settings

        lost_after_s = get_settings().lost_after_seconds
    with engine_of(url, engine).connect() as conn:
        rows = conn.execute(select(*Worker.__table__.c).order_by(Worker.heartbeat_at.desc())).mappings().all()
        t = db_now(conn)   # the database's clock, as heartbeats and the reaper use (db.attempts)
    out = []
    for r in rows:
        w = {k: (aware(v) if isinstance(v, dt.datetime) else v) for k, v in r.items()}
        w["heartbeat_age_s"] = (t - w["heartbeat_at"]).total_seconds() if w["heartbeat_at"] is not None else None
        w["state"] = worker_state(w["heartbeat_age_s"], w["stopped_at"] is not None, lost_after_s)
        w["alive"] = w["state"] == "alive"
        out.append(w)
    return out


def unserved_queues(queues: Iterable[str], workers: list[dict]) -> list[str]:
    """The queues among ``queues`` that no live worker of ``workers`` (list_workers rows; their
    ``queues`` are logical names, comma-separated) consumes: runs sent there wait until one starts."""
    served = {q for w in workers if w.get("alive") for q in str(w.get("queues") or "").split(",")}
    return sorted({str(q) for q in queues} - served)


def serve_hint(queue: str) -> str:
    """How to start a worker that consumes ``queue``."""
    return f"rnnlab worker --queues {queue}{' --gpu 0' if queue == 'gpu' else ''}"


# SQLite's unix VFS takes the write lock of a WAL database as a POSIX (fcntl) lock on this byte of the
# "-shm" file (UNIX_SHM_BASE + WAL_WRITE_LOCK); another process can see who holds it (F_GETLK)
SQLITE_WAL_WRITE_LOCK_BYTE = 120
_FLOCK = "hhqqi4x"   # Linux struct flock: l_type, l_whence, l_start, l_len, l_pid


def sqlite_writer_pid(url: str | None = None) -> int | None:
    """The pid of another process holding the SQLite database's write lock; None if nobody does, the
    database is not a SQLite file, or the platform has no fcntl."""
    from sqlalchemy.engine import make_url

    u = make_url(url or default_url())
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    try:
        import fcntl

        fd = os.open(u.database + "-shm", os.O_RDONLY)
    except (ImportError, OSError):
        return None
    try:
        got = fcntl.fcntl(fd, fcntl.F_GETLK, struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET,
                                                          SQLITE_WAL_WRITE_LOCK_BYTE, 1, 0))
    except OSError:
        return None
    finally:
        os.close(fd)
    l_type, _, _, _, pid = struct.unpack(_FLOCK, got)
    return None if l_type == fcntl.F_UNLCK else pid


def lost_worker_pids(stale_after_s: float, host: str, *, url: str | None = None) -> set[int]:
    """The pids (main processes) of the workers on ``host`` that hold a running run whose heartbeat is
    older than ``stale_after_s``: a read, so it works while another process holds the write lock."""
    with session(url) as s:
        cutoff = db_now(s) - dt.timedelta(seconds=stale_after_s)
        rows = s.execute(select(Worker.pid).join(Run, Run.worker == Worker.name)
                         .where(lost_run(cutoff), Worker.host == host,
                                Worker.pid.is_not(None))).scalars().all()
    return set(rows)
