"""The dashboard's one entry point to the results database: read-only, pandas DataFrames and dicts
out, filtered, paginated and downsampled on the server.

The per-epoch series of runs (epochs, layer and parameter statistics, per-timestep profiles,
histograms and the summaries built on them) are read here. The runs themselves are read by
``db.reads``, the workers by ``db.liveness`` and the Explorer's rows by ``db.explore_reads``; their
functions are re-exported below, so a page imports this module only. The SQL console lives in
``db.console``.

Every function takes an optional SQLAlchemy ``engine`` (default: the settings' database). Nothing
here writes.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Text, and_, cast, func, or_, select, tuple_
from sqlalchemy.engine import Engine

from db.explore_reads import explore_runs
from db.liveness import list_workers
from db.models import Epoch, GradProfile, Histogram, LayerStatRow, ParamStatRow, Run
from db.reads import (
    MAX_PAGE_SIZE,
    RUN_COLUMNS,
    SORTS,
    filter_options,
    find_existing,
    get_run,
    list_runs,
    run_filters,
    run_notes,
    runs_by_ids,
    status_counts,
    timing_samples,
    valid_ids,
)
from rnnlab.health import spike_factor
from rnnlab.records import decode_float

__all__ = [  # the series read here, then the re-exported reads
    "engine_for", "epochs", "final_summary", "histograms", "last_val_losses", "layer_stats", "param_names",
    "param_stats", "probed_epochs", "profile_matrix", "profiles", "run_health", "epoch_clock", "with_clock",
    "histogram_history", "RUN_COLUMNS", "SORTS", "explore_runs", "filter_options", "find_existing", "get_run",
    "list_runs", "list_workers", "run_filters", "run_notes", "runs_by_ids", "status_counts", "timing_samples",
]


def engine_for(url: str | None = None) -> Engine:
    """The shared engine of the results database (``db.engine.get_engine``)."""
    from db.engine import get_engine

    return get_engine(url)


def _eng(engine: Engine | None) -> Engine:
    return engine if engine is not None else engine_for()


def _restore_nan(df: pd.DataFrame) -> pd.DataFrame:
    """Rows keep the names of their NaN columns in ``nan_fields`` (SQLite stores NaN as NULL)."""
    if "nan_fields" not in df:
        return df
    marked = df["nan_fields"].notna()
    for i, names in df.loc[marked, "nan_fields"].items():
        for n in names or ():
            if n in df.columns:
                df.at[i, n] = np.nan
    return df.drop(columns="nan_fields")


# ------------------------------------------------------------------------------------------------
# Per-epoch series
# ------------------------------------------------------------------------------------------------

def _frame(conn, cols: list, where, order: list) -> pd.DataFrame:
    """Rows as a DataFrame, fast: JSON ``nan_fields`` arrive as text and are parsed only when set."""
    sel = [cast(c, Text).label(c.key) if c.key == "nan_fields" else c for c in cols]
    rows = [tuple(r) for r in conn.execute(select(*sel).where(where).order_by(*order))]
    df = pd.DataFrame.from_records(rows, columns=[c.key for c in cols])
    if "nan_fields" in df:
        df["nan_fields"] = [json.loads(v) if isinstance(v, str) and v != "null" else None for v in df["nan_fields"]]
    return _restore_nan(df)


def _every(table, ids: list[int], max_epochs: int | None):
    """A WHERE clause keeping, of each run on its own, at most ``max_epochs`` of its epochs: its first
    and last, and every k-th between (k = ⌈(n − 1)/(max_epochs − 1)⌉ for a run of n stored epochs, so
    a short run read next to a long one keeps all of its epochs). An epoch is kept or dropped whole
    (all its layer or parameter rows). Decided in SQL by window functions (SQLite ≥ 3.25, Postgres),
    so only the kept rows leave the database. ``max_epochs`` None (or 0): every epoch."""
    cond = table.run_id.in_(ids)
    if not max_epochs:
        return cond
    m = int(max_epochs)
    if m < 1:
        raise ValueError(f"max_epochs: {max_epochs} is below 1")
    # the run's distinct epochs (several rows per epoch in the layer and parameter tables)
    ep = select(table.run_id, table.epoch).where(cond)
    ep = (ep if table is Epoch else ep.distinct()).subquery()
    part = dict(partition_by=ep.c.run_id)
    ranked = select(ep.c.run_id, ep.c.epoch,
                    (func.row_number().over(**part, order_by=ep.c.epoch) - 1).label("i"),
                    func.count().over(**part).label("n")).subquery()
    i, n = ranked.c.i, ranked.c.n
    if m == 1:
        keep = i == n - 1                                  # one epoch: the last
    else:
        k = (n + (m - 3)) // (m - 1)                       # ⌈(n − 1)/(m − 1)⌉, integer division
        keep = or_(n <= m, i == n - 1, i % k == 0)
    kept = select(ranked.c.run_id, ranked.c.epoch).where(keep)
    return and_(cond, tuple_(table.run_id, table.epoch).in_(kept))


def epochs(run_ids: list[int], max_epochs: int | None = 500, columns: tuple[str, ...] | None = None,
           engine: Engine | None = None) -> pd.DataFrame:
    """Per-epoch scalars of the runs (NaN restored), at most ``max_epochs`` epochs per run (each run
    thinned on its own, its first and last epoch kept; None: every epoch). ``columns`` picks the
    measures read besides run_id and epoch (None: all)."""
    ids = [int(i) for i in run_ids]
    t = Epoch.__table__.c
    if columns is None:
        cols = [c for c in t if c.key not in ("recorded_at",)]
    else:
        unknown = [c for c in columns if c not in t or c in ("run_id", "epoch", "recorded_at", "nan_fields")]
        if unknown:
            raise ValueError(f"columns: no epoch measure {', '.join(map(repr, unknown))}")
        cols = [t.run_id, t.epoch, *(t[c] for c in columns), t.nan_fields]
    with _eng(engine).connect() as conn:
        return _frame(conn, cols, _every(Epoch, ids, max_epochs), [Epoch.run_id, Epoch.epoch])


def layer_stats(run_ids: list[int], max_epochs: int | None = 500, engine: Engine | None = None) -> pd.DataFrame:
    """Per-epoch, per-layer spectra, activation health and profile summaries (NaN restored)."""
    ids = [int(i) for i in run_ids]
    cols = [c for c in LayerStatRow.__table__.c if c.key not in ("gate_spectra", "gate_mean", "gate_saturated")]
    with _eng(engine).connect() as conn:
        return _frame(conn, cols, _every(LayerStatRow, ids, max_epochs),
                      [LayerStatRow.run_id, LayerStatRow.epoch, LayerStatRow.layer])


def param_stats(run_ids: list[int], columns: tuple[str, ...] = ("grad_norm_mean", "grad_norm_max", "update_ratio",
                                                                  "weight_norm"),
                max_epochs: int | None = 500, params: list[str] | None = None,
                engine: Engine | None = None) -> pd.DataFrame:
    """Per-epoch, per-parameter gradient norms, update ratios and weight norms (NaN restored);
    ``columns`` picks the measures and ``params`` the parameters (None: all)."""
    ids = [int(i) for i in run_ids]
    t = ParamStatRow.__table__.c
    cols = [t.run_id, t.epoch, t.param, *(t[c] for c in columns), t.nan_fields]
    with _eng(engine).connect() as conn:
        where = _every(ParamStatRow, ids, max_epochs)
        if params is not None:
            where = and_(where, ParamStatRow.param.in_(list(params)))
        return _frame(conn, cols, where, [ParamStatRow.run_id, ParamStatRow.epoch, ParamStatRow.param])


def probed_epochs(run_ids: list[int], engine: Engine | None = None) -> list[int]:
    """Epochs that have a per-timestep profile in at least one of the runs (sorted)."""
    with _eng(engine).connect() as conn:
        rows = conn.execute(select(GradProfile.epoch).distinct()
                            .where(GradProfile.run_id.in_([int(i) for i in run_ids])).order_by(GradProfile.epoch))
        return [e for (e,) in rows]


_NONFINITE = (('"NaN"', "NaN"), ('"-Infinity"', "-Infinity"), ('"Infinity"', "Infinity"))


def _decode_array(values: list | str) -> np.ndarray:
    """A stored profile (JSON text, or an already parsed list) as floats; 'NaN'/'Infinity' strings
    become NaN/inf. Parsing the text directly is ~10× faster than per-element decoding."""
    if isinstance(values, str):
        for quoted, bare in _NONFINITE:
            if quoted in values:
                values = values.replace(quoted, bare)
        body = values.strip()[1:-1]
        return np.fromstring(body, sep=",") if body else np.zeros(0)  # C parser; reads nan/inf too
    return np.array([np.nan if v is None else decode_float(v) for v in values], dtype=float)


def _norms_text():
    return cast(GradProfile.norms, Text).label("norms")


def _pick_indices(n: int, max_points: int) -> np.ndarray:
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_points).round().astype(int))


def profiles(run_ids: list[int], epoch: int | None = None, layer: int = 0, kind: str = "h",
             max_points: int = 400, engine: Engine | None = None) -> pd.DataFrame:
    """Per-timestep gradient norms ‖∂L/∂h_t‖ (kind 'h') or ‖∂L/∂c_t‖ ('c') of each run at ``epoch``
    (the latest probed epoch ≤ ``epoch`` per run; None: the last one), long format
    (run_id, epoch, t, norm, k = T − t), at most ``max_points`` points per run (evenly spaced)."""
    ids = [int(i) for i in run_ids]
    cond = [GradProfile.run_id.in_(ids), GradProfile.layer == layer, GradProfile.kind == kind]
    if epoch is not None:
        cond.append(GradProfile.epoch <= int(epoch))
    latest = select(GradProfile.run_id, func.max(GradProfile.epoch).label("e")).where(*cond) \
        .group_by(GradProfile.run_id).subquery()
    q = select(GradProfile.run_id, GradProfile.epoch, _norms_text()).join(
        latest, and_(GradProfile.run_id == latest.c.run_id, GradProfile.epoch == latest.c.e)).where(
        GradProfile.layer == layer, GradProfile.kind == kind)
    with _eng(engine).connect() as conn:
        rows = {r.run_id: r for r in conn.execute(q)}
    frames = []
    for rid in ids:  # in the order asked for
        if rid not in rows:
            continue
        arr = _decode_array(rows[rid].norms)
        idx = _pick_indices(len(arr), max_points)
        frames.append(pd.DataFrame({"run_id": rid, "epoch": rows[rid].epoch, "t": idx + 1,
                                    "k": len(arr) - 1 - idx, "norm": arr[idx]}))
    if not frames:
        return pd.DataFrame(columns=["run_id", "epoch", "t", "k", "norm"])
    return pd.concat(frames, ignore_index=True)


def _block_mean(mat: np.ndarray, max_cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Average adjacent columns of a log10 matrix into at most max_cols blocks; returns (matrix,
    centres). A block's value is the mean of its finite entries, except that one +inf (a norm of inf)
    makes it +inf and otherwise one −inf (a norm of 0) makes it −inf, as one zero makes a geometric
    mean 0 (dashboard.analysis._log_stats): a block's 0 or inf is never averaged away. NaN only when
    every entry is NaN."""
    n = mat.shape[1]
    if n <= max_cols:
        return mat, np.arange(1, n + 1, dtype=float)
    edges = np.linspace(0, n, max_cols + 1).round().astype(int)
    ok = np.isfinite(mat)
    sums = np.add.reduceat(np.where(ok, mat, 0.0), edges[:-1], axis=1)
    counts = np.add.reduceat(ok.astype(np.int64), edges[:-1], axis=1)
    pos = np.add.reduceat((mat == np.inf).astype(np.int64), edges[:-1], axis=1) > 0
    neg = np.add.reduceat((mat == -np.inf).astype(np.int64), edges[:-1], axis=1) > 0
    with np.errstate(all="ignore"):
        out = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    out = np.where(pos, np.inf, np.where(neg, -np.inf, out))
    centres = (edges[:-1] + edges[1:] - 1) / 2 + 1
    return out, centres


