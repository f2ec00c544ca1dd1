"""Attack queries against the read-only SQL console (db.console.run_sql) on SQLite and on PostgreSQL
through the read-only role that docker/postgres-init creates. Each query runs in its own process,
so the table can show that process's peak memory growth: the dashboard's cost of the query.

    .venv/bin/python bench/console_attacks.py                 # markdown table for docs/reliability.md
    .venv/bin/python bench/console_attacks.py --module OLD.py # the same attacks on another console module

Outcomes: "refused" (QueryError, with its message) or "bounded" (rows came back, cut at the row or
byte limit). tests/db/test_console.py runs the same list and checks each outcome.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TIMEOUT_S = 3.0
ROW_LIMIT = 10_000


@dataclass(frozen=True)
class Attack:
    sql: str
    expect: str          # "refused" (QueryError whose message matches ``match``) or "bounded"; a regex
    match: str = ""      # regex on the message (refused) or on why rows were left out (bounded)


# a 1 MB text of 'a's, built inside SQLite under the value cap
_A = "replace(hex(zeroblob(500000)), '0', 'a')"
_B = "replace(hex(zeroblob(250000)), '0', 'a')"
_INF = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c)"
_MANY_COLS = "SELECT " + ", ".join(f"{i} AS c{i}" for i in range(300))
_LONG_SQL = "SELECT 1 AS x" + " " * 200_000
_TIMEOUT = "statement timeout"
_BIG = "larger than the console's limit"
_NOT_QUERY = "read-only: it runs only queries"

SQLITE_ATTACKS = [
    Attack("SELECT zeroblob(400000000)", "refused", _BIG),
    Attack("SELECT randomblob(2000000000)", "refused", _BIG),
    # SQLite's printf gives NULL once its output would pass the length cap; on a busy machine the
    # deadline comes first. Either way nothing large reaches the dashboard (the held bytes are checked).
    Attack("SELECT printf('%.*c', 400000000, 'x')", "refused|returned", f"{_TIMEOUT}|^$"),
    Attack(f"SELECT instr({_A}, {_B} || 'b')", "refused", _TIMEOUT),
    Attack(f"SELECT replace({_A}, 'a', 'aa')", "refused", _BIG),
    Attack(f"{_INF} SELECT group_concat(x) FROM c", "refused", f"{_BIG}|{_TIMEOUT}"),
    Attack(f"{_INF} SELECT count(*) FROM c", "refused", _TIMEOUT),
    Attack(f"{_INF} SELECT x FROM c ORDER BY random()", "refused", _TIMEOUT),
    Attack(f"{_INF} SELECT x FROM c", "bounded", "row limit"),
    Attack(f"{_INF} SELECT x, zeroblob(100000) FROM c", "bounded", "byte limit"),
    Attack(f"{_INF} SELECT x, printf('%.*c', 900000, 'y') FROM c", "bounded", "byte limit"),
    Attack(_MANY_COLS, "refused", "too many columns"),
    Attack(_LONG_SQL, "refused", "bytes long"),
    Attack("DELETE FROM runs", "refused", "not authorized"),
    Attack("UPDATE runs SET status = 'failed'", "refused", "not authorized"),
    Attack("DROP TABLE runs", "refused", "not authorized"),
    Attack("CREATE TEMP TABLE t(a)", "refused", "not authorized"),
    Attack("ATTACH '/tmp/rnnlab-attack.db' AS x", "refused", "not authorized"),
    Attack("VACUUM INTO '/tmp/rnnlab-attack.db'", "refused", "not authorized|authorization denied"),
    Attack("PRAGMA query_only = OFF", "refused", "not authorized"),
    Attack("PRAGMA writable_schema = ON", "refused", "not authorized"),
    Attack("BEGIN IMMEDIATE", "refused", "not authorized"),
    Attack("SELECT 1; DELETE FROM runs", "refused", "one statement"),
    Attack("SELECT load_extension('/tmp/x.so')", "refused", "not authorized|no such function"),
    Attack(f"{_INF} SELECT json_group_array(printf('%.*c', 60000, 'x')) FROM (SELECT x FROM c LIMIT 40)",
           "refused", _BIG),
]

PG_ATTACKS = [
    Attack("SELECT generate_series(1, 3000000) AS n", "bounded", "row limit"),
    Attack("SELECT x FROM generate_series(1, 300000) AS x ORDER BY random()", "bounded", "row limit"),
    Attack("SELECT repeat('x', 4000000)", "refused", _BIG),
    Attack("SELECT repeat('x', 400000000)", "refused", f"{_BIG}|{_TIMEOUT}"),
    Attack("SELECT repeat('x', 500000) FROM generate_series(1, 1000)", "bounded", "byte limit"),
    Attack("SELECT string_agg(repeat('x', 1000), '') FROM generate_series(1, 100000)", "refused", f"{_BIG}|{_TIMEOUT}"),
    Attack("SELECT array_agg(x) FROM generate_series(1, 3000000) AS x", "refused", f"{_BIG}|{_TIMEOUT}"),
    Attack("SELECT pg_sleep(30)", "refused", _TIMEOUT),
    Attack("SELECT count(*) FROM generate_series(1, 1000000000)", "refused", _TIMEOUT),
    Attack("SELECT set_config('statement_timeout', '0', true), pg_sleep(CASE WHEN n > 1000 THEN 30 ELSE 0 END) "
           "FROM generate_series(1, 1003) AS n", "refused", _TIMEOUT),
    Attack("EXPLAIN ANALYZE SELECT pg_sleep(30)", "refused", _TIMEOUT),
    Attack(_MANY_COLS, "refused", "at most 200"),
    Attack(_LONG_SQL, "refused", "bytes long"),
    Attack("SET statement_timeout = 0", "refused", _NOT_QUERY),
    Attack("DELETE FROM runs", "refused", _NOT_QUERY),
    Attack("UPDATE runs SET status = 'failed'", "refused", _NOT_QUERY),
    Attack("DROP TABLE runs", "refused", _NOT_QUERY),
    Attack("TRUNCATE runs", "refused", _NOT_QUERY),
    Attack("CREATE TABLE evil (a int)", "refused", _NOT_QUERY),
    Attack("COPY runs TO '/tmp/rnnlab-attack.csv'", "refused", _NOT_QUERY),
    Attack("DO $$BEGIN PERFORM pg_sleep(30); END$$", "refused", _NOT_QUERY),
    Attack("LOCK TABLE runs IN ACCESS EXCLUSIVE MODE", "refused", _NOT_QUERY),
    Attack("INSERT INTO run_tags VALUES (1, 'x') RETURNING *", "refused", _NOT_QUERY),
    Attack("WITH d AS (DELETE FROM runs RETURNING *) SELECT * FROM d", "refused", "read-only|top level"),
    Attack("SELECT * FROM runs FOR UPDATE", "refused", "read-only"),
    Attack("SELECT 1; DELETE FROM runs", "refused", "multiple commands"),
    Attack("SET TRANSACTION READ WRITE; DELETE FROM runs", "refused", "multiple commands"),
    Attack("SELECT pg_read_file('/etc/passwd')", "refused", "permission denied"),
    Attack("SELECT lo_import('/etc/passwd')", "refused", "permission denied|read-only"),
    Attack("SELECT 1 AS a) AS z CROSS JOIN (SELECT repeat('x', 9000000) AS a", "refused", "syntax error"),
]

ATTACKS = {"sqlite": SQLITE_ATTACKS, "postgres": PG_ATTACKS}


def judge(attack: Attack, outcome: str, message: str) -> bool:
    """Whether a run of ``attack`` went as expected."""
    import re

    return re.fullmatch(attack.expect, outcome) is not None and re.search(attack.match, message) is not None


# ---- one attack, in this process ------------------------------------------------------------------

def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def _reset_peak() -> bool:
    """Set this process's peak RSS (VmHWM) to its current RSS, so that a peak reached while importing
    is not counted as the query's (Linux ≥ 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_bytes() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _load(module: str | None):
    if not module:
        from db import console

        return console
    import importlib.util

    spec = importlib.util.spec_from_file_location("console_under_test", module)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run_one(backend: str, index: int, url: str, module: str | None) -> dict:
    console = _load(module)
    attack = ATTACKS[backend][index]
    _reset_peak()
    before = _rss_bytes()
    t0 = time.monotonic()
    try:
        df, why = console.run_sql(attack.sql, TIMEOUT_S, ROW_LIMIT, url=url)
        outcome = "bounded" if why else "returned"
        message = f"{len(df):,} rows" + (f", cut at {why}" if isinstance(why, str) and why else "")
        if why is True:
            message += ", cut at the row limit"
    except console.QueryError as e:
        outcome, message = "refused", str(e)
    seconds = time.monotonic() - t0
    peak = _peak_bytes()
    return {"outcome": outcome, "message": message, "seconds": seconds, "growth_mb": max(0, peak - before) / 2**20,
            "before_mb": before / 2**20, "peak_mb": peak / 2**20}


