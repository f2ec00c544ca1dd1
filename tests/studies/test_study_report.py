"""The report (self-contained HTML with inline SVG, and Markdown) and the `rnnlab study` commands, on
planted runs in a real SQLite database."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys

import pytest

import studies
from studies import report, service, svg
from studies.core import Figure, Series
from tests.conftest import REPO
from tests.studies.helpers import plant

ACT = studies.get("activations")
GOOD = {"sigmoid": (-30.0, 4.0), "tanh": (-1.0, 49.0), "relu": (-0.2, 49.0)}


def planted(url):
    plant(ACT, url, lambda spec: {"log_ratio0": GOOD[spec.activation][0] - 0.01 * spec.seed,
                                  "horizon0": GOOD[spec.activation][1]})


def test_report_is_self_contained_and_holds_every_number_and_its_sql(sqlite_url, tmp_path):
    planted(sqlite_url)
    html, md, out = service.write_report(ACT, "cpu", tmp_path / "r.html", url=sqlite_url)
    text, mtext = html.read_text(), md.read_text()
    assert out.verdict == studies.REPRODUCED
    # offline: no scripts, no external resources
    assert "<script" not in text and not re.search(r"(src|href)\s*=\s*['\"]?https?:", text)
    assert text.count("<svg") == len(out.figures) == 2
    for n in out.numbers:
        assert n.text().replace("−", "−") in mtext
    assert "SELECT r.activation AS grp" in text and "study:activations@v1:cpu" in mtext
    assert "reproduced" in mtext and ACT.claim in mtext and ACT.source in mtext
    for scale in ACT.scales:
        assert ACT.scale(scale).differs in mtext


def test_report_refuses_a_non_html_path(sqlite_url, tmp_path):
    with pytest.raises(service.StudyError, match="an .html file"):
        service.write_report(ACT, "cpu", tmp_path / "r.pdf", url=sqlite_url)


@pytest.mark.parametrize(("url", "shown", "hidden"), [
    ("postgresql+psycopg://ana:s3cret@db:5432/rnnlab", "ana:***@db:5432/rnnlab", "s3cret"),
    ("postgresql+psycopg://ana@db/rnnlab?password=s3cret&sslmode=require", "sslmode=require", "s3cret"),
    ("sqlite:////home/ana/rnnlab.db", "sqlite:////home/ana/rnnlab.db", None),
])
def test_database_url_loses_its_secrets(url, shown, hidden):
    s = report.safe_url(url)
    assert shown in s and (hidden is None or hidden not in s)


def _marks(s: str) -> list[tuple[str, str, float]]:
    """Every drawn value of an SVG: (what: circle, ▼, ▲, ✕ or line, its hover title, its y)."""
    out = []
    for m in re.finditer(r'<(circle|path) ([^>]*)><title>([^<]*)</title>', s):
        tag, attrs, title = m.groups()
        if tag == "circle":
            out.append(("circle", title, float(re.search(r'cy="([-\d.]+)"', attrs)[1])))
            continue
        d = re.search(r'd="([^"]*)"', attrs)[1]
        ys = [float(y) for y in re.findall(r",([-\d.]+)", d)]
        if 'fill="none"' in attrs and "stroke-width=\"2\"" in attrs:
            out.append(("✕", title, sum(ys) / len(ys)))
        elif 'fill="none"' in attrs:
            out.append(("line", title, min(ys)))
        else:   # a triangle: its tip (the last point) on the edge, pointing towards it
            out.append(("▼" if ys[2] > ys[0] else "▲", title, ys[2]))
    return out


def _plot_box(s: str) -> tuple[float, float]:
    m = re.search(r'<rect x="[\d.]+" y="([\d.]+)" width="[\d.]+" height="([\d.]+)" fill="none"', s)
    return float(m[1]), float(m[1]) + float(m[2])


def _key(s: str) -> str | None:
    m = re.search(r'<text class="key"[^>]*>([^<]*)</text>', s)
    return m[1] if m else None


def test_svg_draws_a_nan_seed_as_a_cross_on_the_top_edge_with_a_key():
    """Seeds [0.4, NaN, 0.5] under a baseline of 1: the NaN seed is drawn (✕ at the top), so the figure does
    not show every seed below the baseline, and a key line says what ✕ means."""
    fig = Figure("t", "", "loss ÷ baseline", [Series("rnn", ["rnn"] * 3, [0.4, math.nan, 0.5])],
                 hline=(1.0, "baseline"))
    s = svg.render(fig)
    marks = _marks(s)
    assert sorted(k for k, _, _ in marks) == ["circle", "circle", "✕"], marks
    (cross,) = [m for m in marks if m[0] == "✕"]
    top, bottom = _plot_box(s)
    assert cross[1] == "rnn: NaN" and top <= cross[2] < min(y for k, _, y in marks if k == "circle")
    assert cross[2] - top < 10                                     # on the top edge
    assert _key(s) == "✕ NaN: top edge"


@pytest.mark.parametrize(("log", "y", "drawn", "key"), [
    (False, [-math.inf, 1.0, math.nan, math.inf, 2.0], ["▼", "circle", "✕", "▲", "circle"],
     "▼ −∞: bottom edge · ▲ +∞: top edge · ✕ NaN: top edge"),
    # on a log axis 0 and a negative value cannot be drawn either: both at the floor, none dropped
    (True, [0.0, -0.5, 1.0, -math.inf], ["▼", "▼", "circle", "▼"], "▼ −∞, 0 or below (no log): bottom edge"),
    (True, [0.1, 1.0, 10.0], ["circle"] * 3, None),                 # nothing to mark: no key
])
def test_svg_draws_every_seed_and_keys_each_edge_marker(log, y, drawn, key):
    fig = Figure("t", "", "y", [Series("a", ["a"] * len(y), y)], log_y=log)
    s = svg.render(fig)
    marks = _marks(s)
    assert [k for k, _, _ in marks] == drawn, marks
    top, bottom = _plot_box(s)
    for k, title, at in marks:
        if k == "▼":
            assert bottom - 10 < at <= bottom, (title, at)
        elif k in ("▲", "✕"):
            assert top <= at < top + 10, (title, at)
    assert _key(s) == key
    if key:   # the key line sits under the plot, inside the drawing
        assert int(re.search(r'<svg [^>]*height="(\d+)"', s)[1]) > float(
            re.search(r'<text class="key"[^>]*y="([\d.]+)"', s)[1]) > bottom


def test_svg_lines_draw_every_recorded_nan_as_a_cross():
    """Every point of a study curve is a recorded epoch: a NaN before the first value, and a curve of NaN
    only (a run that diverged at once), are drawn as ✕ like any other NaN (they used to be left out)."""
    fig = Figure("t", "epoch", "y", [Series("a", [0, 1, 2, 3], [math.nan, 1.0, math.nan, 2.0], mode="lines"),
                                     Series("b", [0, 1], [math.nan, math.nan], mode="lines")],
                 categorical_x=False)
    s = svg.render(fig)
    marks = _marks(s)
    # 1.0 and 2.0 sit on either side of a ✕: the line breaks there, each a dot of its own; 4 NaN ✕ in all
    assert sorted(k for k, _, _ in marks) == ["circle", "circle", "✕", "✕", "✕", "✕"], marks
    assert _key(s) == "✕ NaN: top edge"


def test_svg_lines_break_at_a_value_off_the_axis_instead_of_joining_across_it():
    """The Studies page's Plotly lines break at a NaN or ±inf; the report's SVG must not draw a straight
    line across it (it would show a value that was never measured)."""
    fig = Figure("t", "epoch", "y", [Series("a", [0, 1, 2, 3, 4], [1.0, 2.0, math.nan, 3.0, 4.0], mode="lines"),
                                     Series("b", [0, 1, 2, 3], [1.0, 2.0, math.inf, 3.0], mode="lines")],
                 categorical_x=False)
    s = svg.render(fig)
    kinds = sorted(k for k, _, _ in _marks(s))
    assert kinds == ["circle", "line", "line", "line", "▲", "✕"], kinds
    for d in re.findall(r'<path d="(M[^"]*)" fill="none" stroke="[^"]*" stroke-width="1.3"', s):
        assert d.count("M") == 1 and d.count("L") == 1, d    # each segment joins two neighbours only


ORDER = studies.get("temporal-order")


def test_the_reports_figure_shows_the_nan_seed_whose_check_fails(sqlite_url, tmp_path):
    """The tanh RNN's accuracy is NaN on seed 1 and at chance on the others: its check fails on seed 1,
    and the report's figure of the final accuracy shows that seed (✕, with the key), not two seeds at chance."""
    plant(ORDER, sqlite_url, lambda spec: {"val_loss": 1.3, "val_metric": (
        math.nan if (spec.cell, spec.seed) == ("rnn", 1) else 0.26 if spec.cell == "rnn" else 1.0)})
    html, _, out = service.write_report(ORDER, "cpu", tmp_path / "r.html", url=sqlite_url)
    (stays,) = [c for c in out.checks if c.text.startswith("the tanh RNN stays at chance")]
    assert stays.per_seed == {0: True, 1: False, 2: True}
    first = html.read_text().split("<svg")[1]
    assert first.startswith(' xmlns') and "Final held-out accuracy" in first
    rnn = [m for m in _marks(first) if m[1] == "rnn: NaN" or m[1].startswith("rnn: 0.26")]
    assert sorted(k for k, _, _ in rnn) == ["circle", "circle", "✕"], rnn
    assert _key(first) == "✕ NaN: top edge"


