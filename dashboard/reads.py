"""Cached reads for the pages: one engine per database URL (st.cache_resource) and the query
results of db.queries behind st.cache_data with short TTLs (live pages poll them for every tab)."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import streamlit as st

from db import queries as q
from db import reads as db_reads
from db.models import RunAttempt, Worker
from rnnlab.settings import get_settings

LIVE_TTL = 3      # seconds: the runs table, workers, counts
ATTEMPT_COLUMNS = [c.key for c in RunAttempt.__table__.c if c.key not in ("id", "run_id")]
# Per-run series are cached without a TTL, keyed by each run's (id, epochs_done, status): a new
# epoch or a new status changes the key, so the cache is never stale and finished runs stay hot.
SERIES_ENTRIES = 512


def db_url() -> str:
    return get_settings().db_url


@st.cache_resource(show_spinner=False)
def _engine(url: str):
    return q.engine_for(url)


def engine():
    return _engine(db_url())


@st.cache_data(ttl=LIVE_TTL, show_spinner=False)
def _runs_page(url: str, filters: dict[str, Any], page: int, page_size: int, sort: str):
    return q.list_runs(filters, page, page_size, sort, engine=_engine(url))


def runs_page(filters: dict[str, Any], page: int, page_size: int, sort: str = "newest") -> tuple[pd.DataFrame, int]:
    return _runs_page(db_url(), filters, page, page_size, sort)


@st.cache_data(ttl=LIVE_TTL, show_spinner=False)
def _simple(url: str, name: str, *args: Any) -> Any:
    return getattr(q, name)(*args, engine=_engine(url))


@st.cache_data(max_entries=SERIES_ENTRIES, show_spinner=False)
def _cached_series(url: str, version: tuple, name: str, *args: Any) -> Any:
    return getattr(q, name)(*args, engine=_engine(url))


def _version(ids: list[int]) -> tuple:
    df = runs_by_ids(ids)
    # created_at too: SQLite may give a deleted run's id to the next run
    return tuple(zip(df["id"].astype(int), df["epochs_done"].astype(int), df["status"], df["created_at"].astype(str)))


def _series(url: str, name: str, ids: list[int] | int, *args: Any) -> Any:
    key_ids = [int(ids)] if isinstance(ids, int) else [int(i) for i in ids]
    return _cached_series(url, _version(key_ids), name, ids, *args)


def epoch_clock(ids: list[int]) -> pd.DataFrame:
    """db.queries.epoch_clock: optimizer step and seconds at the end of each epoch (the chart x axes)."""
    return _series(db_url(), "epoch_clock", [int(i) for i in ids])


def histogram_history(ids: list[int], param: str, max_epochs: int = 60) -> pd.DataFrame:
    return _series(db_url(), "histogram_history", [int(i) for i in ids], param, max_epochs)


def notes(ids: list[int]) -> dict[int, str]:
    """Not cached: notes change without a new epoch (one primary-key lookup of at most 12 runs)."""
    return q.run_notes([int(i) for i in ids], engine=engine())


with_clock = q.with_clock   # a DataFrame merge, no query

BASELINE_HELP = ("the trivial predictor's val loss on the run's own held-out set (the task's analytic "
                 "baseline for runs that did not store one)")


def loss_baseline(runs: pd.DataFrame) -> pd.Series:
    """Per row of ``runs`` (run-list rows): the baseline its loss is divided by, rnnlab.health.baseline_of
    of the held-out and the analytic baseline (NaN when neither is known), as Explorer, Strategies and
    diagnose divide; no query."""
    from rnnlab.health import baseline_of

    return pd.Series([baseline_of(h, a) for h, a in zip(runs["baseline_heldout_loss"], runs["baseline_loss"])],
                     index=runs.index, dtype=float)


def heldout_keys(runs: pd.DataFrame) -> pd.Series:
    """Per row of ``runs`` (rows of runs_by_ids, with ``spec``): which held-out set its loss_baseline
    was measured on, as a key for charts.baseline_marks's ``kinds``: None where loss_baseline is the
    analytic baseline (no finite held-out one stored), else the task's configuration, the spec's
    ``task`` as sorted JSON: name, variant, seq_len, n_symbols, n_copy, permuted, perm_seed, series,
    path. A held-out set is drawn from the task configuration and the run's seed alone
    (models.tasks.make_task), so runs of one key differ only by their seeds' draws. A row without a
    task spec gets None too: its value is then drawn as a line of its own, never in a band. No query."""
    import json

    from rnnlab.health import finite

    def key(heldout, spec) -> str | None:
        task = spec.get("task") if isinstance(spec, dict) else None
        if not finite(heldout) or not isinstance(task, dict):
            return None
        task = dict(task)
        if task.get("name") == "digits" and not task.get("permuted"):
            task["perm_seed"] = 0   # no permutation: perm_seed does not act (JobSpec.canonical)
        return json.dumps(task, sort_keys=True, default=str)

    specs = runs["spec"] if "spec" in runs else pd.Series([None] * len(runs), index=runs.index)
    return pd.Series([key(h, s) for h, s in zip(runs["baseline_heldout_loss"], specs)], index=runs.index,
                     dtype=object)


def metric_kinds(runs: pd.DataFrame) -> pd.Series:
    """Per row of ``runs`` (rows of runs_by_ids, with ``spec``): the ``kinds`` key of its metric baseline
    for charts.baseline_marks: heldout_keys's key where the task's metric baseline is measured on the
    run's held-out set (rnnlab.spec.SEEDED_METRIC_BASELINE: forecast's persistence MSE, one value per
    seed, drawn as one band), None where it is analytic or fixed by the data (a line per value). No query."""
    from rnnlab.spec import SEEDED_METRIC_BASELINE

    keys = heldout_keys(runs)
    specs = runs["spec"] if "spec" in runs else pd.Series([None] * len(runs), index=runs.index)
    names = [(s.get("task") or {}).get("name") if isinstance(s, dict) else None for s in specs]
    return pd.Series([k if n in SEEDED_METRIC_BASELINE else None for k, n in zip(keys, names)], index=runs.index,
                     dtype=object)


def loss_ratio(loss: pd.Series, base: pd.Series) -> pd.Series:
    """``loss`` ÷ ``base`` row by row, NaN where the baseline is not positive. ``loss``: the last loss
    as last_loss_columns reads it (the runs row keeps a NaN or ±inf loss as NULL); ``base``:
    loss_baseline of the same rows."""
    return loss.astype(float) / base.where(base > 0)


def status_counts() -> dict[str, int]:
    return _simple(db_url(), "status_counts")


def filter_options() -> dict[str, list]:
    return _simple(db_url(), "filter_options")


def sweep(sweep_id: int) -> dict | None:
    """db.reads.sweep_summary: one sweep ({id, name, n_runs}) by its id, or None."""
    return db_reads.sweep_summary(int(sweep_id), engine=_engine(db_url()))


# the columns of the workers table, so that pages can index an empty one
WORKER_COLUMNS = [c.key for c in Worker.__table__.c] + ["heartbeat_age_s", "state", "alive"]


@st.cache_data(ttl=LIVE_TTL, show_spinner=False)
def _workers(url: str) -> pd.DataFrame:
    rows = q.list_workers(engine=_engine(url))
    return pd.DataFrame(rows, columns=WORKER_COLUMNS)


def workers() -> pd.DataFrame:
    """db.liveness.list_workers as a table (``alive`` and ``state`` by its one rule)."""
    return _workers(db_url())


def unserved_queues(queues: set[str]) -> list[str]:
    """db.liveness.unserved_queues against the (cached) workers list."""
    from db.liveness import unserved_queues as rule

    w = workers()
    return rule(queues, w.to_dict("records") if len(w) else [])


def serve_hint(queue: str) -> str:
    from db.liveness import serve_hint as hint

    return hint(queue)


def run(run_id: int) -> dict | None:
    """db.reads.get_run, with its attempt history also as a table (``attempts``, for the Attempts tab)."""
    r = _simple(db_url(), "get_run", int(run_id))
    if r is None:
        return None
    att = pd.DataFrame(r["attempt_history"], columns=ATTEMPT_COLUMNS)
    return {**r, "attempts": att}


def runs_by_ids(ids: list[int]) -> pd.DataFrame:
    return _simple(db_url(), "runs_by_ids", [int(i) for i in ids])


def last_val_losses(ids: list[int]) -> dict[int, float]:
    """db.queries.last_val_losses (a diverged run's NaN restored from its last epoch), cached like the
    runs table it sits next to (LIVE_TTL)."""
    return _simple(db_url(), "last_val_losses", [int(i) for i in ids])


def last_metrics(ids: list[int]) -> dict[int, float]:
    """db.queries.last_epoch_values of val_metric (a diverged run's NaN restored from its last epoch; no
    entry for a run with no epoch), cached like last_val_losses."""
    return _simple(db_url(), "last_epoch_values", [int(i) for i in ids], "val_metric")


METRIC_NAN_MARK = " · metric NaN"   # appended to the status of a run whose last metric is NaN


def last_metric_columns(runs: pd.DataFrame, status: pd.Series) -> tuple[pd.Series, pd.Series]:
    """For a table of ``runs``: (last_metrics per row as floats, NaN where no epoch is recorded; ``status``
    with METRIC_NAN_MARK where the last metric itself is NaN). The runs row keeps a NaN metric as NULL,
    which read as "no metric yet", and a grid draws NaN as an empty cell either way, so the status says it."""
    ids = [int(i) for i in runs["id"]]
    values = last_metrics(ids)
    metric = pd.Series([values.get(i, math.nan) for i in ids], index=runs.index, dtype=float)
    is_nan = pd.Series([i in values and math.isnan(values[i]) for i in ids], index=runs.index, dtype=bool)
    return metric, status.where(~is_nan, status + METRIC_NAN_MARK)


NAN_MARK = " · loss NaN"   # appended to the status of a run whose last loss is NaN (the grid shows NaN empty)


def last_loss_columns(runs: pd.DataFrame) -> tuple[dict[int, float], pd.Series, pd.Series]:
    """For a table of ``runs``: (last_val_losses of its ids; the last loss per row as floats, NaN where
    no epoch is recorded; the status with NAN_MARK where the last loss itself is NaN)."""
    ids = [int(i) for i in runs["id"]]
    losses = last_val_losses(ids)
    loss = pd.Series([losses.get(i, math.nan) for i in ids], index=runs.index, dtype=float)
    is_nan = pd.Series([i in losses and math.isnan(losses[i]) for i in ids], index=runs.index, dtype=bool)
    return losses, loss, runs["status"].where(~is_nan, runs["status"] + NAN_MARK)


def explore_runs(filters: dict[str, Any]) -> tuple[pd.DataFrame, int]:
    return _simple(db_url(), "explore_runs", filters)


def find_existing(hashes: list[str]) -> dict[str, list[int]]:
    return _simple(db_url(), "find_existing", list(hashes))


@st.cache_data(ttl=60, show_spinner=False)
def _timing(url: str) -> pd.DataFrame:
    return q.timing_samples(engine=_engine(url))


def timing_samples() -> pd.DataFrame:
    return _timing(db_url())


def epochs(ids: list[int], max_epochs: int | None = 500, columns: tuple[str, ...] | None = None) -> pd.DataFrame:
    """db.queries.epochs: at most ``max_epochs`` epochs per run (None: every epoch), ``columns`` only
    (None: all)."""
    return _series(db_url(), "epochs", [int(i) for i in ids], max_epochs,
                   None if columns is None else tuple(columns))


def layer_stats(ids: list[int]) -> pd.DataFrame:
    return _series(db_url(), "layer_stats", [int(i) for i in ids])


def param_stats(ids: list[int], columns: tuple[str, ...] = ("grad_norm_mean",),
                params: list[str] | None = None) -> pd.DataFrame:
    return _series(db_url(), "param_stats", [int(i) for i in ids], tuple(columns), 500,
                   None if params is None else sorted(params))


def probed_epochs(ids: list[int]) -> list[int]:
    return _series(db_url(), "probed_epochs", [int(i) for i in ids])


def profiles(ids: list[int], epoch: int | None, layer: int, kind: str = "h") -> pd.DataFrame:
    return _series(db_url(), "profiles", [int(i) for i in ids], epoch, layer, kind)


def profile_matrix(run_id: int, layer: int, kind: str = "h", max_t: int = 200, max_epochs: int = 60) -> dict:
    return _series(db_url(), "profile_matrix", int(run_id), layer, kind, max_t, max_epochs)


def param_names(ids: list[int]) -> list[str]:
    return _series(db_url(), "param_names", [int(i) for i in ids])


def histograms(ids: list[int], epoch: int | None, param: str | None) -> pd.DataFrame:
    return _series(db_url(), "histograms", [int(i) for i in ids], epoch, param)


def final_summary(ids: list[int]) -> pd.DataFrame:
    return _series(db_url(), "final_summary", [int(i) for i in ids])


def run_health(ids: list[int]) -> pd.DataFrame:
    return _series(db_url(), "run_health", [int(i) for i in ids])


def clear() -> None:
    """Drop cached data after an action (cancel, tag, delete, submit) so the next read is fresh."""
    _runs_page.clear()
    _simple.clear()
    _workers.clear()
