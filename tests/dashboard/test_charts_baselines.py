"""The baseline marks of the loss charts (dashboard.charts.baseline_marks, drawn by ``curves`` for
Compare and by ``band`` for Strategies): seeds whose held-out baselines of one task configuration
(``kinds``) differ by ~2% get one grey band from their min to their max, not one dotted line each;
baselines that really differ (the copy task at different T), analytic ones and held-out ones of
different configurations get a mark each, labelled with their runs. Checked on the figures' shapes
and annotations; the expected ends and labels are written from the inputs, not read from the code."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from dashboard import charts

NAN, INF = math.nan, math.inf
SEEDS = {1: 0.1662, 2: 0.1655, 3: 0.1671}   # three adding-task seeds' held-out baselines, within 1%
ADDING_100 = '{"name": "adding", "seq_len": 100, "variant": "a16"}'   # a held-out set's configuration
ADDING_200 = '{"name": "adding", "seq_len": 200, "variant": "a16"}'


def held(baselines: dict, key: str = ADDING_100) -> dict:
    """``kinds`` saying every run's baseline was measured on a held-out set of configuration ``key``."""
    return {r: key for r in baselines}


def _curves(baselines: dict, *, log: bool = True, runs=None, kinds=None):
    runs = list(baselines) if runs is None else runs
    df = pd.DataFrame([{"run_id": r, "epoch": e, "val_loss": v} for r in runs
                       for e, v in enumerate([0.3, 0.05, 0.01])])
    return charts.curves(df, "val_loss", {r: f"run {r}" for r in runs}, "loss", log=log, baselines=baselines,
                         kinds=kinds)


def _band(baselines: dict, *, log: bool = True, kinds=None):
    df = pd.DataFrame({"group": "g", "epoch": [0, 1, 2], "mean": [0.3, 0.05, 0.01], "lo": [0.2, 0.03, 0.005],
                       "hi": [0.4, 0.08, 0.02], "n": 3})
    return charts.band(df, "epoch", "b", "loss", log=log, baselines=baselines, kinds=kinds)


def _marks(fig) -> tuple[list[dict], list[dict], list[dict]]:
    """(the baseline rects, the baseline lines, the baseline labels) of a figure."""
    shapes = [s.to_plotly_json() for s in fig.layout.shapes]
    notes = [a.to_plotly_json() for a in fig.layout.annotations if (a.text or "").startswith("baseline")]
    return ([s for s in shapes if s["type"] == "rect"], [s for s in shapes if s["type"] == "line"], notes)


def _in_range(fig, y: float, log: bool) -> bool:
    """Whether the value axis shows y. A linear axis without undrawable values has no fixed range:
    plotly.js then autoranges over the traces and the data-referenced shapes (the baseline marks)."""
    if fig.layout.yaxis.range is None:
        return not log and fig.layout.yaxis.autorange in (None, True)
    lo, hi = fig.layout.yaxis.range
    u = math.log10(y) if log else y
    return lo <= u <= hi


BUILDERS = [pytest.param(_curves, id="curves"), pytest.param(_band, id="band")]


@pytest.mark.parametrize("build", BUILDERS)
@pytest.mark.parametrize("log", [True, False])
def test_one_shared_baseline_is_one_dotted_line(build, log):
    fig = build({1: 1 / 6, 2: 1 / 6, 3: 1 / 6}, log=log)
    rects, lines, notes = _marks(fig)
    assert rects == [] and len(lines) == 1 and len(notes) == 1
    assert lines[0]["y0"] == lines[0]["y1"] == pytest.approx(1 / 6, rel=1e-12)
    assert lines[0]["line"]["dash"] == "dot"
    assert notes[0]["text"] == "baseline 0.1667"     # covers every run: no run list
    assert notes[0]["y"] == pytest.approx(math.log10(1 / 6) if log else 1 / 6)