def profile_matrix(run_id: int, layer: int = 0, kind: str = "h", max_t: int = 200, max_epochs: int = 100,
                   engine: Engine | None = None) -> dict[str, Any]:
    """The t × epoch matrix of log10‖∂L/∂h_t‖ of one run, downsampled on the server: time steps are
    averaged in log space into at most ``max_t`` blocks (a norm of 0 is −inf, of inf +inf, and a block
    holding one is −inf or +inf, see _block_mean), epochs are subsampled to ``max_epochs``.
    Returns {"epochs": [...], "t": [...], "z": 2-D array (epochs × t), "seq_len": T}."""
    with _eng(engine).connect() as conn:
        es = [e for (e,) in conn.execute(select(GradProfile.epoch).where(
            GradProfile.run_id == int(run_id), GradProfile.layer == layer, GradProfile.kind == kind)
            .order_by(GradProfile.epoch))]
        keep = [es[i] for i in _pick_indices(len(es), max_epochs)]
        rows = conn.execute(select(GradProfile.epoch, _norms_text()).where(
            GradProfile.run_id == int(run_id), GradProfile.layer == layer, GradProfile.kind == kind,
            GradProfile.epoch.in_(keep)).order_by(GradProfile.epoch)).all()
    if not rows:
        return {"epochs": [], "t": [], "z": np.zeros((0, 0)), "seq_len": 0}
    arrays = [_decode_array(r.norms) for r in rows]
    T = max(len(a) for a in arrays)
    mat = np.full((len(rows), T), np.nan)
    for i, a in enumerate(arrays):
        mat[i, :len(a)] = a
    with np.errstate(all="ignore"):
        logm = np.where(mat >= 0, np.log10(np.where(mat >= 0, mat, 1.0)), np.nan)  # 0 → −inf, inf → +inf
    z, centres = _block_mean(logm, max_t)
    return {"epochs": [r.epoch for r in rows], "t": centres.tolist(), "z": z, "seq_len": T}


