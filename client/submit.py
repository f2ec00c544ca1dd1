"""Submitting work (torch-free; the CLI and the dashboard use it): plan, create rows, enqueue.

Every limit is checked here, once, whoever built the specs. The rows are committed first (in one
batched INSERT, their message saying they are being sent, stamped with the database's clock), then the
tasks are sent by name through one producer connection in pipelined batches; each batch's mark is
cleared once it reached the broker, and every STAMP_EVERY_S the stamp of the runs still to send is
refreshed. The lost-message check (worker/orphans.py) leaves runs being sent alone while their stamp
is fresh, and re-sends them once it is SENDING_STALE_S old: a submitter killed mid-send, or one that
could no longer write to the database, leaves nothing queued for long without a message. If the broker
cannot be reached, the runs not sent are marked failed with the broker's error; `rnnlab requeue RUN`
sends them again later. If the database cannot be written, submit() raises SubmitError, which says
whether anything was created (no run id is returned, or shown, for a row that was not committed).
"""

from __future__ import annotations

import reprlib
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError

from rnnlab.spec import (  # noqa: F401  (MAX_OWNER_CHARS, check_owner: re-exported for callers of client.submit)
    MAX_OWNER_CHARS,
    JobSpec,
    SpecError,
    SweepSpec,
    check_limits,
    check_owner,
    expand_sweep,
    find_duplicates,
    format_errors,
)


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


def queues_for(specs: Sequence[JobSpec]) -> set[str]:
    """The queues ``specs`` would be sent to (db.store.queue_for with the configured auto queue)."""
    from db import store
    from rnnlab.queue import auto_queue

    auto = auto_queue()
    return {store.queue_for(s, auto) for s in specs}


def check_submission(specs: Sequence[JobSpec], tags: Iterable[str], limits) -> list[str]:
    """Every schema, limit and text rule, once, for whatever built the specs (CLI, dashboard, API): each
    spec validated again (revalidate: a spec changed with model_copy or made with model_construct skipped
    the schema), the operator's size limits per spec (rnnlab.spec.check_limits), the number of runs, and
    the tags (at most db.store.MAX_TAGS per run, each allowed by db.store.tag_problem)."""
    return _checked(specs, tags, limits)[1]


def revalidate(spec: JobSpec) -> tuple[JobSpec | None, list[str]]:
    """The spec validated again from its fields (a round trip through JobSpec), or None and the schema's
    messages, each naming the field (hidden_size 0, a NaN optimizer.lr …)."""
    try:
        data = spec.model_dump(warnings=False)
    except Exception as e:  # noqa: BLE001 - a model_construct'ed spec may not even serialize
        return None, [f"spec: cannot be read ({type(e).__name__}: {reprlib.repr(str(e))}); build specs with "
                      "rnnlab.spec.parse_spec"]
    try:
        return JobSpec.model_validate(data), []
    except ValidationError as e:
        return None, format_errors(e)


def _checked(specs: Sequence[JobSpec], tags: Iterable[str], limits) -> tuple[list[JobSpec], list[str]]:
    """(the specs validated again, the problems): check_submission's work; submit stores those specs."""
    from db.store import tag_problem, too_many_tags

    errors: list[str] = []
    if len(specs) > limits.max_sweep_runs:
        errors.append(f"runs: got {len(specs):,} in one submission; the operator's limit is "
                      f"{limits.max_sweep_runs} (RNNLAB_MAX_SWEEP_RUNS raises it)")
        specs = specs[:0]   # not looked at one by one
    valid: list[JobSpec] = []
    for i, spec in enumerate(specs):
        if not isinstance(spec, JobSpec):
            errors.append(f"specs[{i}]: got {type(spec).__name__}; expected a JobSpec (rnnlab.spec.parse_spec)")
            continue
        where = f"[run {i + 1}] " if len(specs) > 1 else ""
        spec, problems = revalidate(spec)
        if spec is not None:
            valid.append(spec)
            problems = check_limits(spec, limits)
        errors += [where + e for e in problems]
        if len(errors) > 20:
            break
    tags, too_many = too_many_tags(tags)   # counted before any tag is looked at
    if too_many:
        errors.append(too_many)
    errors += [p for tag in tags if (p := tag_problem(tag))]
    return valid, list(dict.fromkeys(errors))


def _sweep_problems(sweep: SweepSpec) -> list[str]:
    """The sweep recorded with the runs, validated again (like each spec): its messages, or []."""
    if not isinstance(sweep, SweepSpec):
        return [f"sweep: got {type(sweep).__name__}; expected a SweepSpec (rnnlab.spec.parse_sweep)"]
    try:
        SweepSpec.model_validate(sweep.model_dump(warnings=False))
    except ValidationError as e:
        return [f"sweep: {m}" for m in format_errors(e)]
    except Exception as e:  # noqa: BLE001 - a model_construct'ed sweep may not even serialize
        return [f"sweep: cannot be read ({type(e).__name__})"]
    return []


# check_owner and MAX_OWNER_CHARS live in rnnlab.spec (the worker checks owners too); imported above


class SubmitError(ValueError):
    """The database could not take the submission; the message says which runs exist and what becomes of
    them. A ValueError, so the callers that report a refused submission (the CLI) report this one too."""


# how often, at most, the submitter refreshes the stamp of the runs it has still to send (the
# lost-message check, worker/orphans.py, re-sends a run being sent whose stamp is older than SENDING_STALE_S)
STAMP_EVERY_S = 5.0


