"""Strategies: group a sweep (or any runs) by one factor, aggregate the seeds with a band, and read the
conclusion and a plain-words verdict per group on screen, best first, above the summary table
(?sweep=3&factor=cell or ?runs=…&factor=…). The same verdicts as `rnnlab compare` (rnnlab.strategies)."""

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import analysis, charts, reads
from dashboard.auth import current_user
from dashboard.components import chart, parse_ids, plain, table

user = current_user()
st.title("Strategies")
st.caption("Which mitigation of vanishing/exploding gradients works here, and how sure are we?")
qp, ss = st.query_params, st.session_state
opts = reads.filter_options()

sources = ["Sweep", "Run ids", "Tag"]
default_src = "Run ids" if qp.get("runs") else ("Tag" if qp.get("tag") else "Sweep")
src = st.segmented_control("Runs from", sources, default=default_src, key="st_src") or default_src
if src == "Sweep":
    sweep_ids = [s["id"] for s in opts["sweeps"]]
    if not sweep_ids:
        st.info("No sweep yet: submit one from New experiment (presets are a quick start), or use run ids or a tag.")
        st.stop()
    want = int(qp["sweep"]) if qp.get("sweep", "").isdigit() and int(qp["sweep"]) in sweep_ids else sweep_ids[0]
    sweep = st.selectbox("Sweep", sweep_ids, index=sweep_ids.index(want), key="st_sweep", format_func=lambda i: next(
        f"#{s['id']} {s['name'] or ''} ({s['n_runs']} runs)" for s in opts["sweeps"] if s["id"] == i))
    qp["sweep"] = str(sweep)
    filters = {"sweep_id": sweep}
elif src == "Run ids":
    ss.setdefault("st_ids", qp.get("runs", ""))
    ids_in = parse_ids(st.text_input("Run ids", key="st_ids"))
    qp["runs"] = ",".join(map(str, ids_in))
    filters = {"ids": ids_in or [-1]}
else:
    tag = st.selectbox("Tag", opts["tags"] or ["—"], key="st_tag")
    qp["tag"] = tag
    filters = {"tags": [tag]}
listed, total = reads.runs_page(filters, 0, 1000, "oldest")
if total == 0:
    st.info("No runs match.")
    st.stop()
if total > 1000:
    st.warning(f"Using the first 1,000 of {total} runs.")
runs = reads.runs_by_ids(listed["id"].tolist())

factors = list(analysis.FACTORS)
want_f = qp.get("factor") if qp.get("factor") in factors else analysis.varying_factor(runs)
a, b = st.columns(2)
factor = a.selectbox("Factor", factors, index=factors.index(want_f), key="st_factor",
                     help="Runs are grouped by this factor's value; the seeds in a group are aggregated.")
band = b.radio("Band", ["min–max", "95% CI"], horizontal=True, key="st_band")
qp["factor"] = factor
groups = analysis.groups_of(runs, factor)
ids = [int(i) for i in runs["id"]]
final = reads.final_summary(ids)
summary = analysis.summary(runs, final, groups, reads.run_health(ids))

st.markdown(plain(analysis.overall(summary, factor)).replace(r"\*\*", "**"))
for r in summary.to_dict("records"):   # the verdicts on screen, one block per group, best first
    with st.container(border=True):
        mark = f"**#{r['rank']}**" if not pd.isna(r["rank"]) else ("⚠️" if r["_broken"] else "—")
        st.markdown(f"{mark} **{plain(r['group'])}**: {plain(r['verdict'])}")
COLUMNS = ["rank", "group", "beats baseline", "loss ÷ baseline", "solve rate", "final loss", "loss 95% CI",
           "horizon (steps)", "‖g_1‖/‖g_T‖", "non-finite steps", "saturated", "flags", "confounded", "runs",
           "finished", "seeds", "diverged", "decay / step", "T", "verdict"]
shown = summary[COLUMNS].assign(rank=[f"#{k}" if not pd.isna(k) else "—" for k in summary["rank"]])
table(shown, f"strategies_{factor}", key="st_summary", column_config={
    "rank": st.column_config.TextColumn(help="only groups that beat the baseline and are not flagged are ranked"),
    "solve rate": st.column_config.ProgressColumn(
        min_value=0.0, max_value=1.0, format="percent",
        help=f"final val loss ≤ {analysis.SOLVED_FRACTION:.0%} of the trivial baseline"),
    "beats baseline": st.column_config.CheckboxColumn(
        help="the upper end of the 95% interval of loss ÷ baseline is below 1"),
    "final loss": st.column_config.NumberColumn(format="%.4g", help="geometric mean over finished runs"),
    "loss ÷ baseline": st.column_config.NumberColumn(format="%.3f"),
    "horizon (steps)": st.column_config.NumberColumn(format="%.1f"),
    "‖g_1‖/‖g_T‖": st.column_config.NumberColumn(format="%.2e", help="geometric mean, layer 0, last probe"),
    "saturated": st.column_config.NumberColumn(format="percent", help="largest saturated fraction at the last probe"),
    "decay / step": st.column_config.NumberColumn(
        format="%.4f", help="slope of log10‖g_t‖ per step back (layer 0, last probe)")})

ep = reads.epochs(ids)
baseline = float(runs["baseline_loss"].dropna().median()) if runs["baseline_loss"].notna().any() else None
chart(charts.band(analysis.aggregate(ep, groups, "epoch", "val_loss", band, log=True), "epoch",
                  f"Validation loss by {factor} (geometric mean, {band} band over seeds)", "val loss", log=True,
                  baseline=baseline), f"strategy_loss_{factor}", key="st_loss")
ls = reads.layer_stats(ids)
ls0 = ls[ls["layer"] == 0] if len(ls) else ls
chart(charts.band(analysis.aggregate(ls0, groups, "epoch", "horizon", band), "epoch",
                  f"Effective gradient horizon by {factor} (layer 0)", "horizon (steps)"),
      f"strategy_horizon_{factor}", key="st_hor")
prof = reads.profiles(ids, None, 0, "h")
if len(prof):
    prof = prof[np.isfinite(prof["norm"])]
    chart(charts.band(analysis.aggregate(prof, groups, "k", "norm", band, log=True), "k",
                      f"‖∂L/∂h_t‖ at the last probe vs steps back k = T − t, by {factor}", "‖∂L/∂h_t‖", log=True),
          f"strategy_profile_{factor}", key="st_prof")
