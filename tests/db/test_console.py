"""The read-only SQL console (db.console) on SQLite and on PostgreSQL through the read-only role that
docker/postgres-init creates: every attack of bench/console_attacks.py is refused or bounded, the
byte caps hold, the caller's memory stays small, and `rnnlab sql` goes through the same console."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from bench import console_attacks as attacks  # noqa: E402
from db import console  # noqa: E402
from db.console_core import value_size  # noqa: E402


@pytest.fixture(scope="module")
def sqlite_db(tmp_path_factory):
    return attacks.sqlite_database(tmp_path_factory.mktemp("console"))


@pytest.fixture(scope="module")
def pg_readonly():
    """A migrated database with a few runs, and the URL of its read-only role."""
    from db.engine import dispose_all
    from db.migrate import upgrade
    from tests.deploy.pg_helpers import fresh_database, run_init_script

    with fresh_database("console") as t:
        assert run_init_script(t, timeout="10s").returncode == 0
        upgrade(t.url(t.owner))
        attacks._seed(t.url(t.owner))
        yield t.url(t.readonly)
        dispose_all()


def _check(attack: attacks.Attack, url: str) -> None:
    lim = console.limits(attacks.TIMEOUT_S, attacks.ROW_LIMIT)
    try:
        df, why = console.run_sql(attack.sql, attacks.TIMEOUT_S, attacks.ROW_LIMIT, url=url)
    except console.QueryError as e:
        outcome, message = "refused", str(e)
    else:
        outcome, message = ("bounded" if why else "returned"), why
        assert len(df) <= lim.row_limit
        held = sum(value_size(v) for row in df.itertuples(index=False) for v in row)
        assert held <= lim.max_bytes + df.shape[1] * lim.max_value_bytes
    assert attacks.judge(attack, outcome, message), (outcome, message)


@pytest.mark.parametrize("attack", attacks.SQLITE_ATTACKS, ids=lambda a: a.sql[:40])
def test_sqlite_attacks_are_refused_or_bounded(sqlite_db, attack):
    _check(attack, sqlite_db)


@pytest.mark.parametrize("attack", attacks.PG_ATTACKS, ids=lambda a: a.sql[:40])
def test_postgres_attacks_are_refused_or_bounded(pg_readonly, attack):
    _check(attack, pg_readonly)


def test_there_are_more_than_twenty_attacks_per_backend():
    assert len(attacks.SQLITE_ATTACKS) > 20 and len(attacks.PG_ATTACKS) > 20


def _index(items, sql_start):
    return next(i for i, a in enumerate(items) if a.sql.startswith(sql_start))


@pytest.mark.parametrize("backend, sql_start", [
    ("sqlite", "SELECT zeroblob(400000000)"),
    ("postgres", "SELECT generate_series(1, 3000000)"),
    ("postgres", "SELECT repeat('x', 4000000)"),
])
def test_the_callers_memory_stays_small(request, backend, sql_start):
    """Peak RSS growth of a process that runs the query (the dashboard's cost): 400 MB and 247 MB
    before the caps; now the value is refused or the rows are cut."""
    url = request.getfixturevalue("sqlite_db" if backend == "sqlite" else "pg_readonly")
    i = _index(attacks.ATTACKS[backend], sql_start)
    p = subprocess.run([sys.executable, str(REPO / "bench" / "console_attacks.py"), "--one", backend, str(i), url],
                       capture_output=True, text=True, timeout=120, cwd=REPO)
    res = json.loads(p.stdout.strip().splitlines()[-1])
    assert res["outcome"] in ("refused", "bounded") and res["growth_mb"] < 60, res


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_byte_cap_cuts_the_rows_and_says_so(request, backend):
    url = request.getfixturevalue("sqlite_db" if backend == "sqlite" else "pg_readonly")
    rows = ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100) "
            "SELECT x, printf('%.*c', 500, 'a') AS s FROM c" if backend == "sqlite"
            else "SELECT x, repeat('a', 500) AS s FROM generate_series(1, 100) AS x")
    df, why = console.run_sql(rows, 10, 1000, url=url, max_bytes=10_000, max_value_bytes=1000)
    assert why == "the byte limit of 10,000 bytes"
    assert df["x"].tolist() == list(range(1, len(df) + 1)) and (df["s"] == "a" * 500).all()
    # a row holds about 508 bytes: the text, and 8 for the number (Postgres: its text, plus 8 per value)
    assert 10_000 // 508 <= len(df) <= 10_000 // 508 + 1


def test_postgres_keeps_order_names_and_types(pg_readonly):
    df, why = console.run_sql("SELECT x, x AS x, NULL AS n, '{\"a\": [1, 2]}'::jsonb AS j "
                              "FROM generate_series(1, 50) AS x ORDER BY x DESC", 10, 100, url=pg_readonly)
    assert not why and list(df.columns) == ["x", "x_2", "n", "j"]
    assert df["x"].tolist() == list(range(50, 0, -1)) and df["j"][0] == {"a": [1, 2]} and df["n"].isna().all()
    assert console.run_sql("SELECT 1 AS a; ", 10, 10, url=pg_readonly)[0]["a"].tolist() == [1]   # as typed in psql


def test_postgres_row_limit_reads_one_row_past_it(pg_readonly):
    df, why = console.run_sql("SELECT generate_series(1, 3000000) AS n", 10, 2500, url=pg_readonly)
    assert df["n"].tolist() == list(range(1, 2501)) and why == "the row limit of 2,500"
    df, why = console.run_sql("SELECT generate_series(1, 2500) AS n", 10, 2500, url=pg_readonly)
    assert len(df) == 2500 and why == ""


# ---- rnnlab sql ------------------------------------------------------------------------------------------

def _cli(url: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    import os

    env = {**os.environ, "RNNLAB_DATABASE_URL": url, "RNNLAB_SQL_ROW_LIMIT": "50"}
    env.pop("RNNLAB_READONLY_DATABASE_URL", None)
    return subprocess.run([sys.executable, "-m", "cli.main", "sql", *args], capture_output=True, text=True,
                          env=env, input=stdin, timeout=120, cwd=REPO)


def test_rnnlab_sql_prints_csv_that_matches_the_database(sqlite_db):
    query = "SELECT id, owner, status FROM runs ORDER BY id"
    p = _cli(sqlite_db, query, "--csv")
    assert p.returncode == 0, p.stderr
    path = sqlite_db.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:                       # independent: the file read directly
        expect = [[str(v) for v in row] for row in conn.execute(query)]
    got = list(csv.reader(io.StringIO(p.stdout)))
    assert got[0] == ["id", "owner", "status"] and got[1:] == expect and len(expect) == 3


def test_rnnlab_sql_has_the_consoles_limits(sqlite_db):
    p = _cli(sqlite_db, "SELECT zeroblob(400000000)")
    assert p.returncode == 1 and "larger than the console's limit of 1 MB per value" in p.stderr
    p = _cli(sqlite_db, "DELETE FROM runs")
    assert p.returncode == 1 and "read-only" in p.stderr
    p = _cli(sqlite_db, "-", "--limit", "2", stdin="SELECT id FROM runs ORDER BY id")
    assert p.returncode == 0 and p.stdout.split() == ["id", "1", "2"] and "row limit of 2" in p.stderr
    p = _cli(sqlite_db, "SELECT 1", "--limit", "51")     # bad input: 2, as in every command
    assert p.returncode == 2 and "above the console's row limit of 50" in p.stderr


def _cli_on(url: str, *args: str) -> subprocess.CompletedProcess:
    """`rnnlab sql` on ``url`` (on Postgres as its own read-only URL: the test database's role)."""
    import os

    env = {**os.environ, "RNNLAB_DATABASE_URL": url, "RNNLAB_READONLY_DATABASE_URL": url}
    if url.startswith("sqlite"):
        env.pop("RNNLAB_READONLY_DATABASE_URL")
    return subprocess.run([sys.executable, "-m", "cli.main", "sql", *args], capture_output=True, text=True,
                          env=env, timeout=120, cwd=REPO)


def test_rnnlab_sql_shows_null_as_null_not_nan(db_url):
    """Epoch 0's train_loss is NULL (no training yet): the table says NULL, not NaN (a blow-up), and
    so does a NULL text or integer column (not None, nor 50.0 for the integers next to it). --csv is
    as before: an empty field."""
    from db import store
    from rnnlab.spec import parse_spec
    from tests.synthetic import epoch_record, run_info

    (rid,) = store.create_runs([parse_spec({"hidden_size": 8, "epochs": 1, "steps_per_epoch": 2})], url=db_url)
    store.claim_run(rid, "w", url=db_url)
    store.record_info(rid, run_info(), attempt=1, url=db_url)
    recs = [epoch_record(e) for e in range(2)]
    for rec in recs:
        store.record_epoch(rid, rec, attempt=1, url=db_url)
    query = ("SELECT e.epoch, e.train_loss, r.notes, CASE WHEN e.epoch = 0 THEN NULL ELSE e.steps END AS s "
             f"FROM epochs e JOIN runs r ON r.id = e.run_id WHERE e.run_id = {rid} ORDER BY e.epoch")
    p = _cli_on(db_url, query)
    assert p.returncode == 0, p.stderr
    lines = [ln.split() for ln in p.stdout.splitlines()]
    assert lines[0] == ["epoch", "train_loss", "notes", "s"] and len(lines) == 3, p.stdout
    assert recs[0].train_loss is None and lines[1] == ["0", "NULL", "NULL", "NULL"], p.stdout
    assert lines[2][0] == "1" and lines[2][2:] == ["NULL", "50"], p.stdout
    assert float(lines[2][1]) == pytest.approx(recs[1].train_loss, rel=1e-5)
    p = _cli_on(db_url, query, "--csv")
    assert p.returncode == 0, p.stderr
    rows = list(csv.reader(io.StringIO(p.stdout)))
    assert rows[1][:3] == ["0", "", ""] and float(rows[2][1]) == recs[1].train_loss and rows[2][2] == ""


def test_rnnlab_sql_tells_a_postgres_nan_from_null(pg_url):
    """Postgres can return a real NaN (float8 'NaN'): it reads NaN, and a NULL beside it reads NULL."""
    p = _cli_on(pg_url, "SELECT x FROM (VALUES (1.5::float8), ('NaN'::float8), (NULL::float8)) AS v(x)")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["x", "1.5", "NaN", "NULL"], p.stdout
    p = _cli_on(pg_url, "SELECT 'NaN'::numeric AS d, NULL::text AS t")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["d", "t", "NaN", "NULL"], p.stdout
