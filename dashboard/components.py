"""Shared page pieces: charts with PNG/SVG download, tables with CSV download, safe text,
error guard, run labels (rnnlab.records.run_label) and spec diffs."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pandas as pd
import streamlit as st

from rnnlab.records import run_label  # noqa: F401  (the one run label; pages import it from here too)

IMAGE_FORMATS = ("png", "svg")
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>$~:])")


def plain(text: Any) -> str:
    """User text made inert for st.markdown/st.error: Markdown characters escaped (HTML is never
    enabled, so tags show as text)."""
    return _MD_SPECIAL.sub(r"\\\1", "" if text is None else str(text))


@contextmanager
def guard(what: str = "This page") -> Iterator[None]:
    """Show any error of the wrapped block as a message, never a traceback."""
    try:
        yield
    except Exception as e:  # noqa: BLE001 — st.stop/st.rerun are BaseException and pass through
        st.error(f"{plain(what)} hit an error: {plain(type(e).__name__)}: {plain(e)}", icon=":material/error:")


def image_format() -> str:
    return st.session_state.get("image_format", "png")


def chart(fig, filename: str, key: str | None = None) -> None:
    """A Plotly chart whose camera button downloads a PNG or SVG (the sidebar's choice)."""
    fmt = image_format()
    config = {
        "displaylogo": False,
        "toImageButtonOptions": {"format": fmt, "filename": re.sub(r"[^\w.-]+", "_", filename), "scale": 2},
    }
    st.plotly_chart(fig, config=config, key=key, width="stretch")


def table(df: pd.DataFrame, filename: str, key: str, column_config: dict | None = None,
          hide_index: bool = True, **kwargs: Any):
    """A dataframe with a CSV download button under it; returns st.dataframe's value."""
    out = st.dataframe(df, column_config=column_config, hide_index=hide_index, key=key, **kwargs)
    st.download_button("Download CSV", df.to_csv(index=False).encode(), file_name=f"{filename}.csv",
                       mime="text/csv", key=f"{key}_csv", icon=":material/download:")
    return out


def loss_cells(ids, losses: dict[int, float]) -> list[str | None]:
    """Each run's last loss (``db.queries.last_val_losses``) as a CSV cell: full precision (repr),
    'NaN', 'inf' or '-inf' for a non-finite loss, None (an empty cell) for a run with no epoch yet."""
    return [None if int(i) not in losses else "NaN" if math.isnan(losses[int(i)]) else repr(float(losses[int(i)]))
            for i in ids]


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in (d or {}).items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def spec_diff(specs: dict[str, dict[str, Any]], only_diff: bool = True) -> pd.DataFrame:
    """Fields (rows) × specs (columns); only the fields whose values differ when ``only_diff``."""
    flat = {label: flatten(s) for label, s in specs.items()}
    keys = sorted({k for f in flat.values() for k in f})
    rows = []
    for k in keys:
        vals = [f.get(k) for f in flat.values()]
        if only_diff and len({repr(v) for v in vals}) <= 1:
            continue
        rows.append({"field": k, **{label: "—" if v is None else str(v) for label, v in zip(flat, vals)}})
    return pd.DataFrame(rows, columns=["field", *flat])


def fmt_duration(seconds: float | None) -> str:
    if seconds is None or pd.isna(seconds):
        return ""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"


def show_errors(errors: list[str]) -> None:
    for e in errors:
        st.error(plain(e), icon=":material/error:")
