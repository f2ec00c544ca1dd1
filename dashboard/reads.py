"""Cached reads for the pages: one engine per database URL (st.cache_resource) and the query
results of db.queries behind st.cache_data with short TTLs (live pages poll them for every tab)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from db import queries as q
from rnnlab.settings import get_settings

LIVE_TTL = 3      # seconds: the runs table, workers, counts
DATA_TTL = 15     # seconds: per-epoch series of runs (a running run grows slowly)


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


@st.cache_data(ttl=DATA_TTL, show_spinner=False)
def _series(url: str, name: str, *args: Any, **kwargs: Any) -> Any:
    return getattr(q, name)(*args, engine=_engine(url), **kwargs)


def status_counts() -> dict[str, int]:
    return _simple(db_url(), "status_counts")


def filter_options() -> dict[str, list]:
    return _simple(db_url(), "filter_options")


def workers() -> pd.DataFrame:
    return _simple(db_url(), "workers")


def run(run_id: int) -> dict | None:
    return _simple(db_url(), "run", int(run_id))


def runs_by_ids(ids: list[int]) -> pd.DataFrame:
    return _simple(db_url(), "runs_by_ids", [int(i) for i in ids])


def find_existing(hashes: list[str]) -> dict[str, list[int]]:
    return _simple(db_url(), "find_existing", list(hashes))


def timing_samples() -> pd.DataFrame:
    return _series(db_url(), "timing_samples")


def epochs(ids: list[int]) -> pd.DataFrame:
    return _series(db_url(), "epochs", [int(i) for i in ids])


def layer_stats(ids: list[int]) -> pd.DataFrame:
    return _series(db_url(), "layer_stats", [int(i) for i in ids])


def param_stats(ids: list[int], columns: tuple[str, ...] = ("grad_norm_mean",)) -> pd.DataFrame:
    return _series(db_url(), "param_stats", [int(i) for i in ids], tuple(columns))


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


def clear() -> None:
    """Drop cached data after an action (cancel, tag, delete, submit) so the next read is fresh."""
    _runs_page.clear()
    _simple.clear()
