"""The `rnnlab` command line: train in the foreground, submit to the queue, run workers, inspect runs.

Torch (and the engine) are imported only by `train` and `worker`, so the other commands work in a
torch-free install. Bad input (an invalid spec, an unknown run id, an option out of bounds, an output
file whose folder does not exist) prints a message naming the field, id or option and exits with code 2
without writing anything, in every command (`rnnlab sql` and `rnnlab user` too: they exit 1 only when the
work itself fails, e.g. the database refuses a query or the users file is malformed).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rnnlab.records import EpochRecord

app = typer.Typer(help="rnnlab: a lab bench for vanishing and exploding gradients in RNNs.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
db_app = typer.Typer(help="The results database.", no_args_is_help=True)
app.add_typer(db_app, name="db")
try:
    from cli.users import users_app

    app.add_typer(users_app, name="user")
except ImportError:  # the users module is optional
    pass
from cli.compare import compare  # noqa: E402  (`rnnlab compare`: the Strategies verdict)

app.command("compare")(compare)
from cli.sql import sql as _sql  # noqa: E402

app.command("sql")(_sql)
from cli.study import study_app  # noqa: E402  (`rnnlab study list|run|status|report`)

app.add_typer(study_app, name="study")

out = Console()
err = Console(stderr=True)

EXAMPLE_SPEC = """\
# An rnnlab job spec (docs/spec.md documents every field). Train it with
#   rnnlab train spec.yaml            or queue it with   rnnlab submit spec.yaml
name: tanh-adding-T100
task:
  name: adding          # adding | copy | temporal_order | digits | charlm | forecast
  variant: a16          # adding: a16 (baseline MSE 1/6) or p13 (baseline 1/24, solve rate)
  seq_len: 100          # T: how far back the gradient has to reach
cell: rnn               # rnn | lstm | gru
activation: tanh        # rnn only: tanh | sigmoid | relu | leaky_relu | prelu
hidden_size: 128
num_layers: 1
init:
  recurrent: orthogonal # W_hh: default | zeros | normal | uniform | xavier_* | kaiming | orthogonal | identity
  input: default        # W_ih
  spectral_radius: null # rescale W_hh to this spectral radius (e.g. 1.0)
clip:
  mode: norm            # none | norm (rescale to max_norm) | value (clamp to ±clip_value)
  max_norm: 1.0
optimizer:
  name: adam            # sgd | adam | rmsprop
  lr: 0.001
batch_size: 64
epochs: 10
steps_per_epoch: 50
seed: 0
device: auto            # auto | cpu | cuda  (auto runs on the cpu queue unless RNNLAB_AUTO_QUEUE=gpu)
probe:
  every: 1              # per-timestep gradient profile every N epochs (and at the first and last)
  batch_size: 32
# A sweep instead: put the job under `base:` and add
#   vary: {cell: [rnn, lstm], task.seq_len: [50, 100, 200]}
#   seeds: [0, 1, 2]
"""


def passive_openmp() -> None:
    """Before torch is imported: idle OpenMP threads sleep instead of spinning (as on a worker, see
    worker/slots.py); on a shared machine spinning threads made small runs many times slower."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def fail(message: str, code: int = 2) -> None:
    """Print an error and exit (2: bad input)."""
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(code)


def _load(path: Path):
    from rnnlab.settings import get_settings
    from rnnlab.spec import SpecError, load

    try:
        return load(path, get_settings().limits)
    except SpecError as e:
        fail(str(e))


def _default_owner() -> str | None:
    """The OS user name (getpass.getuser: $LOGNAME, $USER, …, then the password database); None if
    there is none (e.g. a container user with no name)."""
    import getpass

    try:
        return getpass.getuser() or None
    except (OSError, KeyError):
        return None


def check_id(value: int | str, name: str, what: str = "run") -> int:
    """A run (or sweep) id typed on the command line, as an int: 1 to db.reads.MAX_RUN_ID, else exit 2
    naming the argument; checked before the id is sent to the database (a larger one does not fit its
    column). Text longer than 12 digits is refused without being converted."""
    from db.reads import MAX_RUN_ID

    text = str(value).strip()
    n = int(text) if re.fullmatch(r"[+-]?\d{1,12}", text) else None
    if n is None or not 1 <= n <= MAX_RUN_ID:
        shown = text if len(text) <= 40 else text[:40] + "…"
        fail(f"{name}: got {shown}; a {what} id is a whole number from 1 to {MAX_RUN_ID:,}")
    return n


