"""`rnnlab study list | run NAME [--scale cpu|paper] [--local] | status NAME | report NAME -o report.html`.

The studies are defined in studies/ (docs/studies.md); the dashboard's Studies page uses the same
code (studies.service). `run` queues the study's runs on the workers, tagged `study:NAME@vN:SCALE`;
`--local` trains them here instead, one after another (imports torch).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

study_app = typer.Typer(help="Studies: experiments that test one published claim each (docs/studies.md).",
                        no_args_is_help=True)

SCALES = ("cpu", "paper")


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _study(name: str):
    import studies

    try:
        return studies.get(name)
    except ValueError as e:
        _fail(str(e))


def _scale(study, scale: str) -> str:
    if scale not in SCALES:
        _fail(f"--scale: got {scale[:40]!r}; allowed: {', '.join(SCALES)}")
    if scale not in study.scales:
        _fail(f"--scale: study {study.name} has no {scale} scale (it has {', '.join(study.scales)})")
    return scale


def _ready_db() -> None:
    from db.migrate import ensure_schema

    ensure_schema()


@study_app.command("list")
def list_studies(as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """Every study with its claim, source, size and its last verdict at each scale."""
    import studies
    from studies.service import outcome

    _ready_db()
    rows = []
    for st in studies.STUDIES.values():
        verdicts = {sc: outcome(st, sc).verdict for sc in st.scales}
        rows.append({"name": st.name, "version": st.version, "title": st.title, "claim": st.claim,
                     "source": st.source, "runs": {sc: st.n_runs(sc) for sc in st.scales}, "verdict": verdicts})
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for r in rows:
        typer.echo(f"{r['name']} v{r['version']}: {r['title']}")
        typer.echo(f"  claim:   {r['claim']}")
        typer.echo(f"  source:  {r['source']}")
        typer.echo("  verdict: " + "; ".join(f"{sc} ({r['runs'][sc]} runs): {v}" for sc, v in r["verdict"].items()))


@study_app.command("run")
def run_study(
    name: str = typer.Argument(..., help="the study (see `rnnlab study list`)"),
    scale: str = typer.Option("cpu", "--scale", help="cpu (minutes on 2 cores) or paper (the paper's sizes)"),
    local: bool = typer.Option(False, "--local", help="train the runs here, one after another, not on workers"),
    owner: str | None = typer.Option(None, "--owner",
                                     help="owner recorded on the runs (default: your OS user name)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="list the runs without submitting"),
) -> None:
    """Queue every run of a study (or train them here with --local)."""
    from cli.main import _default_owner as default_owner
    from studies.service import StudyError, submit

    st = _study(name)
    scale = _scale(st, scale)
    specs = st.specs(scale)
    typer.echo(f"study {st.name} v{st.version} at scale {scale}: {len(specs)} runs, tag {st.tag(scale)}")
    if dry_run:
        for s in specs:
            typer.echo(f"  {s.label()}")
        typer.echo("dry run: nothing submitted")
        return
    _ready_db()
    if local:
        from cli.main import passive_openmp
        from studies.service import create
        from worker.local import train_here

        passive_openmp()

        try:
            ids = create(st, scale, owner=owner or default_owner())
        except (StudyError, ValueError) as e:
            _fail(str(e))
        train_here(ids, specs, on_run=lambda i, o, sec: typer.echo(f"  run {i}: {o} in {sec:.1f} s"))
        status(name, scale, False)
        return
    try:
        ids = submit(st, scale, owner=owner or default_owner())
    except (StudyError, ValueError) as e:
        _fail(str(e))
    typer.echo(f"queued {len(ids)} run(s): {ids[0]}-{ids[-1]}; follow with `rnnlab study status {st.name}`")
    from client.submit import queues_for
    from db.liveness import list_workers, serve_hint, unserved_queues

    waiting = unserved_queues(queues_for(st.specs(scale)), list_workers())
    if waiting:   # e.g. the paper scale goes to the gpu queue, and no GPU worker is alive
        typer.echo(f"warning: no live worker serves the {', '.join(waiting)} queue: the runs wait until one "
                   f"starts (`{serve_hint(waiting[0])}`)", err=True)


@study_app.command()
def status(
    name: str = typer.Argument(..., help="the study"),
    scale: str = typer.Option("cpu", "--scale", help="cpu or paper"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Progress, the verdict and its checks per seed, and every number with its seed interval."""
    from studies.service import outcome

    st = _study(name)
    scale = _scale(st, scale)
    _ready_db()
    out = outcome(st, scale)
    if as_json:
        typer.echo(json.dumps(out.to_dict(), ensure_ascii=False, indent=2))
        return
    done = sum(v for k, v in out.counts.items() if k not in ("queued", "running"))
    typer.echo(f"{st.name} v{st.version} ({scale}): {done}/{out.expected_runs} runs finished "
               f"({', '.join(f'{k} {v}' for k, v in sorted(out.counts.items())) or 'none submitted'})")
    typer.echo(f"claim:   {st.claim}")
    typer.echo(f"verdict: {out.verdict} — {out.reason}")
    for note in out.notes:   # e.g. a re-run of a grid point: which run the analysis read
        typer.echo(f"note:    {note}")
    for c in out.checks:
        marks = {s: c.mark(s) for s in sorted(c.per_seed)}
        box = "!!" if "fails" in marks.values() else ("??" if "no evidence" in marks.values() else "ok")
        typer.echo(f"  [{box}] {c.text}: " + ", ".join(
            f"seed {s} {m}" + (f" ({c.reason(s)})" if m == "no evidence" else "") for s, m in marks.items()))
    for n in out.numbers:
        typer.echo(f"  {n.label}, {n.group}: {n.text()}")


@study_app.command()
def report(
    name: str = typer.Argument(..., help="the study"),
    output: Path = typer.Option(..., "-o", "--output", help="the HTML file; the Markdown is written next to it"),
    scale: str = typer.Option("cpu", "--scale", help="cpu or paper"),
) -> None:
    """Write a self-contained HTML report (inline SVG figures, opens offline) and its Markdown twin."""
    from studies.service import StudyError, write_report

    st = _study(name)
    scale = _scale(st, scale)
    _ready_db()
    try:
        html, md, out = write_report(st, scale, output)
    except StudyError as e:
        _fail(str(e))
    except OSError as e:
        _fail(f"-o: cannot write {str(output)[:200]!r} ({e.strerror})")
    typer.echo(f"{out.verdict}: wrote {html} and {md}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(study_app())
