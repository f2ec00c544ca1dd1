"""Strategies: group a sweep (or any runs) by one factor, aggregate the seeds with a band, and read the
conclusion and a plain-words verdict per group on screen, best first, above the summary table
(?sweep=3&factor=cell or ?runs=…&factor=… or ?tag=…). The same verdicts as `rnnlab compare`
(rnnlab.strategies). The source and the factor come back when you return to the page."""

import pandas as pd
import streamlit as st

from dashboard import analysis, charts, page_context, reads, saved_views
from dashboard.auth import current_user
from dashboard.components import chart, plain, table

MAX_RUNS = 1000
PAGE = "strategies"
SOURCES = {"Sweep": "sweep", "Run ids": "runs", "Tag": "tag"}  # source → its URL key
KEYS = ("sweep", "runs", "tag", "factor", "band", "smooth")
user = current_user()
st.title("Strategies")
st.caption("Which mitigation of vanishing/exploding gradients works here, and how sure are we?")
qp, ss = st.query_params, st.session_state
page_context.restore(PAGE, tuple(SOURCES.values()))
opts = reads.filter_options()


def _warn(text: str) -> None:
    st.warning(text, icon=":material/link_off:")


def _smoothing_of_url() -> float:
    v, bad = page_context.number_in_range(qp.get("smooth"), "smooth", 0.0, charts.MAX_SMOOTHING, 0.0)
    if bad:
        _warn(bad)
    return round(v, 2)


default_src = "Run ids" if "runs" in qp else ("Tag" if "tag" in qp else "Sweep")
src = st.segmented_control("Runs from", list(SOURCES), default=default_src, key="st_src") or default_src
for other in set(SOURCES.values()) - {SOURCES[src]}:  # one source in the URL, so it comes back as it was
    qp.pop(other, None)
if src == "Sweep":
    sweep_ids = [s["id"] for s in opts["sweeps"]]
    asked, bad = page_context.run_id(qp.get("sweep"), "sweep")
    if bad:
        _warn(bad.replace("run id", "sweep id"))
    elif asked is not None and asked not in sweep_ids:
        _warn(f"sweep: there is no sweep #{asked}; showing the latest.")
    if not sweep_ids:
        st.info("No sweep yet: submit one from New experiment (presets are a quick start), or use run ids or a tag.")
        st.stop()
    want = asked if asked in sweep_ids else sweep_ids[0]
    sweep = st.selectbox("Sweep", sweep_ids, index=sweep_ids.index(want), key="st_sweep", format_func=lambda i: next(
        f"#{s['id']} {s['name'] or ''} ({s['n_runs']} runs)" for s in opts["sweeps"] if s["id"] == i))
    qp["sweep"] = str(sweep)
    filters = {"sweep_id": sweep}
elif src == "Run ids":
    if "st_ids" not in ss or ss.get("_st_url") != qp.get("runs", ""):
        ss["st_ids"] = qp.get("runs", "")[:page_context.MAX_IDS_TEXT]
    ids_in, problems = page_context.run_ids(st.text_input("Run ids", key="st_ids", max_chars=page_context.MAX_IDS_TEXT),
                                            "Run ids", MAX_RUNS)
    for p in problems:
        _warn(p)
    qp["runs"] = ss["_st_url"] = ",".join(map(str, ids_in))
    filters = {"ids": ids_in or [-1]}
else:
    tags = opts["tags"]
    if not tags:
        st.info("No run has a tag yet.")
        st.stop()
    asked_tag = qp.get("tag")
    if asked_tag is not None and asked_tag not in tags:
        _warn(f"tag: {asked_tag[:40]!r} is on no run; pick one of the {len(tags)} tags.")
    tag = st.selectbox("Tag", tags, index=tags.index(asked_tag) if asked_tag in tags else 0, key="st_tag")
    qp["tag"] = tag
    filters = {"tags": [tag]}
page_context.remember(PAGE, KEYS)
saved_views.panel(page=PAGE)
listed, total = reads.runs_page(filters, 0, MAX_RUNS, "oldest")
if total == 0:
    st.info("No runs match.")
    st.stop()
