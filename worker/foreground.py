"""`rnnlab train`: one run in the foreground with a progress bar, recorded like a queued run.

The run is created and claimed as ``cli-<pid>@<host>`` and heartbeats like a worker's, so the
dashboard shows it live and can cancel it; Ctrl-C cancels it cleanly (a second Ctrl-C aborts).
The recording is a worker's (worker.recorder.Recorder): the same writes, retries and final status and
message; a transient database error that outlives its retries fails the run ("database unavailable: ...").
If the run is taken over (this process stalled past the lost-after time and another worker claimed it),
it is left to that worker.
Exit codes: 0 succeeded, 1 failed, 2 refused before training (an owner out of bounds), 3 diverged,
130 cancelled.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from db.codec import encode_json
from rnnlab.spec import JobSpec

EXIT = {"succeeded": 0, "failed": 1, "diverged": 3, "cancelled": 130}
EXIT_BAD_INPUT = 2   # refused before training (an owner out of bounds), as the CLI's other input errors


def _g(x) -> str:
    """4 significant digits; None reads —, a NaN reads NaN (as `rnnlab runs` and `show` print it)."""
    if x is None:
        return "—"
    if isinstance(x, float):
        return f"{x:.4g}" if math.isfinite(x) else ("NaN" if x != x else str(x))
    return str(x)


def _epoch_line(rec) -> str:
    line = f"epoch {rec.epoch:>3}  train {_g(rec.train_loss)}  val {_g(rec.val_loss)}  metric {_g(rec.val_metric)}" \
           f"  ‖g‖ {_g(rec.grad_norm_mean)}"
    if rec.layers:
        line += f"  log10 g1/gT {_g(rec.layers[0].log_ratio)}  horizon {_g(rec.layers[0].horizon)}"
    return line


def train_foreground(spec: JobSpec, *, json_out: Path | None, record: bool, owner: str | None,
                     tags: list[str], console: Console, url: str | None = None) -> int:
    """Train ``spec`` here and now; returns the exit code. ``url``: the database (default: the settings')."""
    import models
    from db import store
    from rnnlab.settings import get_settings
    from worker.recorder import Recorder

    s = get_settings()
    run_id = attempt = monitor = None
    if record:
        from db.migrate import ensure_schema
        from rnnlab.spec import check_owner
        from worker.heartbeat import RunMonitor

        owner = owner or os.environ.get("USER") or None   # an empty $USER is no owner, not a refused one
        problems = check_owner(owner)   # before anything is written (runs.owner is String(100))
        if problems:
            console.print(f"[bold red]error:[/] {escape(chr(10).join(problems))}", highlight=False)
            return EXIT_BAD_INPUT
        ensure_schema(url)
        (run_id,) = store.create_runs([spec], owner=owner, tags=tags,
                                      max_attempts=s.max_attempts, url=url)
        attempt = store.claim_run(run_id, f"cli-{os.getpid()}@{socket.gethostname()}", url=url)["attempt"]
        monitor = RunMonitor(run_id, attempt, heartbeat_s=s.heartbeat_seconds, url=url)
        monitor.start()
        console.print(f"run {run_id}: {spec.label()}", highlight=False)
    interrupted = {"n": 0}

    def on_sigint(signum, frame):
        interrupted["n"] += 1
        if interrupted["n"] > 1:
            raise KeyboardInterrupt
        console.print("[yellow]stopping after this step (Ctrl-C again to abort)[/]")

    old_handler = signal.signal(signal.SIGINT, on_sigint)
    records: list = []
    progress = Progress(TextColumn("[bold]epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=console, transient=True)
    bar = progress.add_task("train", total=spec.epochs * spec.steps_per_epoch, epoch=0)

    def on_record(rec):
        records.append(rec)
        progress.console.print(_epoch_line(rec), highlight=False)

    def on_progress(epoch, step):
        # the engine reports step s (0-based) once it is done: s + 1 steps of this epoch are complete
        progress.update(bar, completed=(epoch - 1) * spec.steps_per_epoch + step + 1, epoch=epoch)

    recorder = Recorder(run_id, attempt, url=url, monitor=monitor, stop=lambda: interrupted["n"] > 0,
                        on_record=on_record, on_progress=on_progress)
    lost = None
    try:
        with progress:
            status, message = recorder.train(spec)
    except KeyboardInterrupt:
        status, message = "cancelled", "aborted with Ctrl-C"
    except store.LostOwnership as e:   # reaped (this process stalled past the lost-after time), claimed elsewhere
        lost = e
    except Exception as e:  # noqa: BLE001 - report, record as failed
        status, message = recorder.failed(e)
    finally:
        signal.signal(signal.SIGINT, old_handler)
        if monitor is not None:
            monitor.stop()
    if lost is None and recorder.lost:
        lost = store.LostOwnership(f"run {run_id}: attempt {attempt} lost the run while training")
    if lost is not None:
        console.print(f"[bold red]lost[/]: {lost}; it is left to the worker that took it over", highlight=False)
        return EXIT["failed"]
    message = recorder.finish(status, message)
    facts = {"info": recorder.info, "records": records}
    _summary(console, status, message, facts, models)
    if json_out is not None:
        doc = {"run_id": run_id, "spec": spec.to_dict(), "status": status, "message": message,
               "info": vars(recorder.info) if recorder.info is not None else None,
               "epochs": [r.to_dict() for r in records]}
        try:   # the CLI checked the path before training (cli.main.check_output_path); it can still fail
            json_out.write_text(json.dumps(encode_json(doc), indent=1, allow_nan=False) + "\n")
        except OSError as e:
            console.print(f"[bold red]error:[/] --json: could not write {escape(str(json_out))}: "
                          f"{escape(e.strerror or str(e))}" + (f" (the run is recorded as {status})" if record else ""),
                          highlight=False)
            return EXIT["failed"]
        console.print(f"wrote {json_out}")
    return EXIT[status]


def _summary(console: Console, status: str, message: str, facts: dict, models) -> None:
    color = {"succeeded": "green", "diverged": "yellow"}.get(status, "red")
    console.print(f"[bold {color}]{status}[/]: {message}", highlight=False)
    info, records = facts.get("info"), facts["records"]
    if info is None or not records:
        return
    last = records[-1]
    console.print(_loss_line(last, records, info.baseline_loss), highlight=False)
    console.print(f"{info.metric_name} {_g(last.val_metric)} vs baseline {_g(info.baseline_metric)} "
                  f"({'higher' if info.higher_is_better else 'lower'} is better)", highlight=False)
    probed = [r for r in records if r.probed and r.layers]
    if probed:
        console.print(f"diagnosis: {models.diagnose(probed[-1], info, records[0])}", highlight=False)


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def _loss_line(last, records: list, baseline) -> str:
    """The last val loss against the baseline, the ratio as rnnlab.strategies.pct writes it (never 0% for
    a loss above 0: 5e-5 of 1/6 reads 0.03%, not 0.0%). A non-finite last loss (a diverged run's) is not
    compared: the line says so and gives the last finite val loss and its epoch, if there was one."""
    from rnnlab.strategies import pct

    def of_it(loss) -> str:
        return f" ({pct(loss / baseline)} of it)" if _finite(loss) and _finite(baseline) and baseline > 0 else ""

    if last.val_loss is None or _finite(last.val_loss):
        return f"val loss {_g(last.val_loss)} vs baseline {_g(baseline)}" + of_it(last.val_loss)
    line = f"val loss {_g(last.val_loss)} at epoch {last.epoch}: not a finite number, so not comparable with " \
           f"the baseline {_g(baseline)}"
    earlier = [r for r in records if _finite(r.val_loss)]
    if earlier:
        e = earlier[-1]
        line += f"; the last finite val loss was {_g(e.val_loss)} at epoch {e.epoch}" + of_it(e.val_loss)
    return line
