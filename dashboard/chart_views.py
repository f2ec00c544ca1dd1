"""The time-series sections of Compare and Run detail with the chart options: one options row (EMA
smoothing, x axis: epoch, optimizer step or time) over every time-series chart, a log/linear toggle
on each chart, and the gradient histogram of one parameter across epochs. Plus the cached reads of
db.queries through dashboard.reads."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts, page_context, reads
from dashboard.components import chart
from dashboard.views import labels_of, left_out, note_left_out, shown_runs

LIVE_EVERY_S = 5


# --- reads (cached in dashboard.reads, keyed by each run's progress) --------------------------------

epoch_clock = reads.epoch_clock
histogram_history = reads.histogram_history
notes = reads.notes


# --- the options row -------------------------------------------------------------------------------

def options_row(key: str) -> charts.ChartOptions:
    """The smoothing slider and the x-axis choice, kept in the URL (?smooth=0.6&x=step) and checked
    when read back."""
    qp = st.query_params
    smooth, bad = page_context.number_in_range(qp.get("smooth"), "smooth", 0.0, charts.MAX_SMOOTHING, 0.0)
    x = qp.get("x", "epoch")
    if x not in charts.X_AXES:
        bad = f"x: {x[:40]!r} is not one of {', '.join(charts.X_AXES)}; using epoch."
        x = "epoch"
    if bad:
        st.warning(bad, icon=":material/link_off:")
    a, b = st.columns([2, 3])
    smooth = a.slider("Smoothing (EMA weight)", 0.0, charts.MAX_SMOOTHING, value=round(smooth, 2), step=0.01,
                      key=f"{key}_smooth", help="Exponential moving average s_i = w·s_{i−1} + (1 − w)·y_i, "
                      "starting at the first value (docs/dashboard.md). 0 is off. The raw data stay faint "
                      "underneath; NaN and ±inf are never averaged in and keep their markers.")
    opts = list(charts.X_AXES)
    x = b.radio("x axis", opts, index=opts.index(x), key=f"{key}_x", horizontal=True, format_func=charts.X_AXES.get,
                help="Optimizer step: the optimizer steps taken so far. Time: the training and diagnostics "
                     "seconds spent so far (queueing and pauses between attempts are not counted).")
    if smooth:
        qp["smooth"] = f"{smooth:g}"
    else:
        qp.pop("smooth", None)
    if x != "epoch":
        qp["x"] = x
    else:
        qp.pop("x", None)
    return charts.ChartOptions(smoothing=float(smooth), x=x)


def _log(container, label: str, key: str, default: bool, help: str | None = None) -> bool:
    return container.toggle(label, value=default, key=key, help=help)


# --- sections ----------------------------------------------------------------------------------------

def curves(ids: list[int], runs: pd.DataFrame, key: str, opts: charts.ChartOptions) -> None:
    labels = labels_of(runs)
    clock = epoch_clock(ids)
    ep = reads.with_clock(reads.epochs(ids), clock)
    metric = ", ".join(sorted({m for m in runs["metric_name"].dropna()})) or "metric"
    x, sm = opts.x, opts.smoothing
    a, b = st.columns(2)
    with a:
        log = _log(st, "Log y-axis", f"{key}_log", True)
        # the baseline each run's loss is divided by elsewhere (held-out when stored, else analytic);
        # only held-out baselines of one task configuration may share a band (reads.heldout_keys)
        chart(charts.curves(ep, "val_loss", labels, "Validation loss (grey: the trivial predictor's loss)", log=log,
                            baselines=dict(zip(runs["id"], reads.loss_baseline(runs))),
                            kinds=dict(zip(runs["id"], reads.heldout_keys(runs))), x=x, smooth=sm),
              "val_loss", key=f"{key}_loss")
    with b:
        mlog = _log(st, "Log y-axis", f"{key}_metric_log", False)
        chart(charts.curves(ep, "val_metric", labels, f"Validation {metric}", ytitle=metric, log=mlog,
                            # the task's metric baseline: a line per distinct value where it is analytic (chance
                            # level), one band where each seed's held-out set measured it (forecast)
                            baselines=dict(zip(runs["id"], runs["baseline_metric"])),
                            kinds=dict(zip(runs["id"], reads.metric_kinds(runs))), x=x, smooth=sm),
              "val_metric", key=f"{key}_metric")
    glog = _log(st, "Log y-axes (gradient norms)", f"{key}_global_log", True)
    chart(charts.two_panel(ep, [("grad_norm_mean", "global ‖∇θ‖ before clipping (mean over steps)", glog),
                                ("grad_norm_max", "max over steps", glog),
                                ("clip_fraction", "fraction of steps clipped", False)],
                           labels, "Global gradient norm and clipping", x=x, smooth=sm),
          "global_norm", key=f"{key}_global")
    names = list(dict.fromkeys(n for inf in runs["info"] for n in ((inf or {}).get("param_names") or [])))
    names = names or reads.param_names(ids)
    default = [n for n in names if n.startswith("weight_hh")] or names[:4]
    c, d = st.columns([4, 1])
    chosen = c.multiselect("Parameters", names, default=default, key=f"{key}_pick", max_selections=12,
                           help="Gradient norm of each chosen parameter, one small chart per parameter.")
    plog = _log(d, "Log y-axes", f"{key}_params_log", True)
    ps = reads.with_clock(reads.param_stats(ids, params=chosen), clock)
    chart(charts.facets(ps, "grad_norm_mean", "param", labels,
                        "Gradient norm per parameter (mean over the epoch's steps)", log=plog, x=x, smooth=sm),
          "param_grad_norms", key=f"{key}_params")


def layers(ids: list[int], runs: pd.DataFrame, layer: int, key: str, opts: charts.ChartOptions) -> None:
    labels = labels_of(runs)
    ls = reads.layer_stats(ids)
    ls = ls[ls["layer"] == layer] if len(ls) else ls
    ls = reads.with_clock(ls, epoch_clock(ids))
    x, sm = opts.x, opts.smoothing

    def draw(fig, name: str, what: str, chart_key: str) -> None:
        chart(fig, name, key=chart_key)
        note_left_out(what, left_out(ids, runs, shown_runs(fig), layer))   # e.g. a 1-layer run at layer 1

    log = _log(st, "Log y-axes", f"{key}_spec_log", True,
               "A spectral radius that grows from 3 to 9,000 is readable only on a log axis.")
    draw(charts.two_panel(ls, [("rho", "ρ(W_hh) spectral radius", log), ("sigma_max", "σ_max(W_hh)", log),
                               ("gamma_sigma_max", "γ·σ_max (vanilla; < 1 ⇒ vanishing)", log)],
                          labels, f"Recurrent spectra, layer {layer}", hlines={"gamma_sigma_max": 1.0}, x=x,
                          smooth=sm),
         "spectra", "spectra chart", f"{key}_spec")
    hlog = _log(st, "Log y-axes", f"{key}_health_log", False, "Small fractions (1e-3) show only on a log axis.")
    draw(charts.two_panel(ls, [("saturated_frac", "saturated fraction (tanh |h|>0.99, sigmoid <0.01 or >0.99)",
                                hlog),
                               ("dead_frac", "dead ReLU fraction", hlog)], labels,
                          f"Activation health, layer {layer}", x=x, smooth=sm),
         "health", "activation health chart", f"{key}_health")
    flog = _log(st, "Log y-axis for the horizon", f"{key}_flow_log", False,
                "log10 ‖g_1‖/‖g_T‖ and the decay are logarithms already (and often negative): they stay linear.")
    draw(charts.two_panel(ls, [("horizon", "effective horizon (steps)", flog),
                               ("log_ratio", "log10 ‖g_1‖/‖g_T‖", False),
                               ("decay_per_step", "decay of log10‖g_t‖ per step", False)], labels,
                          f"Gradient-flow summaries over training, layer {layer}", x=x, smooth=sm),
         "flow_summaries", "gradient-flow chart", f"{key}_flow")


def histogram_history_section(ids: list[int], runs: pd.DataFrame, key: str) -> None:
    """One parameter's log10|g| histogram across epochs, one heatmap panel per run."""
    labels = labels_of(runs)
    names = reads.param_names(ids)
    if not names:
        st.info("No gradient histograms recorded for these runs yet.")
        return
    a, b = st.columns([3, 2])
    default = next((i for i, n in enumerate(names) if n.startswith("weight_hh")), 0)
    param = a.selectbox("Parameter", names, index=default, key=f"{key}_hparam")
    value = b.radio("Colour", list(charts.HIST_VALUES), key=f"{key}_hvalue", horizontal=True,
                    format_func=charts.HIST_VALUES.get)
    hist = histogram_history(ids, param)
    mats = [(labels[i], charts.hist_matrix(hist[hist["run_id"] == i])) for i in ids if (hist["run_id"] == i).any()]
    chart(charts.hist_heatmap(mats, f"Gradient histogram of {param} over training (log10|g| bins)", value=value),
          "histogram_over_time", key=f"{key}_hheat")
    missing = [i for i in ids if not (hist["run_id"] == i).any()]
    if missing:
        st.caption(f"No histogram of {param} for {', '.join(f'#{i}' for i in missing)}.")


ACTIVE = ("queued", "running")   # a run whose page keeps redrawing: it will have new epochs


def any_running(runs: pd.DataFrame) -> bool:
    """True while some run of ``runs`` is queued or running (its page polls for new epochs)."""
    return bool(runs["status"].isin(ACTIVE).any())
