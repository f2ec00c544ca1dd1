"""The reads that go with the store: one run as a dict, a run listing, a run's epoch records."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from db.attempts import aware
from db.codec import join_nan, record_from_rows
from db.engine import session
from db.models import Epoch, GradProfile, Histogram, LayerStatRow, ParamStatRow, Run, RunAttempt, RunTag
from rnnlab.records import EpochRecord


def _aware_or_none(v: Any) -> Any:
    return aware(v) if isinstance(v, dt.datetime) else v


def _run_dict(row: Run) -> dict:
    d = {c.key: getattr(row, c.key) for c in Run.__table__.columns}
    for k in ("created_at", "started_at", "finished_at", "heartbeat_at"):
        if d[k] is not None:
            d[k] = aware(d[k])
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