if total > MAX_RUNS:
    st.warning(f"Using the first {MAX_RUNS:,} of {total} runs.")
runs = reads.runs_by_ids(listed["id"].tolist())

factors = list(analysis.FACTORS)
if "factor" in qp and qp["factor"] not in factors:
    _warn(f"factor: {qp['factor'][:40]!r} is not one of {', '.join(factors)}; using the one that varies.")
want_f = qp.get("factor") if qp.get("factor") in factors else analysis.varying_factor(runs)
BANDS = ["min–max", "95% CI"]
a, b = st.columns(2)
factor = a.selectbox("Factor", factors, index=factors.index(want_f), key="st_factor",
                     help="Runs are grouped by this factor's value; the seeds in a group are aggregated.")
band = b.radio("Band", BANDS, horizontal=True, key="st_band",
               index=BANDS.index(qp["band"]) if qp.get("band") in BANDS else 0)
qp["factor"], qp["band"] = factor, band
page_context.remember(PAGE, KEYS)
groups = analysis.groups_of(runs, factor)
ids = [int(i) for i in runs["id"]]
final = reads.final_summary(ids)
summary = analysis.summary(runs, final, groups, reads.run_health(ids), factor=factor)

st.markdown(plain(analysis.overall(summary, factor)).replace(r"\*\*", "**"))
for r in summary.to_dict("records"):   # the verdicts on screen, one block per group, best first
    with st.container(border=True):
        mark = f"**#{r['rank']}**" if not pd.isna(r["rank"]) else ("⚠️" if r["_broken"] else "—")
        st.markdown(f"{mark} **{plain(r['group'])}**: {plain(r['verdict'])}")
COLUMNS = ["rank", "group", "beats baseline", "loss ÷ baseline", "solve rate", "final loss", "loss 95% CI",
           "horizon (steps)", "‖g_1‖/‖g_T‖", "non-finite steps", "saturated", "flags", "confounded", "runs",
           "finished", "seeds", "diverged", "decay / step", "T", "verdict"]
# printf formats of the table's number columns with significant digits: a fixed count of decimals
# ('%.3f', Streamlit's 'percent' with two) prints a small non-zero value (a solved run's loss ÷ baseline
# of 6e-5, a saturated fraction of 1e-5) as 0
NUMBER_FORMATS = {"loss ÷ baseline": "%.3g", "horizon (steps)": "%.4g", "saturated": "%.3g", "decay / step": "%.3g"}
shown = summary[COLUMNS].assign(rank=[f"#{k}" if not pd.isna(k) else "—" for k in summary["rank"]])
table(shown, f"strategies_{factor}", key="st_summary", column_config={
    "rank": st.column_config.TextColumn(help="only groups that beat the baseline and are not flagged are ranked, "
                                             "and none when the groups differ in more than the factor"),
    "seeds": st.column_config.NumberColumn(help="seeds of the finished runs with a result; queued, running, failed "
                                                "and cancelled runs are left out (the verdict counts them)"),
    "T": st.column_config.NumberColumn(help="length of the probe sequence the horizon is counted over "
                                            "(RunInfo.seq_len: the task's T, T + 2·n_copy on copy; the longest "
                                            "of the group's runs)"),
    "confounded": st.column_config.TextColumn(help="spec fields that vary within the group, and those that set "
                                                   "it apart from the other groups besides the factor"),
    "solve rate": st.column_config.ProgressColumn(
        min_value=0.0, max_value=1.0, format="percent",
        help=f"final val loss ≤ {analysis.SOLVED_FRACTION:.0%} of the trivial baseline"),
    "beats baseline": st.column_config.CheckboxColumn(
        help="the upper end of the 95% interval of loss ÷ baseline is below 1"),
    "final loss": st.column_config.NumberColumn(format="%.4g", help="geometric mean over finished runs"),
    # significant digits, not decimals: a solved run's 6e-5 must not read 0.000 (NUMBER_FORMATS)
    "loss ÷ baseline": st.column_config.NumberColumn(format=NUMBER_FORMATS["loss ÷ baseline"]),
    "horizon (steps)": st.column_config.NumberColumn(format=NUMBER_FORMATS["horizon (steps)"]),
    "‖g_1‖/‖g_T‖": st.column_config.NumberColumn(format="%.2e", help="geometric mean, layer 0, last probe"),
    "saturated": st.column_config.NumberColumn(format=NUMBER_FORMATS["saturated"],
                                               help="largest saturated fraction (0–1) at the last probe"),
    "decay / step": st.column_config.NumberColumn(
        format=NUMBER_FORMATS["decay / step"], help="slope of log10‖g_t‖ per step back (layer 0, last probe)")})

