"""The chart sections shared by the Compare and Run-detail pages: curves with baselines, gradient
norms, spectra, activation health, the per-timestep profile with the vanilla bound, t × epoch
heatmaps, gradient histograms and the spec diff."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import charts, reads
from dashboard.components import chart, spec_diff, table
from rnnlab.records import run_label

# tasks whose loss is taken at the last step only: there the bound holds at every step
LAST_STEP_TASKS = frozenset({"adding", "temporal_order", "digits"})


def labels_of(runs: pd.DataFrame) -> dict[int, str]:
    """Run labels for chart titles and legends with &, < and > escaped (Plotly renders a subset of HTML
    in text). Quotes stay as they are: Plotly decodes only a few named entities, so ``&quot;`` would
    show literally (sweep names hold JSON such as clip={"mode":"norm"})."""
    return {int(r["id"]): html.escape(run_label(r), quote=False) for _, r in runs.iterrows()}


# --- which stored profile a chart shows ---------------------------------------------------------
LOSS_CHOICES = {"every": "loss at every step", "last": "loss at the last step"}
LOSS_HELP = ("Loss at every step: ‖∂L/∂h_t‖ of the whole loss. For copy, charlm and forecast it holds every "
             "step's own loss term, so it stays up even when long-range gradients vanish. Loss at the last "
             "step: ‖∂ℓ_T/∂h_t‖, the profile behind log_ratio, horizon and decay. For adding, temporal order "
             "and digits the loss is taken at the last step only, so the two are the same.")


def loss_switch(container, key: str, default: str = "every") -> str:
    """The 'loss at every step' / 'loss at the last step' switch of the profile charts."""
    opts = list(LOSS_CHOICES)
    return container.radio("Profile of the", opts, index=opts.index(default) if default in opts else 0,
                           format_func=LOSS_CHOICES.get, key=key, help=LOSS_HELP)


def profile_kinds(runs: pd.DataFrame, kind: str, loss: str) -> dict[int, str]:
    """The stored grad_profiles kind to show for each run: 'c' stays 'c'; for h, the last-step
    profile is kind 'h_last' for every-step tasks and kind 'h' where the loss is at the last step."""
    out = {}
    for rid, task in zip(runs["id"].astype(int), runs["task"]):
        out[rid] = "h_last" if kind == "h" and loss == "last" and task not in LAST_STEP_TASKS else kind
    return out


def _profiles(ids: list[int], epoch: int | None, layer: int, kinds: dict[int, str]) -> pd.DataFrame:
    parts = [reads.profiles([i for i in ids if kinds[i] == k], epoch, layer, k) for k in dict.fromkeys(kinds.values())]
    parts = [p for p in parts if len(p)]
    if not parts:
        return reads.profiles([], epoch, layer, "h")
    order = {rid: n for n, rid in enumerate(ids)}
    out = pd.concat(parts, ignore_index=True)
    return out.sort_values("run_id", key=lambda c: c.map(order), kind="stable").reset_index(drop=True)


def _no_last_step_note(ids: list[int], kinds: dict[int, str], shown: set[int]) -> None:
    lacking = [i for i in ids if kinds[i] == "h_last" and i not in shown]
    if lacking:
        st.info(f"No last-step-loss profile ‖∂ℓ_T/∂h_t‖ is stored for {', '.join(f'#{i}' for i in lacking)} "
                "(an every-step task recorded before rnnlab stored it, or not probed yet), so the chart leaves "
                "it out. Pick 'loss at every step' to see its ‖∂L/∂h_t‖.", icon=":material/info:")


def _what(kind: str, loss: str) -> str:
    if kind == "c":
        return "‖∂L/∂c_t‖"
    return "‖∂ℓ_T/∂h_t‖ (loss at the last step)" if loss == "last" else "‖∂L/∂h_t‖ (loss at every step)"


def profile(ids: list[int], runs: pd.DataFrame, epoch: int | None, layer: int, kind: str, key: str,
            loss: str = "every") -> None:
    labels = labels_of(runs)
    kinds = profile_kinds(runs, kind, loss)
    prof = _profiles(ids, epoch, layer, kinds)
    log = st.toggle("Log y-axis", value=True, key=f"{key}_prof_log")
    bounds = {}
    tasks = dict(zip(runs["id"].astype(int), runs["task"]))
    if kind == "h" and len(prof):
        ls = reads.layer_stats(ids)
        top = runs.set_index("id")["num_layers"].astype(int).to_dict()
        for rid, g in prof.groupby("run_id"):
            # the bound holds step by step only for the top layer of a vanilla cell with the loss at T
            last_step = kinds[int(rid)] == "h_last" or tasks.get(int(rid)) in LAST_STEP_TASKS
            if not last_step or layer != top.get(int(rid), 1) - 1:
                continue
            row = ls[(ls["run_id"] == rid) & (ls["epoch"] == g["epoch"].iloc[0]) & (ls["layer"] == layer)]
            if len(row) and pd.notna(row["gamma_sigma_max"].iloc[0]):  # γ·σ_max of this epoch (None: gated)
                g_T = g.loc[g["k"] == 0, "norm"]
                if len(g_T) and g_T.iloc[0] > 0 and np.isfinite(g_T.iloc[0]):
                    bounds[int(rid)] = (float(g_T.iloc[0]), float(row["gamma_sigma_max"].iloc[0]))
    what = _what(kind, loss)
    chart(charts.profile(prof, labels, f"Per-timestep gradient {what}, layer {layer}", bounds, log=log,
                         ytitle=what.split(" (")[0]), "grad_profile", key=f"{key}_prof")
    _no_last_step_note(ids, kinds, set(prof["run_id"].astype(int)) if len(prof) else set())
    if bounds:
        st.caption("Dashed: the bound ‖g_T‖·(γ·σ_max)^k, k = T − t steps back [P13], with γ·σ_max of this epoch. "
                   "It is drawn where it holds step by step: vanilla cells, the loss at the last step (adding, "
                   "temporal order, digits, or the last-step profile of an every-step task), the top layer of a stack.")


def heatmaps(ids: list[int], runs: pd.DataFrame, layer: int, kind: str, key: str, loss: str = "every") -> None:
    labels = labels_of(runs)
    kinds = profile_kinds(runs, kind, loss)
    max_t = 200 if len(ids) <= 3 else 120  # small multiples are ~300 px wide: 120 columns is plenty
    mats = [(labels[i], reads.profile_matrix(i, layer, kinds[i], max_t)) for i in ids]
    what = _what(kind, loss)
    chart(charts.heatmaps(mats, f"log10 {what} over t × epoch, layer {layer} (one colour scale)"), "heatmaps",
          key=f"{key}_heat")
    _no_last_step_note(ids, kinds, {i for i, (_, m) in zip(ids, mats) if len(m["epochs"])})
    if len(ids) >= 2:
        a, b = st.columns(2)
        ra = a.selectbox("Difference: run A", ids, index=0, key=f"{key}_da",
                         format_func=lambda i: html.unescape(labels[i]))
        rb = b.selectbox("minus run B", ids, index=1, key=f"{key}_db", format_func=lambda i: html.unescape(labels[i]))
        mat = dict(zip(ids, (m for _, m in mats)))
        chart(charts.diff_heatmap((f"#{ra}", mat[ra]), (f"#{rb}", mat[rb]),
                                  f"Difference of log10 {what.split(' (')[0]}"),
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
    chart(charts.ridgelines(hist, labels, f"Gradient histogram of {param} on the shared log10 bins"), "histograms",
          key=f"{key}_hist")


def spec_table(runs: pd.DataFrame, key: str) -> None:
    only = st.toggle("Only the fields that differ", value=True, key=f"{key}_only")
    diff = spec_diff({f"#{int(i)}": s for i, s in zip(runs["id"], runs["spec"])}, only_diff=only and len(runs) > 1)
    if diff.empty:
        st.caption("The specs are identical.")
    else:
        table(diff, "spec_diff", key=f"{key}_spec")
