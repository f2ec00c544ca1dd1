"""Runs: every run with its status and progress, filtered and paginated on the server, updated live
(only the table reruns); actions on the selected runs; the workers panel. The filters live in the
URL (``dashboard.runs_query``), so a reload keeps them and a link shares them; views can be saved."""

import math

import pandas as pd
import streamlit as st

from dashboard import actions, reads, runs_query, saved_views
from dashboard.auth import current_user
from dashboard.components import fmt_duration, guard, loss_cells, plain, table
from db.models import RUN_STATUSES

user = current_user()
st.title("Runs")
actions.show_flash()
opts = reads.filter_options()
ss = st.session_state

# --- the URL and the filter widgets -------------------------------------------------------------
# The URL holds the filters. It is applied to the widgets when it differs from what this page last
# wrote: a fresh load, a shared link, a saved view. A URL without filters (back from another page
# through the sidebar) restores the filters this session last had here.
url_params = {k: st.query_params.get_all(k) for k in runs_query.URL_KEYS if st.query_params.get_all(k)}
url_qs = runs_query.query_string(url_params)
applied = False
if url_qs != ss.get("_runs_qs"):
    if not url_params and ss.get("_runs_params"):
        url_params = ss["_runs_params"]
    values, problems = runs_query.from_params(url_params, opts, lambda i: reads.sweep(i) is not None)
    ss.update(values)
    ss["_runs_problems"] = problems
    applied = True

with st.expander("Filters", expanded=True, icon=":material/filter_list:"):
    a, b, c, d = st.columns(4)
    status = a.multiselect("Status", RUN_STATUSES, key="flt_status")
    tags = b.multiselect("Tags (any of)", opts["tags"], key="flt_tags")
    search = c.text_input("Search name / diagnosis / message / notes", key="flt_search",
                          max_chars=runs_query.MAX_TEXT)
    if ss.get("flt_sweep") is not None and ss["flt_sweep"] not in {s["id"] for s in opts["sweeps"]}:
        older = reads.sweep(ss["flt_sweep"])   # a sweep older than the newest 500 that opts lists
        opts = {**opts, "sweeps": opts["sweeps"] + [older]} if older else opts
        if older is None:
            ss["flt_sweep"] = None
    sweep = d.selectbox("Sweep", [None] + [s["id"] for s in opts["sweeps"]], key="flt_sweep",
                        format_func=lambda i: "all" if i is None else next(
                            f"#{s['id']} {s['name'] or ''} ({s['n_runs']} runs)"
                            for s in opts["sweeps"] if s["id"] == i))
    cols = st.columns(7)
    spec_cols = {}
    for col, name in zip(cols, runs_query.SPEC_COLUMNS.values()):
        spec_cols[name] = col.multiselect(name, opts.get(name, []), key=f"flt_{name}")
    a, b, c, d = st.columns([2, 2, 1, 1])
    spec_path = a.text_input("Any spec field (dotted path)", key="flt_path", placeholder="optimizer.lr",
                             max_chars=runs_query.MAX_TEXT)
    spec_value = b.text_input("equals", key="flt_value", placeholder="0.001", max_chars=runs_query.MAX_TEXT)
    sort = c.selectbox("Sort", runs_query.SORTS, key="flt_sort")
    d.selectbox("Per page", runs_query.PAGE_SIZES, key="page_size")

# the typed boxes pass the URL's check (runs_query.text_problem): a box that fails it filters nothing
typed = {"q": ("Search", search), "field": ("Any spec field", spec_path), "equals": ("equals", spec_value)}
for url_name, (label, text) in typed.items():
    problem = runs_query.text_problem(url_name, text or "")
    if problem:
        st.warning(plain(f"{label}: {problem}; this filter is not applied."), icon=":material/filter_alt_off:")
        typed[url_name] = (label, "")
search, spec_path, spec_value = (typed[k][1] for k in ("q", "field", "equals"))
filters = {"status": status, "tags": tags, "search": search or None, "sweep_id": sweep,
           **{k: v for k, v in spec_cols.items() if v}, "spec": {spec_path: spec_value} if spec_path else {}}