@pytest.mark.parametrize("build", BUILDERS)
@pytest.mark.parametrize("log", [True, False])
def test_seeds_within_two_percent_are_one_band_from_min_to_max(build, log):
    lo, hi = min(SEEDS.values()), max(SEEDS.values())   # 0.1655 and 0.1671
    fig = build(SEEDS, log=log, kinds=held(SEEDS))
    rects, lines, notes = _marks(fig)
    (rect,) = rects
    assert (rect["y0"], rect["y1"]) == (lo, hi)
    assert (rect["x0"], rect["x1"], rect["xref"]) == (0, 1, "x domain")
    assert rect["line"]["width"] == 0 and 0 < rect["opacity"] <= 0.3 and rect["fillcolor"] == "gray"
    # no line per seed: at most the band's two dotted edges, exactly at its ends
    assert sorted(s["y0"] for s in lines) == [lo, hi]
    (note,) = notes
    assert note["text"] == "baseline 0.1655–0.1671 (each run's held-out set)"
    assert note["y"] == pytest.approx(math.log10(hi) if log else hi)
    assert _in_range(fig, lo, log) and _in_range(fig, hi, log)


@pytest.mark.parametrize("build", BUILDERS)
def test_two_clusters_are_two_marks_each_naming_its_runs(build):
    fig = build({1: 0.1, 2: 0.5, 3: 0.1})
    rects, lines, notes = _marks(fig)
    assert rects == []
    assert sorted(s["y0"] for s in lines) == [0.1, 0.5]
    assert sorted(n["text"] for n in notes) == ["baseline 0.1 (runs 1, 3)", "baseline 0.5 (runs 2)"]

    # a band next to a line: seeds at T = 100 (held-out sets ~1% apart) and a run at T = 200
    copy = {1: 10 * math.log(8) / 120, 2: 10 * math.log(8) / 120 * 1.01, 3: 10 * math.log(8) / 220}
    fig = build(copy, kinds={1: "copy T=100", 2: "copy T=100", 3: None})
    rects, lines, notes = _marks(fig)
    (rect,) = rects
    assert (rect["y0"], rect["y1"]) == (copy[1], copy[2])
    assert sorted(n["text"] for n in notes) == [   # 10·ln 8/220 = 0.094520…, 10·ln 8/120 = 0.173287…, × 1.01
        "baseline 0.09452 (runs 3)", "baseline 0.1733–0.175 (each run's held-out set; runs 1, 2)"]
    assert all(_in_range(fig, v, True) for v in copy.values())


def test_a_cluster_is_measured_from_its_smallest_value():
    """≤ 5% above the cluster's smallest value joins it; a chain of 4% steps does not grow one band."""
    k = dict.fromkeys(range(1, 4), ADDING_100)
    assert [(c.lo, c.hi, c.runs) for c in charts.baseline_clusters({1: 0.1, 2: 0.105}, kinds=k)] == [
        (0.1, 0.105, (1, 2))]
    assert [(c.lo, c.hi) for c in charts.baseline_clusters({1: 0.1, 2: 0.1051}, kinds=k)] == [
        (0.1, 0.1), (0.1051, 0.1051)]
    assert [(c.lo, c.hi, c.runs) for c in charts.baseline_clusters({3: 0.108, 1: 0.1, 2: 0.104}, kinds=k)] == [
        (0.1, 0.104, (1, 2)), (0.108, 0.108, (3,))]


def test_many_runs_are_counted_not_listed():
    baselines = {r: 0.1 for r in range(1, 8)} | {r: 0.5 for r in range(8, 13)}
    notes = sorted(n["text"] for n in _marks(_curves(baselines))[2])
    assert notes == ["baseline 0.1 (7 runs)", "baseline 0.5 (runs 8, 9, 10, 11, 12)"]


@pytest.mark.parametrize("build", BUILDERS)
def test_a_zero_baseline_is_skipped_on_a_log_axis_only(build):
    fig = build({1: 0.0, 2: 0.2}, log=True)
    rects, lines, notes = _marks(fig)
    assert rects == [] and [s["y0"] for s in lines] == [0.2]
    assert [n["text"] for n in notes] == ["baseline 0.2 (runs 2)"]   # run 1's baseline is not on the chart
    rects, lines, notes = _marks(build({1: 0.0, 2: 0.2}, log=False))
    assert rects == [] and sorted(s["y0"] for s in lines) == [0.0, 0.2]