ep = reads.epochs(ids)
# the baseline each run's loss ÷ baseline and verdict use (held-out when stored), as Compare draws it;
# only held-out baselines of one task configuration may share a band (reads.heldout_keys)
baselines = dict(zip(ids, reads.loss_baseline(runs)))
kinds = dict(zip(ids, reads.heldout_keys(runs)))
# one colour per group for every chart on the page: a group missing from a chart (a diverged group
# with no finite profile) must not shift the colours of the others
group_colors = charts.colors(list(dict.fromkeys(groups[i] for i in ids)))
c, d, e = st.columns([3, 1, 1])
want_s = _smoothing_of_url()
smooth = c.slider("Smoothing of the group means (EMA weight)", 0.0, charts.MAX_SMOOTHING, value=want_s, step=0.01,
                  key="st_smooth", help="The same EMA as on Compare (docs/dashboard.md): the mean is smoothed, the "
                  "raw mean stays faint, the band is not smoothed. The x axis is the epoch: the seeds of a group "
                  "are aggregated epoch by epoch.")
if smooth:
    qp["smooth"] = f"{smooth:g}"
else:
    qp.pop("smooth", None)
page_context.remember(PAGE, KEYS)
loss_log = d.toggle("Log loss axis", value=True, key="st_loss_log")
hor_log = e.toggle("Log horizon axis", value=False, key="st_hor_log")
clusters = charts.baseline_clusters(baselines, log=loss_log, kinds=kinds)
if len(clusters) > 1:
    st.caption(f"The groups' trivial baselines differ ({min(c.lo for c in clusters):.4g} to "
               f"{max(c.hi for c in clusters):.4g}: each run's is measured on its own held-out set when stored, "
               "else it is the task's, which on the copy task depends on T). The loss chart draws "
               f"{len(clusters)} baseline marks, each labelled with its runs; a band spans the seeds of one task "
               "configuration whose held-out baselines differ slightly.")
chart(charts.band(analysis.aggregate(ep, groups, "epoch", "val_loss", band, log=True), "epoch",
                  f"Validation loss by {factor} (geometric mean, {band} band over seeds)", "val loss", log=loss_log,
                  baselines=baselines, kinds=kinds, smooth=smooth, group_colors=group_colors),
      f"strategy_loss_{factor}", key="st_loss")
ls = reads.layer_stats(ids)
ls0 = ls[ls["layer"] == 0] if len(ls) else ls
chart(charts.band(analysis.aggregate(ls0, groups, "epoch", "horizon", band), "epoch",
                  f"Effective gradient horizon by {factor} (layer 0)", "horizon (steps)", log=hor_log, smooth=smooth,
                  group_colors=group_colors),
      f"strategy_horizon_{factor}", key="st_hor")
prof = reads.profiles(ids, None, 0, "h")
if len(prof):
    prof = prof[prof["norm"].notna()]   # NaN is no evidence; +inf (an overflowed norm) pulls the mean up
    chart(charts.band(analysis.aggregate(prof, groups, "k", "norm", band, log=True), "k",
                      f"‖∂L/∂h_t‖ at the last probe vs steps back k = T − t, by {factor}", "‖∂L/∂h_t‖", log=True,
                      group_colors=group_colors),
          f"strategy_profile_{factor}", key="st_prof")
