"""Studies: every built-in study with its claim and last verdict, run with one click, its progress, and
a result page (?study=NAME&scale=cpu): the claim, the deciding figures, the numbers with seed
intervals, the verdict and what differs from the paper, plus the report (HTML, Markdown) to download.
The same code as `rnnlab study` (studies.service); the studies are defined in studies/."""

import math

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

import studies
from client.submit import queues_for
from dashboard import charts, reads
from dashboard.auth import can, current_user
from dashboard.components import chart, plain, table
from studies import report, service, svg
from studies.core import Figure, fmt

user = current_user()
qp = st.query_params
ICON = {studies.REPRODUCED: ":material/check_circle:", studies.NOT_REPRODUCED: ":material/cancel:",
        studies.INCONCLUSIVE: ":material/help:", studies.PENDING: ":material/hourglass_top:"}


@st.cache_data(ttl=3, show_spinner=False)
def _outcome(url: str, name: str, scale: str):
    return service.outcome(studies.get(name), scale, url)


def _exact(x: float | None) -> str:
    """A float as a CSV cell that reads back to the same float: repr (nan, inf, -inf as such)."""
    return "" if x is None else repr(float(x))


def _numbers_csv(numbers, seeds: list[int]) -> bytes:
    """The study's numbers as CSV of their values: quantity, group, mean, lo and hi (the 95% t
    interval), min, max, then one column per seed (empty where a seed has no value)."""
    keys = ("mean", "lo", "hi", "min", "max")
    rows = [{"quantity": n.label, "group": n.group, **{k: _exact(v) for k, v in n.summary().items() if k in keys},
             **{f"seed {s}": _exact(n.per_seed.get(s)) for s in seeds}} for n in numbers]
    cols = ["quantity", "group", *keys, *(f"seed {s}" for s in seeds)]
    return pd.DataFrame(rows, columns=cols).to_csv(index=False).encode()


def _verdict_line(out) -> str:
    return f"{out.verdict} — {out.reason}"


def _submit(name: str, scale: str) -> None:
    if not can(user, "submit"):
        st.session_state["_study_msg"] = ("warning", "Your role cannot submit runs.")
        return
    try:
        ids = service.submit(studies.get(name), scale, owner=user.name, url=reads.db_url())
    except ValueError as e:
        st.session_state["_study_msg"] = ("error", str(e))
        return
    _outcome.clear()
    waiting = reads.unserved_queues(queues_for(studies.get(name).specs(scale)))
    if waiting:   # e.g. the paper scale goes to the gpu queue, and no GPU worker is alive
        st.session_state["_study_msg"] = ("warning", (
            f"Queued {len(ids)} runs of {name} ({scale}), on the {', '.join(waiting)} queue, which no live worker "
            f"serves: they wait until one starts (`{reads.serve_hint(waiting[0])}`)."))
        return
    st.session_state["_study_msg"] = ("success", f"Queued {len(ids)} runs of {name} ({scale}).")


def _active(out) -> bool:
    """True while some run of the study is queued or running."""
    return bool(out.counts.get("queued") or out.counts.get("running"))


def _show_msg() -> None:
    msg = st.session_state.pop("_study_msg", None)
    if msg:
        getattr(st, msg[0])(plain(msg[1]))


# the markers of the values an axis cannot draw, as dashboard.charts.SYMBOL and the report (studies.svg)
EDGE = {"floor": ("triangle-down", "−∞"), "inf": ("triangle-up", "+∞"), "nan": ("x", "NaN")}