def clipped(text: str, keep: int = 40) -> str:
    """``text`` for an error message: at most ``keep`` characters, and the length when it was cut."""
    return repr(text) if len(text) <= keep else f"{text[:keep]!r}… ({len(text):,} characters)"


def check_tags(tags: list[str], option: str = "--tag") -> list[str]:
    """Tags typed on the command line, stripped and deduplicated: at most db.store.MAX_TAGS of them (a run
    has no more), each 1 to MAX_TAG_CHARS characters (no stored tag is longer) that db.store.tag_problem
    lets through (no control, NUL or bidi characters), else exit 2 naming the option; an overlong tag is
    shown cut, never echoed whole."""
    from db.store import MAX_TAG_CHARS, MAX_TAGS, tag_problem

    if len(tags) > MAX_TAGS:
        fail(f"{option}: {len(tags):,} tags; at most {MAX_TAGS} (a run has at most {MAX_TAGS} tags)")
    out: dict[str, None] = {}
    for t in tags:
        text = t.strip()
        if not 1 <= len(text) <= MAX_TAG_CHARS:
            fail(f"{option}: got {clipped(t)}; a tag is 1 to {MAX_TAG_CHARS} characters")
        problem = tag_problem(t)   # the rule every stored tag passed: no control, NUL or bidi characters
        if problem:
            fail(f"{option}: {problem.removeprefix('tag: ')}")
        out.setdefault(text)
    return list(out)


# workers.name, runs.worker and run_attempts.worker are String(200), and Celery stores a name without an @
# as celery@NAME (NAME is then taken as its host)
MAX_WORKER_NAME_CHARS = 200 - len("celery@")
_WORKER_NAME = re.compile(r"[A-Za-z0-9._@-]+")


def check_worker_name(name: str, option: str = "--name") -> str:
    """A worker name typed on the command line: 1 to MAX_WORKER_NAME_CHARS characters, ASCII letters, digits
    and . _ - @ (so no control or bidi character, and no % that Celery would expand), else exit 2 naming
    the option; a longer name was stored whole by SQLite and refused by PostgreSQL at every heartbeat."""
    if not (1 <= len(name) <= MAX_WORKER_NAME_CHARS and _WORKER_NAME.fullmatch(name)):
        fail(f"{option}: got {clipped(name)}; a worker name is 1 to {MAX_WORKER_NAME_CHARS} characters: "
             f"ASCII letters, digits and . _ - @ (e.g. gpu1@main)")
    return name


def check_output_path(path: Path, option: str) -> None:
    """An output file named on the command line, checked before any work is done (`train --json`: before
    training; it once trained, recorded the run as succeeded, then ended in a traceback): its folder must
    exist and be writable, and the path must not be a folder; else exit 2 naming the option."""
    shown = clipped(str(path), 200)
    folder = path.parent
    try:
        if path.is_dir():
            fail(f"{option}: {shown} is a folder; give a file name (e.g. {str(path / 'out')!r})")
        if not folder.is_dir():
            what = "is not a folder" if folder.exists() else "does not exist (create it first)"
            fail(f"{option}: got {shown}, but the folder {clipped(str(folder), 200)} {what}")
        if path.exists() and not os.access(path, os.W_OK):
            fail(f"{option}: {shown} cannot be written (permission denied)")
        if not path.exists() and not os.access(folder, os.W_OK | os.X_OK):
            fail(f"{option}: cannot create {shown}: the folder {clipped(str(folder), 200)} is not writable")
    except OSError as e:   # e.g. a name too long for the file system
        fail(f"{option}: got {shown}: {e.strerror or e}")


def _run_or_fail(run_id: int) -> dict:
    from db.store import get_run

    run = get_run(check_id(run_id, "RUN_ID"))
    if run is None:
        fail(f"run {run_id} not found (see `rnnlab runs`)")
    return run


