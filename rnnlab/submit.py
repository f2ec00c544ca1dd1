"""Submitting work (torch-free; the CLI and the dashboard use it): plan, create rows, enqueue.

Every limit is checked here, once, whoever built the specs. The rows are committed first (in one
batched INSERT, their message saying they are being sent), then the tasks are sent by name through
one producer connection in pipelined batches, and each batch's mark is cleared once it reached the
broker (the lost-message check, worker/orphans.py, leaves runs being sent alone). If the broker
cannot be reached, the runs not sent are marked failed with the broker's error (nothing sits queued
without a message); `rnnlab requeue RUN` sends them again later.
"""

from __future__ import annotations

import reprlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from rnnlab.spec import JobSpec, SpecError, SweepSpec, check_limits, check_text, expand_sweep, find_duplicates


@dataclass
class Plan:
    """What a submission would create: the specs, duplicates within them, and runs already in the DB."""

    specs: list[JobSpec]
    sweep: SweepSpec | None = None
    duplicates: list[tuple[int, int]] = field(default_factory=list)    # (i, j) pairs within specs
    existing: dict[int, list[int]] = field(default_factory=dict)       # spec index -> run ids in the DB

    def summary(self) -> str:
        n = len(self.specs)
        parts = [f"{n} run{'s' if n != 1 else ''}"]
        if self.duplicates:
            parts.append(f"{len(self.duplicates)} duplicate(s) within the submission "
                         + ", ".join(f"#{i + 1}=#{j + 1}" for i, j in self.duplicates[:5]))
        if self.existing:
            ids = sorted({r for v in self.existing.values() for r in v})
            parts.append(f"{len(self.existing)} already in the database (runs "
                         + ", ".join(map(str, ids[:10])) + ("…" if len(ids) > 10 else "") + ")")
        return "; ".join(parts)


def plan(doc: JobSpec | SweepSpec, *, url: str | None = None, limits=None) -> Plan:
    """Expand a job or sweep and find duplicates, without writing anything."""
    from db.store import find_existing

    from rnnlab.settings import get_settings

    sweep = doc if isinstance(doc, SweepSpec) else None
    specs = expand_sweep(doc, limits or get_settings().limits) if sweep else [doc]
    hashes = [s.spec_hash() for s in specs]
    legacy = [s.legacy_hash() for s in specs]   # runs created before specs were canonical
    found = find_existing(hashes + legacy, url=url)
    existing = {i: sorted(set(found.get(h, []) + found.get(old, [])))
                for i, (h, old) in enumerate(zip(hashes, legacy)) if h in found or old in found}
    return Plan(specs=specs, sweep=sweep, duplicates=find_duplicates(specs), existing=existing)


def check_submission(specs: Sequence[JobSpec], tags: Iterable[str], limits) -> list[str]:
    """Every limit and text rule, once, for whatever built the specs (CLI, dashboard, API): the
    operator's size limits per spec (rnnlab.spec.check_limits), the number of runs, and the tags."""
    errors: list[str] = []
    if len(specs) > limits.max_sweep_runs:
        errors.append(f"runs: got {len(specs):,} in one submission; the operator's limit is "
                      f"{limits.max_sweep_runs} (RNNLAB_MAX_SWEEP_RUNS raises it)")
    for i, spec in enumerate(specs):
        if not isinstance(spec, JobSpec):
            errors.append(f"specs[{i}]: got {type(spec).__name__}; expected a JobSpec (rnnlab.spec.parse_spec)")
            continue
        where = f"[run {i + 1}] " if len(specs) > 1 else ""
        errors += [where + e for e in check_limits(spec, limits)]
        if len(errors) > 20:
            break
    for tag in tags:
        if not isinstance(tag, str) or not tag.strip() or len(tag.strip()) > 100:
            errors.append(f"tag: got {reprlib.repr(tag)}; a tag is 1 to 100 characters")
            continue
        try:
            check_text("tag", tag)
        except ValueError as e:
            errors.append(str(e))
    return list(dict.fromkeys(errors))


def submit(specs: Sequence[JobSpec], owner: str | None = None, tags: Iterable[str] = (),
           sweep: SweepSpec | None = None, *, url: str | None = None, app=None, limits=None) -> list[int]:
    """Check the submission (check_submission: raises SpecError), create the runs in one transaction
    (marked as being sent), then send their tasks in pipelined batches on one connection, clearing
    the mark batch by batch; returns the run ids. If the broker fails, the runs not yet sent are
    marked failed with the broker's error."""
    from db import store
    from rnnlab.queue import SENDING, get_app, send_runs
    from rnnlab.queue import auto_queue as configured_auto_queue
    from rnnlab.settings import get_settings

    settings = get_settings()
    specs, tags = list(specs), list(tags)
    errors = check_submission(specs, tags, limits or settings.limits)
    if owner is not None:
        try:
            check_text("owner", owner)
        except ValueError as e:
            errors.append(str(e))
    if errors:
        raise SpecError(errors)
    auto_queue = configured_auto_queue()
    ids = store.create_runs(specs, owner=owner, tags=tags, sweep=sweep, max_attempts=settings.max_attempts,
                            auto_queue=auto_queue, message=SENDING, url=url)
    sent: set[int] = set()

    def mark_sent(batch: list[int]) -> None:
        _clear_sending(batch, SENDING, url=url)
        sent.update(batch)

    try:
        send_runs(app or get_app(), [(i, store.queue_for(s, auto_queue)) for i, s in zip(ids, specs)],
                  on_sent=mark_sent)
    except Exception as e:  # noqa: BLE001 - any broker failure: say so on the runs not sent
        problem = f"could not enqueue: {type(e).__name__}: {e}"
        for run_id in ids:
            if run_id not in sent:
                store.fail_unsent(run_id, problem, url=url)
    return ids


def _clear_sending(ids: list[int], sending: str, *, url: str | None = None) -> None:
    """Clear the 'being sent' message of these runs once their tasks reached the broker (only where it
    is still that message: a worker may already have claimed the run)."""
    from sqlalchemy import update

    from db.engine import session
    from db.models import Run

    with session(url, write=True) as s:
        s.execute(update(Run).where(Run.id.in_(ids), Run.message == sending).values(message=None))