# ---- databases ---------------------------------------------------------------------------------------

def sqlite_database(folder: Path) -> str:
    from db.migrate import upgrade

    url = f"sqlite:///{folder / 'attack.db'}"
    upgrade(url)
    _seed(url)
    return url


def _seed(url: str) -> None:
    from db import store
    from rnnlab.spec import parse_spec

    specs = [parse_spec({"task": {"name": "adding", "seq_len": 20}, "seed": s, "epochs": 1}) for s in range(3)]
    store.create_runs(specs, owner="alice", tags=["attack"], url=url)


def _run_all(backend: str, url: str, module: str | None) -> list[dict]:
    out = []
    for i, attack in enumerate(ATTACKS[backend]):
        cmd = [sys.executable, __file__, "--one", backend, str(i), url] + (["--module", module] if module else [])
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        try:
            res = json.loads(p.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            res = {"outcome": "crashed", "message": (p.stderr.strip().splitlines() or ["?"])[-1],
                   "seconds": float("nan"), "growth_mb": float("nan")}
        res["ok"] = judge(attack, res["outcome"], res["message"])
        out.append({"backend": backend, "sql": attack.sql, **res})
    return out


def _cell(text: str, width: int = 90) -> str:
    text = " ".join(text.split())
    text = text if len(text) <= width else text[:width - 1] + "…"
    return text.replace("|", "\\|")


def markdown(results: list[dict]) -> str:
    lines = ["| query | backend | outcome | message | s | memory growth (MB) | as expected |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| `{_cell(r['sql'], 70)}` | {r['backend']} | {r['outcome']} | {_cell(r['message'])} | "
                     f"{r['seconds']:.2f} | {r['growth_mb']:.1f} | {'yes' if r['ok'] else 'NO'} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--one", nargs=3, metavar=("BACKEND", "INDEX", "URL"), help=argparse.SUPPRESS)
    ap.add_argument("--module", help="a console module file to test instead of db/console.py")
    ap.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one[0], int(args.one[1]), args.one[2], args.module)))
        return
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.backend in ("sqlite", "both"):
            results += _run_all("sqlite", sqlite_database(Path(tmp)), args.module)
    if args.backend in ("postgres", "both"):
        from db.migrate import upgrade
        from tests.deploy.pg_helpers import fresh_database, run_init_script

        with fresh_database("attack") as t:
            assert run_init_script(t, timeout="10s").returncode == 0
            upgrade(t.url(t.owner))
            _seed(t.url(t.owner))
            results += _run_all("postgres", t.url(t.readonly), args.module)
    print(markdown(results))
    bad = [r for r in results if not r["ok"]]
    print(f"\n{len(results) - len(bad)} of {len(results)} attacks went as expected", file=sys.stderr)


if __name__ == "__main__":
    main()
