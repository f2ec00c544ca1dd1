"""`rnnlab sql "QUERY" [--csv] [--limit N]`: the dashboard's read-only SQL console in the terminal.

It goes through db.console.run_sql, so it has the same guarantees: a read-only connection
(RNNLAB_READONLY_DATABASE_URL on Postgres), the statement timeout, and the row, value and byte limits.
The table shows SQL NULL as NULL and a real NaN (Postgres) as NaN; --csv writes both as an empty field.
Exit codes: 0 the rows were printed; 2 an option out of bounds (--limit, --timeout), as the CLI's other bad
input; 1 the console refused or failed the query (read-only, too long, a syntax error, the timeout).
"""

from __future__ import annotations

import sys

import typer

EXIT_QUERY_FAILED = 1
EXIT_BAD_INPUT = 2


def _fail(message: str, code: int = EXIT_QUERY_FAILED) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _read_stdin() -> str:
    """The statement from stdin, read no further than one byte past the console's max_sql_bytes (more is
    refused before it is read)."""
    from db.console import limits

    cap = limits().max_sql_bytes
    stream = getattr(sys.stdin, "buffer", None)
    data = stream.read(cap + 1) if stream is not None else sys.stdin.read(cap + 1).encode()
    if len(data) > cap:
        _fail(f"the query on stdin is more than {cap:,} bytes; the console takes at most {cap:,}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        _fail(f"the query on stdin is not UTF-8 text (byte {e.start:,}: {data[e.start:e.start + 1]!r})")


def sql(
    query: str = typer.Argument(..., help="one SQL statement; '-' reads it from stdin"),
    csv: bool = typer.Option(False, "--csv", help="print CSV (with a header row) instead of a table"),
    limit: int | None = typer.Option(None, "--limit", min=1, help="at most N rows (default and maximum: "
                                     "RNNLAB_SQL_ROW_LIMIT)"),
    timeout: float | None = typer.Option(None, "--timeout", min=0.1, help="seconds (default and maximum: "
                                         "RNNLAB_SQL_TIMEOUT_SECONDS)"),
) -> None:
    """Run one read-only query on the results database and print the rows."""
    from db.console import QueryError, as_text, query_rows, rows_to_df
    from rnnlab.settings import get_settings

    s = get_settings()
    if limit is not None and limit > s.sql_row_limit:
        _fail(f"--limit {limit} is above the console's row limit of {s.sql_row_limit:,} (RNNLAB_SQL_ROW_LIMIT)",
              EXIT_BAD_INPUT)
    if timeout is not None and timeout > s.sql_timeout_seconds:
        _fail(f"--timeout {timeout:g} is above the console's timeout of {s.sql_timeout_seconds:g} s "
              "(RNNLAB_SQL_TIMEOUT_SECONDS)", EXIT_BAD_INPUT)
    text = _read_stdin() if query == "-" else query
    try:
        cols, rows, why = query_rows(text, timeout, limit)
    except QueryError as e:
        _fail(str(e))
    if csv:
        sys.stdout.write(rows_to_df(cols, rows).to_csv(index=False))
    elif not cols:
        typer.echo("the statement returned no rows")
    else:
        typer.echo(as_text(cols, rows))
    if why:
        typer.echo(f"note: {len(rows):,} rows shown; the rest were left out at {why}", err=True)
