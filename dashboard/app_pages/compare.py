"""Compare 2–12 runs: curves against each run's trivial baseline, gradient norms, spectra, the per-timestep
profile with the vanilla bound, t × epoch heatmaps, histograms (at one epoch and over training), the
runs' notes and the spec diff. The selection, epoch, layer, gradient (h or c), profile switch, the
difference map's runs A and B, chart options and open tab live in the URL
(?runs=1,2,3&epoch=10&layer=0&kind=c&loss=last&da=3&db=1&smooth=0.6&x=step&view=Heatmaps), so a view
can be shared, and come back when you return to the page. While a selected run is running, the page
below the selection redraws every 5 s."""


import pandas as pd
import streamlit as st

from dashboard import chart_views, page_context, reads, saved_views, views
from dashboard.auth import current_user
from dashboard.components import fmt_duration, guard, loss_cells

MAX_RUNS = 12
PAGE = "compare"
KEYS = ("runs", "epoch", "layer", "kind", "loss", "da", "db", "view", "smooth", "x")
user = current_user()
st.title("Compare runs")
qp, ss = st.query_params, st.session_state
page_context.restore(PAGE, ("runs",))

url_runs = qp.get("runs", "")
if "cmp_ids" not in ss or ss.get("_cmp_url") != url_runs:  # arrived with a (new) URL, or came back
    if len(url_runs) > page_context.MAX_IDS_TEXT:
        st.warning(f"runs: the link's list is longer than {page_context.MAX_IDS_TEXT} characters; only its "
                   "start is read.")
    ss["cmp_ids"] = url_runs[:page_context.MAX_IDS_TEXT]
text = st.text_input("Run ids (2–12)", key="cmp_ids", placeholder="e.g. 12, 13, 14",
                     max_chars=page_context.MAX_IDS_TEXT,
                     help="Or select runs on the Runs page and press Compare. The URL keeps the selection.")
ids, problems = page_context.run_ids(text, "Run ids", MAX_RUNS)
for p in problems:
    st.warning(p, icon=":material/warning:")
runs = reads.runs_by_ids(ids)
missing = sorted(set(ids) - set(runs["id"].astype(int)))
if missing:
    st.warning(f"No such run(s): {', '.join(map(str, missing))}")
ids = runs["id"].astype(int).tolist()
qp["runs"] = ss["_cmp_url"] = ",".join(map(str, ids))
page_context.remember(PAGE, KEYS)
saved_views.panel(page=PAGE)
if len(ids) < 2:
    st.info("Pick at least two runs to compare.")
    if not ids:
        st.stop()

live = chart_views.any_running(runs) and st.toggle(
    "Live updates every 5 s", value=True, key="cmp_live",
    help="While a selected run is queued or running, everything below redraws every 5 s with its new epochs.")


@st.fragment(run_every=chart_views.LIVE_EVERY_S if live else None)
def body() -> None:
    with guard("Compare"):  # a fragment reruns alone, outside the app's guard
        _body()


def _csv(summary: pd.DataFrame, status: pd.Series, losses: dict[int, float]) -> bytes:
    """The summary as CSV: the true status, floats at full precision, a NaN last loss or metric written
    NaN and an infinite one inf (an empty cell only before the first epoch)."""
    out = summary.copy()
    out["status"] = status.to_numpy()
    out["last_val_loss"] = loss_cells(summary["id"], losses)
    out["last_val_metric"] = loss_cells(summary["id"], reads.last_metrics(list(summary["id"])))
    return out.to_csv(index=False).encode()


def _body() -> None:
    runs = reads.runs_by_ids(ids)
    if live and not chart_views.any_running(runs):
        st.rerun()  # the last running run has finished: redraw the whole page once, and stop polling
    epochs = reads.probed_epochs(ids)
    max_layers = int(runs["num_layers"].max())
    epoch, layer, kind, loss = views.profile_controls(
        qp, "cmp", epochs, max_layers, runs["cell"],
        "Each run shows its latest probed epoch at or before this one.")

    summary = runs[["id", "name", "status", "cell", "activation", "task", "seq_len", "num_layers", "seed",
                    "epochs_done"]].copy()
    # the runs row keeps a NaN loss as NULL: the last loss as db.queries reads it (NaN, ±inf restored)
    losses, summary["last_val_loss"], summary["status"] = reads.last_loss_columns(runs)
    summary["baseline"] = reads.loss_baseline(runs)
    summary["loss ÷ baseline"] = reads.loss_ratio(summary["last_val_loss"], summary["baseline"])
    summary["task baseline"] = runs["baseline_loss"]
    # a NaN metric restored, as the loss, and marked in the status (the grid shows NaN as an empty cell)
    summary["last_val_metric"], summary["status"] = reads.last_metric_columns(runs, summary["status"])
    for c in ("last_horizon", "diagnosis"):
        summary[c] = runs[c]
    summary["name"] = summary["name"].fillna("")
    summary["duration"] = runs["duration_s"].map(fmt_duration)
    st.dataframe(summary, hide_index=True, key="cmp_summary", column_config={
        "status": st.column_config.TextColumn(
            help="'· loss NaN', '· metric NaN': the run's last val loss or metric is NaN (its cell is empty)"),
        "last_val_loss": st.column_config.NumberColumn(
            format="%.4g", help="the last val loss; Infinity where the run diverged to inf, empty where it is NaN "
                                "(the status says 'loss NaN') or before the first epoch"),
        "baseline": st.column_config.NumberColumn(format="%.4g", help=reads.BASELINE_HELP),
        "loss ÷ baseline": st.column_config.NumberColumn(
            format="%.3g", help=f"last_val_loss ÷ {reads.BASELINE_HELP}; < 1 beats the trivial predictor"),
        "task baseline": st.column_config.NumberColumn(
            format="%.4g", help="the task's analytic trivial baseline, for reference; the baseline column (and the "
                                 "loss chart's baseline mark) uses it only for a run that stored no held-out one")})
    st.download_button("Download CSV", _csv(summary, runs["status"], losses), file_name="compare_runs.csv",
                       mime="text/csv", key="cmp_summary_csv", icon=":material/download:")
    notes = chart_views.notes(ids)
    if notes:
        with st.expander(f"Notes ({len(notes)} of {len(ids)} runs)", icon=":material/edit_note:", expanded=True):
            for rid in ids:
                if rid in notes:
                    st.caption(f"#{rid}")
                    st.text(notes[rid])  # user text: shown as plain text

    # Lazy tabs: only the open tab runs (server and browser work for one section), and the open tab
    # is kept in the URL (?view=…) with the rest of the view.
    tabs = ["Loss & norms", "Spectra & health", "Per-timestep profile", "Heatmaps", "Histograms",
            "Histograms over time", "Spec diff"]
    curves, health, profile, heat, hist, hist_time, diff = st.tabs(tabs, key="view", bind="query-params")
    if curves.open:
        with curves:
            chart_views.curves(ids, runs, "cmp", chart_views.options_row("cmp"))
    if health.open:
        with health:
            chart_views.layers(ids, runs, layer, "cmp", chart_views.options_row("cmp"))
    if profile.open:
        with profile:
            views.profile(ids, runs, epoch, layer, kind, "cmp", loss)
    if heat.open:
        with heat:
            views.heatmaps(ids, runs, layer, kind, "cmp", loss)
    if hist.open:
        with hist:
            views.histograms(ids, runs, epoch, "cmp")
    if hist_time.open:
        with hist_time:
            chart_views.histogram_history_section(ids, runs, "cmp")
    if diff.open:
        with diff:
            views.spec_table(runs, "cmp")
    page_context.remember(PAGE, KEYS)


body()
