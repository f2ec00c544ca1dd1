"""Writes to the results database (and the few reads that go with them); plain dicts out.

Every function takes ``url`` (default: the settings' database). Each call is one short
transaction. Writes that a redelivered or resumed run may repeat are idempotent: an epoch's rows
are replaced, a claim succeeds only once, and a worker that lost its run cannot write to it.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, update

from db.codec import epoch_rows, info_row, is_nan, join_nan, record_from_rows
from db.engine import session
from db.models import (
    FINAL_STATUSES, Checkpoint, Epoch, GradProfile, Histogram, LayerStatRow, ParamStatRow, Run,
    RunAttempt, RunTag, Sweep, Worker,
)
from rnnlab.records import EpochRecord, RunInfo
from rnnlab.spec import SPEC_VERSION, JobSpec, SweepSpec

QUEUES = ("cpu", "gpu")
EPOCH_TABLES = (Epoch, ParamStatRow, Histogram, LayerStatRow, GradProfile)
_TABLES = {m.__tablename__: m for m in EPOCH_TABLES}


class RunNotFound(LookupError):
    """No run has this id."""

    def __init__(self, run_id: int):
        self.run_id = run_id
        super().__init__(f"run {run_id} not found")


class LostOwnership(RuntimeError):
    """This worker no longer owns the run (it was requeued, cancelled or finished elsewhere)."""


class RunStateError(ValueError):
    """The run is in a status that does not allow the operation."""


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@lru_cache
def code_version() -> str:
    """rnnlab's version plus the git commit of the checkout, when there is one ('0.1.0+abc1234')."""
    import rnnlab

    version = rnnlab.__version__
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=os.path.dirname(os.path.abspath(rnnlab.__file__)),
            capture_output=True, text=True, timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{version}+{sha}" if sha else version


def queue_for(spec: JobSpec, auto_queue: str = "cpu") -> str:
    """The queue a spec runs on: 'gpu' for device cuda, 'cpu' for cpu, ``auto_queue`` for auto."""
    if auto_queue not in QUEUES:
        raise ValueError(f"auto_queue: got {auto_queue!r}; allowed: {', '.join(QUEUES)}")
    return {"cuda": "gpu", "cpu": "cpu"}.get(spec.device, auto_queue)


def _run_columns(spec: JobSpec) -> dict[str, Any]:
    return {
        "name": spec.name, "spec": spec.to_dict(), "spec_version": SPEC_VERSION, "spec_hash": spec.spec_hash(),
        "task": spec.task.name, "cell": spec.cell, "activation": spec.act if spec.cell == "rnn" else None,
        "init": spec.init.recurrent, "clip": spec.clip.mode, "seq_len": spec.task.seq_len,
        "hidden_size": spec.hidden_size, "num_layers": spec.num_layers, "seed": spec.seed,
        "epochs_total": spec.epochs,
    }


def _clean_tags(tags: Iterable[str]) -> list[str]:
    out = []
    for t in tags:
        t = str(t).strip()
        if not t or len(t) > 100:
            raise ValueError(f"tag: got {t!r}; a tag is 1 to 100 characters")
        if t not in out:
            out.append(t)
    return out


# --------------------------------------------------------------------------------------------
# Creating runs
# --------------------------------------------------------------------------------------------

def create_runs(
    specs: Sequence[JobSpec], *, owner: str | None = None, tags: Iterable[str] = (),
    sweep: SweepSpec | None = None, max_attempts: int = 3, auto_queue: str = "cpu",
    url: str | None = None,
) -> list[int]:
    """Insert queued runs (and their sweep) in one transaction; returns the run ids in order."""
    if not specs:
        raise ValueError("specs: nothing to create (the list is empty)")
    tags = _clean_tags(tags)
    t = now()
    version = code_version()
    with session(url, write=True) as s:
        sweep_id = None
        if sweep is not None:
            sweep_id = s.execute(insert(Sweep).values(
                name=sweep.name, spec=sweep.model_dump(mode="json"), owner=owner, n_runs=len(specs),
                created_at=t).returning(Sweep.id)).scalar_one()
        ids = []
        for spec in specs:
            run_id = s.execute(insert(Run).values(
                **_run_columns(spec), sweep_id=sweep_id, queue=queue_for(spec, auto_queue), status="queued",
                owner=owner, created_at=t, max_attempts=max_attempts, attempts=0, epochs_done=0,
                cancel_requested=False, code_version=version,
            ).returning(Run.id)).scalar_one()
            ids.append(run_id)
        if tags:
            s.execute(insert(RunTag), [{"run_id": i, "tag": tag} for i in ids for tag in tags])
    return ids


