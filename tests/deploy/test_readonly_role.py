"""The SQL console's read-only role, created by docker/postgres-init on a real (local) PostgreSQL."""

from __future__ import annotations

import psycopg
import pytest
from pg_helpers import fresh_database, run_init_script


@pytest.fixture
def target():
    with fresh_database("ro") as t:
        result = run_init_script(t, timeout="1s")
        assert result.returncode == 0, result.stderr
        yield t


def owner_creates_table(t):
    """A table made after the init script, by the owner (as `rnnlab db upgrade` does)."""
    with psycopg.connect(t.libpq(t.owner), autocommit=True) as conn:
        conn.execute("CREATE TABLE runs (id int PRIMARY KEY, owner text)")
        conn.execute("INSERT INTO runs VALUES (1, 'alice')")


def test_role_settings(target):
    with psycopg.connect(target.libpq(target.readonly)) as conn:
        assert conn.execute("SHOW statement_timeout").fetchone() == ("1s",)
        assert conn.execute("SHOW default_transaction_read_only").fetchone() == ("on",)
        flags = conn.execute("SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = current_user")
        assert flags.fetchone() == (False, False, False)


def test_reads_tables_created_later_by_the_owner(target):
    owner_creates_table(target)
    with psycopg.connect(target.libpq(target.readonly)) as conn:
        assert conn.execute("SELECT owner FROM runs").fetchall() == [("alice",)]


@pytest.mark.parametrize("sql, error", [
    ("INSERT INTO runs VALUES (2, 'mallory')", "read-only transaction"),
    ("DELETE FROM runs", "read-only transaction"),
    ("CREATE TABLE t (x int)", "read-only transaction"),
    ("SET default_transaction_read_only = off; BEGIN READ WRITE; INSERT INTO runs VALUES (2, 'x')",
     "permission denied"),
    ("BEGIN READ WRITE; CREATE TABLE t (x int)", "permission denied"),
], ids=["insert", "delete", "create", "read-write-insert", "read-write-create"])
def test_writes_are_refused_even_after_leaving_read_only_mode(target, sql, error):
    owner_creates_table(target)
    with psycopg.connect(target.libpq(target.readonly), autocommit=True) as conn:
        with pytest.raises(psycopg.Error, match=error):
            conn.execute(sql)
    with psycopg.connect(target.libpq(target.owner)) as conn:
        assert conn.execute("SELECT count(*) FROM runs").fetchone() == (1,)


def test_long_queries_hit_the_statement_timeout(target):
    with psycopg.connect(target.libpq(target.readonly)) as conn:
        with pytest.raises(psycopg.errors.QueryCanceled, match="statement timeout"):
            conn.execute("SELECT pg_sleep(3)")


def test_script_is_idempotent_and_needs_its_password(target):
    again = run_init_script(target)
    assert again.returncode == 0, again.stderr
    target.readonly_password = ""
    missing = run_init_script(target)
    assert missing.returncode != 0 and "RNNLAB_READONLY_PASSWORD" in missing.stderr


def test_sql_console_refuses_a_write_through_the_readonly_url(target, monkeypatch):
    """db.console.run_sql with the role's URL (RNNLAB_READONLY_DATABASE_URL in the dashboard)."""
    from db.console import QueryError, run_sql

    owner_creates_table(target)
    df, truncated = run_sql("SELECT id, owner FROM runs", url=target.url(target.readonly))
    assert df.to_dict("records") == [{"id": 1, "owner": "alice"}] and not truncated
    for sql in ("INSERT INTO runs VALUES (3, 'x')", "DROP TABLE runs", "TRUNCATE runs"):
        with pytest.raises(QueryError, match="read-only|permission denied"):
            run_sql(sql, url=target.url(target.readonly))
    with psycopg.connect(target.libpq(target.owner)) as conn:
        assert conn.execute("SELECT count(*) FROM runs").fetchone() == (1,)
