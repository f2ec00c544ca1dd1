"""python -m bench.faults --all   (or --only sigkill,corrupt ...): run the fault suite, write docs/reliability.md.

Needs root for the tmpfs mount (full disk) and to run PostgreSQL as the postgres user; redis-server,
initdb/pg_ctl and faketime from Debian's packages (redis-server, postgresql, faketime).
"""

from __future__ import annotations

import argparse
import datetime as dt
import shlex
import signal
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.faults import report
from bench.faults.scenarios import SCENARIOS, Context, Result


def parse_args(argv=None):
    ap = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__.split("\n")[0])
    ap.add_argument("--all", action="store_true", help="every scenario: " + ", ".join(SCENARIOS))
    ap.add_argument("--only", default="", help="comma-separated scenarios (e.g. sigkill,corrupt)")
    ap.add_argument("--load-runs", type=int, default=1000, help="runs in the load scenario")
    ap.add_argument("--load-workers", type=int, default=4, help="workers in the load scenario (2-4)")
    ap.add_argument("--out", default=str(report.h.REPO / "docs" / "reliability.md"),
                    help="the report to write ('-' for none)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, databases) for a look")
    ap.add_argument("--no-others", action="store_true", help="do not run bench/bad_inputs.py, console_attacks.py")
    args = ap.parse_args(argv)
    names = list(SCENARIOS) if args.all else [n for n in args.only.split(",") if n]
    unknown = [n for n in names if n not in SCENARIOS]
    if not names or unknown:
        ap.error(f"--only: got {unknown or 'nothing'}; allowed: {', '.join(SCENARIOS)} (or --all)")
    return args, names


def run(names: list[str], ctx: Context, on_progress=None) -> list[Result]:
    results = []
    for i, name in enumerate(names):
        t0 = time.monotonic()
        try:
            rows = SCENARIOS[name](ctx)
        except Exception as e:  # noqa: BLE001 - one broken scenario must not hide the others' figures
            traceback.print_exc()
            rows = [Result(name, "?", outcome=f"harness error: {type(e).__name__}: {str(e)[:200]}")]
        for r in rows:
            print(" | ".join(r.row()), f"({time.monotonic() - t0:.0f} s)", flush=True)
            for d in r.details:
                print("    ", d, flush=True)
        results += rows
        if on_progress is not None:
            on_progress(results, names[i + 1:])
    return results


def main(argv=None) -> int:
    args, names = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))   # stop the workers and services on the way out
    started = dt.datetime.now(dt.UTC)
    command = "python -m bench.faults " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    others = ThreadPoolExecutor(1).submit(report.others, not args.no_others and args.out != "-")
    ctx = Context(load_runs=args.load_runs, load_workers=args.load_workers)

    def write(results, pending=()):   # after every scenario, so a long run leaves its figures so far
        tables = others.result() if others.done() or not pending else {}
        if args.out != "-":
            report.write(Path(args.out), results, command=command, services=_services(ctx), started=started,
                         tables=tables, pending=list(pending))

    try:
        results = run(names, ctx, write)
    finally:
        ctx.close(keep=args.keep)
    if args.out != "-":
        print(f"wrote {args.out}")
    return 0 if all(r.holds for r in results) else 1


def _services(ctx: Context) -> str:
    parts = []
    if ctx.pg is not None:
        parts.append(f"own PostgreSQL {ctx.pg.version()} (fsync off) on port {ctx.pg.port}")
    for persistent, r in ctx.redis.items():
        parts.append(f"own Redis {r.version()} {'with' if persistent else 'without'} persistence on port {r.port}")
    return "; ".join(parts) or "none (SQLite and the filesystem broker only)"


if __name__ == "__main__":
    sys.exit(main())
