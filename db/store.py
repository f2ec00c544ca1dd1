"""Writes to the results database; plain dicts out. The contract's whole API is importable from here.

Every function takes ``url`` (default: the settings' database). Each call is one short
transaction. Writes that a redelivered or resumed run may repeat are idempotent: an epoch's rows
are replaced, a claim succeeds only once, and a worker that lost its run cannot write to it.
Heartbeats and the reaper live in db.liveness, the reads of runs in db.reads (the one read API of
the runs, shared with the dashboard's db.queries); both are re-exported here.
"""

from __future__ import annotations

import datetime as dt
import os
import reprlib
import subprocess
from collections.abc import Iterable, Sequence
from functools import lru_cache
from itertools import islice
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, update

from db.attempts import check_owned, close_attempt, db_now, fence, forward, now, owned
from db.codec import epoch_rows, info_row, is_nan
from db.engine import session
from db.errors import LostOwnership, RunNotFound, RunStateError
from db.liveness import (
    Reaped,
    heartbeat,
    list_workers,
    lost_run,
    reap_lost,
    released_by,
    run_heartbeat,
    worker_stopped,
)
from db.models import (
    FINAL_STATUSES,
    Checkpoint,
    Epoch,
    GradProfile,
    Histogram,
    LayerStatRow,
    ParamStatRow,
    Run,
    RunAttempt,
    RunTag,
    Sweep,
    Worker,
)
from db.reads import epoch_records, epoch_scalars, find_existing, get_run, list_runs, runs_by_ids
from rnnlab.records import EpochRecord, RunInfo
from rnnlab.spec import SPEC_VERSION, JobSpec, SweepSpec, check_text

__all__ = [
    "LostOwnership", "Reaped", "RunNotFound", "RunStateError", "cancel_requested", "claim_run",
    "code_version", "create_runs", "delete_run", "epoch_records", "epoch_scalars", "fail_unsent",
    "find_existing", "finish_run", "get_run", "heartbeat", "list_runs", "list_workers", "load_checkpoint",
    "queue_for", "reap_lost", "record_diagnosis", "record_epoch", "record_info", "release_run", "released_by",
    "request_cancel", "requeue_run", "run_heartbeat", "runs_by_ids", "save_checkpoint", "set_notes", "set_tags",
    "worker_stopped",
]

QUEUES = ("cpu", "gpu")
EPOCH_TABLES = (Epoch, ParamStatRow, Histogram, LayerStatRow, GradProfile)
_TABLES = {m.__tablename__: m for m in EPOCH_TABLES}


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


# What a user can attach to a run (docs/schema.md): at most MAX_TAGS tags of 1 to MAX_TAG_CHARS characters
# each, and notes of at most MAX_NOTES characters. MAX_TAGS_TEXT: the longest comma-separated text of
# MAX_TAGS tags (the dashboard's tag fields take no more).
MAX_TAGS = 50
MAX_TAG_CHARS = 100
MAX_TAGS_TEXT = MAX_TAGS * (MAX_TAG_CHARS + 2)
MAX_NOTES = 10_000


def too_many_tags(tags: Iterable[str]) -> tuple[list[str], str | None]:
    """(the tags as a list, None), or ([], why there are too many: the count, or 'more than MAX_TAGS' for an
    iterable without a length, which is never read past MAX_TAGS + 1 items). A bare string is refused, not
    read as one tag per character (nor guessed to be one tag, or a comma-separated list)."""
    if isinstance(tags, (str, bytes)):
        return [], (f"tags: got the string {reprlib.repr(tags)}; give a list of tags, e.g. "
                    f"[{reprlib.repr(tags[:MAX_TAG_CHARS])}]")
    if hasattr(tags, "__len__"):
        n = len(tags)
        if n > MAX_TAGS:
            return [], f"tags: {n:,} tags; at most {MAX_TAGS} per run"
        return list(tags), None
    head = list(islice(tags, MAX_TAGS + 1))
    if len(head) > MAX_TAGS:
        return [], f"tags: more than {MAX_TAGS} tags; at most {MAX_TAGS} per run"
    return head, None