def fail_unsent(run_id: int, message: str, *, url: str | None = None) -> None:
    """Fail a queued run whose task message could not be sent."""
    with session(url, write=True) as s:
        s.execute(update(Run).where(Run.id == run_id, Run.status == "queued")
                  .values(status="failed", message=message, finished_at=now()))


def find_existing(spec_hashes: Iterable[str], *, url: str | None = None) -> dict[str, list[int]]:
    """Runs already in the database with these spec hashes: {hash: [run ids]} (only hashes found)."""
    hashes = list(set(spec_hashes))
    out: dict[str, list[int]] = {}
    with session(url) as s:
        for i in range(0, len(hashes), 500):
            rows = s.execute(select(Run.spec_hash, Run.id).where(Run.spec_hash.in_(hashes[i:i + 500]))
                             .order_by(Run.id))
            for h, run_id in rows:
                out.setdefault(h, []).append(run_id)
    return out


# --------------------------------------------------------------------------------------------
# The run lifecycle (worker side)
# --------------------------------------------------------------------------------------------

def claim_run(run_id: int, worker: str, *, stale_after_s: float | None = None,
              url: str | None = None) -> dict | None:
    """Atomically move a run to 'running' for ``worker``; None if someone else has it or it is done.

    A queued run can be claimed, and so can a 'running' run whose heartbeat is older than
    ``stale_after_s`` (its worker died). The claim opens a run_attempts row and deletes any rows
    recorded after the last checkpoint, so a resumed run replays those epochs cleanly. A claim
    that would exceed max_attempts fails the run instead."""
    t = now()
    claimable = Run.status == "queued"
    if stale_after_s is not None:
        cutoff = t - dt.timedelta(seconds=stale_after_s)
        claimable = or_(claimable, and_(Run.status == "running", Run.heartbeat_at < cutoff))
    with session(url, write=True) as s:
        prev = s.execute(select(Run.status, Run.worker, Run.attempts, Run.max_attempts)
                         .where(Run.id == run_id)).one_or_none()
        if prev is None:
            return None
        if prev.attempts >= prev.max_attempts:
            res = s.execute(update(Run).where(Run.id == run_id, claimable).values(
                status="failed", finished_at=t,
                message=f"worker {prev.worker} lost; gave up after {prev.attempts} attempts "
                        f"(max_attempts {prev.max_attempts})"))
            if res.rowcount == 1:
                _close_attempt(s, run_id, prev.attempts, "lost", f"worker {prev.worker} lost (no heartbeat)", t,
                               only_open=True)
            return None
        res = s.execute(update(Run).where(Run.id == run_id, Run.cancel_requested.is_(False), claimable)
                        .values(status="running", worker=worker, attempts=Run.attempts + 1, heartbeat_at=t,
                                started_at=func.coalesce(Run.started_at, t), finished_at=None,
                                code_version=code_version())
                        .returning(Run.attempts))
        attempt = res.scalar_one_or_none()
        if attempt is None:
            return None
        if prev.status == "running":  # taking over from a dead worker
            _close_attempt(s, run_id, prev.attempts, "lost", f"worker {prev.worker} lost (no heartbeat)", t,
                           only_open=True)
        ckpt_epoch = s.execute(select(Checkpoint.epoch).where(Checkpoint.run_id == run_id)).scalar_one_or_none()
        keep_to = -1 if ckpt_epoch is None else ckpt_epoch
        for table in EPOCH_TABLES:
            s.execute(delete(table).where(table.run_id == run_id, table.epoch > keep_to))
        s.execute(update(Run).where(Run.id == run_id).values(epochs_done=max(keep_to, 0)))
        s.execute(insert(RunAttempt).values(run_id=run_id, attempt=attempt, worker=worker, started_at=t,
                                            resumed_from_epoch=ckpt_epoch))
        s.execute(update(Worker).where(Worker.name == worker).values(current_run_id=run_id))
    run = get_run(run_id, url=url)
    run["attempt"] = attempt
    return run