def _plotly(fig: Figure, colour: dict[str, str]) -> go.Figure:
    """A study figure as the HTML report draws it (studies/svg.py): one colour per group (the
    report's), −∞ and 0-on-a-log-axis as ▼ on the bottom edge, +∞ as ▲ and NaN as ✕ on the top edge, in
    the group's colour, with a note saying what each drawn symbol means (svg.key_text, the report's key);
    every recorded NaN is drawn, a line's first value included (svg.point_kinds). A line is drawn with
    its points marked (lines+markers): Plotly draws nothing for a line of one point (a 1-layer stack, a run
    that diverged after epoch 0) or for a value between two off-axis ones, which the report draws as a dot.
    The y range (charts.ValueAxis) leaves room for the edges."""
    colour = {**svg.group_colours([fig]), **colour}   # the outcome's colours (svg.group_colours), as the report
    hline = fig.hline if fig.hline is not None and (fig.hline[0] > 0 or not fig.log_y) else None
    ax = charts.ValueAxis([[math.nan if y is None else y for y in s.y] for s in fig.series], fig.log_y,
                          [hline[0]] if hline else [])
    traces, edges = [], set()
    for s in fig.series:
        c, grp = colour[s.group or s.name], s.group or s.name
        where = svg.point_kinds(s.y, fig.log_y)
        ys = [None if w else y for y, w in zip(s.y, where)]
        line = s.mode == "lines"
        traces.append(go.Scatter(x=s.x, y=ys, name=s.name, mode="lines+markers" if line else "markers",
                                 legendgroup=grp, marker={"size": 5 if line else 9, "color": c},
                                 line={"color": c}))
        for kind, (symbol, label) in EDGE.items():
            at = [(x, y) for x, y, w in zip(s.x, s.y, where) if w == kind]
            if not at:
                continue
            edges.add(kind)
            u = ax.floor_u if kind == "floor" else ax.ceil_u
            traces.append(go.Scatter(
                x=[x for x, _ in at], y=[ax.value(u)] * len(at), mode="markers", legendgroup=grp, showlegend=False,
                name=f"{s.name} ({label})", marker={"symbol": symbol, "size": 11, "color": c,
                                                    "line": {"width": 2, "color": c}},
                customdata=[fmt(math.nan if y is None else y, "g") for _, y in at],
                hovertemplate=f"{s.name}<br>%{{x}}: %{{customdata}}<extra></extra>"))
    out = go.Figure(traces)
    if hline:
        out.add_hline(y=hline[0], line_dash="dot", annotation_text=hline[1])
    note = svg.key_text(edges, fig.log_y)
    if note:
        out.add_annotation(text=note, xref="paper", yref="paper", x=1, y=1, xanchor="right", yanchor="bottom",
                           showarrow=False, font={"size": 10, "color": "#555"})
    out.update_layout(title=fig.title, xaxis_title=fig.xlabel, height=360, margin={"t": 50, "b": 40},
                      yaxis=ax.layout(fig.ylabel) | {"range": list(ax.range)})
    return out


def _list() -> None:
    st.title("Studies")
    st.caption("Each study tests one published claim on ≥ 3 seeds and decides it from the stored runs: "
               "reproduced, not reproduced, or inconclusive (add seeds). `rnnlab study` does the same.")
    url = reads.db_url()
    for st_ in studies.STUDIES.values():
        with st.container(border=True):
            st.subheader(plain(f"{st_.title} ({st_.name} v{st_.version})"))
            st.markdown(f"**Claim.** {plain(st_.claim)}")
            st.caption(plain(f"Source: {st_.source}"))
            cols = st.columns(len(st_.scales))
            for col, scale in zip(cols, st_.scales):
                out = _outcome(url, st_.name, scale)
                done = sum(v for k, v in out.counts.items() if k not in ("queued", "running"))
                with col:
                    st.markdown(f"{ICON[out.verdict]} **{plain(scale)}**: {plain(_verdict_line(out))}")
                    st.progress(min(1.0, done / out.expected_runs) if out.expected_runs else 0.0,
                                text=f"{done} of {out.expected_runs} runs finished")
                    c1, c2 = st.columns(2)
                    c1.button("Open", key=f"open-{st_.name}-{scale}", on_click=_open, args=(st_.name, scale))
                    if not out.counts:
                        c2.button(f"Run ({st_.n_runs(scale)} runs)", key=f"run-{st_.name}-{scale}",
                                  on_click=_submit, args=(st_.name, scale), disabled=not can(user, "submit"),
                                  type="primary" if scale == "cpu" else "secondary")


def _open(name: str, scale: str) -> None:
    qp["study"], qp["scale"] = name, scale


def _back() -> None:
    qp.pop("study", None)
    qp.pop("scale", None)


