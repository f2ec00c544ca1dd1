"""Reads for the dashboard's chart options (read-only, pandas out): the clock of each epoch (cumulative
optimizer steps and seconds, for the step and time x axes), one parameter's gradient histograms
across epochs (the histogram-over-time heatmap) and the runs' notes (shown on Compare).

Every function takes an optional SQLAlchemy ``engine`` (default: the settings' database)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from db.models import Epoch, Histogram, Run

MAX_HIST_EPOCHS = 200


def _eng(engine: Engine | None) -> Engine:
    if engine is not None:
        return engine
    from db.engine import get_engine

    return get_engine()


def epoch_clock(run_ids: list[int], engine: Engine | None = None) -> pd.DataFrame:
    """Per run and epoch: ``step``, the optimizer steps taken up to the end of that epoch (the sum of
    the stored ``steps``; epoch 0, at initialization, is step 0), and ``seconds``, the training and
    diagnostics seconds spent up to then (the sum of ``train_seconds + diag_seconds``). Summed on the
    server over every stored epoch, so the values are exact where the series are thinned."""
    ids = [int(i) for i in run_ids]
    cols = ["run_id", "epoch", "step", "seconds"]
    if not ids:
        return pd.DataFrame(columns=cols)
    order = dict(partition_by=Epoch.run_id, order_by=Epoch.epoch)
    q = (select(Epoch.run_id, Epoch.epoch, func.sum(Epoch.steps).over(**order).label("step"),
                func.sum(Epoch.train_seconds + Epoch.diag_seconds).over(**order).label("seconds"))
         .where(Epoch.run_id.in_(ids)).order_by(Epoch.run_id, Epoch.epoch))
    with _eng(engine).connect() as conn:
        df = pd.DataFrame([tuple(r) for r in conn.execute(q)], columns=cols)
    return df.astype({"run_id": int, "epoch": int, "step": int, "seconds": float})


def with_clock(df: pd.DataFrame, clock: pd.DataFrame) -> pd.DataFrame:
    """``df`` (rows per run_id and epoch) with the ``step`` and ``seconds`` columns of ``clock``."""
    if df.empty or "epoch" not in df:
        return df.assign(step=pd.Series(dtype=int), seconds=pd.Series(dtype=float))
    extra = clock[["run_id", "epoch", "step", "seconds"]]
    return df.merge(extra, on=["run_id", "epoch"], how="left", sort=False)


def _pick(n: int, k: int) -> np.ndarray:
    """At most k of n indices, evenly spaced, the first and the last kept."""
    if n <= k:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, k).round().astype(int))


def histogram_history(run_ids: list[int], param: str, max_epochs: int = 60,
                      engine: Engine | None = None) -> pd.DataFrame:
    """The stored gradient histograms of ``param`` for each run across its epochs (at most
    ``max_epochs`` per run, evenly spaced, first and last kept): rows run_id, epoch, counts (a list
    of ints on the fixed log10|g| bins of rnnlab.records), zeros, nonfinite."""
    if not 1 <= int(max_epochs) <= MAX_HIST_EPOCHS:
        raise ValueError(f"max_epochs: {max_epochs} is not between 1 and {MAX_HIST_EPOCHS}")
    ids = [int(i) for i in run_ids]
    cols = ["run_id", "epoch", "counts", "zeros", "nonfinite"]
    if not ids:
        return pd.DataFrame(columns=cols)
    with _eng(engine).connect() as conn:
        have = conn.execute(select(Histogram.run_id, Histogram.epoch)
                            .where(Histogram.run_id.in_(ids), Histogram.param == param)
                            .order_by(Histogram.run_id, Histogram.epoch)).all()
        keep: list[tuple[int, int]] = []
        by_run: dict[int, list[int]] = {}
        for rid, e in have:
            by_run.setdefault(rid, []).append(e)
        for rid, es in by_run.items():
            keep += [(rid, es[i]) for i in _pick(len(es), int(max_epochs))]
        rows = []
        for rid in ids:  # in the order asked for
            es = [e for r, e in keep if r == rid]
            if not es:
                continue
            rows += [tuple(r) for r in conn.execute(
                select(Histogram.run_id, Histogram.epoch, Histogram.counts, Histogram.zeros, Histogram.nonfinite)
                .where(Histogram.run_id == rid, Histogram.param == param, Histogram.epoch.in_(es))
                .order_by(Histogram.epoch))]
    return pd.DataFrame(rows, columns=cols)


def notes(run_ids: list[int], engine: Engine | None = None) -> dict[int, str]:
    """The notes of those runs that have any, by run id."""
    ids = [int(i) for i in run_ids]
    if not ids:
        return {}
    with _eng(engine).connect() as conn:
        rows = conn.execute(select(Run.id, Run.notes).where(Run.id.in_(ids), Run.notes.is_not(None)))
        return {int(i): n for i, n in rows if n and n.strip()}