def param_names(run_ids: list[int], engine: Engine | None = None) -> list[str]:
    with _eng(engine).connect() as conn:
        rows = conn.execute(select(Histogram.param).distinct()
                            .where(Histogram.run_id.in_([int(i) for i in run_ids])).order_by(Histogram.param))
        return [p for (p,) in rows]


def histograms(run_ids: list[int], epoch: int | None = None, param: str | None = None,
               engine: Engine | None = None) -> pd.DataFrame:
    """Gradient histograms (fixed log10|g| bins of rnnlab.records) of each run at ``epoch`` (the latest
    epoch ≤ it that has one; None: the last), one row per run × param, ``counts`` a list of ints."""
    ids = [int(i) for i in run_ids]
    cond = [Histogram.run_id.in_(ids)]
    if epoch is not None:
        cond.append(Histogram.epoch <= int(epoch))
    latest = select(Histogram.run_id, func.max(Histogram.epoch).label("e")).where(*cond) \
        .group_by(Histogram.run_id).subquery()
    q = select(Histogram.run_id, Histogram.epoch, Histogram.param, Histogram.counts, Histogram.zeros,
               Histogram.nonfinite).join(latest, and_(Histogram.run_id == latest.c.run_id,
                                                      Histogram.epoch == latest.c.e))
    if param:
        q = q.where(Histogram.param == param)
    cols = ["run_id", "epoch", "param", "counts", "zeros", "nonfinite"]
    with _eng(engine).connect() as conn:
        df = pd.DataFrame([tuple(r) for r in conn.execute(q)], columns=cols)
    order = {rid: k for k, rid in enumerate(ids)}
    return df.sort_values(["run_id", "param"],
                          key=lambda c: c.map(order) if c.name == "run_id" else c).reset_index(drop=True)


