"""The read-only SQL console of the dashboard and of ``rnnlab sql``: one user statement on a
connection that the database itself keeps read-only, bounded in time, rows and bytes."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine, make_url

from rnnlab.settings import get_settings


class QueryError(Exception):
    """A console query failed (syntax, a write refused by the database, a timeout)."""


def _sqlite_path(url: str) -> str | None:
    u = make_url(url)
    if not u.drivername.startswith("sqlite"):
        return None
    if not u.database or u.database == ":memory:":
        raise QueryError("the SQL console needs a file database, not an in-memory one")
    return str(Path(u.database).resolve())


def _rows_to_df(cols: list[str], rows: list[tuple], row_limit: int) -> tuple[pd.DataFrame, bool]:
    truncated = len(rows) > row_limit
    seen: dict[str, int] = {}
    unique = []
    for c in cols:  # "SELECT a.id, b.id" gives two "id" columns: make them id, id_2
        seen[c] = seen.get(c, 0) + 1
        unique.append(c if seen[c] == 1 else f"{c}_{seen[c]}")
    return pd.DataFrame(rows[:row_limit], columns=unique), truncated


_READ_PRAGMAS = {"table_info", "table_xinfo", "index_list", "index_info", "index_xinfo", "foreign_key_list",
                 "table_list", "collation_list", "function_list", "database_list"}
_ALLOWED_ACTIONS = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION,
                    getattr(sqlite3, "SQLITE_RECURSIVE", 33)}


def _sqlite_authorizer(action: int, arg1: str | None, arg2: str | None, _db: str | None, _trigger: str | None) -> int:
    """SQLite asks this for every operation while preparing a statement: reads only. It refuses
    ATTACH (which could create files), writes, transactions and pragmas other than schema lookups."""
    if action in _ALLOWED_ACTIONS:
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_PRAGMA and (arg1 or "").lower() in _READ_PRAGMAS:
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_UPDATE and arg1 == "sqlite_master":
        # table-valued functions (json_each) declare their virtual table this way while being
        # prepared; the file is open read-only with query_only on, so nothing can be written
        return sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY


def _run_sqlite(path: str, sql: str, timeout_s: float, row_limit: int) -> tuple[pd.DataFrame, bool]:
    if not Path(path).exists():
        raise QueryError(f"database file not found: {path}")
    conn = sqlite3.connect(f"{Path(path).as_uri()}?mode=ro", uri=True, timeout=5, check_same_thread=False)
    try:
        conn.execute("PRAGMA query_only = ON")
        conn.set_authorizer(_sqlite_authorizer)
        deadline = time.monotonic() + timeout_s
        conn.set_progress_handler(lambda: 1 if time.monotonic() > deadline else 0, 10_000)
        try:
            cur = conn.execute(sql)
            cols = [d[0] for d in cur.description] if cur.description else []
            rows = cur.fetchmany(row_limit + 1) if cols else []
        except sqlite3.OperationalError as e:
            if "interrupted" in str(e):
                raise QueryError(f"the query ran longer than the {timeout_s:g} s statement timeout") from None
            raise QueryError(str(e)) from None
        except (sqlite3.Error, sqlite3.Warning) as e:
            raise QueryError(str(e)) from None
        return _rows_to_df(cols, rows, row_limit)
    finally:
        conn.close()


def _run_server(url: str, sql: str, timeout_s: float, row_limit: int) -> tuple[pd.DataFrame, bool]:
    eng = _readonly_engine(url)
    if eng.dialect.name != "postgresql":
        raise QueryError(f"the SQL console supports SQLite and PostgreSQL, not {eng.dialect.name}")
    try:
        with eng.connect() as conn:
            raw = conn.connection.dbapi_connection
            try:
                with raw.cursor() as cur:
                    cur.execute("SET TRANSACTION READ ONLY")
                    cur.execute(f"SET LOCAL statement_timeout = {max(1, int(timeout_s * 1000))}")
                    # binary=True sends the extended protocol: exactly one statement, no "; DELETE …"
                    cur.execute(sql.encode(), binary=True)
                    cols = [d.name for d in cur.description] if cur.description else []
                    rows = [tuple(r) for r in cur.fetchmany(row_limit + 1)] if cols else []
            finally:
                raw.rollback()
    except Exception as e:  # noqa: BLE001 - read-only violation, timeout, syntax: all shown as a message
        orig = getattr(e, "orig", None) or e
        msg = str(orig).strip() or type(orig).__name__
        if "statement timeout" in msg:
            msg = f"the query ran longer than the {timeout_s:g} s statement timeout"
        raise QueryError(msg.splitlines()[0]) from None
    return _rows_to_df(cols, rows, row_limit)


_RO_ENGINES: dict[str, Engine] = {}


def _readonly_engine(url: str) -> Engine:
    """An engine for the console: every connection read-only by default and never pooled, so a
    session setting a user changed cannot leak into the next query."""
    from sqlalchemy.pool import NullPool

    if url not in _RO_ENGINES:
        args: dict[str, Any] = {}
        if make_url(url).get_backend_name() == "postgresql":
            args["connect_args"] = {"options": "-c default_transaction_read_only=on"}
        _RO_ENGINES[url] = create_engine(url, poolclass=NullPool, **args)
    return _RO_ENGINES[url]


def run_sql(sql: str, timeout_s: float | None = None, row_limit: int | None = None,
            url: str | None = None) -> tuple[pd.DataFrame, bool]:
    """Run one user statement on a READ-ONLY connection: SQLite is opened with ``mode=ro`` and
    ``PRAGMA query_only``; Postgres uses ``settings.readonly_database_url`` when set and in any case
    ``default_transaction_read_only`` + ``SET TRANSACTION READ ONLY`` + ``statement_timeout``.
    Returns (at most ``row_limit`` rows, whether more rows were left out). Raises QueryError."""
    s = get_settings()
    timeout_s = float(timeout_s if timeout_s is not None else s.sql_timeout_seconds)
    row_limit = int(row_limit if row_limit is not None else s.sql_row_limit)
    if not sql or not sql.strip():
        raise QueryError("the query is empty")
    target = url or s.readonly_database_url or s.db_url
    path = _sqlite_path(target)
    if path is None and url is None and not s.readonly_database_url:
        # a read-only transaction still lets the owner role call e.g. pg_terminate_backend()
        raise QueryError("the SQL console on a database server needs RNNLAB_READONLY_DATABASE_URL, "
                         "the URL of a read-only role (docs/deploy.md shows how to create it)")
    if path is not None:
        return _run_sqlite(path, sql, timeout_s, row_limit)
    return _run_server(target, sql, timeout_s, row_limit)


def example_queries(dialect: str | None = None) -> list[tuple[str, str]]:
    """(title, sql) examples for the console (db.examples, the source of docs/schema.md)."""
    from db.examples import example_queries as from_store

    return [(str(t), str(sql)) for t, sql in from_store(dialect)]


def db_label(url: str | None = None) -> str:
    """The database's URL with any password hidden, for display."""
    u = make_url(url or get_settings().db_url)
    return u.render_as_string(hide_password=True)

