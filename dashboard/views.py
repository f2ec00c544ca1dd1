"""The chart sections shared by the Compare and Run-detail pages: curves with baselines, gradient
norms, spectra, activation health, the per-timestep profile with the vanilla bound, t × epoch
heatmaps, gradient histograms and the spec diff."""

from __future__ import annotations

import html

import pandas as pd
import streamlit as st

from dashboard import charts, reads
from dashboard.components import chart, run_label, spec_diff, table

# tasks whose loss is taken at the last step only: there the bound holds at every step
LAST_STEP_TASKS = frozenset({"adding", "temporal_order", "digits"})


def labels_of(runs: pd.DataFrame) -> dict[int, str]:
    """Run labels for chart titles and legends, HTML-escaped (Plotly renders a subset of HTML in text)."""
    return {int(r["id"]): html.escape(run_label(r)) for _, r in runs.iterrows()}


def _info(runs: pd.DataFrame) -> dict[int, dict]:
    return {int(i): (inf or {}) for i, inf in zip(runs["id"], runs["info"])}


def curves(ids: list[int], runs: pd.DataFrame, key: str) -> None:
    labels = labels_of(runs)
    ep = reads.epochs(ids)
    metric = ", ".join(sorted({m for m in runs["metric_name"].dropna()})) or "metric"
    a, b = st.columns(2)
    with a:
        chart(charts.curves(ep, "val_loss", labels, "Validation loss (dotted: the task's trivial baseline)", log=True,
                            baselines=dict(zip(runs["id"], runs["baseline_loss"]))), "val_loss", key=f"{key}_loss")
    with b:
        chart(charts.curves(ep, "val_metric", labels, f"Validation {metric}", ytitle=metric,
                            baselines=dict(zip(runs["id"], runs["baseline_metric"]))), "val_metric", key=f"{key}_metric")
    chart(charts.two_panel(ep, [("grad_norm_mean", "global ‖∇θ‖ before clipping (mean over steps)", True),
                                ("grad_norm_max", "max over steps", True), ("clip_fraction", "fraction of steps clipped", False)],
                           labels, "Global gradient norm and clipping"), "global_norm", key=f"{key}_global")
    names = list(dict.fromkeys(n for inf in _info(runs).values() for n in inf.get("param_names") or []))
    names = names or reads.param_names(ids)
    default = [n for n in names if n.startswith("weight_hh")] or names[:4]
    chosen = st.multiselect("Parameters", names, default=default, key=f"{key}_pick",
                            help="Gradient norm of each chosen parameter, one small chart per parameter.")
    ps = reads.param_stats(ids, params=chosen)
    chart(charts.facets(ps, "grad_norm_mean", "param", labels,
                        "Gradient norm per parameter (mean over the epoch's steps)"), "param_grad_norms", key=f"{key}_params")


def layers(ids: list[int], runs: pd.DataFrame, layer: int, key: str) -> None:
    labels = labels_of(runs)
    ls = reads.layer_stats(ids)
    ls = ls[ls["layer"] == layer] if len(ls) else ls
    chart(charts.two_panel(ls, [("rho", "ρ(W_hh) spectral radius", False), ("sigma_max", "σ_max(W_hh)", False),
                                ("gamma_sigma_max", "γ·σ_max (vanilla; < 1 ⇒ vanishing)", False)],
                           labels, f"Recurrent spectra, layer {layer}", hlines={"gamma_sigma_max": 1.0}), "spectra", key=f"{key}_spec")
    chart(charts.two_panel(ls, [("saturated_frac", "saturated fraction (tanh |h|>0.99, sigmoid <0.01 or >0.99)", False),
                                ("dead_frac", "dead ReLU fraction", False)], labels, f"Activation health, layer {layer}"),
          "health", key=f"{key}_health")
    chart(charts.two_panel(ls, [("horizon", "effective horizon (steps)", False), ("log_ratio", "log10 ‖g_1‖/‖g_T‖", False),
                                ("decay_per_step", "decay of log10‖g_t‖ per step", False)], labels,
                           f"Gradient-flow summaries over training, layer {layer}"), "flow_summaries", key=f"{key}_flow")


