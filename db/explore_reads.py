"""The Explorer's one read: every matching run as a row with its spec and its final outcomes (the
stored summary columns of ``runs`` and the layer-0 spectra and saturation of its last recorded
epoch). Re-exported by ``db.queries``, which the dashboard reads through."""

from __future__ import annotations

import json
import re
from typing import Any

import pandas as pd
from sqlalchemy import Text, and_, cast, func, select
from sqlalchemy.engine import Engine

from db.models import LayerStatRow, Run
from db.reads import engine_of, run_filters

EXPLORE_LIMIT = 20_000   # most runs one Explorer view reads

_RUN_COLS = [Run.id, Run.name, Run.status, Run.sweep_id, Run.seed, Run.epochs_done, Run.metric_name,
             Run.last_val_loss, Run.baseline_loss, Run.baseline_heldout_loss, Run.last_val_metric,
             Run.baseline_metric, Run.last_horizon, Run.last_log_ratio]
_LAYER_COLS = ["rho", "sigma_max", "saturated_frac", "dead_frac"]


def _last_layer0(conn, ids_query) -> pd.DataFrame:
    """Layer 0 of each run's last epoch that has layer statistics (NaN restored)."""
    last = (select(LayerStatRow.run_id, func.max(LayerStatRow.epoch).label("e"))
            .where(LayerStatRow.layer == 0, LayerStatRow.run_id.in_(ids_query))
            .group_by(LayerStatRow.run_id).subquery())
    q = (select(LayerStatRow.run_id, *(getattr(LayerStatRow, c) for c in _LAYER_COLS),
                cast(LayerStatRow.nan_fields, Text).label("nan_fields"))
         .join(last, and_(LayerStatRow.run_id == last.c.run_id, LayerStatRow.epoch == last.c.e))
         .where(LayerStatRow.layer == 0))
    df = pd.DataFrame.from_records(list(map(tuple, conn.execute(q).all())),
                                   columns=["run_id", *_LAYER_COLS, "nan_fields"])
    for i, text in df["nan_fields"].items():
        if isinstance(text, str) and text not in ("null", "[]"):
            for name in json.loads(text):
                if name in _LAYER_COLS:
                    df.at[i, name] = float("nan")
    return df.drop(columns="nan_fields")


_SEED = re.compile(r'"seed":\s*\d+')   # the one key named "seed" in a JobSpec (a top-level int)


def _parse_shared(texts: list) -> list[dict]:
    """Spec JSON texts → dicts whose seed is 0 (the real one has its own column). The runs of a
    sweep differ only in the seed, so they share a handful of texts, each parsed once."""
    parsed: dict[str, dict] = {}
    out = []
    for t in texts:
        if isinstance(t, dict):  # a driver that parses JSON itself
            out.append({**t, "seed": 0})
            continue
        key = _SEED.sub('"seed": 0', t, count=1)
        d = parsed.get(key)
        if d is None:
            d = parsed[key] = json.loads(key)
        out.append(d)
    return out


def explore_runs(filters: dict[str, Any] | None = None, limit: int = EXPLORE_LIMIT,
                 engine: Engine | None = None) -> tuple[pd.DataFrame, int]:
    """Matching runs (filters as in ``db.reads.list_runs``), oldest first, at most ``limit``, and
    the number that matched. Columns: the run's id, name, status, sweep, seed, epochs done, its
    ``spec`` with its seed set to 0 (a dict; runs that differ only in the seed share one dict
    object: treat it as read-only), the stored outcome columns and layer 0's rho, sigma_max, saturated_frac and
    dead_frac of the last epoch that has them (NaN when none)."""
    conds = run_filters(filters)   # one filter language for every page
    limit = max(1, min(int(limit), EXPLORE_LIMIT))
    with engine_of(engine=engine).connect() as conn:
        count_q = select(func.count(Run.id))
        total = int(conn.execute(count_q.where(*conds) if conds else count_q).scalar_one())
        ids_q = select(Run.id).where(*conds).order_by(Run.id).limit(limit)
        q = select(*_RUN_COLS, cast(Run.spec, Text).label("spec")).where(Run.id.in_(ids_q)).order_by(Run.id)
        runs = pd.DataFrame.from_records(list(map(tuple, conn.execute(q).all())),
                                         columns=[c.key for c in _RUN_COLS] + ["spec"])
        layers = _last_layer0(conn, ids_q)
    runs["spec"] = _parse_shared(runs["spec"].tolist())
    out = runs.merge(layers, how="left", left_on="id", right_on="run_id").drop(columns="run_id")
    for c in _LAYER_COLS:
        out[c] = out[c].astype(float)
    return out, total
