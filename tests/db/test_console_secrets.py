"""The SQL console never shows login_throttle (failed sign-ins: addresses, typed names): SQLite's
authorizer, the console's own check, and on PostgreSQL the read-only role's missing privilege
(docker/postgres-init, with its event trigger for the table that migrations create later)."""

from __future__ import annotations

import psycopg
import pytest

from db import console, console_core
from db.console_core import Limits
from tests.deploy.pg_helpers import fresh_database, run_init_script

ATTACKS = ["SELECT * FROM login_throttle", 'SELECT count(*) FROM "LOGIN_THROTTLE"',
           "SELECT key FROM public.login_throttle", "WITH t AS (SELECT * FROM login_throttle) SELECT * FROM t"]
PG_ONLY = ["SELECT query_to_xml('select * from login_' || 'throttle', true, true, '')",
           "SELECT schema_to_xml('public', true, true, '')",
           "SELECT * FROM ts_stat('select to_tsvector(key) from login_' || 'throttle')",
           'SELECT * FROM U&"login\\005fthrottle"',
           # the statistics views sample any column the role may read (histogram_bounds of key)
           "SELECT histogram_bounds FROM pg_stats WHERE tablename LIKE 'login%'",
           "SELECT * FROM pg_catalog.pg_statistic",
           # a plain string ends at its quote whatever the backslash before it: the table is code here
           "SELECT 'a\\' , key FROM login_throttle --'"]
# the name only in a comment, a string literal or another identifier: no read of the table
HARMLESS = ["SELECT 1 AS attempts_stat", "SELECT 'login_throttle' AS word",
            "SELECT count(*) AS n FROM runs -- not login_throttle", "SELECT 1 AS n /* login_throttle */",
            "SELECT 'it''s login_throttle' AS word", "SELECT 2 AS login_throttle_count"]


def _seed_throttle(url):
    from dashboard import auth
    from db.engine import get_engine

    auth.claim_attempt("10.0.0.9", "alice-pass-1", engine=get_engine(url))


@pytest.fixture
def sqlite_db(sqlite_url):
    _seed_throttle(sqlite_url)
    return sqlite_url


@pytest.mark.parametrize("sql", ATTACKS)
def test_sqlite_console_refuses_the_table(sqlite_db, sql):
    with pytest.raises(console.QueryError, match="login_throttle"):
        console.run_sql(sql, url=sqlite_db)


def test_sqlite_authorizer_refuses_it_without_the_text_check(sqlite_db):
    path = console._sqlite_path(sqlite_db)
    with pytest.raises(console.QueryError, match="does not read the table 'login_throttle'"):
        console_core.run_sqlite(path, "SELECT count(*) FROM login_throttle", Limits())
    cols, rows, _ = console_core.run_sqlite(path, "SELECT count(*) FROM runs", Limits())
    assert rows == [(0,)]


def superuser_database():
    """pg_helpers.fresh_database with a superuser owner (the postgres image's POSTGRES_USER)."""
    return fresh_database("sec", superuser=True)


def _migrate(t):
    from db.engine import dispose_all
    from db.migrate import upgrade

    upgrade(t.url(t.owner))
    _seed_throttle(t.url(t.owner))
    dispose_all()


def test_postgres_role_cannot_read_the_table_created_after_the_init_script():
    with superuser_database() as t:
        assert run_init_script(t).returncode == 0
        _migrate(t)                                             # login_throttle made after the script
        with psycopg.connect(t.libpq(t.readonly), autocommit=True) as conn:
            for sql in ["SELECT * FROM login_throttle", PG_ONLY[0]]:
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(sql)
            assert conn.execute("SELECT count(*) FROM runs").fetchone() == (0,)


def test_postgres_script_run_again_after_migrations_revokes_it():
    with fresh_database("sec") as t:                            # owner is not a superuser: no trigger
        assert run_init_script(t).returncode == 0
        _migrate(t)
        with psycopg.connect(t.libpq(t.readonly), autocommit=True) as conn:
            assert conn.execute("SELECT count(*) FROM login_throttle").fetchone() == (2,)   # the gap ...
            with pytest.raises(console.QueryError, match="login_throttle"):                 # ... the console closes
                console.run_sql(ATTACKS[0], url=t.url(t.readonly))
        assert run_init_script(t).returncode == 0
        with psycopg.connect(t.libpq(t.readonly), autocommit=True) as conn:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("SELECT count(*) FROM login_throttle")


@pytest.mark.parametrize("sql", HARMLESS)
def test_a_query_that_only_mentions_the_name_runs(db_url, sql):
    """The check read the statement's whole text: a comment, a string or an alias that merely contained
    'login_throttle' (or 'ts_stat', as in attempts_stat) was refused."""
    df, _ = console.run_sql(sql, url=db_url)
    assert len(df) == 1


@pytest.mark.parametrize("sql", ATTACKS + PG_ONLY)
def test_postgres_console_refuses_the_table_even_where_the_role_may_read_it(pg_url, sql):
    """pg_url: the owner role, which can read everything; the console's check alone refuses."""
    _seed_throttle(pg_url)
    with pytest.raises(console.QueryError, match="login_throttle"):
        console.run_sql(sql, url=pg_url)
    df, _ = console.run_sql("SELECT count(*) AS n FROM runs", url=pg_url)
    assert int(df.n[0]) == 0