def submit(specs: Sequence[JobSpec], owner: str | None = None, tags: Iterable[str] = (),
           sweep: SweepSpec | None = None, *, url: str | None = None, app=None, limits=None) -> list[int]:
    """Check the submission (check_submission: raises SpecError), create the runs in one transaction
    (marked as being sent, stamped with the database's clock), then send their tasks in pipelined
    batches on one connection, clearing the mark batch by batch and refreshing the stamp of the runs
    still to send; returns the run ids, every one committed. If the broker fails, the runs not yet sent
    are marked failed with the broker's error. If the database cannot be written (disk full, read-only)
    raises SubmitError: before the commit, nothing was created; after it, the runs whose task was not
    sent keep a stamp that no longer moves, and the workers' lost-message check re-sends them."""
    from db import store
    from rnnlab.queue import SENDING, get_app, send_runs
    from rnnlab.queue import auto_queue as configured_auto_queue
    from rnnlab.settings import get_settings

    settings = get_settings()
    # the tags are bounded before they are expanded: an iterable without a length is read at most
    # MAX_TAGS + 1 items (db.store.too_many_tags), and more is refused as check_submission refuses it
    specs = list(specs)
    tags, too_many = store.too_many_tags(tags)
    specs, errors = _checked(specs, tags, limits or settings.limits)   # the specs validated again
    errors += [too_many] if too_many else []
    errors += check_owner(owner)
    if sweep is not None:
        errors += _sweep_problems(sweep)
    if errors:
        raise SpecError(errors)
    auto_queue = configured_auto_queue()
    try:
        ids = store.create_runs(specs, owner=owner, tags=tags, sweep=sweep, max_attempts=settings.max_attempts,
                                auto_queue=auto_queue, message=SENDING, url=url)
    except DBAPIError as e:
        raise SubmitError(f"database not writable ({_db_problem(e)}): no run was created (the transaction was "
                          "rolled back); free space on the database's disk, or make it writable, and submit "
                          "again") from e
    sender = _Sender(ids, SENDING, url)
    try:
        send_runs(app or get_app(), [(i, store.queue_for(s, auto_queue)) for i, s in zip(ids, specs)],
                  on_sent=sender.sent)
    except Exception as e:  # noqa: BLE001 - any broker failure: say so on the runs not sent
        sender.fail_rest(f"could not enqueue: {type(e).__name__}: {e}")
    if sender.db_error is not None:
        raise SubmitError(sender.report()) from sender.db_error
    return ids


class _Sender:
    """The submitter's side of the 'being sent' mark: clears it batch by batch, refreshes the stamp of
    the runs still to send, fails those runs if the broker fails. A database error stops this
    bookkeeping (kept in ``db_error``), never the sending: a run whose task was sent then simply runs,
    and one whose task was not keeps a stale stamp, which hands it to the lost-message check."""

    def __init__(self, ids: list[int], sending: str, url: str | None):
        self.ids, self.sending, self.url = ids, sending, url
        self.done: set[int] = set()
        self.unsent: list[int] = []
        self.db_error: DBAPIError | None = None
        self._stamped = time.monotonic()

    def _write(self, write) -> None:
        if self.db_error is None:
            try:
                write()
            except DBAPIError as e:
                self.db_error = e

    def sent(self, batch: list[int]) -> None:
        self.done.update(batch)   # first: these reached the broker, whatever the database says next
        self._write(lambda: _clear_sending(batch, self.sending, url=self.url))
        if time.monotonic() - self._stamped >= STAMP_EVERY_S:
            self._stamped = time.monotonic()
            rest = [i for i in self.ids if i not in self.done]
            self._write(lambda: _stamp_sending(rest, self.sending, url=self.url))

    def fail_rest(self, problem: str) -> None:
        from db.store import fail_unsent

        self.unsent = [i for i in self.ids if i not in self.done]
        self._write(lambda: fail_unsent(self.unsent, problem, url=self.url))

    def report(self) -> str:
        head = (f"database not writable ({_db_problem(self.db_error)}) while sending runs {_ranges(self.ids)}, "
                "which were created")
        if not self.unsent:
            return head + "; every task message reached the broker, so they run as usual"
        return (head + f"; the broker failed too, while sending runs {_ranges(self.unsent)}: those whose task "
                "message it did not take are re-sent by a running worker's lost-message check about a minute "
                "after the database can be written again (or `rnnlab requeue RUN`)")


def _db_problem(e: DBAPIError) -> str:
    text = str(e.orig).strip() or type(e.orig).__name__
    if "full" in text.lower() or "no space" in text.lower():
        return f"disk full: {text}"
    return text


def _ranges(ids: list[int]) -> str:
    """Run ids as ranges: 5-9, 12, 14-20."""
    parts: list[list[int]] = []
    for i in sorted(ids):
        if parts and parts[-1][1] == i - 1:
            parts[-1][1] = i
        else:
            parts.append([i, i])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in parts)


def _stamp_sending(ids: list[int], sending: str, *, url: str | None = None) -> None:
    """Move the stamp (heartbeat_at, by the database's clock) of these runs still being sent to now: the
    submitter is alive and making progress."""
    from sqlalchemy import update

    from db.attempts import db_now
    from db.engine import session
    from db.models import Run

    with session(url, write=True) as s:
        t = db_now(s)
        for i in range(0, len(ids), 500):
            s.execute(update(Run).where(Run.id.in_(ids[i:i + 500]), Run.status == "queued", Run.message == sending)
                      .values(heartbeat_at=t))


def _clear_sending(ids: list[int], sending: str, *, url: str | None = None) -> None:
    """Clear the 'being sent' message of these runs once their tasks reached the broker (only where it
    is still that message: a worker may already have claimed the run)."""
    from sqlalchemy import update

    from db.engine import session
    from db.models import Run

    with session(url, write=True) as s:
        s.execute(update(Run).where(Run.id.in_(ids), Run.message == sending).values(message=None))