def _close_attempt(s, run_id: int, attempt: int, outcome: str, message: str | None, t: dt.datetime,
                   only_open: bool = False) -> None:
    cond = [RunAttempt.run_id == run_id, RunAttempt.attempt == attempt]
    if only_open:
        cond.append(RunAttempt.ended_at.is_(None))
    s.execute(update(RunAttempt).where(*cond).values(ended_at=t, outcome=outcome, message=message))


def _owned(run_id: int, attempt: int | None):
    cond = [Run.id == run_id]
    if attempt is not None:
        cond += [Run.status == "running", Run.attempts == attempt]
    return cond


def _check_owned(s, run_id: int, attempt: int | None) -> None:
    found = s.execute(select(Run.id).where(*_owned(run_id, attempt))).scalar_one_or_none()
    if found is None:
        if attempt is None:
            raise RunNotFound(run_id)
        raise LostOwnership(f"run {run_id}: attempt {attempt} no longer owns the run")


def record_info(run_id: int, info: RunInfo, *, attempt: int | None = None, url: str | None = None) -> None:
    """Store the engine's fixed facts about the run (baselines, metric, T, parameter names)."""
    with session(url, write=True) as s:
        _check_owned(s, run_id, attempt)
        s.execute(update(Run).where(Run.id == run_id).values(**info_row(info)))


def record_epoch(run_id: int, rec: EpochRecord, *, attempt: int | None = None, url: str | None = None) -> None:
    """Store one epoch (scalars, parameter and layer stats, profiles, histograms), replacing any
    rows of the same epoch, and update the run's summary columns. With ``attempt``, raises
    LostOwnership unless that attempt still owns the running run."""
    rows = epoch_rows(run_id, rec)
    t = now()
    rows["epochs"][0]["recorded_at"] = t
    summary: dict[str, Any] = {"epochs_done": rec.epoch, "heartbeat_at": t}
    summary["last_val_loss"] = None if is_nan(rec.val_loss) else rec.val_loss
    summary["last_val_metric"] = None if is_nan(rec.val_metric) else rec.val_metric
    if rec.layers:
        l0 = rec.layers[0]
        summary["last_horizon"] = None if is_nan(l0.horizon) else l0.horizon
        summary["last_log_ratio"] = None if is_nan(l0.log_ratio) else l0.log_ratio
    with session(url, write=True) as s:
        _check_owned(s, run_id, attempt)
        for table in EPOCH_TABLES:
            s.execute(delete(table).where(table.run_id == run_id, table.epoch == rec.epoch))
        for name, table_rows in rows.items():
            if table_rows:
                s.execute(insert(_TABLES[name]), table_rows)
        s.execute(update(Run).where(Run.id == run_id).values(**summary))


def record_diagnosis(run_id: int, diagnosis: str, *, url: str | None = None) -> None:
    """Store the engine's one-line diagnosis of the latest probed epoch."""
    with session(url, write=True) as s:
        s.execute(update(Run).where(Run.id == run_id).values(diagnosis=diagnosis))


def save_checkpoint(run_id: int, epoch: int, state: bytes, *, attempt: int | None = None,
                    url: str | None = None) -> None:
    """Keep ``state`` as the run's only checkpoint (the latest one)."""
    with session(url, write=True) as s:
        _check_owned(s, run_id, attempt)
        s.execute(delete(Checkpoint).where(Checkpoint.run_id == run_id))
        s.execute(insert(Checkpoint).values(run_id=run_id, epoch=epoch, state=state, saved_at=now()))