if ss.get("_filters") != repr(filters) or applied:  # new filters: back to the first page
    ss["_filters"] = repr(filters)
    ss["page"] = 1

params = runs_query.to_params({w: ss.get(w) for w in runs_query.WIDGETS.values()})
ss["_runs_params"], ss["_runs_qs"] = params, runs_query.query_string(params)
if ss["_runs_qs"] != url_qs or applied:  # written again after a link: the browser may show the bare URL
    st.query_params.from_dict(params)
if applied:  # what the URL asked for and could not have stays on screen until the filters change
    ss["_runs_problems_qs"] = ss["_runs_qs"]
if ss.get("_runs_problems_qs") == ss["_runs_qs"]:
    for p in ss.get("_runs_problems", []):
        st.warning(plain(p), icon=":material/link_off:")

saved_views.panel(page="runs")
live = st.toggle("Live updates every 5 s", value=True, key="live")

# --- the table ----------------------------------------------------------------------------------
# Key columns first, so that status, progress, loss ÷ baseline, diagnosis and tags are on screen
# at 1440 px (widths in pixels; the rest scrolls).
KEY_COLUMNS = ("id", "name", "status", "progress", "loss ÷ baseline", "diagnosis", "tags")


def view(df: pd.DataFrame, loss: pd.Series, status: pd.Series) -> pd.DataFrame:
    """The grid's rows. ``val loss`` is numeric (it sorts as numbers and keeps full precision): ``loss``
    and ``status`` are reads.last_loss_columns of the rows, so a diverged run's loss is NaN or ±inf, and
    a run with no epoch yet has none. The grid shows inf as 'Infinity' but a NaN as an empty cell, so
    the status of a run whose last loss is NaN says so ('diverged · loss NaN')."""
    base = reads.loss_baseline(df)
    metric, status = reads.last_metric_columns(df, status)
    out = pd.DataFrame({
        "id": df["id"], "name": df["name"].fillna(""), "status": status, "progress": df["progress"],
        "loss ÷ baseline": reads.loss_ratio(loss, base),
        "diagnosis": df["diagnosis"].fillna(df["message"]).fillna(""), "tags": df["tags"],
        "epoch": [f"{d}/{t}" for d, t in zip(df["epochs_done"], df["epochs_total"])],
        "cell": df["cell"] + df["activation"].map(lambda a: "" if a == "—" else f"/{a}"),
        "task": df["task"] + " T=" + df["seq_len"].astype(str), "layers": df["num_layers"], "seed": df["seed"],
        "val loss": loss, "baseline": base,
        "metric": metric, "metric baseline": df["baseline_metric"], "metric name": df["metric_name"],
        "horizon": df["last_horizon"], "worker": df["worker"].fillna(""),
        "duration": df["duration_s"].map(fmt_duration), "owner": df["owner"].fillna(""), "created": df["created_at"],
    })
    return out


def csv_bytes(df: pd.DataFrame, shown: pd.DataFrame, losses: dict[int, float]) -> bytes:
    """The CSV of the rows shown: the true status, and every number at full precision (floats as
    Python writes them); a last loss or metric that is NaN is written NaN and an infinite one inf or
    -inf, a run with no epoch yet has an empty cell."""
    out = shown.copy()
    out["status"] = df["status"].to_numpy()
    out["val loss"] = pd.Series(loss_cells(df["id"], losses), index=shown.index, dtype=object)
    if "metric" in out:
        out["metric"] = pd.Series(loss_cells(df["id"], reads.last_metrics(list(df["id"]))), index=shown.index,
                                  dtype=object)
    return out.to_csv(index=False).encode()