def tag_problem(tag: Any) -> str | None:
    """Why a tag is not allowed, or None: a tag is a string of 1 to MAX_TAG_CHARS characters (spaces around
    it do not count) without control, NUL or bidi characters (rnnlab.spec.check_text), so that submit,
    set_tags and the dashboard refuse the same tags."""
    if not isinstance(tag, str) or not tag.strip() or len(tag.strip()) > MAX_TAG_CHARS:
        return f"tag: got {reprlib.repr(tag)}; a tag is 1 to {MAX_TAG_CHARS} characters"
    try:
        check_text("tag", tag)
    except ValueError as e:
        return str(e)
    return None


def _clean_tags(tags: Iterable[str]) -> list[str]:
    """The tags stripped and deduped (first occurrence kept); ValueError if there are more than MAX_TAGS
    (counted as given, before anything else), or one is not allowed (tag_problem)."""
    tags, problem = too_many_tags(tags)
    if problem:
        raise ValueError(problem)
    out: dict[str, None] = {}
    for t in tags:
        problem = tag_problem(t)
        if problem:
            raise ValueError(problem)
        out.setdefault(t.strip())
    return list(out)


# --------------------------------------------------------------------------------------------
# Creating runs
# --------------------------------------------------------------------------------------------

def create_runs(
    specs: Sequence[JobSpec], *, owner: str | None = None, tags: Iterable[str] = (),
    sweep: SweepSpec | None = None, max_attempts: int = 3, auto_queue: str = "cpu",
    message: str | None = None, url: str | None = None,
) -> list[int]:
    """Insert queued runs (and their sweep) in one transaction, one batched INSERT; returns the run ids
    in order. ``message``: the runs' initial message (client.submit marks them as being sent), stamped in
    ``heartbeat_at`` with the database's clock (the submitter refreshes it while it sends)."""
    if not specs:
        raise ValueError("specs: nothing to create (the list is empty)")
    tags = _clean_tags(tags)
    t = now()
    version = code_version()
    with session(url, write=True) as s:
        stamp = db_now(s) if message is not None else None   # since when the message holds (the database's clock)
        sweep_id = None
        if sweep is not None:
            sweep_id = s.execute(insert(Sweep).values(
                name=sweep.name, spec=sweep.model_dump(mode="json"), owner=owner, n_runs=len(specs),
                created_at=t).returning(Sweep.id)).scalar_one()
        rows = [dict(**_run_columns(spec), sweep_id=sweep_id, queue=queue_for(spec, auto_queue), status="queued",
                     owner=owner, created_at=t, max_attempts=max_attempts, attempts=0, epochs_done=0,
                     cancel_requested=False, code_version=version, message=message, heartbeat_at=stamp)
                for spec in specs]
        ids = list(s.execute(insert(Run).returning(Run.id, sort_by_parameter_order=True), rows).scalars())
        if tags:
            s.execute(insert(RunTag), [{"run_id": i, "tag": tag} for i in ids for tag in tags])
    return ids


