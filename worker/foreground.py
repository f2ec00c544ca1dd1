"""`rnnlab train`: one run in the foreground with a progress bar, recorded like a queued run.

The run is created and claimed as ``cli-<pid>@<host>`` and heartbeats like a worker's, so the
dashboard shows it live and can cancel it; Ctrl-C cancels it cleanly (a second Ctrl-C aborts).
A transient database error is retried like a worker's (worker.runner.db_retry) before it fails the run.
Exit codes: 0 succeeded, 1 failed, 3 diverged, 130 cancelled.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from db.codec import encode_json
from rnnlab.spec import JobSpec

EXIT = {"succeeded": 0, "failed": 1, "diverged": 3, "cancelled": 130}


def _g(x) -> str:
    return "—" if x is None else (f"{x:.4g}" if isinstance(x, float) and math.isfinite(x) else str(x))


def _epoch_line(rec) -> str:
    line = f"epoch {rec.epoch:>3}  train {_g(rec.train_loss)}  val {_g(rec.val_loss)}  metric {_g(rec.val_metric)}" \
           f"  ‖g‖ {_g(rec.grad_norm_mean)}"
    if rec.layers:
        line += f"  log10 g1/gT {_g(rec.layers[0].log_ratio)}  horizon {_g(rec.layers[0].horizon)}"
    return line


def train_foreground(spec: JobSpec, *, json_out: Path | None, record: bool, owner: str | None,
                     tags: list[str], console: Console) -> int:
    """Train ``spec`` here and now; returns the exit code."""
    import models
    from db import store
    from rnnlab.settings import get_settings
    from worker.runner import db_retry

    s = get_settings()
    run_id = attempt = monitor = None
    if record:
        from db.migrate import ensure_schema
        from worker.heartbeat import RunMonitor

        ensure_schema()
        (run_id,) = store.create_runs([spec], owner=owner or os.environ.get("USER"), tags=tags,
                                      max_attempts=s.max_attempts)
        attempt = store.claim_run(run_id, f"cli-{os.getpid()}@{socket.gethostname()}")["attempt"]
        monitor = RunMonitor(run_id, attempt, heartbeat_s=s.heartbeat_seconds)
        monitor.start()
        console.print(f"run {run_id}: {spec.label()}", highlight=False)
    interrupted = {"n": 0}

    def on_sigint(signum, frame):
        interrupted["n"] += 1
        if interrupted["n"] > 1:
            raise KeyboardInterrupt
        console.print("[yellow]stopping after this step (Ctrl-C again to abort)[/]")

    old_handler = signal.signal(signal.SIGINT, on_sigint)
    facts: dict = {"records": []}
    progress = Progress(TextColumn("[bold]epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=console, transient=True)
    bar = progress.add_task("train", total=spec.epochs * spec.steps_per_epoch, epoch=0)

    def on_info(info):
        facts["info"] = info
        if record:
            db_retry(lambda: store.record_info(run_id, info, attempt=attempt), "record info", run_id)

    def on_epoch(rec):
        facts["records"].append(rec)
        progress.console.print(_epoch_line(rec), highlight=False)
        if record:
            db_retry(lambda: store.record_epoch(run_id, rec, attempt=attempt), f"epoch {rec.epoch}", run_id)
            if rec.probed and rec.layers:
                text = models.diagnose(rec, facts["info"], facts["records"][0])
                db_retry(lambda: store.record_diagnosis(run_id, text, attempt=attempt), "diagnosis", run_id)

    def on_checkpoint(epoch, state):
        if record:
            db_retry(lambda: store.save_checkpoint(run_id, epoch, state, attempt=attempt), "checkpoint", run_id)

    def on_step(epoch, step):
        progress.update(bar, completed=(epoch - 1) * spec.steps_per_epoch + step, epoch=epoch)

    def should_stop():
        return interrupted["n"] > 0 or (monitor is not None and monitor.should_stop())

    try:
        with progress:
            result = models.train(spec, on_info=on_info, on_epoch=on_epoch, on_checkpoint=on_checkpoint,
                                  should_stop=should_stop, on_step=on_step)
        status, message = result.outcome, result.message
    except KeyboardInterrupt:
        status, message = "cancelled", "aborted with Ctrl-C"
    except Exception as e:  # noqa: BLE001 - report, record as failed
        status, message = "failed", str(e) if isinstance(e, models.EngineError) else f"{type(e).__name__}: {e}"
    finally:
        signal.signal(signal.SIGINT, old_handler)
        if monitor is not None:
            monitor.stop()
    if record:
        db_retry(lambda: store.finish_run(run_id, status, message, attempt=attempt), "finish", run_id)
    _summary(console, status, message, facts, models)
    if json_out is not None:
        doc = {"run_id": run_id, "spec": spec.to_dict(), "status": status, "message": message,
               "info": vars(facts["info"]) if "info" in facts else None,
               "epochs": [r.to_dict() for r in facts["records"]]}
        json_out.write_text(json.dumps(encode_json(doc), indent=1, allow_nan=False) + "\n")
        console.print(f"wrote {json_out}")
    return EXIT[status]


def _summary(console: Console, status: str, message: str, facts: dict, models) -> None:
    color = {"succeeded": "green", "diverged": "yellow"}.get(status, "red")
    console.print(f"[bold {color}]{status}[/]: {message}", highlight=False)
    info, records = facts.get("info"), facts["records"]
    if info is None or not records:
        return
    last = records[-1]
    console.print(f"val loss {_g(last.val_loss)} vs baseline {_g(info.baseline_loss)}"
                  + (f" ({last.val_loss / info.baseline_loss:.1%} of it)" if info.baseline_loss else ""),
                  highlight=False)
    console.print(f"{info.metric_name} {_g(last.val_metric)} vs baseline {_g(info.baseline_metric)} "
                  f"({'higher' if info.higher_is_better else 'lower'} is better)", highlight=False)
    probed = [r for r in records if r.probed and r.layers]
    if probed:
        console.print(f"diagnosis: {models.diagnose(probed[-1], info, records[0])}", highlight=False)