def _result(name: str, scale: str) -> None:
    study = studies.get(name)
    st.button("All studies", icon=":material/arrow_back:", on_click=_back)
    st.title(plain(f"{study.title} ({study.name} v{study.version}, {scale})"))
    st.markdown(f"**Claim.** {plain(study.claim)}")
    st.caption(plain(f"Source: {study.source}"))

    polling = _active(_outcome(reads.db_url(), name, scale))

    @st.fragment(run_every=5 if polling else None)   # redraw only while runs are queued or running
    def live() -> None:
        out = _outcome(reads.db_url(), name, scale)
        if _active(out) != polling:
            st.rerun(scope="app")   # runs were queued, or the last one finished: start or stop polling
        _show_msg()   # what the Run button did: it is in this fragment, whose click reruns only the fragment
        done = sum(v for k, v in out.counts.items() if k not in ("queued", "running"))
        box = {studies.REPRODUCED: st.success, studies.NOT_REPRODUCED: st.error}.get(out.verdict, st.warning)
        box(f"**Verdict: {plain(out.verdict)}** — {plain(out.reason)}.", icon=ICON[out.verdict])
        st.progress(min(1.0, done / out.expected_runs) if out.expected_runs else 0.0,
                    text=plain(f"{done} of {out.expected_runs} runs finished; "
                               + (", ".join(f"{k} {v}" for k, v in sorted(out.counts.items())) or "none submitted")
                               + f"; tag {out.tag}"))
        if out.notes:
            st.caption(plain("Re-runs: one run per seed and grid point is analysed, the latest finished one: "
                             + "; ".join(out.notes) + "."))
        if not out.counts:
            st.button(f"Run this study ({study.n_runs(scale)} runs)", on_click=_submit, args=(name, scale),
                      disabled=not can(user, "submit"), type="primary")
        if out.checks:
            seeds = out.seeds_complete
            st.subheader("Checks, seed by seed")
            rows = [{"check": c.text, **{f"seed {s}": report.MARK[c.mark(s)] for s in seeds}}
                    for c in out.checks]
            table(pd.DataFrame(rows), f"{name}-checks", "study_checks")
        colours = svg.group_colours(out.figures)   # a group keeps its colour from figure to figure
        for i, f in enumerate(out.figures):
            chart(_plotly(f, colours), f"{name}-{scale}-{i}", key=f"fig-{i}")
        if out.numbers:
            st.subheader("Numbers (mean over seeds, 95% t interval, range)")
            seeds = out.seeds_complete
            st.dataframe(pd.DataFrame([{"quantity": n.label, "group": n.group, "mean [95% CI; range]": n.text(),
                                        **{f"seed {s}": fmt(n.per_seed.get(s, math.nan), n.fmt) for s in seeds}}
                                       for n in out.numbers]), hide_index=True, key="study_numbers")
            st.download_button("Download CSV", _numbers_csv(out.numbers, seeds), file_name=f"{name}-numbers.csv",
                               mime="text/csv", key="study_numbers_csv", icon=":material/download:",
                               help="The values themselves (round-trip exact; nan and inf as such, a seed "
                                    "without a value empty), not their display.")
            with st.expander("The SQL that re-derives each number"):
                for q in dict.fromkeys(n.sql for n in out.numbers):
                    st.code(q, language="sql")
            html = report.html(study, out, url=reads.db_url(), code_version=_code_version())
            md = report.markdown(study, out, url=reads.db_url(), code_version=_code_version())
            c1, c2 = st.columns(2)
            c1.download_button("Report (HTML)", html, f"study-{name}-{scale}.html", "text/html")
            c2.download_button("Report (Markdown)", md, f"study-{name}-{scale}.md", "text/markdown")

    live()
    st.subheader("What differs from the paper")
    for s, sc in study.scales.items():
        st.markdown(plain(f"{s} ({study.n_runs(s)} runs{', ' + sc.budget if sc.budget else ''}): {sc.differs}"))
    if study.notes:
        st.caption(plain(study.notes))


@st.cache_resource(show_spinner=False)
def _code_version() -> str:
    from db.store import code_version

    return code_version()


name, scale = qp.get("study"), qp.get("scale", "cpu")
if name is not None and name not in studies.STUDIES:
    st.warning(plain(f"study: there is no study {name[:60]!r}; known: {', '.join(studies.STUDIES)}."))
    name = None
if name is not None and scale not in studies.get(name).scales:
    st.warning(plain(f"scale: got {scale[:40]!r}; allowed: {', '.join(studies.get(name).scales)}; showing cpu."))
    scale = "cpu"
if name is None:
    _show_msg()
    _list()
else:
    _result(name, scale)