def load_checkpoint(run_id: int, *, url: str | None = None) -> tuple[int, bytes] | None:
    """The run's latest checkpoint as (epoch, bytes), or None."""
    with session(url) as s:
        row = s.execute(select(Checkpoint.epoch, Checkpoint.state).where(Checkpoint.run_id == run_id)).one_or_none()
    return None if row is None else (row.epoch, bytes(row.state))


def finish_run(run_id: int, status: str, message: str | None, *, attempt: int | None = None,
               url: str | None = None) -> bool:
    """End a running run with a final status; False if this attempt no longer owns it."""
    if status not in FINAL_STATUSES:
        raise ValueError(f"status: got {status!r}; allowed: {', '.join(FINAL_STATUSES)}")
    t = now()
    with session(url, write=True) as s:
        cond = _owned(run_id, attempt) if attempt is not None else [Run.id == run_id, Run.status == "running"]
        res = s.execute(update(Run).where(*cond).values(status=status, message=message, finished_at=t)
                        .returning(Run.attempts, Run.worker))
        row = res.one_or_none()
        if row is None:
            return False
        _close_attempt(s, run_id, row.attempts, status, message, t)
        s.execute(update(Worker).where(Worker.name == row.worker, Worker.current_run_id == run_id)
                  .values(current_run_id=None))
    return True


# --------------------------------------------------------------------------------------------
# Actions users take (CLI and dashboard)
# --------------------------------------------------------------------------------------------

def request_cancel(run_id: int, *, url: str | None = None) -> bool:
    """Cancel a run: a queued run is cancelled at once, a running one is flagged and its worker
    stops within about a second. False if the run had already finished."""
    t = now()
    with session(url, write=True) as s:
        status = s.execute(select(Run.status).where(Run.id == run_id)).scalar_one_or_none()
        if status is None:
            raise RunNotFound(run_id)
        if status == "queued":
            s.execute(update(Run).where(Run.id == run_id, Run.status == "queued").values(
                status="cancelled", cancel_requested=True, finished_at=t, message="cancelled before it started"))
            return True
        if status == "running":
            s.execute(update(Run).where(Run.id == run_id).values(cancel_requested=True))
            return True
    return False


def cancel_requested(run_id: int, *, url: str | None = None) -> bool:
    """Whether someone asked to cancel the run."""
    with session(url) as s:
        return bool(s.execute(select(Run.cancel_requested).where(Run.id == run_id)).scalar_one_or_none())


def set_tags(run_id: int, tags: Iterable[str], *, url: str | None = None) -> list[str]:
    """Replace the run's tags; returns them."""
    tags = _clean_tags(tags)
    with session(url, write=True) as s:
        _check_owned(s, run_id, None)
        s.execute(delete(RunTag).where(RunTag.run_id == run_id))
        if tags:
            s.execute(insert(RunTag), [{"run_id": run_id, "tag": t} for t in tags])
    return tags


def set_notes(run_id: int, notes: str | None, *, url: str | None = None) -> None:
    """Replace the run's free-text notes (None or '' clears them)."""
    with session(url, write=True) as s:
        _check_owned(s, run_id, None)
        s.execute(update(Run).where(Run.id == run_id).values(notes=notes or None))


def delete_run(run_id: int, *, url: str | None = None) -> None:
    """Delete a run that is not running, with everything recorded for it."""
    with session(url, write=True) as s:
        status = s.execute(select(Run.status).where(Run.id == run_id)).scalar_one_or_none()
        if status is None:
            raise RunNotFound(run_id)
        if status == "running":
            raise RunStateError(f"run {run_id} is running; cancel it first")
        for table in (*EPOCH_TABLES, Checkpoint, RunAttempt, RunTag):  # explicit: no reliance on FK cascades
            s.execute(delete(table).where(table.run_id == run_id))
        s.execute(delete(Run).where(Run.id == run_id))


