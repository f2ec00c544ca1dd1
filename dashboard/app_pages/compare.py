"""Compare 2–12 runs: curves against the task baseline, gradient norms, spectra, the per-timestep
profile with the vanilla bound, t × epoch heatmaps, histograms and the spec diff. The selection,
epoch, layer, profile switch and open tab live in the URL (?runs=1,2,3&epoch=10&layer=0&loss=last&view=Heatmaps),
so a view can be shared."""

import streamlit as st

from dashboard import reads, views
from dashboard.auth import current_user
from dashboard.components import fmt_duration, parse_ids, table

MAX_RUNS = 12
user = current_user()
st.title("Compare runs")
qp = st.query_params

ss = st.session_state
if ss.get("_cmp_url") != qp.get("runs", ""):  # arrived with a (new) shared URL
    ss["cmp_ids"] = qp.get("runs", "")
text = st.text_input("Run ids (2–12)", key="cmp_ids", placeholder="e.g. 12, 13, 14",
                     help="Or select runs on the Runs page and press Compare. The URL keeps the selection.")
ids = parse_ids(text)
if len(ids) > MAX_RUNS:
    st.warning(f"Showing the first {MAX_RUNS} of {len(ids)} runs.")
    ids = ids[:MAX_RUNS]
runs = reads.runs_by_ids(ids)
missing = sorted(set(ids) - set(runs["id"].astype(int)))
if missing:
    st.warning(f"No such run(s): {', '.join(map(str, missing))}")
ids = runs["id"].astype(int).tolist()
qp["runs"] = ss["_cmp_url"] = ",".join(map(str, ids))
if len(ids) < 2:
    st.info("Pick at least two runs to compare.")
    if not ids:
        st.stop()

epochs = reads.probed_epochs(ids)
max_layers = int(runs["num_layers"].max())
a, b, c, d = st.columns([3, 1, 1, 1.4])
want = int(qp["epoch"]) if qp.get("epoch", "").isdigit() else None
if epochs:
    default = max((e for e in epochs if want is None or e <= want), default=epochs[-1])
    epoch = a.select_slider("Epoch of the profile and histograms", epochs, value=default, key="cmp_epoch",
                            help="Each run shows its latest probed epoch at or before this one.")
    qp["epoch"] = str(epoch)
else:
    epoch = None
    a.caption("No per-timestep probes recorded yet.")
want_layer = int(qp["layer"]) if qp.get("layer", "").isdigit() else 0
layer = b.selectbox("Layer", list(range(max_layers)), index=min(want_layer, max_layers - 1), key="cmp_layer")
qp["layer"] = str(layer)
kind = c.selectbox("Gradient of", ["h", "c"] if (runs["cell"] == "lstm").any() else ["h"], key="cmp_kind",
                   format_func=lambda k: "h_t (hidden)" if k == "h" else "c_t (LSTM cell)")
loss = views.loss_switch(d, "cmp_profile_of", qp.get("loss", "every")) if kind == "h" else "every"
qp["loss"] = loss

summary = runs[["id", "name", "status", "cell", "activation", "task", "seq_len", "num_layers", "seed", "epochs_done",
                "last_val_loss", "baseline_loss", "last_val_metric", "last_horizon", "diagnosis"]].copy()
summary["name"] = summary["name"].fillna("")
summary["duration"] = runs["duration_s"].map(fmt_duration)
table(summary, "compare_runs", key="cmp_summary")

# Lazy tabs: only the open tab runs (server and browser work for one section), and the open tab
# is kept in the URL (?view=…) with the rest of the view.
TABS = ["Loss & norms", "Spectra & health", "Per-timestep profile", "Heatmaps", "Histograms", "Spec diff"]
curves, health, profile, heat, hist, diff = st.tabs(TABS, key="view", bind="query-params")
if curves.open:
    with curves:
        views.curves(ids, runs, "cmp")
if health.open:
    with health:
        views.layers(ids, runs, layer, "cmp")
if profile.open:
    with profile:
        views.profile(ids, runs, epoch, layer, kind, "cmp", loss)
if heat.open:
    with heat:
        views.heatmaps(ids, runs, layer, kind, "cmp", loss)
if hist.open:
    with hist:
        views.histograms(ids, runs, epoch, "cmp")
if diff.open:
    with diff:
        views.spec_table(runs, "cmp")