def final_summary(run_ids: list[int], engine: Engine | None = None) -> pd.DataFrame:
    """Per run: the last epoch's loss/metric and the last probe's layer-0 horizon and decay per step."""
    ids = [int(i) for i in run_ids]
    if not ids:
        return pd.DataFrame(columns=["run_id", "val_loss", "val_metric", "horizon", "decay_per_step", "log_ratio"])
    with _eng(engine).connect() as conn:
        last_e = (select(Epoch.run_id, func.max(Epoch.epoch).label("e"))
                  .where(Epoch.run_id.in_(ids)).group_by(Epoch.run_id).subquery())
        ep = conn.execute(select(Epoch.run_id, Epoch.val_loss, Epoch.val_metric, Epoch.nan_fields).join(
            last_e, and_(Epoch.run_id == last_e.c.run_id, Epoch.epoch == last_e.c.e))).mappings().all()
        last_l = (select(LayerStatRow.run_id, func.max(LayerStatRow.epoch).label("e"))
                  .where(LayerStatRow.run_id.in_(ids), LayerStatRow.layer == 0)
                  .group_by(LayerStatRow.run_id).subquery())
        ly = conn.execute(select(LayerStatRow.run_id, LayerStatRow.horizon, LayerStatRow.decay_per_step,
                                 LayerStatRow.log_ratio, LayerStatRow.nan_fields).join(
            last_l, and_(LayerStatRow.run_id == last_l.c.run_id, LayerStatRow.epoch == last_l.c.e))
            .where(LayerStatRow.layer == 0)).mappings().all()
    a = _restore_nan(pd.DataFrame(ep, columns=["run_id", "val_loss", "val_metric", "nan_fields"]))
    b = _restore_nan(pd.DataFrame(ly, columns=["run_id", "horizon", "decay_per_step", "log_ratio", "nan_fields"]))
    return pd.DataFrame({"run_id": ids}).merge(a, how="left").merge(b, how="left")


