"""Runs: every run with its status and progress, filtered and paginated on the server, updated live
(only the table reruns); actions on the selected runs; the workers panel."""

import math

import pandas as pd
import streamlit as st

from dashboard import actions, reads
from dashboard.auth import current_user
from dashboard.components import fmt_duration, guard, table
from db.models import RUN_STATUSES

user = current_user()
st.title("Runs")
actions.show_flash()
opts = reads.filter_options()

with st.expander("Filters", expanded=True, icon=":material/filter_list:"):
    a, b, c, d = st.columns(4)
    status = a.multiselect("Status", RUN_STATUSES, key="flt_status")
    tags = b.multiselect("Tags (any of)", opts["tags"], key="flt_tags")
    search = c.text_input("Search name / diagnosis / message", key="flt_search")
    sweep = d.selectbox("Sweep", [None] + [s["id"] for s in opts["sweeps"]], key="flt_sweep",
                        format_func=lambda i: "all" if i is None else next(
                            f"#{s['id']} {s['name'] or ''} ({s['n_runs']} runs)"
                            for s in opts["sweeps"] if s["id"] == i))
    cols = st.columns(7)
    spec_cols = {}
    for col, name in zip(cols, ("task", "cell", "activation", "init", "clip", "num_layers", "seq_len")):
        spec_cols[name] = col.multiselect(name, opts.get(name, []), key=f"flt_{name}")
    a, b, c = st.columns([2, 2, 1])
    spec_path = a.text_input("Any spec field (dotted path)", key="flt_path", placeholder="optimizer.lr")
    spec_value = b.text_input("equals", key="flt_value", placeholder="0.001")
    sort = c.selectbox("Sort", ["newest", "oldest", "val_loss", "horizon"], key="flt_sort")

filters = {"status": status, "tags": tags, "search": search or None, "sweep_id": sweep,
           **{k: v for k, v in spec_cols.items() if v}, "spec": {spec_path: spec_value} if spec_path else {}}
if st.session_state.get("_filters") != repr(filters):  # new filters: back to the first page
    st.session_state["_filters"] = repr(filters)
    st.session_state["page"] = 1
live = st.toggle("Live updates every 5 s", value=True, key="live")


def view(df: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame({
        "id": df["id"], "name": df["name"].fillna(""), "status": df["status"], "progress": df["progress"],
        "epoch": [f"{d}/{t}" for d, t in zip(df["epochs_done"], df["epochs_total"])],
        "cell": df["cell"] + df["activation"].map(lambda a: "" if a == "—" else f"/{a}"),
        "task": df["task"] + " T=" + df["seq_len"].astype(str), "layers": df["num_layers"], "seed": df["seed"],
        "val loss": df["last_val_loss"], "baseline": df["baseline_loss"],
        "loss ÷ baseline": df["last_val_loss"] / df["baseline_loss"],
        "metric": df["last_val_metric"], "metric baseline": df["baseline_metric"], "metric name": df["metric_name"],
        "horizon": df["last_horizon"],
        "diagnosis": df["diagnosis"].fillna(df["message"]).fillna(""), "worker": df["worker"].fillna(""),
        "duration": df["duration_s"].map(fmt_duration), "owner": df["owner"].fillna(""), "tags": df["tags"],
        "created": df["created_at"],
    })
    return out


COLUMNS = {
    "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0, format="percent"),
    "val loss": st.column_config.NumberColumn(format="%.4g"), "baseline": st.column_config.NumberColumn(format="%.4g"),
    "loss ÷ baseline": st.column_config.NumberColumn(format="%.3f", help="< 1 beats the trivial predictor"),
    "metric": st.column_config.NumberColumn(format="%.4g"),
    "metric baseline": st.column_config.NumberColumn(format="%.4g"),
    "horizon": st.column_config.NumberColumn(format="%.1f", help="effective gradient horizon in steps (layer 0)"),
    "created": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
}


@st.fragment(run_every=5 if live else None)
def runs_table() -> None:
    with guard("The runs table"):  # a fragment reruns alone, outside the app's guard
        _table()


def _table() -> None:
    counts = reads.status_counts()
    st.caption(" · ".join(f"{s}: {counts.get(s, 0)}" for s in RUN_STATUSES) + f" · total {sum(counts.values())}")
    size = st.session_state.get("page_size", 50)
    page = int(st.session_state.get("page", 1))
    df, total = reads.runs_page(filters, page - 1, size, sort)
    pages = max(1, math.ceil(total / size))
    if page > pages:
        st.session_state["page"], page = pages, pages
        df, total = reads.runs_page(filters, page - 1, size, sort)
    st.caption(f"{total} run(s) match · page {page} of {pages}")
    event = table(view(df), "runs", key="runs_table", column_config=COLUMNS,
                  on_select="rerun", selection_mode="multi-row")
    a, b, _ = st.columns([1, 1, 4])
    a.number_input("Page", min_value=1, max_value=pages, key="page")
    b.selectbox("Per page", [25, 50, 100, 200], index=1, key="page_size")
    selected = df.iloc[event.selection.rows] if event and event.selection.rows else df.iloc[0:0]
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
