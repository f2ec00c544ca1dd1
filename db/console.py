"""The read-only SQL console of the dashboard and of ``rnnlab sql``: one user statement on a
connection that the database itself keeps read-only, bounded in time, rows and bytes.

Bounds, on both backends (``Limits``, in db.console_core):

- time: ``timeout_s`` for the whole query. SQLite runs in a child process that is killed at the
  deadline, so even one slow function call (``instr`` on two 1 MB strings) cannot outlast it; inside
  it a progress handler stops ordinary queries on time. Postgres: ``statement_timeout`` per statement
  and a deadline across fetches.
- rows: at most ``row_limit`` rows come back (one more is read to know that rows were left out);
- one value: at most ``max_value_bytes``; a larger value fails the query with a message saying so
  (SQLite: ``SQLITE_LIMIT_LENGTH``; Postgres: the query is wrapped so that the server measures each
  value and never sends one that is too large);
- columns: at most ``max_columns``; the statement: at most ``max_sql_bytes``;
- all values together: at most ``max_bytes``; rows are fetched in batches small enough that the
  result never holds more than ``max_bytes`` plus one row, and the rows after it are left out
  (Postgres: through a server-side cursor, so a 3M-row result is never downloaded);
- memory: the SQLite child has an address-space limit (``child_memory_bytes``); the caller's memory
  holds only the bounded result.
"""

from __future__ import annotations

import marshal
import math
import re
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine, make_url

from db.console_core import SECRET_TABLES, Limits, QueryError, collect, mb, secret_message, timeout_message
from rnnlab.settings import get_settings

__all__ = ["Limits", "QueryError", "as_text", "db_label", "example_queries", "limits", "query_rows", "rows_to_df",
           "run_sql"]


def rows_to_df(cols: list[str], rows: list[tuple]) -> pd.DataFrame:
    """The rows as a DataFrame (pandas' types: SQL NULL becomes NaN in a float column, None elsewhere)."""
    seen: dict[str, int] = {}
    unique = []
    for c in cols:  # "SELECT a.id, b.id" gives two "id" columns: make them id, id_2
        seen[c] = seen.get(c, 0) + 1
        unique.append(c if seen[c] == 1 else f"{c}_{seen[c]}")
    return pd.DataFrame(rows, columns=unique)


def _is_nan(v: Any) -> bool:
    """A real NaN value (Postgres float8 or numeric 'NaN'), as opposed to SQL NULL (None)."""
    if isinstance(v, float):
        return math.isnan(v)
    return isinstance(v, Decimal) and v.is_nan()


def _number(v: float) -> str:
    """A float as the table shows it: every significant digit it holds (the shortest text that reads
    back as the same float, as psql shows a float8), so 1.49e-06 reads 1.49e-06, not 0.000001; a whole
    number without '.0' (0 reads 0, 50.0 reads 50); inf and -inf as they are."""
    text = repr(float(v))
    return text[:-2] if text.endswith(".0") else text


def _cell(v: Any) -> Any:
    """One value as the table shows it: SQL NULL reads NULL, a real NaN reads NaN, an integer its digits,
    a float _number's text; anything else (text, Decimal, a date) as pandas prints it."""
    if v is None:
        return "NULL"
    if _is_nan(v):
        return "NaN"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _number(v)
    return v


def as_text(cols: list[str], rows: list[tuple]) -> str:
    """The rows as a plain-text table (``rnnlab sql``), each value formatted on its own (_cell): SQL
    NULL reads NULL and a real NaN reads NaN in every column (pandas alone prints both as NaN in a float
    column and NULL as None elsewhere), integers stay integers (not 50.0, even beside a NULL or a float),
    and a float keeps all its significant digits (pandas' table rounds to 6 decimals: 1.49e-06 read
    0.000001, one digit of three; --csv always kept them)."""
    df = rows_to_df(cols, rows)
    if not len(df):
        return df.to_string(index=False)
    shown = {c: [_cell(r[i]) for r in rows] for i, c in enumerate(df.columns)}
    return pd.DataFrame(shown, columns=df.columns).to_string(index=False, max_colwidth=200)


# ------------------------------------------------------------------------------------------------
# SQLite: in a child process
# ------------------------------------------------------------------------------------------------

_CHILD = Path(__file__).resolve().with_name("console_core.py")
_CHILD_GRACE_S = 1.5     # process start and the answer's transfer, on top of the query's own deadline


def _sqlite_path(url: str) -> str | None:
    u = make_url(url)
    if not u.drivername.startswith("sqlite"):
        return None
    if not u.database or u.database == ":memory:":
        raise QueryError("the SQL console needs a file database, not an in-memory one")
    return str(Path(u.database).resolve())


