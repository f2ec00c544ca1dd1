"""Submitting work (torch-free; the CLI and the dashboard use it): plan, create rows, enqueue.

The rows are committed first, then one task per run is sent by name. If the broker cannot be
reached, the runs not sent are marked failed with the broker's error (nothing sits queued without a
message); `rnnlab requeue RUN` sends them again later.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from rnnlab.spec import JobSpec, SweepSpec, expand_sweep, find_duplicates


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
    found = find_existing(hashes, url=url)
    existing = {i: found[h] for i, h in enumerate(hashes) if h in found}
    return Plan(specs=specs, sweep=sweep, duplicates=find_duplicates(specs), existing=existing)


def submit(specs: Sequence[JobSpec], owner: str | None = None, tags: Iterable[str] = (),
           sweep: SweepSpec | None = None, *, url: str | None = None, app=None) -> list[int]:
    """Create the runs in one transaction, then enqueue one task per run; returns the run ids."""
    from db import store
    from rnnlab.queue import auto_queue as configured_auto_queue
    from rnnlab.queue import get_app, send_run
    from rnnlab.settings import get_settings

    settings = get_settings()
    auto_queue = configured_auto_queue()
    ids = store.create_runs(list(specs), owner=owner, tags=tags, sweep=sweep,
                            max_attempts=settings.max_attempts, auto_queue=auto_queue, url=url)
    app = app or get_app()
    problem = None
    for run_id, spec in zip(ids, specs):
        if problem is None:
            try:
                send_run(app, run_id, store.queue_for(spec, auto_queue))
                continue
            except Exception as e:  # noqa: BLE001 - any broker failure: say so on the runs
                problem = f"could not enqueue: {type(e).__name__}: {e}"
        store.fail_unsent(run_id, problem, url=url)  # the broker is down: do not retry for every run
    return ids
