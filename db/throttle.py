"""Sign-in throttling shared by every dashboard process, in the ``login_throttle`` table.

Two keys count failed sign-ins:

- ``pair:<client>|<name>``: one client guessing one name. After ``PAIR_FREE`` failures it must wait
  ``BASE_S · 2^(failures − PAIR_FREE)`` seconds (at most ``MAX_LOCK_S``) between tries.
- ``client:<client>``: one client guessing across names. It gets ``CLIENT_FREE`` failures, then the
  same exponential backoff.

No key counts the name alone, so nobody can lock a user out from another address. A success clears
the pair's count, not the client's (a valid account must not reset a guessing budget). A key whose
last failure is older than ``FORGET_S`` starts again from zero.

Writes are single upserts (``INSERT … ON CONFLICT DO UPDATE``), so concurrent dashboard processes
never lose a failure. Times come from this process's clock (UTC).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import case, delete, or_, select, update
from sqlalchemy.engine import Engine

from db.models import LoginThrottle

PAIR_FREE = 5            # failures of one client on one name before backoff
CLIENT_FREE = 30         # failures of one client across all names before backoff
BASE_S = 2.0             # first wait after the free failures
MAX_LOCK_S = 15 * 60.0   # longest wait
FORGET_S = 24 * 3600.0   # a key with no failure for this long starts again from zero
MAX_KEY = 300            # the column's length


@dataclass(frozen=True)
class Wait:
    """How long a client must wait before its next try for a name (0: it may try now), and why.
    ``undo``: set by dashboard.auth.claim_attempt when it counted this try: what clear_attempt needs to
    put the client's row back as it was, should the password be right."""

    seconds: float
    reason: str = ""
    undo: tuple | None = field(default=None, compare=False)


def _engine(engine: Engine | None) -> Engine:
    from db.engine import get_engine

    return engine if engine is not None else get_engine()


def _now() -> datetime:
    return datetime.now(UTC)


def _utc(dt: datetime | None) -> datetime | None:
    if dt is None:
        return None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt


def keys(client: str, name: str) -> tuple[str, str]:
    """(pair key, client key), cut to the column's length."""
    client = (client or "unknown")[:100]
    return f"pair:{client}|{name}"[:MAX_KEY], f"client:{client}"[:MAX_KEY]


def backoff_s(failures: int, free: int) -> float:
    """Seconds to wait after ``failures`` failures when the first ``free`` cost nothing."""
    if failures < free:
        return 0.0
    return min(MAX_LOCK_S, BASE_S * 2.0 ** min(failures - free, 30))


def wait_for(client: str, name: str, engine: Engine | None = None, now: datetime | None = None) -> Wait:
    """How long ``client`` must wait before trying ``name`` again."""
    now = now or _now()
    pair, cli = keys(client, name)
    with _engine(engine).connect() as conn:
        rows = conn.execute(select(LoginThrottle.key, LoginThrottle.locked_until)
                            .where(LoginThrottle.key.in_([pair, cli]))).all()
    waits = {k: (_utc(u) - now).total_seconds() for k, u in rows if u is not None}
    if waits.get(cli, 0) > 0 and waits.get(cli, 0) >= waits.get(pair, 0):
        return Wait(waits[cli], "too many failed sign-ins from this address")
    if waits.get(pair, 0) > 0:
        return Wait(waits[pair], "too many failed sign-ins for this name from this address")
    return Wait(0.0)


def _upsert(conn, key: str, now: datetime) -> int:
    """Count one failure of ``key`` in one statement; returns its failures now."""
    t = LoginThrottle.__table__
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    forget = now - timedelta(seconds=FORGET_S)
    stmt = insert(t).values(key=key, failures=1, first_failure_at=now, last_failure_at=now, locked_until=None)
    stale = t.c.last_failure_at < forget
    stmt = stmt.on_conflict_do_update(index_elements=[t.c.key], set_={
        "failures": case((stale, 1), else_=t.c.failures + 1),
        "first_failure_at": case((stale, now), else_=t.c.first_failure_at),
        "last_failure_at": now,
    }).returning(t.c.failures)
    return int(conn.execute(stmt).scalar_one())


def _lock(conn, key: str, until: datetime) -> None:
    """Set locked_until to ``until`` unless a later lock is already there."""
    t = LoginThrottle.__table__
    conn.execute(update(t).where(t.c.key == key, or_(t.c.locked_until.is_(None), t.c.locked_until < until))
                 .values(locked_until=until))


def record_failure(client: str, name: str, engine: Engine | None = None, now: datetime | None = None) -> Wait:
    """Count a failed sign-in of ``client`` as ``name``; returns the wait it now faces."""
    now = now or _now()
    pair, cli = keys(client, name)
    with _engine(engine).begin() as conn:
        for key, free in ((pair, PAIR_FREE), (cli, CLIENT_FREE)):
            failures = _upsert(conn, key, now)
            wait = backoff_s(failures, free)
            if wait > 0:
                _lock(conn, key, now + timedelta(seconds=wait))
    return wait_for(client, name, engine, now)


