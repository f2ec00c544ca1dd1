"""Shared pieces of the run lifecycle: the clock, attempt ownership checks, closing attempt rows."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update

from db.errors import LostOwnership, RunNotFound
from db.models import Run, RunAttempt


def now() -> dt.datetime:
    """The current time in UTC (every timestamp the store writes)."""
    return dt.datetime.now(dt.timezone.utc)


def aware(t: dt.datetime) -> dt.datetime:
    """A timestamp with its UTC zone (SQLite returns naive UTC datetimes)."""
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)


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
    """Raise RunNotFound, or LostOwnership when ``attempt`` no longer owns the running run."""
    found = s.execute(select(Run.id).where(*owned(run_id, attempt))).scalar_one_or_none()
    if found is None:
        if attempt is None:
            raise RunNotFound(run_id)
        raise LostOwnership(f"run {run_id}: attempt {attempt} no longer owns the run")
