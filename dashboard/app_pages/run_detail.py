"""One run (?run=ID): outcome, spec, attempt history, tags and notes, and all of its charts. The run id,
the epoch, layer, gradient (h or c) and profile switch and the open tab are in the URL
(?run=7&epoch=20&layer=1&kind=c&loss=last&view=Profile, checked when read back), so a link reopens
the same view, and they come back when you return to the page; while the run is running, its status and charts
redraw every 5 s."""

import math

import pandas as pd
import streamlit as st
import yaml

from dashboard import actions, chart_views, overhead, page_context, reads, views
from dashboard.auth import can, current_user
from dashboard.components import fmt_duration, guard, plain, run_label, table
from db.store import MAX_NOTES

PAGE = "run_detail"
KEYS = ("run", "epoch", "layer", "kind", "loss", "view", "smooth", "x")
STATUS_ICON = {"succeeded": "✅", "running": "⏳", "queued": "🕓", "failed": "❌", "diverged": "💥", "cancelled": "⏹"}
user = current_user()
qp = st.query_params
actions.show_flash()
page_context.restore(PAGE, ("run",))
want, bad = page_context.run_id(qp.get("run"))
if bad:
    st.warning(bad, icon=":material/link_off:")
rid = st.number_input("Run id", min_value=1, max_value=page_context.MAX_ID, step=1, key="detail_id", value=want,
                      placeholder="run id")
if rid is None:
    st.title("Run detail")
    st.info("Enter a run id, or open a run from the Runs page.")
    qp.pop("run", None)
    page_context.remember(PAGE, KEYS)
    st.stop()
rid = int(rid)
qp["run"] = str(rid)
page_context.remember(PAGE, KEYS)
r = reads.run(rid)
if r is None:
    st.title("Run detail")
    st.warning(f"Run {rid} does not exist (it may have been deleted).")
    st.stop()

runs = reads.runs_by_ids([rid])
st.title(plain(run_label(runs.iloc[0])))
live = r["status"] in chart_views.ACTIVE and st.toggle(
    "Live updates every 5 s", value=True, key="det_live",
    help="While the run is queued or running, its status and charts redraw every 5 s with its new epochs.")


def _fresh() -> tuple[dict, pd.DataFrame]:
    """The run now; when it has just stopped running, the whole page is redrawn once (no more polling)."""
    now = reads.run(rid)
    if now is None or (live and now["status"] not in chart_views.ACTIVE):
        st.rerun()
    return now, reads.runs_by_ids([rid])


def _loss_text(run_id: int) -> str:
    """The last val loss (reads.last_val_losses): 4 significant digits; a diverged run's
    non-finite one as NaN, inf or -inf (a dash would read as "no loss yet"); '—' before the first epoch."""
    loss = reads.last_val_losses([run_id]).get(run_id)
    if loss is None:
        return "—"
    return "NaN" if math.isnan(loss) else f"{loss:.4g}"


@st.fragment(run_every=chart_views.LIVE_EVERY_S if live else None)
def header() -> None:
    with guard("Run detail"):  # a fragment reruns alone, outside the app's guard
        r, runs = _fresh()
        row = runs.iloc[0]
        a, b, c, d = st.columns(4)
        a.metric("Status", f"{STATUS_ICON.get(r['status'], '')} {r['status']}")
        b.metric("Epoch", f"{r['epochs_done']}/{r['epochs_total']}")
        _, loss, _ = reads.last_loss_columns(runs)   # NaN and ±inf restored (the runs row keeps NULL)
        ratio = reads.loss_ratio(loss, reads.loss_baseline(runs)).iloc[0]
        c.metric("Val loss (baseline)", _loss_text(rid),
                 delta=None if pd.isna(ratio) else f"{ratio:.3g} × baseline", delta_color="off",
                 help=f"The last val loss, and its ratio to the baseline: {reads.BASELINE_HELP}.")
        d.metric("Duration", fmt_duration(row["duration_s"]) or "—")
        if r.get("message"):
            st.text(f"Outcome: {r['message']}")
        if r.get("diagnosis"):
            st.text(f"Diagnosis: {r['diagnosis']}")
        st.caption(plain(f"Owner {r.get('owner') or '—'} · worker {r.get('worker') or '—'}"
                         f" · code {r.get('code_version') or '—'}"
                         f" · sweep {r.get('sweep_id') or '—'} · spec hash {r['spec_hash'][:12]}"))


header()
actions.panel(user, runs, key="detail_act")
with st.expander("Notes", icon=":material/edit_note:"):
    # one box per run: with one key for every run, the box kept the text typed for the run shown before, and
    # 'Save notes' wrote it over the notes of the run now shown
    notes = st.text_area("Notes (plain text)", value=r.get("notes") or "", key=f"detail_notes_{rid}",
                         max_chars=MAX_NOTES, help=f"At most {MAX_NOTES:,} characters.")
    if st.button("Save notes", disabled=not can(user, "edit", r.get("owner")), key="detail_save_notes"):
        actions.set_notes(user, rid, r.get("owner"), notes)
        st.rerun()
    if r.get("notes"):
        st.text(r["notes"])


@st.fragment(run_every=chart_views.LIVE_EVERY_S if live else None)
def charts() -> None:
    with guard("Run detail"):
        _charts(*_fresh())


def _charts(r: dict, runs: pd.DataFrame) -> None:
    probed = reads.probed_epochs([rid])
    epoch, layer, kind, loss = views.profile_controls(
        qp, "det", probed, int(r["num_layers"]), [r["cell"]],
        "The latest probed epoch at or before the one in the link.")
    names = ["Curves", "Spectra & health", "Profile", "Heatmap", "Histograms", "Histograms over time",
             "Diagnostics overhead", "Spec", "Attempts"]
    tabs = st.tabs(names, key="view", bind="query-params")  # lazy: only the open tab runs
    sections = [
        lambda: chart_views.curves([rid], runs, "det", chart_views.options_row("det")),
        lambda: chart_views.layers([rid], runs, layer, "det", chart_views.options_row("det")),
        lambda: views.profile([rid], runs, epoch, layer, kind, "det", loss),
        lambda: views.heatmaps([rid], runs, layer, kind, "det", loss),
        lambda: views.histograms([rid], runs, epoch, "det"),
        lambda: chart_views.histogram_history_section([rid], runs, "det"),
        lambda: overhead.section(rid, r["spec"]),
        lambda: _spec(r),
        lambda: _attempts(r),
    ]
    for tab, draw in zip(tabs, sections):
        if tab.open:
            with tab:
                draw()
    page_context.remember(PAGE, KEYS)


def _spec(r: dict) -> None:
    st.code(yaml.safe_dump(r["spec"], sort_keys=False), language="yaml")
    if r.get("info"):
        st.caption("Engine facts (RunInfo)")
        st.json(r["info"], expanded=False)


def _attempts(r: dict) -> None:
    att = r["attempts"]
    if att.empty:
        st.caption("No attempt yet (the run is queued).")
    else:
        table(att, f"run{rid}_attempts", key="det_attempts")
    st.caption(f"Tags: {plain(r['tags'] and ', '.join(r['tags']) or '—')}")


charts()