def profile(ids: list[int], runs: pd.DataFrame, epoch: int | None, layer: int, kind: str, key: str) -> None:
    labels = labels_of(runs)
    prof = reads.profiles(ids, epoch, layer, kind)
    info, bounds = _info(runs), {}
    if kind == "h" and len(prof):
        ls = reads.layer_stats(ids)
        top = runs.set_index("id")["num_layers"].astype(int).to_dict()
        for rid, g in prof.groupby("run_id"):
            # the bound holds step by step only for the top layer of a vanilla cell with the loss at T
            if info.get(int(rid), {}).get("task") not in LAST_STEP_TASKS or layer != top.get(int(rid), 1) - 1:
                continue
            row = ls[(ls["run_id"] == rid) & (ls["epoch"] == g["epoch"].iloc[0]) & (ls["layer"] == layer)]
            if len(row) and pd.notna(row["gamma_sigma_max"].iloc[0]):  # γ·σ_max of this epoch (None: gated)
                g_T = g.loc[g["k"] == 0, "norm"]
                if len(g_T) and g_T.iloc[0] > 0:
                    bounds[int(rid)] = (float(g_T.iloc[0]), float(row["gamma_sigma_max"].iloc[0]))
    what = "‖∂L/∂h_t‖" if kind == "h" else "‖∂L/∂c_t‖"
    chart(charts.profile(prof, labels, f"Per-timestep gradient {what}, layer {layer}", bounds), "grad_profile", key=f"{key}_prof")
    if bounds:
        st.caption("Dashed: the bound ‖g_T‖·(γ·σ_max)^k, k = T − t steps back [P13], with γ·σ_max of this epoch. "
                   "It is drawn where it holds step by step: vanilla cells, the loss at the last step (adding, "
                   "temporal order, digits), the top layer of a stack.")


def heatmaps(ids: list[int], runs: pd.DataFrame, layer: int, kind: str, key: str) -> None:
    labels = labels_of(runs)
    max_t = 200 if len(ids) <= 3 else 120  # small multiples are ~300 px wide: 120 columns is plenty
    mats = [(labels[i], reads.profile_matrix(i, layer, kind, max_t)) for i in ids]
    chart(charts.heatmaps(mats, f"log10 ‖∂L/∂h_t‖ over t × epoch, layer {layer} (one colour scale)"), "heatmaps", key=f"{key}_heat")
    if len(ids) >= 2:
        a, b = st.columns(2)
        ra = a.selectbox("Difference: run A", ids, index=0, key=f"{key}_da", format_func=lambda i: html.unescape(labels[i]))
        rb = b.selectbox("minus run B", ids, index=1, key=f"{key}_db", format_func=lambda i: html.unescape(labels[i]))
        mat = dict(zip(ids, (m for _, m in mats)))
        chart(charts.diff_heatmap((f"#{ra}", mat[ra]), (f"#{rb}", mat[rb]), "Difference of log10‖∂L/∂h_t‖"),
              "difference_heatmap", key=f"{key}_diff")


def histograms(ids: list[int], runs: pd.DataFrame, epoch: int | None, key: str) -> None:
    labels = labels_of(runs)
    names = reads.param_names(ids)
    if not names:
        st.info("No gradient histograms recorded for these runs yet.")
        return
    default = next((i for i, n in enumerate(names) if n.startswith("weight_hh")), 0)
    param = st.selectbox("Parameter", names, index=default, key=f"{key}_param")
    hist = reads.histograms(ids, epoch, param)
    chart(charts.ridgelines(hist, labels, f"Gradient histogram of {param} on the shared log10 bins"), "histograms", key=f"{key}_hist")


def spec_table(runs: pd.DataFrame, key: str) -> None:
    only = st.toggle("Only the fields that differ", value=True, key=f"{key}_only")
    diff = spec_diff({f"#{int(i)}": s for i, s in zip(runs["id"], runs["spec"])}, only_diff=only and len(runs) > 1)
    if diff.empty:
        st.caption("The specs are identical.")
    else:
        table(diff, "spec_diff", key=f"{key}_spec")