LAST_EPOCH_COLUMNS = {"val_loss": "last_val_loss", "val_metric": "last_val_metric"}   # epochs → runs row


def last_epoch_values(run_ids: list[int], column: str = "val_loss",
                      engine: Engine | None = None) -> dict[int, float]:
    """The last epoch's ``column`` (val_loss or val_metric) of each run, by run id, as the surfaces show
    it: the runs row's summary value (last_val_loss, last_val_metric), or, for a run whose row has none
    (the row keeps a NaN as NULL, db/codec.py) but that has recorded an epoch, its last epoch's value
    with NaN restored from ``nan_fields`` (±inf are stored as such). Runs with no value yet (no epoch)
    are left out, so NaN always means a non-finite value. One query for all ids; ids outside
    1..MAX_RUN_ID are skipped, more than MAX_PAGE_SIZE is an error."""
    if column not in LAST_EPOCH_COLUMNS:
        raise ValueError(f"column: {column!r}; one of {', '.join(LAST_EPOCH_COLUMNS)}")
    ids = list(dict.fromkeys(valid_ids(run_ids)))
    if len(ids) > MAX_PAGE_SIZE:
        raise ValueError(f"run_ids: {len(ids)} runs; at most {MAX_PAGE_SIZE} at a time")
    if not ids:
        return {}
    last = (select(Epoch.run_id, func.max(Epoch.epoch).label("e"))
            .where(Epoch.run_id.in_(ids)).group_by(Epoch.run_id).subquery())
    q = (select(Run.id, getattr(Run, LAST_EPOCH_COLUMNS[column]), getattr(Epoch, column),
                cast(Epoch.nan_fields, Text).label("nan_fields"))
         .select_from(Run)
         .outerjoin(last, last.c.run_id == Run.id)
         .outerjoin(Epoch, and_(Epoch.run_id == Run.id, Epoch.epoch == last.c.e))
         .where(Run.id.in_(ids)))
    out: dict[int, float] = {}
    with _eng(engine).connect() as conn:
        for rid, row_value, ep_value, nan_fields in conn.execute(q):
            if row_value is not None:
                out[int(rid)] = float(row_value)
            elif ep_value is not None:
                out[int(rid)] = float(ep_value)
            elif isinstance(nan_fields, str) and nan_fields != "null" and column in (json.loads(nan_fields) or ()):
                out[int(rid)] = math.nan
    return {rid: out[rid] for rid in ids if rid in out}


def last_val_losses(run_ids: list[int], engine: Engine | None = None) -> dict[int, float]:
    """last_epoch_values of val_loss: the last val loss of each run that has one, NaN and ±inf kept."""
    return last_epoch_values(run_ids, "val_loss", engine)


