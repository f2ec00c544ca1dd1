"""`rnnlab compare --by FACTOR (--sweep ID | --runs 3,4,5 | --tag T) [--json]`: the Strategies page's
verdict in the terminal, from the same code (rnnlab.strategies) and the same reads (db.queries)."""

from __future__ import annotations

import json
import re
import sys

import typer

# rnnlab.strategies.FACTORS, listed here so that `rnnlab --help` does not import pandas
FACTOR_NAMES = ("cell", "activation", "init", "clipping", "depth", "T", "everything but the seed")
MAX_RUNS = 1000      # the runs one comparison reads (--runs takes at most this many ids)
SHOW_MISSING = 10    # the missing --runs ids named in the error; the rest are counted


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _factor(by: str) -> str:
    name = by.replace("-", " ")
    if name not in FACTOR_NAMES:
        from cli.main import clipped

        _fail(f"--by: got {clipped(by)}; allowed: {', '.join(repr(f) for f in FACTOR_NAMES)}")
    return name


def _source(sweep: int | None, runs: str | None, tag: str | None) -> dict:
    given = [k for k, v in (("--sweep", sweep), ("--runs", runs), ("--tag", tag)) if v is not None]
    if len(given) != 1:
        _fail(f"give exactly one of --sweep, --runs, --tag (got {', '.join(given) if given else 'none'})")
    from cli.main import check_id, check_tags  # the id and tag checks of every command (`rnnlab show`, `runs`, …)

    if runs is not None:
        if not re.fullmatch(r"\s*\d+(\s*,\s*\d+)*\s*", runs):
            _fail(f"--runs: got {runs[:200]!r}; expected run ids separated by commas, e.g. 3,4,5")
        parts = [p.strip() for p in runs.split(",")]
        if len(parts) > MAX_RUNS:
            _fail(f"--runs: {len(parts):,} run ids; at most {MAX_RUNS:,} (or use --sweep or --tag)")
        return {"ids": list(dict.fromkeys(check_id(p, "--runs") for p in parts))}
    if sweep is not None:
        return {"sweep_id": check_id(sweep, "--sweep", "sweep")}
    return {"tags": check_tags([tag], "--tag")}   # 1 to db.store.MAX_TAG_CHARS characters, as stored


def _run_ids(filters: dict) -> list[int]:
    from db import queries

    listed, total = queries.list_runs(filters, 0, MAX_RUNS, "oldest")
    ids = [int(i) for i in listed["id"]]
    if "ids" in filters:
        found = set(ids)
        missing = [i for i in filters["ids"] if i not in found]
        if missing:
            more = f" … and {len(missing) - SHOW_MISSING:,} more ({len(missing):,} in all)" \
                if len(missing) > SHOW_MISSING else ""
            _fail(f"--runs: no such run(s): {', '.join(map(str, missing[:SHOW_MISSING]))}{more} (see `rnnlab runs`)")
    elif not ids:
        what = f"sweep {filters['sweep_id']}" if "sweep_id" in filters else f"tag {filters['tags'][0]!r}"
        _fail(f"no runs in {what} (see `rnnlab runs`)")
    if total > MAX_RUNS:
        typer.echo(f"warning: using the first {MAX_RUNS:,} of {total:,} runs", err=True)
    return ids


def _print(table, text: str, factor: str) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    out = Console(highlight=False)
    out.print(re.sub(r"\*\*(.+?)\*\*", r"[bold]\1[/bold]", escape(text)))
    out.print()
    for r in table.to_dict("records"):
        mark = f"#{r['rank']}" if r["rank"] is not None and r["rank"] == r["rank"] else ("!" if r["_broken"] else "-")
        out.print(f"{mark} [bold]{escape(r['group'])}[/bold]: {escape(r['verdict'])}")
    t = Table("rank", factor, "runs", "loss ÷ baseline", "beats", "horizon", "‖g_1‖/‖g_T‖", "flags", "confounded")
    for r in table.to_dict("records"):
        rank = "" if r["rank"] is None or r["rank"] != r["rank"] else str(r["rank"])
        t.add_row(rank, escape(r["group"]), f"{r['finished']}/{r['runs']}", f"{r['loss ÷ baseline']:.3g}",
                  "yes" if r["beats baseline"] else "no", f"{r['horizon (steps)']:.1f} / {r['T']}",
                  f"{r['‖g_1‖/‖g_T‖']:.2g}", escape(r["flags"]), escape(r["confounded"]))
    out.print(t)


def compare(
    by: str = typer.Option(..., "--by", help=f"the factor to group by: {', '.join(FACTOR_NAMES)}"),
    sweep: int | None = typer.Option(None, "--sweep", help="the runs of this sweep id"),
    runs: str | None = typer.Option(None, "--runs", help="these run ids, e.g. 3,4,5"),
    tag: str | None = typer.Option(None, "--tag", help="the runs with this tag"),
    as_json: bool = typer.Option(False, "--json", help="print the verdict as JSON"),
) -> None:
    """Which group works best and how sure we can be: the Strategies page's verdict, flags and ranking."""
    factor = _factor(by)
    filters = _source(sweep, runs, tag)
    from db import queries
    from db.migrate import ensure_schema
    from rnnlab import strategies

    ensure_schema()
    ids = _run_ids(filters)
    rows = queries.runs_by_ids(ids)
    groups = strategies.groups_of(rows, factor)
    table = strategies.summary(rows, queries.final_summary(ids), groups, queries.run_health(ids), factor=factor)
    text = strategies.overall(table, factor)
    if not as_json:
        _print(table, text, factor)
        return
    groups_out = strategies.public(table)
    best = next((g["group"] for g in groups_out if g["rank"] == 1), None)
    doc = {"factor": factor, "source": {k: v for k, v in (("sweep", sweep), ("runs", filters.get("ids")), ("tag", tag))
                                        if v is not None},
           "run_ids": ids, "best": best, "conclusion": text, "groups": groups_out}
    json.dump(doc, sys.stdout, indent=1, ensure_ascii=False, allow_nan=False)
    sys.stdout.write("\n")