def record_success(client: str, name: str, engine: Engine | None = None) -> None:
    """A good sign-in clears the pair's count (not the client's)."""
    pair, _ = keys(client, name)
    with _engine(engine).begin() as conn:
        conn.execute(delete(LoginThrottle).where(LoginThrottle.key == pair))


def forget_old(engine: Engine | None = None, now: datetime | None = None) -> int:
    """Delete keys with no failure for FORGET_S and no lock in force; returns how many."""
    now = now or _now()
    t = LoginThrottle.__table__
    with _engine(engine).begin() as conn:
        res = conn.execute(delete(t).where(t.c.last_failure_at < now - timedelta(seconds=FORGET_S),
                                           or_(t.c.locked_until.is_(None), t.c.locked_until < now)))
    return int(res.rowcount or 0)


def claim_attempt(client: str, name: str, engine=None, now=None):
    """Count this sign-in as a failure BEFORE its password is checked, in one transaction that holds
    the client's and the pair's rows (Postgres: SELECT ... FOR UPDATE; SQLite: BEGIN IMMEDIATE), so
    parallel tries queue and each sees the ones before it. Returns a Wait: 0 s when the
    password may be checked, else the wait in force (and nothing is counted). clear_attempt undoes the
    count after a good password. Same keys, free tries and backoff as wait_for."""
    eng = _engine(engine)
    if eng.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
        eng = eng.execution_options(sqlite_immediate=True)   # db.engine's hook: BEGIN IMMEDIATE
    now = now or _now()
    pair, cli = keys(client, name)
    free = {pair: PAIR_FREE, cli: CLIENT_FREE}
    t = LoginThrottle.__table__
    with eng.begin() as conn:
        for key in sorted(free):                              # one order everywhere: no deadlock
            conn.execute(insert(t).values(key=key, failures=0, first_failure_at=now, last_failure_at=now,
                                          locked_until=None).on_conflict_do_nothing(index_elements=[t.c.key]))
        rows = {r.key: r for r in conn.execute(select(t).where(t.c.key.in_(sorted(free)))
                                               .order_by(t.c.key).with_for_update())}
        waits = {k: (_utc(r.locked_until) - now).total_seconds()
                 for k, r in rows.items() if r.locked_until is not None}
        if waits.get(cli, 0) > 0 and waits.get(cli, 0) >= waits.get(pair, 0):
            return Wait(waits[cli], "too many failed sign-ins from this address")
        if waits.get(pair, 0) > 0:
            return Wait(waits[pair], "too many failed sign-ins for this name from this address")
        forget = now - timedelta(seconds=FORGET_S)
        before = rows[cli]
        undo = (now, (before.failures, before.first_failure_at, before.last_failure_at, before.locked_until))
        for key, r in rows.items():
            fresh = r.failures <= 0 or _utc(r.last_failure_at) < forget
            n = 1 if fresh else r.failures + 1
            wait = backoff_s(n, free[key])
            values = {"failures": n, "last_failure_at": now,
                      "locked_until": now + timedelta(seconds=wait) if wait > 0 else None}
            if fresh:
                values["first_failure_at"] = now
            conn.execute(update(t).where(t.c.key == key).values(**values))
            if key == cli:
                undo = (*undo, n)
    return Wait(0.0, undo=undo)


def clear_attempt(client: str, name: str, engine=None, undo: tuple | None = None) -> None:
    """After a good password: clear the pair's count (as record_success) and give the client's
    row back what this sign-in took: ``undo`` (claim_attempt's Wait.undo) puts its failures, times and
    lock back as they were before the try, when no other try has touched the row since; otherwise (or
    without ``undo``) one failure is taken back and its lock lifted once it is under the free tries. A
    good password never adds to, or starts, a wait for the address (a shared NAT or proxy address)."""
    eng = _engine(engine)
    pair, cli = keys(client, name)
    t = LoginThrottle.__table__
    with eng.begin() as conn:
        conn.execute(delete(t).where(t.c.key == pair))
        if undo is not None and len(undo) == 3:
            at, (failures, first, last, locked), n = undo
            restored = conn.execute(update(t).where(t.c.key == cli, t.c.failures == n, t.c.last_failure_at == at)
                                    .values(failures=failures, first_failure_at=first, last_failure_at=last,
                                            locked_until=locked)).rowcount
            if restored:
                return
        conn.execute(update(t).where(t.c.key == cli, t.c.failures > 0).values(
            failures=t.c.failures - 1,
            locked_until=case((t.c.failures - 1 < CLIENT_FREE, None), else_=t.c.locked_until)))