def _ready_db() -> None:
    from db.migrate import ensure_schema

    ensure_schema()


# ---------------------------------------------------------------------------------------------
# Specs and foreground training
# ---------------------------------------------------------------------------------------------

@app.command()
def spec(example: bool = typer.Option(False, "--example", help="print an annotated example spec")) -> None:
    """Print an annotated example job spec (YAML)."""
    if not example:
        fail("use `rnnlab spec --example` to print an annotated example spec")
    typer.echo(EXAMPLE_SPEC, nl=False)


@app.command()
def train(
    spec_file: Path = typer.Argument(..., help="a job spec (YAML or JSON)"),
    json_out: Path | None = typer.Option(None, "--json", help="also write the records to this JSON file"),
    no_db: bool = typer.Option(False, "--no-db", help="do not record the run in the database"),
    owner: str | None = typer.Option(None, "--owner",
                                        help="owner recorded on the run (default: your OS user name)"),
    tag: list[str] = typer.Option([], "--tag", help="tag for the recorded run (repeatable)"),
) -> None:
    """Train one job in the foreground with a progress bar, and record it in the database."""
    from rnnlab.spec import JobSpec

    if json_out is not None:
        check_output_path(json_out, "--json")
    doc = _load(spec_file)
    if not isinstance(doc, JobSpec):
        fail(f"{spec_file} is a sweep; queue it with `rnnlab submit {spec_file}`")
    owner = owner or _default_owner()
    if not no_db:
        from client.submit import check_owner, check_submission
        from rnnlab.settings import get_settings

        problems = check_owner(owner) + check_submission([doc], tag, get_settings().limits)
        if problems:
            fail("\n".join(problems))
    from worker.foreground import train_foreground

    passive_openmp()
    code = train_foreground(doc, json_out=json_out, record=not no_db, owner=owner, tags=tag,
                            console=out)
    raise typer.Exit(code)


# ---------------------------------------------------------------------------------------------
# The queue
# ---------------------------------------------------------------------------------------------

