"""The chart sections shared by the Compare and Run-detail pages: curves with baselines, gradient
norms, spectra, activation health, the per-timestep profile with the vanilla bound, t × epoch
heatmaps, gradient histograms and the spec diff."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import charts, page_context, reads
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


def url_choice(text: str | None, field: str, options: list, default, *, why: str | None = None
               ) -> tuple[object, str | None]:
    """A choice read from the URL: ``text`` if it is one of ``options`` (compared as text), else
    ``default`` and a message naming ``field`` (``why`` says why when given, else what is allowed).
    Absent: ``default`` and no message."""
    if text is None:
        return default, None
    for o in options:
        if str(o) == text:
            return o, None
    return default, f"{field}: {text[:40]!r} {why or 'is not one of ' + ', '.join(map(str, options))}; using {default}."


GRADIENT_OF = {"h": "h_t (hidden)", "c": "c_t (LSTM cell)"}


def gradient_switch(container, key: str, cells, default: str | None = None) -> str:
    """The 'Gradient of' choice (h_t, or c_t when a run is an LSTM), starting at ``default`` (from the
    URL's ?kind=; checked, with a warning when it is not offered)."""
    opts = ["h", "c"] if "lstm" in set(cells) else ["h"]
    kind = "h"
    if key not in st.session_state:   # the URL counts when the switch is (re)created: not after it
        why = "needs an LSTM run (no c_t otherwise)" if default == "c" else None
        kind, bad = url_choice(default, "URL field 'kind'", opts, "h", why=why)
        if bad:
            st.warning(bad, icon=":material/link_off:")
    return container.selectbox("Gradient of", opts, index=opts.index(kind), key=key, format_func=GRADIENT_OF.get)


MAX_URL_EPOCH = 10 ** 9 - 1   # bounds of the epoch and layer read from a page's URL
MAX_URL_LAYER = 999


def profile_controls(qp, key: str, epochs: list[int], n_layers: int, cells,
                     epoch_help: str) -> tuple[int | None, int, str, str]:
    """The row above Compare's and Run detail's charts: epoch of the profile and histograms, layer,
    gradient of (h_t, c_t) and the profile's loss, each starting at the URL's value (``qp``: the page's
    query params; ?epoch= the latest probed epoch at or before it, ?layer= clamped to the last layer,
    ?kind=, ?loss=; a bad value is named in a warning and falls back) and written back to the URL, so a
    link reopens the same view. ``epochs``: the probed epochs; ``key``: the widgets' key prefix.
    Returns (epoch or None when nothing is probed yet, layer, kind, loss)."""
    a, b, c, d = st.columns([3, 1, 1, 1.4])
    want, bad = page_context.whole_number(qp.get("epoch"), "URL field 'epoch'", 0, MAX_URL_EPOCH)
    if bad:
        st.warning(bad, icon=":material/link_off:")
    if epochs:
        default = max((e for e in epochs if want is None or e <= want), default=epochs[-1])
        epoch = a.select_slider("Epoch of the profile and histograms", epochs, value=default, key=f"{key}_epoch",
                                help=epoch_help)
        qp["epoch"] = str(epoch)
    else:
        epoch = None
        a.caption("No per-timestep probes recorded yet.")
    want_layer, bad = page_context.whole_number(qp.get("layer"), "URL field 'layer'", 0, MAX_URL_LAYER)
    if bad:
        st.warning(bad, icon=":material/link_off:")
    layer = b.selectbox("Layer", list(range(n_layers)), index=min(want_layer or 0, n_layers - 1), key=f"{key}_layer")
    qp["layer"] = str(layer)
    kind = gradient_switch(c, f"{key}_kind", cells, qp.get("kind"))
    qp["kind"] = kind
    loss = loss_switch(d, f"{key}_profile_of", qp.get("loss")) if kind == "h" else "every"
    qp["loss"] = loss
    return epoch, layer, kind, loss


def loss_switch(container, key: str, default: str = "every") -> str:
    """The 'loss at every step' / 'loss at the last step' switch of the profile charts, starting at
    ``default`` (from the URL's ?loss=; checked, with a warning when it is neither)."""
    opts = list(LOSS_CHOICES)
    if key not in st.session_state:   # the URL counts when the switch is (re)created: not after it
        default, bad = url_choice(default, "URL field 'loss'", opts, "every")
        if bad:
            st.warning(bad, icon=":material/link_off:")
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


# --- runs a chart leaves out, and why ----------------------------------------------------------------

def _layers_text(n: int) -> str:
    return f"{n} layer{'' if n == 1 else 's'}"


def left_out_reason(row: pd.Series, layer: int, *, stored_kind: str | None = None, epoch: int | None = None) -> str:
    """Why run ``row`` (a runs_by_ids row) has nothing in a chart of ``layer``: the layer it lacks, no
    probe (yet, or at or before ``epoch``), or no profile of ``stored_kind`` (c_t of a non-LSTM, the
    last-step profile of an every-step run recorded before rnnlab stored it)."""
    rid, n = int(row["id"]), int(row["num_layers"])
    if layer >= n:
        return f"no layer {layer}: it has {_layers_text(n)}"
    probed = reads.probed_epochs([rid])
    if not probed:
        return "no probe recorded yet" if row.get("status") in ("queued", "running") else "no probe recorded"
    if epoch is not None and probed[0] > epoch:
        return f"no probe at or before epoch {epoch} (its first is epoch {probed[0]})"
    if stored_kind == "c" and row.get("cell") != "lstm":
        return f"no c_t: a {row.get('cell')} cell has no cell state"
    if stored_kind == "h_last":
        return ("no last-step-loss profile ‖∂ℓ_T/∂h_t‖ stored (an every-step task recorded before rnnlab stored "
                "it); pick 'loss at every step' to see its ‖∂L/∂h_t‖")
    return f"no value recorded at layer {layer}"


def left_out(ids: list[int], runs: pd.DataFrame, shown: set[int], layer: int, *,
             kinds: dict[int, str] | None = None, epoch: int | None = None) -> dict[int, str]:
    """{run id: why it is not in the chart} for each run of ``ids`` not in ``shown``, in order."""
    rows = {int(r["id"]): r for _, r in runs.iterrows()}
    return {i: left_out_reason(rows[i], layer, stored_kind=(kinds or {}).get(i), epoch=epoch)
            for i in ids if i not in shown and i in rows}


def note_left_out(what: str, why: dict[int, str]) -> None:
    """'Not in the {what}: #3 (no layer 1: it has 1 layer); …': one note under a chart naming every run it
    leaves out and why (a run must never vanish from
    a chart without a word)."""
    if why:
        st.info(f"Not in the {what}: " + "; ".join(f"#{i} ({r})" for i, r in why.items()) + ".",
                icon=":material/info:")


def shown_runs(fig) -> set[int]:
    """The run ids a line chart draws (its traces' legend groups are the run ids)."""
    return {int(t.legendgroup) for t in fig.data if t.legendgroup is not None and str(t.legendgroup).isdigit()}


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
    shown = set(prof["run_id"].astype(int)) if len(prof) else set()
    note_left_out("profile chart", left_out(ids, runs, shown, layer, kinds=kinds, epoch=epoch))
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
    quantity = what.split(" (")[0]
    chart(charts.heatmaps(mats, f"log10 {what} over t × epoch, layer {layer} (one colour scale)",
                          quantity=quantity), "heatmaps", key=f"{key}_heat")
    why = left_out(ids, runs, {i for i, (_, m) in zip(ids, mats) if len(m["epochs"])}, layer, kinds=kinds)
    note_left_out("heatmaps", why)
    if len(ids) >= 2:
        a, b = st.columns(2)
        qp = st.query_params
        picked = []
        for col, label, field, fallback in ((a, "Difference: run A", "da", 0), (b, "minus run B", "db", 1)):
            index = fallback
            if f"{key}_{field}" not in st.session_state:   # (re)created: from the URL (?da=3&db=1), checked
                want, bad = url_choice(qp.get(field), f"URL field '{field}'", ids, ids[fallback],
                                       why="is not one of the selected runs")
                if bad:
                    st.warning(bad, icon=":material/link_off:")
                index = ids.index(want)
            picked.append(col.selectbox(label, ids, index=index, key=f"{key}_{field}",
                                        format_func=lambda i: html.unescape(labels[i])))
            qp[field] = str(picked[-1])
        ra, rb = picked
        mat = dict(zip(ids, (m for _, m in mats)))
        chart(charts.diff_heatmap((f"#{ra}", mat[ra]), (f"#{rb}", mat[rb]), f"Difference of log10 {quantity}",
                                  why={f"#{i}": r for i, r in why.items()}),
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