COLUMNS = {
    "id": st.column_config.NumberColumn("id", width=55, pinned=True),
    "name": st.column_config.TextColumn("name", width=140),
    "status": st.column_config.TextColumn(
        "status", width=135, help="'· loss NaN', '· metric NaN': the run's last val loss or metric is NaN (its "
                                  "cell is empty)"),
    "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0, format="percent",
                                                width=95),
    "loss ÷ baseline": st.column_config.NumberColumn(
        format="%.3g", width=105,
        help=f"the last val loss ÷ {reads.BASELINE_HELP}; < 1 beats the trivial predictor"),
    "diagnosis": st.column_config.TextColumn("diagnosis", width=260),
    "tags": st.column_config.TextColumn("tags", width=120),
    "val loss": st.column_config.NumberColumn(
        "val loss", format="%.4g", help="the last val loss; Infinity where the run diverged to inf, empty where it "
                                        "is NaN (the status says 'loss NaN') or before the first epoch"),
    "baseline": st.column_config.NumberColumn(format="%.4g", help=reads.BASELINE_HELP),
    "metric": st.column_config.NumberColumn(format="%.4g"),
    "metric baseline": st.column_config.NumberColumn(format="%.4g"),
    "horizon": st.column_config.NumberColumn(format="%.1f", help="effective gradient horizon in steps (layer 0)"),
    "created": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
}


def selected_rows(df: pd.DataFrame, positions: list[int]) -> pd.DataFrame:
    """The rows at the ticked positions; a position past the end (a row that is gone) is dropped."""
    return df.iloc[[p for p in positions if 0 <= p < len(df)]]


@st.fragment(run_every=5 if live else None)
def runs_table() -> None:
    with guard("The runs table"):  # a fragment reruns alone, outside the app's guard
        _table()


def _table() -> None:
    counts = reads.status_counts()
    st.caption(" · ".join(f"{s}: {counts.get(s, 0)}" for s in RUN_STATUSES) + f" · total {sum(counts.values())}")
    size = int(ss.get("page_size", runs_query.DEFAULT_PAGE_SIZE))
    page = int(ss.get("page", 1))
    df, total = reads.runs_page(filters, page - 1, size, sort)
    pages = max(1, math.ceil(total / size))
    if page > pages:
        ss["page"], page = pages, pages
        df, total = reads.runs_page(filters, page - 1, size, sort)
    st.caption(f"{total} run(s) match · page {page} of {pages}")
    # The grid's selection is by position. Its key follows the rows shown, so a ticked position always
    # refers to the rows it was ticked on; when the rows change (new filters, a deleted or a new run)
    # the grid starts afresh with the runs still shown ticked again (by id).
    ids = [int(i) for i in df["id"]]
    remembered = set(ss.get("_runs_selected", []))
    default = {"selection": {"rows": [k for k, i in enumerate(ids) if i in remembered], "columns": []}}
    losses, loss, status = reads.last_loss_columns(df)
    shown = view(df, loss, status)
    key = f"runs_table_{hash(tuple(ids)) & 0xFFFFFFFF:08x}"
    event = st.dataframe(shown, column_config=COLUMNS, hide_index=True, key=key, on_select="rerun",
                         selection_mode="multi-row", selection_default=default)
    st.download_button("Download CSV", csv_bytes(df, shown, losses), file_name="runs.csv", mime="text/csv",
                       key=f"{key}_csv", icon=":material/download:")
    selected = selected_rows(df, list(event.selection.rows) if event else [])
    ss["_runs_selected"] = [int(i) for i in selected["id"]]
    st.number_input("Page", min_value=1, max_value=pages, key="page", width=160)
    actions.panel(user, selected)
    st.subheader("Workers")
    w = reads.workers()
    if w.empty:
        st.info("No worker has registered yet. Start one with `rnnlab worker`.")
    else:
        table(w[["name", "alive", "device", "queues", "current_run_id", "heartbeat_at", "heartbeat_age_s", "host",
                 "pid"]],
              "workers", key="workers_table", column_config={
                  "alive": st.column_config.CheckboxColumn("alive"),
                  "heartbeat_age_s": st.column_config.NumberColumn("seconds since heartbeat", format="%.0f"),
                  "heartbeat_at": st.column_config.DatetimeColumn("last heartbeat", format="HH:mm:ss")})


runs_table()