@pytest.mark.parametrize("build", BUILDERS)
def test_nan_none_and_inf_are_ignored(build):
    fig = build({1: NAN, 2: None, 3: 0.2, 4: INF, 5: 0.2})
    rects, lines, notes = _marks(fig)
    assert rects == [] and [s["y0"] for s in lines] == [0.2]
    assert [n["text"] for n in notes] == ["baseline 0.2 (runs 3, 5)"]
    assert _marks(build({1: NAN, 2: None})) == ([], [], [])
    assert _marks(build({})) == ([], [], [])


@pytest.mark.parametrize("log", [True, False])
def test_a_band_far_from_the_data_is_inside_the_value_axis(log):
    """The losses lie between 0.01 and 0.3, the band at 8.0–8.2; a NaN loss fixes the linear axis's range
    too (its ✕ marker sits at the ceiling), so the range is ours on both axis types."""
    df = pd.DataFrame({"run_id": [1, 1, 1, 2, 2], "epoch": [0, 1, 2, 0, 1], "val_loss": [0.3, 0.05, 0.01, 0.2, NAN]})
    fig = charts.curves(df, "val_loss", {1: "a", 2: "b"}, "loss", log=log, baselines={1: 8.0, 2: 8.2},
                        kinds={1: ADDING_100, 2: ADDING_100})
    (rect,), _, _ = _marks(fig)
    assert (rect["y0"], rect["y1"]) == (8.0, 8.2)
    assert fig.layout.yaxis.range is not None
    assert _in_range(fig, 8.0, log) and _in_range(fig, 8.2, log)


def test_ends_that_print_alike_get_more_digits():
    (note,) = _marks(_curves({1: 0.16667, 2: 0.16668}, kinds={1: ADDING_100, 2: ADDING_100}))[2]
    assert note["text"] == "baseline 0.16667–0.16668 (each run's held-out set)"


# --- only held-out baselines of one task configuration share a band -----------------------------------

COPY_190, COPY_200 = 10 * math.log(8) / 210, 10 * math.log(8) / 220   # n_copy·ln(n_symbols)/(T + 2·n_copy)


@pytest.mark.parametrize("build", BUILDERS)
@pytest.mark.parametrize("kinds", [None, {1: None, 2: None}], ids=["no kinds", "analytic"])
def test_analytic_copy_baselines_at_t190_and_t200_are_two_lines(build, kinds):
    """0.09902 and 0.09452 lie within 5% of each other, but they are the task's exact baselines at two
    values of T, not one baseline drawn from two held-out sets: two dotted lines, each naming its run,
    no band and no 'held-out' in any label."""
    assert COPY_190 / COPY_200 < charts.BASELINE_CLUSTER_RATIO   # the case: close enough to be banded
    rects, lines, notes = _marks(build({1: COPY_190, 2: COPY_200}, kinds=kinds))
    assert rects == []
    assert sorted(s["y0"] for s in lines) == [COPY_200, COPY_190]
    assert sorted(n["text"] for n in notes) == ["baseline 0.09452 (runs 2)", "baseline 0.09902 (runs 1)"]


@pytest.mark.parametrize("build", BUILDERS)
def test_three_seeds_held_out_adding_baselines_are_one_band(build):
    rects, lines, notes = _marks(build(SEEDS, kinds=held(SEEDS)))
    (rect,) = rects
    assert (rect["y0"], rect["y1"]) == (0.1655, 0.1671)
    assert sorted(s["y0"] for s in lines) == [0.1655, 0.1671]
    assert [n["text"] for n in notes] == ["baseline 0.1655–0.1671 (each run's held-out set)"]


@pytest.mark.parametrize("build", BUILDERS)
def test_a_t_sweeps_held_out_baselines_are_one_band_not_stacked_bands(build):
    """The adding task's trivial baseline is ≈ 1/6 at every T: seeds 1, 2 at T = 100 and 3, 4 at T = 200
    measured 0.1655–0.1680 on their held-out sets. One band over all four (every value in it is some
    run's held-out baseline), not two bands a hair apart whose labels print over each other."""
    baselines = {1: 0.1655, 2: 0.1662, 3: 0.1671, 4: 0.1680}
    kinds = {1: ADDING_100, 2: ADDING_100, 3: ADDING_200, 4: ADDING_200}
    rects, lines, notes = _marks(build(baselines, kinds=kinds))
    assert [(r["y0"], r["y1"]) for r in rects] == [(0.1655, 0.1680)]
    assert [n["text"] for n in notes] == ["baseline 0.1655–0.168 (each run's held-out set)"]


