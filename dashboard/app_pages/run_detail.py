"""One run (?run=ID): outcome, spec, attempt history, tags and notes, and all of its charts."""

import pandas as pd
import streamlit as st
import yaml

from dashboard import actions, reads, views
from dashboard.auth import can, current_user
from dashboard.components import fmt_duration, plain, run_label, table

user = current_user()
qp = st.query_params
actions.show_flash()
rid = st.number_input("Run id", min_value=1, step=1, key="detail_id",
                      value=int(qp["run"]) if qp.get("run", "").isdigit() else None, placeholder="run id")
if rid is None:
    st.title("Run detail")
    st.info("Enter a run id, or open a run from the Runs page.")
    st.stop()
qp["run"] = str(int(rid))
r = reads.run(int(rid))
if r is None:
    st.title("Run detail")
    st.warning(f"Run {int(rid)} does not exist (it may have been deleted).")
    st.stop()

runs = reads.runs_by_ids([int(rid)])
row = runs.iloc[0]
st.title(plain(run_label(row)))
status_icon = {"succeeded": "✅", "running": "⏳", "queued": "🕓", "failed": "❌", "diverged": "💥", "cancelled": "⏹"}
a, b, c, d = st.columns(4)
a.metric("Status", f"{status_icon.get(r['status'], '')} {r['status']}")
b.metric("Epoch", f"{r['epochs_done']}/{r['epochs_total']}")
c.metric("Val loss (baseline)", "—" if pd.isna(row["last_val_loss"]) else f"{row['last_val_loss']:.4g}",
         delta=None if pd.isna(row["baseline_loss"]) or pd.isna(row["last_val_loss"]) else
         f"{row['last_val_loss'] / row['baseline_loss']:.2f} × baseline", delta_color="off")
d.metric("Duration", fmt_duration(row["duration_s"]) or "—")
if r.get("message"):
    st.text(f"Outcome: {r['message']}")
if r.get("diagnosis"):
    st.text(f"Diagnosis: {r['diagnosis']}")
st.caption(plain(f"Owner {r.get('owner') or '—'} · worker {r.get('worker') or '—'}"
                 f" · code {r.get('code_version') or '—'}"
                 f" · sweep {r.get('sweep_id') or '—'} · spec hash {r['spec_hash'][:12]}"))

actions.panel(user, runs, key="detail_act")
with st.expander("Notes", icon=":material/edit_note:"):
    notes = st.text_area("Notes (plain text)", value=r.get("notes") or "", key="detail_notes")
    if st.button("Save notes", disabled=not can(user, "edit", r.get("owner")), key="detail_save_notes"):
        actions.set_notes(user, int(rid), r.get("owner"), notes)
        st.rerun()
    if r.get("notes"):
        st.text(r["notes"])

probed = reads.probed_epochs([int(rid)])
a, b, c, d = st.columns([3, 1, 1, 1.4])
epoch = (a.select_slider("Epoch of the profile and histograms", probed, value=probed[-1], key="det_epoch")
         if probed else None)
layer = b.selectbox("Layer", list(range(int(r["num_layers"]))), key="det_layer")
kind = c.selectbox("Gradient of", ["h", "c"] if r["cell"] == "lstm" else ["h"], key="det_kind")
loss = views.loss_switch(d, "det_profile_of") if kind == "h" else "every"
TABS = ["Curves", "Spectra & health", "Profile", "Heatmap", "Histograms", "Spec", "Attempts"]
tabs = st.tabs(TABS, key="view", bind="query-params")  # lazy: only the open tab runs
sections = [
    lambda: views.curves([int(rid)], runs, "det"),
    lambda: views.layers([int(rid)], runs, layer, "det"),
    lambda: views.profile([int(rid)], runs, epoch, layer, kind, "det", loss),
    lambda: views.heatmaps([int(rid)], runs, layer, kind, "det", loss),
    lambda: views.histograms([int(rid)], runs, epoch, "det"),
    lambda: _spec(),
    lambda: _attempts(),
]


def _spec() -> None:
    st.code(yaml.safe_dump(r["spec"], sort_keys=False), language="yaml")
    if r.get("info"):
        st.caption("Engine facts (RunInfo)")
        st.json(r["info"], expanded=False)


def _attempts() -> None:
    att = r["attempts"]
    if att.empty:
        st.caption("No attempt yet (the run is queued).")
    else:
        table(att, f"run{int(rid)}_attempts", key="det_attempts")
    st.caption(f"Tags: {plain(r['tags'] and ', '.join(r['tags']) or '—')}")


for tab, draw in zip(tabs, sections):
    if tab.open:
        with tab:
            draw()
