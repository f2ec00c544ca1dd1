"""Explorer: every run of a sweep, a tag, a filter or the whole database as one point. Scatter any
spec field or outcome against another coloured by a third, parallel coordinates, and the phase
diagram of two swept factors. Selections open in Compare. Every choice lives in the URL
(?src=sweep&sweep=3&x=init.spectral_radius&y=loss ÷ baseline&tab=Phase diagram&fx=…&fy=…&out=…)."""

import streamlit as st

from dashboard import explore, explore_charts, reads, runs_query, saved_views
from dashboard.auth import current_user
from dashboard.components import chart, plain, table
from db.models import RUN_STATUSES

user = current_user()
st.title("Explorer")
st.caption("Which settings train, and where do gradients vanish or explode? One point per run.")
opts = reads.filter_options()
QP = {"bind": "query-params"}
saved_views.panel(page="explorer")   # every choice below is bound to the URL, so a view is its query string


def source() -> dict:
    src = st.segmented_control("Runs from", ["All runs", "Sweep", "Tag", "Filter"], default="All runs", key="src",
                               **QP) or "All runs"
    if src == "Sweep":
        sweeps = {s["id"]: s for s in opts["sweeps"]}
        if not sweeps:
            st.info("No sweep yet: the New experiment page has presets (try the phase-diagram one).")
            st.stop()
        sid = st.selectbox("Sweep", list(sweeps), key="sweep", **QP, format_func=lambda i: (
            f"#{i} {sweeps[i]['name'] or ''} ({sweeps[i]['n_runs']} runs)"))
        return {"sweep_id": sid}
    if src == "Tag":
        return {"tags": [st.selectbox("Tag", opts["tags"] or ["—"], key="tag", **QP)]}
    if src == "Filter":
        a, b, c = st.columns([2, 2, 2])
        status = a.multiselect("Status", RUN_STATUSES, key="status", **QP)
        # typed or from a link (?path=…&value=…), both pass the Runs page's check (runs_query.text_problem):
        # a path with a quote reached SQLite's json_extract as a raw OperationalError with its SQL, and a
        # 100,000-character one was kept; a box that fails it filters nothing. No max_chars: a box bound to
        # the URL would cut a link's longer value without a word and filter by what is left
        path = b.text_input("Any spec field (dotted path)", key="path", placeholder="cell", **QP).strip()
        value = c.text_input("equals", key="value", placeholder="rnn", **QP)
        problems = [f"{label}: {p}" for label, name, text in (("Any spec field", "field", path),
                                                              ("equals", "equals", value))
                    if (p := runs_query.text_problem(name, text))]
        for p in problems:
            st.warning(plain(f"{p}; this filter is not applied."), icon=":material/filter_alt_off:")
        return {"status": status, "spec": {path: value} if path and not problems else {}}
    return {}


def open_in_compare(ids: list[int], what: str) -> None:
    if not ids:
        return
    more = f" (Compare shows the first {explore.COMPARE_MAX})" if len(ids) > explore.COMPARE_MAX else ""
    runs = f"{len(ids)} run{'s' if len(ids) > 1 else ''}"
    st.page_link("app_pages/compare.py", label=plain(f"Open the {runs} of {what} in Compare{more}"),
                 query_params=explore.compare_query(ids), icon=":material/compare:")


filters = source()
only_done = st.toggle("Finished runs only", value=True, key="done", **QP,
                      help="Running and queued runs have no final outcome yet; cancelled runs never will.")
runs, total = reads.explore_runs(filters)
if total > len(runs):
    st.warning(f"Showing the first {len(runs):,} of {total:,} matching runs.")
data = explore.outcomes_table(runs)
if only_done:
    data = data[data["status"].isin(explore.FINISHED)].reset_index(drop=True)
if data.empty:
    st.info("No runs match." if not total else "No finished runs here yet: untick 'Finished runs only'.")
    st.stop()
varied = explore.varied_fields(data)
fields = [*varied, *[f for f in explore.spec_fields(data) if f not in varied], *explore.OUTCOMES]
st.caption(plain(f"{len(data):,} runs · varied fields: {', '.join(varied) or 'none'}"))