def run_cli(*args, url):
    env = {"RNNLAB_DATABASE_URL": url, "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "cli.study", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120)


def test_cli_status_report_and_bad_input(sqlite_url, tmp_path):
    planted(sqlite_url)
    r = run_cli("status", "activations", "--json", url=sqlite_url)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["verdict"] == "reproduced" and data["counts"] == {"succeeded": 9}
    tanh = next(n for n in data["numbers"] if n["group"] == "tanh" and n["label"].startswith("log10"))
    assert tanh["mean"] == pytest.approx(-1.01)
    r = run_cli("report", "activations", "-o", str(tmp_path / "x.html"), url=sqlite_url)
    assert r.returncode == 0 and (tmp_path / "x.md").exists()
    for args, msg in [(("status", "nope"), "known studies: activations"),
                      (("status", "activations", "--scale", "gpu"), "--scale: got 'gpu'; allowed: cpu, paper"),
                      (("run", "adding", "--scale", "x" * 500), "--scale: got 'xxxx")]:
        r = run_cli(*args, url=sqlite_url)
        assert r.returncode == 2 and msg in r.stderr, r.stderr
    r = run_cli("list", "--json", url=sqlite_url)
    rows = {x["name"]: x for x in json.loads(r.stdout)}
    assert rows["activations"]["verdict"] == {"cpu": "reproduced", "paper": "pending"}
    assert set(rows) == set(studies.STUDIES)


def test_report_names_the_code_version_that_created_the_runs(sqlite_url, tmp_path):
    from db.store import code_version

    planted(sqlite_url)
    _, md, out = service.write_report(ACT, "cpu", tmp_path / "r.html", url=sqlite_url)
    assert out.code_versions == [code_version()]
    assert f"Runs created by code version(s) {code_version()}" in md.read_text()


def test_the_reports_sweep_is_a_sweep_file_that_trains_the_studys_runs(sqlite_url, tmp_path):
    """The sweep printed in the report, explicit points included (temporal-order's LSTM arm has its
    forget-gate bias only there), expands to exactly the study's specs."""
    from rnnlab.spec import expand_sweep, parse_sweep

    order = studies.get("temporal-order")
    plant(order, sqlite_url, lambda spec: {"val_metric": 0.25 if spec.cell == "rnn" else 1.0, "val_loss": 0.5})
    html, md, _ = service.write_report(order, "cpu", tmp_path / "r.html", url=sqlite_url)
    block = md.read_text().split("```json\n", 1)[1].split("```", 1)[0]
    sweep = parse_sweep(json.loads(block))
    assert [s.spec_hash() for s in expand_sweep(sweep)] == [s.spec_hash() for s in order.specs("cpu")]
    assert {s.init.forget_bias for s in expand_sweep(sweep) if s.cell == "lstm"} == {3.0}


def test_a_group_keeps_its_colour_from_figure_to_figure(sqlite_url, tmp_path):
    """temporal-order's first figure lists rnn, lstm, gru and its second gru, lstm, rnn: each figure
    coloured its groups in its own order, so the tanh RNN was blue in one and green in the next."""
    order = studies.get("temporal-order")
    plant(order, sqlite_url, lambda spec: {"val_metric": 0.25 if spec.cell == "rnn" else 1.0, "val_loss": 0.5})
    html, _, out = service.write_report(order, "cpu", tmp_path / "r.html", url=sqlite_url)
    firsts = [list(dict.fromkeys(s.group or s.name for s in f.series)) for f in out.figures]
    assert len(out.figures) == 2 and firsts[0] != firsts[1]          # the two figures order the groups apart
    seen: dict[str, set[str]] = {}
    for block in html.read_text().split("<svg")[1:]:
        for colour, name in re.findall(r'<rect x="[^"]+" y="[^"]+" width="9" height="9" fill="([^"]+)"/><text[^>]*>'
                                       r'([^<]+)</text>', block):
            seen.setdefault(name, set()).add(colour)
    assert set(seen) == {"rnn", "lstm", "gru"}
    assert all(len(c) == 1 for c in seen.values()), seen             # one colour per group in every figure
    assert len({c for cs in seen.values() for c in cs}) == 3          # and three different colours


def test_a_scales_run_count_is_stated_once_and_computed():
    """The budgets were hand-written as "9 runs, ≈ 2 min" next to the computed count, so the Studies
    page and the presets read "(9 runs, 9 runs, ≈ 2 min)". A budget is now a time only."""
    from dashboard.presets import PRESETS
    from rnnlab.spec import expand_sweep

    for st in studies.STUDIES.values():
        for name, sc in st.scales.items():
            assert "run" not in sc.budget, (st.name, name, sc.budget)
    for text, sweep in PRESETS.values():
        if text.startswith("Study "):
            n = len(expand_sweep(sweep))
            assert re.findall(r"\b\d+ runs\b", text) == [f"{n} runs"] and f"({n} runs, ≈ " in text, text


def test_study_run_says_when_no_live_worker_serves_the_runs_queue(sqlite_url, tmp_path):
    """`rnnlab study run NAME --scale paper` queues on the gpu queue; with no GPU worker alive the runs
    waited and nothing said so."""
    from db import liveness

    env = {"RNNLAB_DATABASE_URL": sqlite_url, "RNNLAB_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}
    r = subprocess.run([sys.executable, "-m", "cli.study", "run", "depth", "--scale", "paper"], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "queued 40 run(s)" in r.stdout
    assert "no live worker serves the gpu queue" in r.stderr and "rnnlab worker --queues gpu --gpu 0" in r.stderr
    # the rule itself: alive workers' logical queues count, stopped or lost ones do not
    workers = [{"alive": True, "queues": "cpu"}, {"alive": False, "queues": "gpu"}]
    assert liveness.unserved_queues({"gpu", "cpu"}, workers) == ["gpu"]
    assert liveness.unserved_queues({"gpu"}, [*workers, {"alive": True, "queues": "cpu,gpu"}]) == []
    assert liveness.unserved_queues(set(), []) == []