@pytest.mark.parametrize("build", BUILDERS)
def test_held_out_baselines_more_than_five_percent_apart_are_separate_marks(build):
    """Copy-task held-out baselines at T = 50 (≈ 0.297) and T = 200 (≈ 0.0945) are different baselines:
    two marks, each naming its runs."""
    baselines = {1: 0.2961, 2: 0.2975, 3: 0.0943, 4: 0.0946}
    kinds = {1: '{"name": "copy", "seq_len": 50}', 2: '{"name": "copy", "seq_len": 50}',
             3: '{"name": "copy", "seq_len": 200}', 4: '{"name": "copy", "seq_len": 200}'}
    rects, lines, notes = _marks(build(baselines, kinds=kinds))
    assert sorted((r["y0"], r["y1"]) for r in rects) == [(0.0943, 0.0946), (0.2961, 0.2975)]
    assert sorted(n["text"] for n in notes) == ["baseline 0.0943–0.0946 (each run's held-out set; runs 3, 4)",
                                                "baseline 0.2961–0.2975 (each run's held-out set; runs 1, 2)"]


def test_an_analytic_baseline_never_joins_a_held_out_band():
    """Seeds 1–3 measured 0.1655–0.1671 on their held-out sets; run 4 stored none and falls back to the
    analytic 1/6 = 0.16667, inside the band's range: a line of its own, and the band keeps its runs."""
    baselines = {**SEEDS, 4: 1 / 6}
    rects, lines, notes = _marks(_curves(baselines, kinds={**held(SEEDS), 4: None}))
    (rect,) = rects
    assert (rect["y0"], rect["y1"]) == (0.1655, 0.1671)
    assert sorted(n["text"] for n in notes) == ["baseline 0.1655–0.1671 (each run's held-out set; runs 1, 2, 3)",
                                                "baseline 0.1667 (runs 4)"]


def test_the_same_value_is_one_line_whatever_its_kind():
    """A held-out baseline that equals an analytic one exactly (or two configurations' single values
    that do) is one line: the label is true of both."""
    rects, lines, notes = _marks(_curves({1: 0.2, 2: 0.2, 3: 0.2}, kinds={1: ADDING_100, 2: None, 3: ADDING_200}))
    assert rects == [] and [s["y0"] for s in lines] == [0.2] and [n["text"] for n in notes] == ["baseline 0.2"]


def test_forecast_metric_baselines_of_several_seeds_are_one_band_analytic_ones_one_line():
    """The metric chart's baselines: forecast's persistence MSE is measured on each seed's held-out set
    (three values, 3% apart: one band, as the loss chart's), the adding task's chance level is one
    analytic value (one line), as reads.metric_kinds keys them from the runs' specs."""
    from dashboard import reads
    from rnnlab.spec import JobSpec

    def rows(task, baselines):
        return pd.DataFrame([{"id": r, "spec": JobSpec.model_validate({"task": task, "seed": r}).to_dict(),
                              "baseline_heldout_loss": b, "baseline_loss": b} for r, b in baselines.items()])

    forecast = {1: 0.0412, 2: 0.0405, 3: 0.0418}
    kinds = dict(zip(forecast, reads.metric_kinds(rows({"name": "forecast", "seq_len": 50}, forecast))))
    rects, lines, notes = _marks(_curves(forecast, log=False, kinds=kinds))
    assert len(rects) == 1 and (rects[0]["y0"], rects[0]["y1"]) == (0.0405, 0.0418)
    assert len(notes) == 1 and "0.0405–0.0418" in notes[0]["text"], notes
    # the same values with kinds=None (as the metric chart passed before): three lines, one per seed
    assert len(_marks(_curves(forecast, log=False, kinds=None))[1]) == 3
    adding = {1: 0.36, 2: 0.36, 3: 0.36}   # the adding task's solve-rate baseline: analytic
    kinds = dict(zip(adding, reads.metric_kinds(rows({"name": "adding", "seq_len": 50}, adding))))
    assert set(kinds.values()) == {None}
    rects, lines, notes = _marks(_curves(adding, log=False, kinds=kinds))
    assert rects == [] and len(lines) == 1 and notes[0]["text"] == "baseline 0.36"