def run_health(run_ids: list[int], engine: Engine | None = None) -> pd.DataFrame:
    """Per run, the evidence behind a strategy verdict (rnnlab.strategies): the held-out trivial
    baseline and the last epoch's val_loss_se (NULL for old runs), non-finite steps over all epochs,
    the largest gradient norm (each step's, before clipping) and norm spike of the training epochs
    (1..N; NaN when there are none), the gradient norm at initialization (epoch 0, the probe batch's
    own: grad_norm_init) and the largest ‖g_1‖/‖g_T‖ of epoch 0's layers (log_ratio_init; NaN when a
    layer's is NaN or epoch 0 was not probed), which rnnlab.health.norm_explodes weighs apart,
    ρ(W_hh) growth from the first to the last probe, and that probe's saturated and dead fractions,
    ‖g_1‖/‖g_T‖ and steps_in_past (the worst layer of each)."""
    cols = ["run_id", "baseline_heldout_loss", "val_loss_se", "nonfinite_steps", "grad_norm_max", "spike",
            "grad_norm_init", "log_ratio_init", "rho_initial", "rho_growth", "saturated_frac", "dead_frac",
            "log_ratio_max", "steps_in_past_min"]
    ids = [int(i) for i in run_ids]
    if not ids:
        return pd.DataFrame(columns=cols)
    ec = [Epoch.run_id, Epoch.epoch, Epoch.steps, Epoch.grad_norm_mean, Epoch.grad_norm_max, Epoch.nonfinite_steps,
          Epoch.val_loss_se, Epoch.nan_fields]
    lc = [LayerStatRow.run_id, LayerStatRow.epoch, LayerStatRow.layer, LayerStatRow.rho, LayerStatRow.saturated_frac,
          LayerStatRow.dead_frac, LayerStatRow.log_ratio, LayerStatRow.steps_in_past, LayerStatRow.nan_fields]
    ends = (select(LayerStatRow.run_id, func.min(LayerStatRow.epoch).label("first"),
                   func.max(LayerStatRow.epoch).label("last"))
            .where(LayerStatRow.run_id.in_(ids)).group_by(LayerStatRow.run_id).subquery())
    with _eng(engine).connect() as conn:
        base = dict(conn.execute(select(Run.id, Run.baseline_heldout_loss).where(Run.id.in_(ids))).all())
        ep = _frame(conn, ec, Epoch.run_id.in_(ids), [Epoch.run_id, Epoch.epoch])
        ly = _frame(conn, lc, and_(LayerStatRow.run_id == ends.c.run_id,
                                   or_(LayerStatRow.epoch == ends.c.first, LayerStatRow.epoch == ends.c.last)),
                    [LayerStatRow.run_id, LayerStatRow.epoch])
        first_last = {r: (a, z) for r, a, z in conn.execute(select(ends))}
    ep_of, ly_of = dict(tuple(ep.groupby("run_id"))), dict(tuple(ly.groupby("run_id")))
    rows = []
    for rid in ids:
        rows.append({"run_id": rid, "baseline_heldout_loss": base.get(rid), **_epoch_health(ep_of.get(rid, ep[:0])),
                     **_layer_health(ly_of.get(rid, ly[:0]), *first_last.get(rid, (None, None)))})
    out = pd.DataFrame(rows, columns=cols)
    return out.astype({c: float for c in cols if c not in ("run_id", "nonfinite_steps")})


def _epoch_health(e: pd.DataFrame) -> dict[str, Any]:
    """The training epochs' norms apart from epoch 0's (at initialization, no training step): that one
    is the probe batch's gradient, an explosion only when the gradient does not shrink going back
    (rnnlab.health.norm_explodes, models.diagnose's rule), so it is never mixed into grad_norm_max."""
    if e.empty:
        return {"val_loss_se": np.nan, "nonfinite_steps": 0, "grad_norm_max": np.nan, "spike": np.nan,
                "grad_norm_init": np.nan}
    trained, init = e[e["epoch"] >= 1], e[e["epoch"] == 0]
    spikes = [spike_factor(m, x, n) for m, x, n in zip(trained["grad_norm_mean"], trained["grad_norm_max"],
                                                        trained["steps"])]
    return {"val_loss_se": e["val_loss_se"].iloc[-1], "nonfinite_steps": int(e["nonfinite_steps"].sum()),
            "grad_norm_max": trained["grad_norm_max"].astype(float).max(),
            "spike": max((x for x in spikes if not math.isnan(x)), default=np.nan),
            "grad_norm_init": float(init["grad_norm_max"].iloc[0]) if len(init) else np.nan}


def _layer_health(ls: pd.DataFrame, first: int | None, last: int | None) -> dict[str, Any]:
    if ls.empty:
        return dict.fromkeys(["log_ratio_init", "rho_initial", "rho_growth", "saturated_frac", "dead_frac",
                              "log_ratio_max", "steps_in_past_min"], np.nan)
    a = ls[ls["epoch"] == first].set_index("layer")
    z = ls[ls["epoch"] == last].set_index("layer")
    growth = (z["rho"].astype(float) / a["rho"].astype(float).where(a["rho"] > 0)).max() if first != last else np.nan
    # epoch 0's worst layer, a NaN kept (one layer's unknown ratio: nothing says every layer shrinks)
    init = a["log_ratio"].astype(float) if first == 0 else pd.Series([], dtype=float)
    return {"log_ratio_init": init.max(skipna=False) if len(init) else np.nan,
            "rho_initial": a["rho"].astype(float).max(), "rho_growth": growth,
            "saturated_frac": z["saturated_frac"].astype(float).max(), "dead_frac": z["dead_frac"].astype(float).max(),
            "log_ratio_max": z["log_ratio"].astype(float).max(),
            "steps_in_past_min": z["steps_in_past"].astype(float).min()}


# --- chart axes and histogram history -------------------------------------------------------------

MAX_HIST_EPOCHS = 200


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
            keep += [(rid, es[i]) for i in _pick_indices(len(es), int(max_epochs))]
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
