"""Shared pieces of the run lifecycle: the clock, attempt ownership checks, closing attempt rows."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import case, select, text, update

from db.errors import LostOwnership, RunNotFound
from db.models import Run, RunAttempt


def now() -> dt.datetime:
    """The current time in UTC (every timestamp the store writes)."""
    return dt.datetime.now(dt.UTC)


def db_now(s) -> dt.datetime:
    """The database server's current time in UTC: the one clock of heartbeats and staleness, so a worker
    whose own clock is off cannot make a healthy run look stale (or a dead one look alive).
    Postgres: clock_timestamp() (the real time, not the transaction's start). SQLite: its 'now'; SQLite
    runs inside each process, and every process that opens the file runs on the file's host (SQLite
    over a network filesystem is not supported), so that is the one host clock they all share."""
    bind = s.get_bind() if hasattr(s, "get_bind") else s   # a Session or a Connection
    if bind.dialect.name == "postgresql":
        return aware(s.execute(text("SELECT clock_timestamp()")).scalar_one())
    raw = s.execute(text("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')")).scalar_one()
    return aware(dt.datetime.fromisoformat(raw))


def forward(column, t: dt.datetime):
    """SET value that moves a timestamp column to ``t`` but never backwards."""
    return case((column > t, column), else_=t)


def aware(t: dt.datetime) -> dt.datetime:
    """A timestamp with its UTC zone (SQLite returns naive UTC datetimes)."""
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def close_attempt(s, run_id: int, attempt: int, outcome: str, message: str | None, t: dt.datetime,
                  only_open: bool = False) -> None:
    """Record how an attempt ended (``only_open``: unless it already has an end)."""
    cond = [RunAttempt.run_id == run_id, RunAttempt.attempt == attempt]
    if only_open:
        cond.append(RunAttempt.ended_at.is_(None))
    s.execute(update(RunAttempt).where(*cond).values(ended_at=t, outcome=outcome, message=message))


def owned(run_id: int, attempt: int | None) -> list:
    """WHERE conditions: the run, and (with ``attempt``) still running under that attempt."""
    cond = [Run.id == run_id]
    if attempt is not None:
        cond += [Run.status == "running", Run.attempts == attempt]
    return cond


def check_owned(s, run_id: int, attempt: int | None) -> None:
    """Raise RunNotFound, or LostOwnership when ``attempt`` no longer owns the running run (a plain
    read: only for writes no worker makes, e.g. tags and notes; worker writes use fence())."""
    found = s.execute(select(Run.id).where(*owned(run_id, attempt))).scalar_one_or_none()
    if found is None:
        _not_owned(run_id, attempt)


def _not_owned(run_id: int, attempt: int | None):
    if attempt is None:
        raise RunNotFound(run_id)
    raise LostOwnership(f"run {run_id}: attempt {attempt} no longer owns the run")


def fence(s, run_id: int, attempt: int | None, **values) -> None:
    """The first statement of every worker write: a conditional UPDATE of the run's row (WHERE it is
    still running under ``attempt``) with a rowcount check. The check and the write are one step: the
    row stays locked until the transaction commits (Postgres row lock; SQLite's BEGIN IMMEDIATE), so
    a claim or reap by another worker waits for it, and a write that lost the run changes nothing.
    With ``attempt``, the run's heartbeat_at moves to the database's time (a write is proof of life);
    ``attempt=None`` (demo data, admin paths) only requires the run to exist."""
    if attempt is not None:
        values.setdefault("heartbeat_at", forward(Run.heartbeat_at, db_now(s)))
    elif not values:
        values = {"status": Run.status}   # a no-op write that still takes the row lock
    res = s.execute(update(Run).where(*owned(run_id, attempt)).values(**values))
    if res.rowcount != 1:
        _not_owned(run_id, attempt)
