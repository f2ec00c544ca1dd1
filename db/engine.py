"""Database connections: one cached SQLAlchemy engine per URL and process, and session helpers.

SQLite gets, on every connection and in this order: ``busy_timeout``, ``journal_mode=WAL``,
``synchronous=NORMAL`` and ``foreign_keys=ON``. Write sessions on SQLite start with
``BEGIN IMMEDIATE`` so two writers queue on the busy timeout instead of failing with
"database is locked" when a read transaction tries to upgrade to a write.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session

SQLITE_BUSY_TIMEOUT_MS = 30_000

_engines: dict[tuple[int, str], Engine] = {}
# Postgres settings ("-c name=value") for every connection this process opens from now on; the worker
# sets idle_in_transaction_session_timeout (worker.heartbeat.bound_transactions)
PG_SESSION_SETTINGS: dict[str, str] = {}
_lock = threading.Lock()


def default_url() -> str:
    """The database URL from the settings (RNNLAB_DATABASE_URL, else SQLite under RNNLAB_HOME)."""
    from rnnlab.settings import get_settings

    return get_settings().db_url


def _json_dumps(value: object) -> str:
    # profiles get the shortest number forms, everything else compact separators; never a bare NaN
    from db.codec import CompactArray, dumps_array

    if isinstance(value, CompactArray):
        return dumps_array(value)
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def _unicode_lower(text):
    return text.lower() if isinstance(text, str) else text


# SQLite's own lower() changes ASCII letters only ('Ärger' stays 'Ärger'); PostgreSQL's lower() (UTF-8)
# lowers every letter. Queries that match text in any case call SQL_LOWER[dialect] so both agree.
SQL_LOWER = {"sqlite": "unicode_lower"}


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    dbapi_conn.create_function("unicode_lower", 1, _unicode_lower, deterministic=True)
    dbapi_conn.isolation_level = None  # let the "begin" hook below own the transactions
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA journal_mode = WAL")
    cur.execute("PRAGMA synchronous = NORMAL")
    cur.execute("PRAGMA foreign_keys = ON")
    cur.close()


def _sqlite_begin(conn) -> None:
    immediate = conn.get_execution_options().get("sqlite_immediate", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _create(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(
            url, json_serializer=_json_dumps, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if url.startswith("postgresql://"):
        raise ValueError(
            f"database URL {url!r}: use postgresql+psycopg:// (a bare postgresql:// means psycopg2, "
            "which rnnlab does not install)"
        )
    options = " ".join(f"-c {k}={v}" for k, v in PG_SESSION_SETTINGS.items())
    return create_engine(url, json_serializer=_json_dumps, pool_pre_ping=True,
                         connect_args={"options": options} if options else {})


def get_engine(url: str | None = None) -> Engine:
    """The engine for ``url`` (default: the settings' URL), created once per process.

    Keyed by pid as well, so a forked Celery child never reuses its parent's connections."""
    url = url or default_url()
    key = (os.getpid(), url)
    with _lock:
        engine = _engines.get(key)
        if engine is None:
            engine = _engines[key] = _create(url)
    return engine


def dispose_all() -> None:
    """Close every pooled connection of this process (tests, shutdown)."""
    with _lock:
        for (pid, _), engine in list(_engines.items()):
            if pid == os.getpid():
                engine.dispose()
        _engines.clear()
        _immediate_engines.clear()


_immediate_engines: dict[int, Engine] = {}


def _immediate(engine: Engine) -> Engine:
    # the same pool, with BEGIN IMMEDIATE for write transactions
    key = id(engine)
    if key not in _immediate_engines:
        _immediate_engines[key] = engine.execution_options(sqlite_immediate=True)
    return _immediate_engines[key]


@contextmanager
def session(url: str | None = None, *, write: bool = False) -> Iterator[Session]:
    """A session in one transaction, committed on success and rolled back on error.

    ``write=True`` takes SQLite's write lock up front (BEGIN IMMEDIATE); keep such blocks short."""
    engine = get_engine(url)
    if write and engine.dialect.name == "sqlite":
        engine = _immediate(engine)
    with Session(engine, expire_on_commit=False) as s, s.begin():
        yield s