def _run_sqlite(path: str, sql: str, lim: Limits) -> tuple[list[str], list[tuple], str]:
    """Run the query in ``python -I db/console_core.py`` and kill that process at the deadline."""
    request = marshal.dumps({"path": path, "sql": sql, "limits": lim.as_dict()})
    proc = subprocess.Popen([sys.executable, "-I", str(_CHILD)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(request, timeout=lim.timeout_s + _CHILD_GRACE_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise QueryError(timeout_message(lim) + " (stopped inside one function call)") from None
    try:
        answer = marshal.loads(out)
    except (EOFError, ValueError, TypeError):
        last = err.decode(errors="replace").strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
        raise QueryError(f"the query process ended without an answer: {last[0]}") from None
    if answer[0] == "error":
        raise QueryError(answer[1])
    _, cols, rows, why = answer
    return cols, rows, why


# ------------------------------------------------------------------------------------------------
# PostgreSQL
# ------------------------------------------------------------------------------------------------

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


# statements that return rows but cannot stand inside a subquery; their output is small (a setting,
# or a plan whose size follows the statement's, which is itself capped)
_UNWRAPPED = re.compile(r"^\s*(show|explain)\b", re.I)


def _wrapped(sql: str, ncols: int, lim: Limits) -> str:
    """The user's query inside one that the server bounds, so nothing too large is ever sent:
    at most row_limit + 1 rows; each value measured (as text) and sent only if it fits (``__big``:
    the first column that does not); a running total of the row sizes, and every row from the one
    that takes it past max_bytes on sent empty with ``__cut`` set. The user's text sits alone
    between newlines, so a trailing ``--`` comment cannot eat the wrapper."""
    cols = [f"c{i}" for i in range(1, ncols + 1)]
    cap = int(lim.max_value_bytes)
    lens = ", ".join(f"octet_length(q.{c}::text) AS l{c}" for c in cols)
    size = " + ".join(f"coalesce(l{c}, 0)" for c in cols)
    big = " ".join(f"WHEN l{c} > {cap} THEN {i}" for i, c in enumerate(cols, 1))
    keep = ", ".join(f"CASE WHEN w.__cut OR w.l{c} > {cap} THEN NULL ELSE w.{c} END" for c in cols)
    return (
        f"SELECT {keep}, w.__big, w.__cut FROM (\n"
        f" SELECT q.*, s.*, sum(s.__n) OVER (ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) > {int(lim.max_bytes)}"
        f" AS __cut\n FROM (\n{sql}\n) AS q({', '.join(cols)})\n"
        f" CROSS JOIN LATERAL (SELECT t.*, {size} + {8 * ncols} AS __n, CASE {big} ELSE 0 END AS __big\n"
        f"  FROM (SELECT {lens}) AS t) AS s\n"
        f") AS w\nLIMIT {int(lim.row_limit) + 1}"
    )


def _set_timeout(raw, seconds: float) -> None:
    """Arm the server's statement timeout for the next statement (at least 1 ms)."""
    with raw.cursor() as c:
        c.execute(f"SET LOCAL statement_timeout = {max(1, int(seconds * 1000))}")


def _pg_collect(raw, cur, cols: list[str], lim: Limits, deadline: float) -> tuple[list[tuple], str]:
    """Rows of the wrapped query, in batches, until the rows, the bytes or the time run out. Before
    each FETCH the statement timeout is set to the time left, so a query that called
    set_config('statement_timeout', '0', true) in an earlier batch cannot run past the deadline."""
    rows: list[tuple] = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise QueryError(timeout_message(lim))
        _set_timeout(raw, left)
        batch = cur.fetchmany(min(1000, lim.row_limit + 1 - len(rows)))
        if not batch:
            return rows, ""
        for r in batch:
            if r[-2]:
                raise QueryError(f"column {cols[r[-2] - 1]!r} of row {len(rows) + 1} is larger than the console's "
                                 f"limit of {mb(lim.max_value_bytes)} per value; select a part of it, e.g. "
                                 "left(x, 1000) or octet_length(x)")
            if r[-1]:
                return rows, f"the byte limit of {mb(lim.max_bytes)}"
            rows.append(tuple(r[:-2]))
            if len(rows) > lim.row_limit:
                return rows[:lim.row_limit], f"the row limit of {lim.row_limit:,}"


def _pg_columns(raw, sql: str) -> list[str] | None:
    """The result columns of the user's query, from the server's description of it (nothing runs);
    None for a statement that returns no rows."""
    from psycopg.pq import ExecStatus

    for res in (raw.pgconn.prepare(b"", sql.encode()), raw.pgconn.describe_prepared(b"")):
        if res.status != ExecStatus.COMMAND_OK:
            text = (res.error_message or b"").decode(errors="replace").strip() or "the server refused the query"
            raise QueryError(text.removeprefix("ERROR:").strip().splitlines()[0])
    desc = res
    if desc.nfields == 0:
        return None
    return [desc.fname(i).decode(errors="replace") for i in range(desc.nfields)]


def _pg_query(raw, sql: str, lim: Limits, deadline: float) -> tuple[list[str], list[tuple], str]:
    with raw.cursor() as cur:
        cur.execute("SET TRANSACTION READ ONLY")
    _set_timeout(raw, lim.timeout_s)
    sql = sql.strip().rstrip(";").rstrip()
    if _UNWRAPPED.match(sql):
        with raw.cursor() as cur:
            cur.execute(sql.encode(), binary=True)  # extended protocol: exactly one statement
            cols = [d.name for d in cur.description] if cur.description else []
            rows, why = collect(cur.fetchmany, len(cols), lim, deadline) if cols else ([], "")
            return cols, rows, why
    cols = _pg_columns(raw, sql)
    if cols is None:
        raise QueryError(_not_a_query(sql))
    if len(cols) > lim.max_columns:
        raise QueryError(f"the query returns {len(cols)} columns; the console returns at most {lim.max_columns}")
    import psycopg

    with raw.cursor(name="rnnlab_console") as cur:   # a server-side cursor: rows arrive batch by batch
        try:
            cur.execute(_wrapped(sql, len(cols), lim).encode())
        except psycopg.errors.SyntaxError:                # it parsed alone: e.g. INSERT ... RETURNING
            raise QueryError(_not_a_query(sql)) from None
        rows, why = _pg_collect(raw, cur, cols, lim, deadline)
    return cols, rows, why


def _not_a_query(sql: str) -> str:
    word = (re.match(r"\s*([A-Za-z]+)", sql) or [None, "this"])[1].upper()
    if word in ("SELECT", "WITH", "VALUES", "TABLE"):
        return "the console could not bound this query's size: remove a trailing ';' or comment after it"
    return (f"the console is read-only: it runs only queries that return rows (SELECT, WITH, VALUES, TABLE, "
            f"SHOW, EXPLAIN), not {word}")


def _pg_message(e: Exception, lim: Limits) -> str:
    orig = getattr(e, "orig", None) or e
    msg = str(orig).strip() or type(orig).__name__
    if "statement timeout" in msg:
        msg = timeout_message(lim)
    return msg.splitlines()[0]


def _run_server(url: str, sql: str, lim: Limits) -> tuple[list[str], list[tuple], str]:
    eng = _readonly_engine(url)
    if eng.dialect.name != "postgresql":
        raise QueryError(f"the SQL console supports SQLite and PostgreSQL, not {eng.dialect.name}")
    deadline = time.monotonic() + lim.timeout_s
    try:
        with eng.connect() as conn:
            raw = conn.connection.dbapi_connection
            try:
                cols, rows, why = _pg_query(raw, sql, lim, deadline)
            finally:
                raw.rollback()
    except QueryError:
        raise
    except Exception as e:  # noqa: BLE001 - read-only violation, timeout, syntax: all shown as a message
        raise QueryError(_pg_message(e, lim)) from None
    return cols, rows, why


# ------------------------------------------------------------------------------------------------
# The entry point
# ------------------------------------------------------------------------------------------------

def limits(timeout_s: float | None = None, row_limit: int | None = None, **caps: int) -> Limits:
    """The console's limits: the settings' timeout and row limit unless given, and the byte caps."""
    s = get_settings()
    return Limits(timeout_s=float(timeout_s if timeout_s is not None else s.sql_timeout_seconds),
                  row_limit=int(row_limit if row_limit is not None else s.sql_row_limit), **caps)


def run_sql(sql: str, timeout_s: float | None = None, row_limit: int | None = None,
            url: str | None = None, **caps: int) -> tuple[pd.DataFrame, str]:
    """query_rows' answer as a DataFrame (rows_to_df): (the rows, why rows were left out)."""
    cols, rows, why = query_rows(sql, timeout_s, row_limit, url, **caps)
    return rows_to_df(cols, rows), why


def query_rows(sql: str, timeout_s: float | None = None, row_limit: int | None = None,
               url: str | None = None, **caps: int) -> tuple[list[str], list[tuple], str]:
    """Run one user statement on a READ-ONLY connection: SQLite is opened with ``mode=ro`` and
    ``PRAGMA query_only``; Postgres uses ``settings.readonly_database_url`` when set and in any case
    ``default_transaction_read_only`` + ``SET TRANSACTION READ ONLY`` + ``statement_timeout``.
    ``caps`` overrides Limits' byte caps (max_bytes, max_value_bytes, max_columns, max_sql_bytes).

    Returns (the column names, the rows as the driver gave them: SQL NULL is None, why rows were left
    out: '' when none were, else e.g. "the row limit of 10,000" or "the byte limit of 16 MB"). Raises
    QueryError with the reason."""
    lim = limits(timeout_s, row_limit, **caps)
    if not sql or not sql.strip():
        raise QueryError("the query is empty")
    if len(sql.encode()) > lim.max_sql_bytes:
        raise QueryError(f"the query is {len(sql.encode()):,} bytes long; the console takes at most "
                         f"{lim.max_sql_bytes:,}")
    _refuse_secrets(sql)
    s = get_settings()
    target = url or s.readonly_database_url or s.db_url
    path = _sqlite_path(target)
    if path is None and url is None and not s.readonly_database_url:
        # a read-only transaction still lets the owner role call e.g. pg_terminate_backend()
        raise QueryError("the SQL console on a database server needs RNNLAB_READONLY_DATABASE_URL, "
                         "the URL of a read-only role (docs/deploy.md shows how to create it)")
    if path is not None:
        return _run_sqlite(path, sql, lim)
    return _run_server(target, sql, lim)


# PostgreSQL functions that run SQL given as text (or dump whole tables), where a table's name can be
# built from pieces ('login_' || 'throttle') that no check of the statement's text would see, and the
# statistics views, which show samples of any column the role may read (pg_stats' histogram_bounds)
_SQL_TEXT_FUNCTIONS = re.compile(r"\b(?:(?:query|table|schema|database|cursor)_to_xml\w*|ts_stat|ts_rewrite|dblink\w*"
                                 r"|pg_stats\w*|pg_statistic\w*)\b", re.I)
_UNICODE_NAME = re.compile(r"\bu&[\"']", re.I)   # U&"..." / U&'...': a name spelled with escapes


def _code_only(sql: str) -> str:
    """The statement without its comments and string literals ('...', E'...', $tag$...$tag$), and with
    double-quoted identifiers unquoted: what names tables and functions. A literal or a comment that
    merely mentions a table is not a read of it."""
    out, i, n = [], 0, len(sql)
    while i < n:
        c = sql[i]
        if sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j < 0 else j
        elif sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            i = n if j < 0 else j + 2
            out.append(" ")
        elif c == "'":
            # backslash escapes only in PostgreSQL's E'...' strings: in a plain one a backslash is itself
            # (standard_conforming_strings, and SQLite), so 'a\' ends there and what follows is code
            escapes = i > 0 and sql[i - 1] in "eE" and (i < 2 or not (sql[i - 2].isalnum() or sql[i - 2] == "_"))
            j = i + 1
            while j < n:
                if sql[j] == "'" and sql.startswith("''", j):
                    j += 2
                    continue
                if escapes and sql[j] == "\\" and j + 1 < n:
                    j += 2
                    continue
                if sql[j] == "'":
                    break
                j += 1
            i = j + 1
            out.append(" ''")
        elif c == "$":
            m = re.match(r"\$[A-Za-z_]*\$", sql[i:])
            if m:
                end = sql.find(m.group(0), i + len(m.group(0)))
                i = n if end < 0 else end + len(m.group(0))
                out.append(" ''")
            else:
                out.append(c)
                i += 1
        elif c == '"':
            out.append(" ")
            i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _refuse_secrets(sql: str) -> None:
    """Refuse a statement that reads a secret table (SQLite's authorizer and the read-only role's missing
    privilege refuse it too; this covers a server where the init script never ran): a name of it outside
    comments and string literals, a function that runs SQL given as text, a statistics view, or a
    name spelled with Unicode escapes."""
    if _UNICODE_NAME.search(sql):
        raise QueryError("the console does not run names or strings written with Unicode escapes (U&): they "
                         f"could name the sign-in table {SECRET_TABLES[0]!r} unseen")
    code = _code_only(sql).lower()
    for table in SECRET_TABLES:
        if re.search(rf"\b{re.escape(table)}\b", code):
            raise QueryError(secret_message(table))
    m = _SQL_TEXT_FUNCTIONS.search(code)
    if m:
        raise QueryError(f"the console does not run {m.group(0)!r}: it could read the sign-in table "
                         f"{SECRET_TABLES[0]!r} under a name built at run time, or samples of its columns")


def example_queries(dialect: str | None = None) -> list[tuple[str, str]]:
    """(title, sql) examples for the console (db.examples, the source of docs/schema.md)."""
    from db.examples import example_queries as from_store

    return [(str(t), str(sql)) for t, sql in from_store(dialect)]


def db_label(url: str | None = None) -> str:
    """The database's URL with any password hidden, for display."""
    u = make_url(url or get_settings().db_url)
    return u.render_as_string(hide_password=True)
