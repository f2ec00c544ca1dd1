"""The console's limits and its SQLite runner, standard library only: ``db.console`` runs each SQLite
query in a child process of this file (``python -I db/console_core.py``), so that a query is stopped
at its deadline even inside one slow function call (``instr`` on two 1 MB strings takes ~30 s and
never returns to SQLite's progress handler), and so that the query's memory is not the caller's.

The child reads one request (marshal: path, sql, limits) on stdin and writes one answer on stdout:
("ok", columns, rows, why_truncated) or ("error", message).
"""

from __future__ import annotations

import marshal
import sqlite3
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


class QueryError(Exception):
    """A console query failed (syntax, a write refused by the database, a timeout, a limit)."""


# Tables the console never reads: login_throttle holds failed sign-ins ('pair:<address>|<typed name>',
# sometimes a password typed into the name box). Users and password hashes live in a file, not here.
SECRET_TABLES = ("login_throttle",)


def secret_message(table: str) -> str:
    return (f"the console does not read the table {table!r}: it holds failed sign-in attempts "
            "(addresses and typed user names), which only administrators may see on the database server")


_denied: list[str] = []      # the secret table the authorizer refused (one query per child process)


@dataclass(frozen=True)
class Limits:
    """What one console query may use."""

    timeout_s: float = 10.0
    row_limit: int = 10_000
    max_bytes: int = 16 * 2**20          # all values of the result together
    max_value_bytes: int = 2**20         # one value (a text, a blob, a JSON document)
    max_columns: int = 200
    max_sql_bytes: int = 100_000         # the statement itself
    child_memory_bytes: int = 2**30      # address space of the SQLite child process

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def mb(n: int) -> str:
    return f"{n / 2**20:g} MB" if n >= 2**20 else f"{n:,} bytes"


def timeout_message(lim: Limits) -> str:
    return f"the query ran longer than the {lim.timeout_s:g} s statement timeout"


# ---- collecting rows within the byte budget (both backends) --------------------------------------

def value_size(v: Any) -> int:
    """Bytes a value takes in the result, roughly (its text length; 8 for numbers and NULL)."""
    if v is None or isinstance(v, (int, float, bool)):
        return 8
    if isinstance(v, (str, bytes, bytearray, memoryview)):
        return len(v)
    return len(str(v))


