"""The Strategies page's charts and table on runs written through the real store (AppTest): a group
missing from one chart (its profile is all NaN, so the page drops it) keeps every other group's
colour the same on every chart; a solved group's loss ÷ baseline of ~6e-5 is not printed as 0.000;
analytic copy-task baselines at T = 190 and T = 200 (within 5%) are two lines, not one 'held-out' band."""

from __future__ import annotations

import json
import math

import pytest

from tests.dashboard.conftest import _reset_caches, figures, no_errors
from tests.rnnlab.test_compare import NORM, store_run


def _fig(at, title: str) -> dict:
    return next(f for f in figures(at) if title in f["layout"]["title"]["text"])


def _group_colours(fig: dict) -> dict[str, str]:
    return {t["name"].split(" (n=")[0]: t["line"]["color"] for t in fig["data"]
            if t.get("showlegend", True) and "(n=" in (t.get("name") or "")}


def test_a_group_missing_from_the_profile_chart_keeps_the_colours(lab, open_page):
    from sqlalchemy import create_engine, text

    url, _ = lab
    # gru first by id and by name: its absence would shift every later group's colour
    ids = [store_run(url, cell, NORM, s, 0.05) for cell in ("gru", "lstm", "rnn") for s in range(2)]
    with create_engine(url).begin() as c:   # the gru group diverged: every norm of its profiles is NaN
        for rid in ids[:2]:
            for ep, lay, kind, n in c.execute(text("SELECT epoch, layer, kind, seq_len FROM grad_profiles "
                                                   "WHERE run_id = :r"), {"r": rid}).all():
                c.execute(text("UPDATE grad_profiles SET norms = :v WHERE run_id = :r AND epoch = :e AND "
                               "layer = :l AND kind = :k"),
                          {"v": json.dumps(["NaN"] * n), "r": rid, "e": ep, "l": lay, "k": kind})
    _reset_caches()
    at = open_page("strategies", runs=",".join(map(str, ids)), factor="cell")
    no_errors(at)
    loss = _group_colours(_fig(at, "Validation loss by cell"))
    hor = _group_colours(_fig(at, "Effective gradient horizon by cell"))
    prof = _group_colours(_fig(at, "at the last probe vs steps back"))
    assert set(loss) == set(hor) == {"rnn", "lstm", "gru"}
    assert set(prof) == {"lstm", "rnn"}                 # the case: gru is not on this chart
    assert hor == loss and prof == {g: loss[g] for g in ("lstm", "rnn")}
    assert len(set(loss.values())) == 3


def test_a_solved_groups_small_loss_ratio_keeps_its_digits(lab, open_page):
    url, _ = lab
    ids = [store_run(url, "lstm", NORM, s, 1e-5) for s in range(2)] + [store_run(url, "rnn", NORM, 0, 0.15)]
    at = open_page("strategies", runs=",".join(map(str, ids)), factor="cell")
    no_errors(at)
    df = at.dataframe[0].value
    config = json.loads(at.dataframe[0].proto.columns)
    ratio = float(df.loc[df["group"] == "lstm", "loss ÷ baseline"].iloc[0])
    assert 0 < ratio < 1e-3                          # 1e-5 ÷ the adding task's 1/6 ≈ 6e-5
    for col in ("loss ÷ baseline", "horizon (steps)", "saturated", "decay / step"):
        fmt = config[col]["type_config"]["format"]
        for v in (ratio, 1e-5, -2e-5):               # small non-zero values stay non-zero and keep their sign
            shown = fmt % v
            assert float(shown) != 0 and math.copysign(1, float(shown)) == math.copysign(1, v), (col, fmt, shown)
            assert float(shown) == pytest.approx(v, rel=0.01)


def test_analytic_copy_baselines_at_two_t_are_two_lines(lab, open_page):
    """Runs that stored no held-out baseline fall back to the task's analytic one: 10·ln 8/(T + 20) is
    0.09902 at T = 190 and 0.09452 at T = 200, within 5% of each other, but two lines, each naming its
    runs: not one band labelled '(each run's held-out set)'."""
    from sqlalchemy import create_engine, text

    url, _ = lab
    ids = [store_run(url, cell, NORM, s, 0.05) for cell in ("rnn", "lstm") for s in range(2)]
    t190, t200 = 10 * math.log(8) / 210, 10 * math.log(8) / 220
    with create_engine(url).begin() as c:
        for rid, v in zip(ids, (t190, t190, t200, t200)):
            c.execute(text("UPDATE runs SET baseline_heldout_loss = NULL, baseline_loss = :v WHERE id = :r"),
                      {"v": v, "r": rid})
    _reset_caches()
    at = open_page("strategies", runs=",".join(map(str, ids)), factor="cell")
    no_errors(at)
    fig = _fig(at, "Validation loss by cell")
    shapes = fig["layout"].get("shapes", [])
    labels = sorted(a["text"] for a in fig["layout"].get("annotations", []) if a.get("text", "").startswith("baseline"))
    assert [s for s in shapes if s.get("type") == "rect"] == []
    assert sorted(s["y0"] for s in shapes if s.get("type") == "line") == pytest.approx([t200, t190], rel=1e-12)
    assert labels == [f"baseline 0.09452 (runs {ids[2]}, {ids[3]})", f"baseline 0.09902 (runs {ids[0]}, {ids[1]})"]