scatter_tab, par_tab, phase_tab = st.tabs(["Scatter", "Parallel coordinates", "Phase diagram"], key="tab", **QP)
if scatter_tab.open:
    with scatter_tab:
        a, b, c, d = st.columns([2, 2, 2, 1])
        x = a.selectbox("x", fields, key="x", **QP)
        y = b.selectbox("y", fields, index=fields.index("loss ÷ baseline"), key="y", **QP)
        color = c.selectbox("colour", [None, *fields], key="color", **QP, format_func=lambda f: f or "none")
        log_x, log_y = d.toggle("log x", key="logx", **QP), d.toggle("log y", key="logy", **QP)
        event = st.plotly_chart(explore_charts.scatter(data, x, y, color, log_x, log_y), key="ex_scatter",
                                on_select="rerun", selection_mode=("points", "box", "lasso"), width="stretch")
        open_in_compare(explore.selected_ids(event.selection.points), "the selection")
if par_tab.open:
    with par_tab:
        chosen = st.multiselect("Axes", fields, default=[*varied, "loss ÷ baseline", "horizon"], key="axes")
        line = st.selectbox("Colour lines by", [f for f in explore.OUTCOMES], key="pc_color")
        chart(explore_charts.parallel(data, chosen, line), "explorer_parallel", key="ex_parallel")
if phase_tab.open:
    with phase_tab:
        factors = [f for f in varied if data[f].nunique(dropna=False) <= 40]
        if len(factors) < 2:
            st.info("A phase diagram needs two swept factors; these runs vary "
                    f"{len(factors)} (with at most 40 values each). Try the spectral radius × T preset.")
            st.stop()
        a, b, c = st.columns(3)
        fx = a.selectbox("x factor", factors, key="fx", **QP)
        fy = b.selectbox("y factor", [f for f in factors if f != fx], key="fy", **QP)
        out = c.selectbox("Outcome", explore.OUTCOMES, key="out", **QP)
        # every other swept factor is held at one value (its first, by default): a cell that pooled runs
        # differing in, say, the cell type averaged a tanh RNN that learned nothing with an LSTM that
        # solved the task, and read as "trains"
        others = [f for f in varied if f not in (fx, fy)]
        sub, pooled = data, []
        holders = []
        if others:
            st.caption("The other swept factors, held at one value each so that a cell's runs differ only by seed:")
            holders = st.columns(min(len(others), 4)) * (len(others) // 4 + 1)
        for col, f in zip(holders, others):
            values = explore.ordered_values(sub[f])
            pick = col.selectbox(f, [explore.POOLED, *values], index=1 if values else 0, key=f"hold_{f}",
                                 format_func=str)
            if pick == explore.POOLED:
                pooled.append(f)
            else:
                sub = sub[explore.equal_to(sub[f], pick)]
        if pooled:
            st.warning(f"Each cell pools runs that differ in {', '.join(pooled)}: its mean mixes them, so it "
                       "can read as 'trains' when only some of them do.", icon=":material/warning:")
        cells = explore.phase_grid(sub, fx, fy, out)
        if out in explore.AT_END:
            gone = cells[["left_diverged", "left_died"]].to_numpy().sum()
            st.caption(plain(f"{out} is that of each run's last epoch: a diverged or died run's is of the "
                             "epoch where training stopped, so it is left out of the cell's mean "
                             f"({gone} run{'' if gone == 1 else 's'} here); ✕ and ◇ still mark its cell."))
        event = st.plotly_chart(explore_charts.phase(cells, fx, fy, out), key="ex_phase", on_select="rerun",
                                selection_mode=("points", "box"), width="stretch")
        open_in_compare(explore.selected_ids(event.selection.points, cells), "the selected cells")
        filled = cells[cells["runs"] > 0]
        labels = {i: f"{fx} = {r[fx]}, {fy} = {r[fy]} ({r['runs']} runs)" for i, r in filled.iterrows()}
        pick = st.selectbox("Or pick one cell", [None, *labels], key="ex_cell",
                            format_func=lambda i: "—" if i is None else labels[i])
        if pick is not None:
            open_in_compare(cells.at[pick, "ids"], "that cell")
        shown = cells.drop(columns=["xi", "yi"]).assign(ids=cells["ids"].map(lambda v: ", ".join(map(str, v))))
        table(shown, f"phase_{fx}_{fy}", key="ex_cells")