def collect(fetch: Callable[[int], list], ncols: int, lim: Limits, deadline: float) -> tuple[list[tuple], str]:
    """Rows from ``fetch(n)`` until the rows, the bytes or the time run out. Each batch is small
    enough that the result never holds more than ``max_bytes`` plus one row. Returns (rows, why
    rows were left out: '' if none were)."""
    rows: list[tuple] = []
    used = 0
    row_bound = max(1, ncols) * lim.max_value_bytes
    while len(rows) <= lim.row_limit:
        if time.monotonic() > deadline:
            raise QueryError(timeout_message(lim))
        room = lim.row_limit + 1 - len(rows)
        batch = fetch(max(1, min(room, 1000, (lim.max_bytes - used) // row_bound)))
        if not batch:
            return rows, ""
        for r in batch:
            if used >= lim.max_bytes:
                return rows, f"the byte limit of {mb(lim.max_bytes)}"
            rows.append(tuple(r))
            used += sum(value_size(v) for v in r)
    return rows[:lim.row_limit], f"the row limit of {lim.row_limit:,}"


# ---- SQLite ----------------------------------------------------------------------------------------

_READ_PRAGMAS = {"table_info", "table_xinfo", "index_list", "index_info", "index_xinfo", "foreign_key_list",
                 "table_list", "collation_list", "function_list", "database_list"}
_ALLOWED_ACTIONS = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION,
                    getattr(sqlite3, "SQLITE_RECURSIVE", 33)}


def sqlite_authorizer(action: int, arg1: str | None, arg2: str | None, _db: str | None, _trigger: str | None) -> int:
    """SQLite asks this for every operation while preparing a statement: reads only. It refuses
    ATTACH (which could create files), writes, transactions and pragmas other than schema lookups."""
    if action == sqlite3.SQLITE_READ and (arg1 or "").lower() in SECRET_TABLES:
        _denied.append((arg1 or "").lower())
        return sqlite3.SQLITE_DENY
    if action in _ALLOWED_ACTIONS:
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_PRAGMA and (arg1 or "").lower() in _READ_PRAGMAS:
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_UPDATE and arg1 == "sqlite_master":
        # table-valued functions (json_each) declare their virtual table this way while being
        # prepared; the file is open read-only with query_only on, so nothing can be written
        return sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY


def _sqlite_connect(path: str, lim: Limits, deadline: float) -> sqlite3.Connection:
    conn = sqlite3.connect(f"{Path(path).as_uri()}?mode=ro", uri=True, timeout=min(5.0, lim.timeout_s))
    conn.execute("PRAGMA query_only = ON")
    # no string or blob (built by zeroblob, printf, replace, group_concat ...) may grow past the value
    # cap: an oversized value fails at once instead of filling the memory
    conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, lim.max_value_bytes)
    conn.setlimit(sqlite3.SQLITE_LIMIT_COLUMN, lim.max_columns)
    conn.setlimit(sqlite3.SQLITE_LIMIT_SQL_LENGTH, lim.max_sql_bytes)
    conn.set_authorizer(sqlite_authorizer)
    conn.set_progress_handler(lambda: 1 if time.monotonic() > deadline else 0, 10_000)
    return conn


def _sqlite_message(e: Exception, lim: Limits) -> str:
    text = str(e)
    if "interrupted" in text:
        return timeout_message(lim)
    if "too big" in text:
        return (f"a value would be larger than the console's limit of {mb(lim.max_value_bytes)} per value "
                f"({text}); select a part of it, e.g. substr(x, 1, 1000) or length(x)")
    if _denied and ("not authorized" in text or "authorization denied" in text or "access to" in text):
        return secret_message(_denied[-1])
    if "not authorized" in text or "authorization denied" in text:
        return (f"the console is read-only: it runs only statements that read (SELECT, WITH, VALUES, schema "
                f"PRAGMAs), and SQLite refused this one ({text})")
    if "too many columns" in text:
        return f"{text}: the console returns at most {lim.max_columns} columns"
    if "out of memory" in text:
        return f"{text}: the query needs more than the console's {mb(lim.child_memory_bytes)} of memory"
    return text


def run_sqlite(path: str, sql: str, lim: Limits) -> tuple[list[str], list[tuple], str]:
    """(columns, rows, why rows were left out) of one read-only statement; raises QueryError."""
    if not Path(path).exists():
        raise QueryError(f"database file not found: {path}")
    deadline = time.monotonic() + lim.timeout_s
    try:
        conn = _sqlite_connect(path, lim, deadline)
        try:
            cur = conn.execute(sql)
            cols = [d[0] for d in cur.description] if cur.description else []
            rows, why = collect(cur.fetchmany, len(cols), lim, deadline) if cols else ([], "")
            return cols, rows, why
        finally:
            conn.close()
    except MemoryError:
        raise QueryError(f"the query needs more than the console's {mb(lim.child_memory_bytes)} of memory") from None
    except (sqlite3.Error, sqlite3.Warning) as e:
        raise QueryError(_sqlite_message(e, lim)) from None


def _plain(v: Any) -> Any:
    """A value marshal can carry (sqlite3 gives only None, int, float, str and bytes)."""
    return v if v is None or isinstance(v, (int, float, str, bytes)) else str(v)


def child_main() -> None:
    """Serve one request from stdin (see the module's docstring), inside a memory limit."""
    req = marshal.loads(sys.stdin.buffer.read())
    lim = Limits(**req["limits"])
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (lim.child_memory_bytes, lim.child_memory_bytes))
    except (ImportError, ValueError, OSError):
        pass
    try:
        cols, rows, why = run_sqlite(req["path"], req["sql"], lim)
        answer = ("ok", cols, [tuple(_plain(v) for v in r) for r in rows], why)
    except QueryError as e:
        answer = ("error", str(e))
    except MemoryError:
        answer = ("error", f"the query needs more than the console's {mb(lim.child_memory_bytes)} of memory")
    sys.stdout.buffer.write(marshal.dumps(answer))
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    child_main()