@app.command()
def submit(
    spec_file: Path = typer.Argument(..., help="a job spec or a sweep spec (YAML or JSON)"),
    tag: list[str] = typer.Option([], "--tag", help="tag every run (repeatable)"),
    owner: str | None = typer.Option(None, "--owner",
                                        help="owner recorded on the runs (default: your OS user name)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="only report what would be submitted"),
    skip_existing: bool = typer.Option(False, "--skip-existing",
                                       help="leave out specs already in the database and repeats"),
) -> None:
    """Queue a run or a sweep; prints how many runs and which are duplicates."""
    from client.submit import plan as make_plan
    from client.submit import submit as send

    doc = _load(spec_file)
    _ready_db()
    p = make_plan(doc)
    out.print(p.summary())
    specs = p.specs
    if skip_existing:
        drop = set(p.existing) | {j for _, j in p.duplicates}
        specs = [s for i, s in enumerate(specs) if i not in drop]
        out.print(f"skipping {len(drop)}; {len(specs)} to submit")
    if dry_run:
        for i, s in enumerate(specs[:50]):
            out.print(f"  {i + 1:>4}  {escape(s.label())}  [dim]{s.spec_hash()[:12]}[/]", highlight=False)
        if len(specs) > 50:
            out.print(f"  … and {len(specs) - 50} more")
        out.print("dry run: nothing submitted")
        return
    if not specs:
        out.print("nothing to submit")
        return
    try:
        ids = send(specs, owner=owner or _default_owner(), tags=tag, sweep=p.sweep)
    except ValueError as e:
        fail(str(e))
    out.print(f"queued {len(ids)} run(s): {_id_ranges(ids)}")


def _id_ranges(ids: list[int]) -> str:
    if not ids:
        return ""
    parts, start, prev = [], ids[0], ids[0]
    for i in ids[1:] + [None]:
        if i is not None and i == prev + 1:
            prev = i
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if i is not None:
            start = prev = i
    return ", ".join(parts)


def _no_gpu_here() -> str | None:
    """Why this machine cannot serve the gpu queue (None when it can): asked of torch in one child process,
    with the CUDA_VISIBLE_DEVICES the worker will use, so that this process never initializes CUDA
    (the pool children fork from it)."""
    probe = ("import sys, torch; ok = torch.cuda.is_available() and torch.cuda.device_count() > 0; "
             "print(torch.__version__, torch.version.cuda); sys.exit(0 if ok else 3)")
    try:
        r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        return "asking torch for a CUDA device took over 300 s"
    if r.returncode == 0:
        return None
    if "No module named 'torch'" in r.stderr:
        return "torch is not installed here (pip install 'rnnlab[worker]')"
    version, cuda = (r.stdout.split() + ["?", "?"])[:2]
    build = f"{version}, built for CUDA {cuda}" if cuda not in ("None", "?") else f"{version}, a CPU-only build"
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    return ("no CUDA GPU is visible to torch here" + (f" (CUDA_VISIBLE_DEVICES={visible})" if visible is not None
                                                         else "") + f"; torch {build}")


@app.command()
def worker(
    queues: str = typer.Option("cpu", "--queues", "-Q", help="comma-separated: cpu, gpu"),
    slots: int | None = typer.Option(None, "--slots", "-s",
                                     help="runs at a time, each in its own process (1 to 64, at most the cores; "
                                          "default 1)"),
    concurrency: int | None = typer.Option(None, "--concurrency", "-c", help="the old name of --slots"),
    threads: int | None = typer.Option(None, "--threads", envvar="RNNLAB_TORCH_THREADS",
                                       help="torch threads per slot (default: cores // slots; slots x threads "
                                            "may not exceed the cores)"),
    gpu: int | None = typer.Option(None, "--gpu", help="pin to this GPU (sets CUDA_VISIBLE_DEVICES)"),
    mem_fraction: float | None = typer.Option(None, "--mem-fraction",
                                              help="GPU workers: cap of each slot's CUDA memory, as a fraction of "
                                                   "the GPU (default 0.9 / slots)"),
    name: str | None = typer.Option(None, "--name", "-n",
                                    help="worker name, 1 to 193 characters: letters, digits and . _ - @ (default "
                                         "<queues><pid>@<host>, or gpu<N>@<host> with --gpu N)"),
    loglevel: str = typer.Option("INFO", "--loglevel", "-l"),
) -> None:
    """Start a Celery worker that trains queued runs (one per GPU: --queues gpu --gpu N; --slots N runs N at once)."""
    from rnnlab.queue import QUEUES, queue_name
    from worker.slots import SlotError, apply_env, plan

    wanted = [q.strip() for q in queues.split(",") if q.strip()]
    bad = [q for q in wanted if q not in QUEUES]
    if bad or not wanted:
        fail(f"--queues: got {queues!r}; allowed: {', '.join(QUEUES)} (comma-separated)")
    if name is not None:
        check_worker_name(name)
    if slots is not None and concurrency is not None and slots != concurrency:
        fail(f"--concurrency: got {concurrency} with --slots {slots}; --concurrency is the old name of --slots, "
             f"give one of them")
    try:
        p = plan(slots if slots is not None else (concurrency if concurrency is not None else 1), threads=threads,
                 gpu=gpu, cuda="gpu" in wanted, mem_fraction=mem_fraction)
    except SlotError as e:
        fail(str(e))
    apply_env(p)   # CUDA_VISIBLE_DEVICES, torch threads and the memory cap, for the pool children
    if "gpu" in wanted:
        problem = _no_gpu_here()
        if problem:
            fail(f"--queues: got {queues!r}, but {problem}. A gpu worker without a GPU would fail every run "
                 f"it takes off the gpu queue; those runs stay queued for a worker that has one (start this "
                 f"one with --queues cpu)")
    host = socket.gethostname()
    name = name or (f"gpu{gpu}@{host}" if gpu is not None else f"{'-'.join(wanted)}{os.getpid()}@{host}")
    _ready_db()
    from worker.app import app as celery_app

    out.print(f"worker {name}: {p.describe()}", highlight=False)
    argv = ["worker", "-n", name, "-Q", ",".join(queue_name(q) for q in wanted), "-c", str(p.slots),
            "--pool", "prefork", "-l", loglevel, "--without-mingle", "--without-gossip"]
    if "gpu" in wanted:
        argv += ["--max-tasks-per-child", "1"]  # a fresh CUDA context per run
        os.environ["RNNLAB_PRELOAD_ENGINE"] = "0"  # nothing torch-related in the parent
    celery_app.worker_main(argv)


# ---------------------------------------------------------------------------------------------
# Inspecting and acting on runs
# ---------------------------------------------------------------------------------------------

def _fmt(x) -> str:
    if x is None:
        return ""
    if hasattr(x, "strftime"):
        return x.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


def _loss(x) -> str:
    """A loss as shown: 4 significant digits; a non-finite one (a diverged run's) as NaN, inf or -inf,
    never a blank, which reads as "no loss yet"; '' only when no epoch has been recorded."""
    if x is None:
        return ""
    x = float(x)
    return "NaN" if x != x else f"{x:.4g}"


@app.command()
def runs(
    status: list[str] = typer.Option([], "--status", help="filter by status (repeatable)"),
    tag: list[str] = typer.Option([], "--tag", help="filter by tag (repeatable; all must match)"),
    limit: int = typer.Option(30, "--limit", min=1, max=1000, help="how many, newest first"),
) -> None:
    """List runs, newest first."""
    from db.queries import last_epoch_values, last_val_losses
    from db.reads import list_runs
    from rnnlab.records import RUN_STATUSES, run_label

    bad = [s for s in status if s not in RUN_STATUSES]
    if bad:
        fail(f"--status: got {clipped(bad[0])}; allowed: {', '.join(RUN_STATUSES)}")
    status = list(dict.fromkeys(status))
    tag = check_tags(tag)
    _ready_db()
    df, _ = list_runs({"status": status, "all_tags": tag}, 0, limit)
    rows = df.astype(object).where(df.notna(), None).to_dict("records")
    ids = [int(r["id"]) for r in rows]
    last = last_val_losses(ids)  # a diverged run's NaN too (the row keeps NULL)
    metric = last_epoch_values(ids, "val_metric")
    table = Table("id", "status", "label", "epoch", "val loss", "metric", "horizon", "tags", "created")
    for r in rows:
        loss = last.get(int(r["id"]))
        table.add_row(str(r["id"]), r["status"], escape(run_label(r)), f"{r['epochs_done']}/{r['epochs_total']}",
                      _loss(loss), _loss(metric.get(int(r["id"]))), _fmt(r["last_horizon"]),
                      escape(r["tags"] or ""), r["created_at"].strftime("%Y-%m-%d %H:%M"))
    out.print(table)
    if not rows:
        out.print("no runs")


@app.command()
def workers() -> None:
    """List workers with their state (db.liveness.worker_state), queues, device, current run and heartbeat age."""
    from db.liveness import list_workers

    _ready_db()
    table = Table("name", "state", "queues", "device", "run", "heartbeat", "host", "pid")
    rows = list_workers()
    for w in rows:
        table.add_row(escape(w["name"]), w["state"], escape(w["queues"] or ""), escape(w["device"] or ""),
                      _fmt(w["current_run_id"]), f"{w['heartbeat_age_s']:.0f} s ago", escape(w["host"] or ""),
                      _fmt(w["pid"]))
    out.print(table)
    if not rows:
        out.print("no workers have registered (start one with `rnnlab worker`)")


SHOW_NOTES = {
    "baseline_loss": "  (analytic: the trivial predictor's expected loss on the task)",
    "baseline_heldout_loss": "  (held-out: the trivial predictor on this run's held-out set; the verdicts use it)",
}


@app.command()
def show(run_id: int = typer.Argument(..., help="run id")) -> None:
    """Show one run: status, spec, attempts and its per-epoch scalars."""
    import yaml

    from db.store import epoch_scalars

    _ready_db()
    r = _run_or_fail(run_id)
    out.print(f"[bold]run {r['id']}[/] {escape(r['name'] or '')}  [bold]{r['status']}[/]  {escape(r['message'] or '')}",
              highlight=False)
    facts = {k: r[k] for k in ("owner", "worker", "attempts", "max_attempts", "queue", "code_version",
                               "created_at", "started_at", "finished_at", "metric_name", "baseline_loss",
                               "baseline_heldout_loss", "baseline_metric", "diagnosis", "notes")}
    facts["tags"] = ", ".join(r["tags"])
    for k, v in facts.items():
        if v not in (None, ""):
            out.print(f"  {k:<21} {escape(_fmt(v))}{SHOW_NOTES.get(k, '')}", highlight=False)
    out.print("[bold]spec[/]")
    out.print(escape(yaml.safe_dump(r["spec"], sort_keys=False).rstrip()), highlight=False)
    if r["attempt_history"]:
        t = Table("attempt", "worker", "started", "ended", "outcome", "resumed from", "message", title="attempts")
        for a in r["attempt_history"]:
            t.add_row(str(a["attempt"]), escape(a["worker"] or ""), _fmt(a["started_at"]), _fmt(a["ended_at"]),
                      a["outcome"] or "", _fmt(a["resumed_from_epoch"]), escape(a["message"] or ""))
        out.print(t)
    rows = epoch_scalars(run_id)
    if rows:
        t = Table("epoch", "train loss", "val loss", r["metric_name"] or "metric", "‖g‖ mean", "‖g‖ max",
                  "clip", "s", title="epochs")
        for e in rows:
            t.add_row(str(e["epoch"]), _loss(e["train_loss"]), _loss(e["val_loss"]), _fmt(e["val_metric"]),
                      _fmt(e["grad_norm_mean"]), _fmt(e["grad_norm_max"]), _fmt(e["clip_fraction"]),
                      f"{e['train_seconds']:.1f}")
        out.print(t)


@app.command()
def cancel(run_id: int = typer.Argument(..., help="run id")) -> None:
    """Cancel a run: a queued one at once, a running one within about a second (its data is kept)."""
    from db.store import RunNotFound, request_cancel

    check_id(run_id, "RUN_ID")
    _ready_db()
    try:
        changed = request_cancel(run_id)
    except RunNotFound as e:
        fail(f"{e} (see `rnnlab runs`)")
    if changed:
        out.print(f"run {run_id}: cancel requested")
    else:
        out.print(f"run {run_id} has already finished ({_run_or_fail(run_id)['status']}); nothing to cancel")


@app.command()
def requeue(run_id: int = typer.Argument(..., help="run id of a queued, failed, cancelled or diverged run")) -> None:
    """Queue a failed, cancelled or diverged run again (resuming from its last checkpoint), or resend a
    queued run's message."""
    from db.store import RunNotFound, RunStateError, requeue_run
    from rnnlab.queue import get_app, send_run

    check_id(run_id, "RUN_ID")
    _ready_db()
    try:
        run = requeue_run(run_id)
    except (RunNotFound, RunStateError) as e:
        fail(str(e))
    try:
        send_run(get_app(), run_id, run["queue"])
    except Exception as e:  # noqa: BLE001 - any broker failure: the run is queued, its message is not
        fail(f"run {run_id} is queued, but the broker is unreachable: {type(e).__name__}: {e}; "
             f"run `rnnlab requeue {run_id}` again to resend its message", code=1)
    out.print(f"run {run_id} queued again")


# The CSV export's columns: every scalar field of an epoch record (the JSON export's per-epoch
# scalars), in the record's order; the nested params and layers are left to the JSON export.
EPOCH_CSV_COLUMNS = [f.name for f in dataclasses.fields(EpochRecord) if f.name not in ("params", "layers")]


@app.command()
def export(
    run_id: int = typer.Argument(..., help="run id"),
    fmt: str = typer.Option("json", "--format", "-f", help="json (everything) or csv (per-epoch scalars)"),
    output: Path | None = typer.Option(None, "--output", "-o", help="file (default: stdout)"),
) -> None:
    """Export a run: JSON with the run, its info and every epoch record, or CSV of the epoch scalars."""
    from db.codec import encode_json
    from db.store import epoch_records, epoch_scalars

    if fmt not in ("json", "csv"):
        fail(f"--format: got {clipped(fmt)}; allowed: json, csv")
    if output is not None:
        check_output_path(output, "-o/--output")
    _ready_db()
    run = _run_or_fail(run_id)
    if fmt == "json":
        doc = {"run": {k: v for k, v in run.items() if k not in ("spec", "info")}, "spec": run["spec"],
               "info": run["info"], "epochs": [r.to_dict() for r in epoch_records(run_id)]}
        text = json.dumps(encode_json(doc), indent=1, default=str, allow_nan=False) + "\n"
    else:
        rows = epoch_scalars(run_id)
        buf = io.StringIO()
        cols = EPOCH_CSV_COLUMNS
        w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        text = buf.getvalue()
    if output:
        output.write_text(text)
        err.print(f"wrote {output}")
    else:
        sys.stdout.write(text)


# ---------------------------------------------------------------------------------------------
# The database and the whole app
# ---------------------------------------------------------------------------------------------

@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the database schema to the newest revision."""
    from sqlalchemy import make_url

    from db.engine import default_url
    from db.migrate import upgrade

    rev = upgrade()
    out.print(f"database {make_url(default_url()).render_as_string(hide_password=True)} is at revision {rev}")


@db_app.command("current")
def db_current() -> None:
    """Print the database's schema revision and the newest one."""
    from db.migrate import current, head

    out.print(f"current {current()}  head {head()}")


def _loopback(host: str) -> bool:
    """Whether only this machine can reach an address (127.0.0.0/8, ::1, localhost)."""
    import ipaddress

    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@app.command("app")
def run_app(
    port: int = typer.Option(8501, "--port", help="dashboard port"),
    host: str = typer.Option("127.0.0.1", "--host",
                             help="address the dashboard listens on; 127.0.0.1 lets only this machine in. "
                                  "Use 0.0.0.0 to share it, after adding users (rnnlab user add): "
                                  "without them everyone who can reach the port is an admin"),
    workers: int = typer.Option(1, "--workers", min=0, help="local worker processes to start"),
) -> None:
    """Start everything on this machine: migrate, one local worker, and the dashboard."""
    import dashboard

    local_only = _loopback(host)
    if not local_only:
        from rnnlab.settings import Settings
        from rnnlab.users import load_users

        auth = Settings()
        secrets = [Path(".streamlit/secrets.toml"), Path.home() / ".streamlit" / "secrets.toml"]
        oidc = any(p.is_file() and "[auth" in p.read_text(errors="replace") for p in secrets)
        if auth.auth == "none" or (auth.auth == "auto" and not oidc and not load_users(auth.users_path)):
            # the dashboard refuses its pages then (dashboard.auth): say so here, before anything starts
            fail(f"--host: got {host!r} with no sign-in: anyone who can reach the dashboard would be an admin, "
                 "so it refuses to serve its pages. Add users first (rnnlab user add NAME --role admin), or "
                 "keep --host 127.0.0.1 (this machine only)")
    _ready_db()
    dash = Path(dashboard.__file__).resolve().parent / "app.py"
    procs = []
    for i in range(workers):
        name = f"local{i + 1}-{os.getpid()}@{socket.gethostname()}"
        cmd = [sys.executable, "-m", "cli.main", "worker", "--name", name]
        procs.append(subprocess.Popen(cmd, start_new_session=True))
    out.print(f"started {workers} local worker(s); dashboard on http://{'localhost' if local_only else host}:{port}")

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    ui = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(dash), "--server.port", str(port),
                           "--server.address", host, "--server.headless", "true",
                           "--client.showErrorDetails", "none", "--client.toolbarMode", "viewer"])
    code = 0
    try:
        code = ui.wait()
    except KeyboardInterrupt:
        pass
    finally:
        if ui.poll() is None:
            ui.terminate()
            try:
                ui.wait(10)
            except subprocess.TimeoutExpired:
                ui.kill()
        for p in procs:   # SIGTERM to each worker's main process only: its warm shutdown hands
            if p.poll() is None:   # running runs back to the queue (its pool children must not die first)
                p.terminate()
        deadline = time.monotonic() + 60   # a hand-back may wait for an end-of-epoch probe
        for p in procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
    raise typer.Exit(code)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