def requeue_run(run_id: int, *, url: str | None = None) -> dict:
    """Put a failed, cancelled or diverged run back in the queue with fresh attempts; the caller sends
    its message. It resumes from its last checkpoint; later epochs are replaced as they replay."""
    with session(url, write=True) as s:
        row = s.execute(select(Run.status).where(Run.id == run_id)).scalar_one_or_none()
        if row is None:
            raise RunNotFound(run_id)
        if row not in ("failed", "cancelled", "diverged"):
            raise RunStateError(f"run {run_id} is {row}; only a failed, cancelled or diverged run can be requeued "
                                "(submit the spec again for a fresh run)")
        s.execute(update(Run).where(Run.id == run_id).values(
            status="queued", message="requeued", cancel_requested=False, finished_at=None,
            max_attempts=Run.attempts + Run.max_attempts))
    return get_run(run_id, url=url)


# --------------------------------------------------------------------------------------------
# Workers: heartbeats and the reaper
# --------------------------------------------------------------------------------------------

def heartbeat(worker: str, *, host: str, pid: int | None, queues: str, device: str | None,
              url: str | None = None) -> None:
    """Insert or refresh the worker's row."""
    t = now()
    with session(url, write=True) as s:
        res = s.execute(update(Worker).where(Worker.name == worker).values(
            host=host, pid=pid, queues=queues, device=device, heartbeat_at=t, stopped_at=None))
        if res.rowcount == 0:
            s.execute(insert(Worker).values(name=worker, host=host, pid=pid, queues=queues, device=device,
                                            started_at=t, heartbeat_at=t))


def worker_stopped(worker: str, *, url: str | None = None) -> None:
    """Mark a worker as stopped (clean shutdown)."""
    with session(url, write=True) as s:
        s.execute(update(Worker).where(Worker.name == worker).values(stopped_at=now(), current_run_id=None))


def run_heartbeat(run_id: int, attempt: int, *, url: str | None = None) -> bool:
    """Refresh a running run's heartbeat; False if this attempt no longer owns it."""
    with session(url, write=True) as s:
        res = s.execute(update(Run).where(*_owned(run_id, attempt)).values(heartbeat_at=now()))
        return res.rowcount == 1


@dataclass
class Reaped:
    requeued: list[dict]   # runs put back in the queue: [{"id", "queue"}]
    failed: list[int]      # runs whose attempts are exhausted


def reap_lost(stale_after_s: float, *, url: str | None = None) -> Reaped:
    """Find running runs whose heartbeat is older than ``stale_after_s``: requeue them (the caller
    sends their messages) or fail them when max_attempts is used up. Safe to run concurrently."""
    t = now()
    cutoff = t - dt.timedelta(seconds=stale_after_s)
    out = Reaped([], [])
    with session(url) as s:
        stale = s.execute(select(Run.id).where(Run.status == "running", Run.heartbeat_at < cutoff)).scalars().all()
    for run_id in stale:
        with session(url, write=True) as s:
            row = s.execute(
                update(Run).where(Run.id == run_id, Run.status == "running", Run.heartbeat_at < cutoff)
                .values(status="queued").returning(Run.attempts, Run.max_attempts, Run.worker, Run.queue,
                                                   Run.heartbeat_at)
            ).one_or_none()
            if row is None:
                continue  # another reaper or a live heartbeat got there first
            silent = (t - _aware(row.heartbeat_at)).total_seconds()
            why = f"worker {row.worker} lost (no heartbeat for {silent:.0f} s)"
            _close_attempt(s, run_id, row.attempts, "lost", why, t, only_open=True)
            if row.attempts >= row.max_attempts:
                s.execute(update(Run).where(Run.id == run_id).values(
                    status="failed", finished_at=t,
                    message=f"{why}; gave up after {row.attempts} attempts (max_attempts {row.max_attempts})"))
                out.failed.append(run_id)
            else:
                s.execute(update(Run).where(Run.id == run_id).values(
                    message=f"requeued after attempt {row.attempts}: {why}"))
                out.requeued.append({"id": run_id, "queue": row.queue})
            s.execute(update(Worker).where(Worker.name == row.worker, Worker.current_run_id == run_id)
                      .values(current_run_id=None))
    return out


def _aware(t: dt.datetime) -> dt.datetime:
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)