def fail_unsent(run_ids: int | Iterable[int], message: str, *, url: str | None = None) -> None:
    """Fail queued runs whose task message could not be sent (one id or many; one transaction)."""
    ids = [run_ids] if isinstance(run_ids, int) else list(run_ids)
    with session(url, write=True) as s:
        for i in range(0, len(ids), 500):
            s.execute(update(Run).where(Run.id.in_(ids[i:i + 500]), Run.status == "queued")
                      .values(status="failed", message=message, finished_at=now()))


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
    with session(url, write=True) as s:
        t = db_now(s)   # the database's clock, like every heartbeat (db.attempts.db_now)
        claimable = Run.status == "queued"
        if stale_after_s is not None:
            cutoff = t - dt.timedelta(seconds=stale_after_s)
            claimable = or_(claimable, lost_run(cutoff))
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
                close_attempt(s, run_id, prev.attempts, "lost", f"worker {prev.worker} lost (no heartbeat)", t,
                               only_open=True)
            return None
        res = s.execute(update(Run).where(Run.id == run_id, Run.cancel_requested.is_(False), claimable)
                        .values(status="running", worker=worker, attempts=Run.attempts + 1,
                                heartbeat_at=forward(Run.heartbeat_at, t),
                                started_at=func.coalesce(Run.started_at, t), finished_at=None,
                                code_version=code_version())
                        .returning(Run.attempts))
        attempt = res.scalar_one_or_none()
        if attempt is None:
            return None
        if prev.status == "running":  # taking over from a dead worker
            close_attempt(s, run_id, prev.attempts, "lost", f"worker {prev.worker} lost (no heartbeat)", t,
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




# Worker writes take ``attempt`` as a required keyword: the attempt number claim_run returned. Each
# one starts with db.attempts.fence (a conditional UPDATE of the run row, rowcount checked), so the
# ownership check and the write are one step on both backends; LostOwnership if the attempt lost the
# run. ``attempt=None`` is unfenced: only for demo data and tests that seed runs by hand.

def record_info(run_id: int, info: RunInfo, *, attempt: int | None, url: str | None = None) -> None:
    """Store the engine's fixed facts about the run (baselines, metric, T, parameter names)."""
    with session(url, write=True) as s:
        fence(s, run_id, attempt, **info_row(info))


def record_epoch(run_id: int, rec: EpochRecord, *, attempt: int | None, url: str | None = None) -> None:
    """Store one epoch (scalars, parameter and layer stats, profiles, histograms), replacing any
    rows of the same epoch, and update the run's summary columns. With ``attempt``, raises
    LostOwnership unless that attempt still owns the running run."""
    rows = epoch_rows(run_id, rec)
    t = now()
    rows["epochs"][0]["recorded_at"] = t
    summary: dict[str, Any] = {"epochs_done": rec.epoch}
    summary["last_val_loss"] = None if is_nan(rec.val_loss) else rec.val_loss
    summary["last_val_metric"] = None if is_nan(rec.val_metric) else rec.val_metric
    if rec.layers:
        l0 = rec.layers[0]
        summary["last_horizon"] = None if is_nan(l0.horizon) else l0.horizon
        summary["last_log_ratio"] = None if is_nan(l0.log_ratio) else l0.log_ratio
    with session(url, write=True) as s:
        fence(s, run_id, attempt, **summary)   # first: the run row stays locked until the epoch is in
        for table in EPOCH_TABLES:
            s.execute(delete(table).where(table.run_id == run_id, table.epoch == rec.epoch))
        for name, table_rows in rows.items():
            if table_rows:
                s.execute(insert(_TABLES[name]), table_rows)


def record_diagnosis(run_id: int, diagnosis: str, *, attempt: int | None, url: str | None = None) -> None:
    """Store the engine's one-line diagnosis of the latest probed epoch. With ``attempt``, raises
    LostOwnership unless that attempt still owns the running run (like record_epoch)."""
    with session(url, write=True) as s:
        fence(s, run_id, attempt, diagnosis=diagnosis)


def save_checkpoint(run_id: int, epoch: int, state: bytes, *, attempt: int | None,
                    url: str | None = None) -> None:
    """Keep ``state`` as the run's only checkpoint (the latest one)."""
    with session(url, write=True) as s:
        fence(s, run_id, attempt)
        s.execute(delete(Checkpoint).where(Checkpoint.run_id == run_id))
        s.execute(insert(Checkpoint).values(run_id=run_id, epoch=epoch, state=state, saved_at=now()))


def load_checkpoint(run_id: int, *, url: str | None = None) -> tuple[int, bytes] | None:
    """The run's latest checkpoint as (epoch, bytes), or None."""
    with session(url) as s:
        row = s.execute(select(Checkpoint.epoch, Checkpoint.state).where(Checkpoint.run_id == run_id)).one_or_none()
    return None if row is None else (row.epoch, bytes(row.state))


def finish_run(run_id: int, status: str, message: str | None, *, attempt: int | None,
               url: str | None = None) -> bool:
    """End a running run with a final status; False if this attempt no longer owns it."""
    if status not in FINAL_STATUSES:
        raise ValueError(f"status: got {status!r}; allowed: {', '.join(FINAL_STATUSES)}")
    t = now()
    with session(url, write=True) as s:
        cond = owned(run_id, attempt) if attempt is not None else [Run.id == run_id, Run.status == "running"]
        res = s.execute(update(Run).where(*cond).values(status=status, message=message, finished_at=t)
                        .returning(Run.attempts, Run.worker))
        row = res.one_or_none()
        if row is None:
            return False
        close_attempt(s, run_id, row.attempts, status, message, t)
        s.execute(update(Worker).where(Worker.name == row.worker, Worker.current_run_id == run_id)
                  .values(current_run_id=None))
    return True


def release_run(run_id: int, reason: str, *, attempt: int, url: str | None = None) -> str | None:
    """Hand a running run back to the queue because its worker is shutting down: status 'queued',
    this attempt closed as 'interrupted', and one more attempt allowed, so a clean stop does not use
    up the run's attempts. The next claim resumes from the last checkpoint; the worker's main process
    sends its task again (liveness.released_by). A run whose cancel was requested meanwhile is
    cancelled instead (requeued, nobody could claim it). Returns the run's new status, 'queued' or
    'cancelled', or None if this attempt no longer owns the run."""
    t = now()
    with session(url, write=True) as s:
        row = s.execute(update(Run).where(*owned(run_id, attempt), Run.cancel_requested.is_(False)).values(
            status="queued", message=f"requeued after attempt {attempt}: {reason}",
            max_attempts=Run.max_attempts + 1).returning(Run.worker)).one_or_none()
        status, outcome, message = "queued", "interrupted", reason
        if row is None:
            row = s.execute(update(Run).where(*owned(run_id, attempt)).values(
                status="cancelled", finished_at=t, message="cancelled by request (its worker was shutting down)")
                .returning(Run.worker)).one_or_none()
            if row is None:
                return None
            status, outcome, message = "cancelled", "cancelled", "cancelled by request"
        close_attempt(s, run_id, attempt, outcome, message, t)
        s.execute(update(Worker).where(Worker.name == row.worker, Worker.current_run_id == run_id)
                  .values(current_run_id=None))
    return status


# --------------------------------------------------------------------------------------------
# Actions users take (CLI and dashboard)
# --------------------------------------------------------------------------------------------

def request_cancel(run_id: int, *, url: str | None = None) -> bool:
    """Cancel a run: a queued run is cancelled at once, a running one is flagged and its worker
    stops within about a second. False if the run had already finished. Each write is conditional on
    the status it saw; if a worker, the reaper or a shutdown changed it in between (running ⇄
    queued), the current status is read again."""
    t = now()
    for _ in range(5):
        with session(url, write=True) as s:
            status = s.execute(select(Run.status).where(Run.id == run_id)).scalar_one_or_none()
            if status is None:
                raise RunNotFound(run_id)
            if status == "queued":
                res = s.execute(update(Run).where(Run.id == run_id, Run.status == "queued").values(
                    status="cancelled", cancel_requested=True, finished_at=t,
                    message="cancelled before it started"))
            elif status == "running":
                res = s.execute(update(Run).where(Run.id == run_id, Run.status == "running")
                                .values(cancel_requested=True))
            else:
                return False
            if res.rowcount == 1:
                return True
    raise RunStateError(f"run {run_id} kept changing state; try the cancel again")


def cancel_requested(run_id: int, *, url: str | None = None) -> bool:
    """Whether someone asked to cancel the run."""
    with session(url) as s:
        return bool(s.execute(select(Run.cancel_requested).where(Run.id == run_id)).scalar_one_or_none())


def set_tags(run_id: int, tags: Iterable[str], *, url: str | None = None) -> list[str]:
    """Replace the run's tags; returns them."""
    tags = _clean_tags(tags)
    with session(url, write=True) as s:
        check_owned(s, run_id, None)
        s.execute(delete(RunTag).where(RunTag.run_id == run_id))
        if tags:
            s.execute(insert(RunTag), [{"run_id": run_id, "tag": t} for t in tags])
    return tags


# left-to-right, right-to-left and Arabic letter marks: ordinary in Hebrew or Arabic prose mixed with Latin
NOTE_MARKS = "\u200e\u200f\u061c"


def set_notes(run_id: int, notes: str | None, *, url: str | None = None) -> None:
    """Replace the run's free-text notes (None or '' clears them); ValueError above MAX_NOTES characters, or
    for control, NUL or bidi characters (rnnlab.spec.check_text) other than newlines, tabs and the
    direction marks that right-to-left keyboards type (NOTE_MARKS; they reorder nothing beyond
    themselves, unlike the overrides and isolates, which stay refused). A Windows line end, CR LF, is
    kept as a newline."""
    if notes is not None and not isinstance(notes, str):
        raise ValueError(f"notes: got {type(notes).__name__}; notes are text")
    if notes is not None and len(notes) > MAX_NOTES:
        raise ValueError(f"notes: {len(notes):,} characters; at most {MAX_NOTES:,}")
    if notes:
        notes = notes.replace("\r\n", "\n")
        check_text("notes", notes, allow="\n\t" + NOTE_MARKS)
    with session(url, write=True) as s:
        check_owned(s, run_id, None)
        s.execute(update(Run).where(Run.id == run_id).values(notes=notes or None))


def delete_run(run_id: int, *, force: bool = False, url: str | None = None) -> None:
    """Delete a run that is not running, with everything recorded for it. The run's row is locked
    first (SELECT ... FOR UPDATE on Postgres; BEGIN IMMEDIATE on SQLite), so a worker cannot claim it
    between the check and the delete. ``force`` (admin clean-up only) deletes a running run too; its
    worker's next write then raises LostOwnership and it stops."""
    with session(url, write=True) as s:
        status = s.execute(select(Run.status).where(Run.id == run_id).with_for_update()).scalar_one_or_none()
        if status is None:
            raise RunNotFound(run_id)
        if status == "running" and not force:
            raise RunStateError(f"run {run_id} is running; cancel it first")
        for table in (*EPOCH_TABLES, Checkpoint, RunAttempt, RunTag):  # explicit: no reliance on FK cascades
            s.execute(delete(table).where(table.run_id == run_id))
        s.execute(delete(Run).where(Run.id == run_id))


def requeue_run(run_id: int, *, url: str | None = None) -> dict:
    """Put a failed, cancelled or diverged run back in the queue with fresh attempts (a queued run is
    left as it is); the caller sends its message. It resumes from its last checkpoint; later epochs
    are replaced as they replay. A duplicate message is harmless: the claim is atomic."""
    with session(url, write=True) as s:
        row = s.execute(select(Run.status).where(Run.id == run_id)).scalar_one_or_none()
        if row is None:
            raise RunNotFound(run_id)
        if row == "queued":  # its message may have been lost (a worker killed before claiming it): resend
            return get_run(run_id, url=url)
        if row not in ("failed", "cancelled", "diverged"):
            raise RunStateError(f"run {run_id} is {row}; only a queued, failed, cancelled or diverged run can be "
                                "requeued (submit the spec again for a fresh run)")
        s.execute(update(Run).where(Run.id == run_id).values(
            status="queued", message="requeued", cancel_requested=False, finished_at=None,
            max_attempts=Run.attempts + Run.max_attempts))
    return get_run(run_id, url=url)