# --------------------------------------------------------------------------------------------
# Reads the CLI and the worker need
# --------------------------------------------------------------------------------------------

def _aware_or_none(v: Any) -> Any:
    return _aware(v) if isinstance(v, dt.datetime) else v


def _run_dict(row: Run) -> dict:
    d = {c.key: getattr(row, c.key) for c in Run.__table__.columns}
    for k in ("created_at", "started_at", "finished_at", "heartbeat_at"):
        if d[k] is not None:
            d[k] = _aware(d[k])
    return d


def get_run(run_id: int, *, url: str | None = None) -> dict | None:
    """The run as a dict (every runs column plus 'tags' and 'attempt_history'), or None."""
    with session(url) as s:
        row = s.get(Run, run_id)
        if row is None:
            return None
        d = _run_dict(row)
        d["tags"] = list(s.execute(select(RunTag.tag).where(RunTag.run_id == run_id).order_by(RunTag.tag)).scalars())
        d["attempt_history"] = [
            {c.key: _aware_or_none(getattr(a, c.key)) for c in RunAttempt.__table__.columns
             if c.key not in ("id", "run_id")}
            for a in s.execute(select(RunAttempt).where(RunAttempt.run_id == run_id)
                               .order_by(RunAttempt.attempt)).scalars()
        ]
    return d


def list_runs(*, status: Sequence[str] = (), tag: Sequence[str] = (), limit: int = 50,
              url: str | None = None) -> list[dict]:
    """The newest runs first, optionally filtered by statuses and tags (a run needs all tags)."""
    q = select(Run).order_by(Run.id.desc()).limit(limit)
    if status:
        q = q.where(Run.status.in_(list(status)))
    for t in tag:
        q = q.where(Run.id.in_(select(RunTag.run_id).where(RunTag.tag == t)))
    with session(url) as s:
        runs = [_run_dict(r) for r in s.execute(q).scalars()]
        ids = [r["id"] for r in runs]
        tags: dict[int, list[str]] = {}
        if ids:
            for run_id, t in s.execute(select(RunTag.run_id, RunTag.tag).where(RunTag.run_id.in_(ids))
                                       .order_by(RunTag.tag)):
                tags.setdefault(run_id, []).append(t)
    for r in runs:
        r["tags"] = tags.get(r["id"], [])
    return runs


def epoch_records(run_id: int, *, url: str | None = None) -> list[EpochRecord]:
    """Every recorded epoch of a run as EpochRecords (NaN/inf restored; profiles at stored precision)."""
    def rows(s, table, *order):
        out: dict[int, list[dict]] = {}
        for r in s.execute(select(table).where(table.run_id == run_id).order_by(table.epoch, *order)).scalars():
            d = {c.key: getattr(r, c.key) for c in table.__table__.columns}
            out.setdefault(d["epoch"], []).append(d)
        return out

    with session(url) as s:
        epochs = rows(s, Epoch)
        params = rows(s, ParamStatRow)
        hists = rows(s, Histogram)
        layers = rows(s, LayerStatRow, LayerStatRow.layer)
        profiles = rows(s, GradProfile, GradProfile.layer, GradProfile.kind)
        info = s.execute(select(Run.info).where(Run.id == run_id)).scalar_one_or_none() or {}
    order = {name: i for i, name in enumerate(info.get("param_names") or [])}
    for plist in params.values():  # the engine's parameter order, not the primary key's
        plist.sort(key=lambda p: (order.get(p["param"], len(order)), p["param"]))
    return [record_from_rows(ep[0], params.get(e, []), hists.get(e, []), layers.get(e, []), profiles.get(e, []))
            for e, ep in sorted(epochs.items())]


def epoch_scalars(run_id: int, *, url: str | None = None) -> list[dict]:
    """The run's per-epoch scalar rows (NaN restored), for listings and CSV export."""
    with session(url) as s:
        rows = s.execute(select(Epoch).where(Epoch.run_id == run_id).order_by(Epoch.epoch)).scalars().all()
        return [join_nan({c.key: getattr(r, c.key) for c in Epoch.__table__.columns}) for r in rows]
