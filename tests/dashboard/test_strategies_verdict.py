"""The Strategies page puts the conclusion and each group's verdict on screen, best first, above the
table (AppTest on runs written through the real store): the exploding-init preset's dead arms read
"No group solved the task" and are flagged by name; the seeded cells rank LSTM/GRU above the RNN."""

from __future__ import annotations

import pytest

from tests.dashboard.browser import chromium, error_texts, running_app, wait_idle
from tests.dashboard.conftest import _reset_caches, figures, no_errors
from tests.rnnlab.test_compare import NORM, store_run


def test_verdict_blocks_on_screen_for_dead_arms(lab, open_page):
    url, _ = lab
    ids = [store_run(url, "rnn", "none", s, loss, saturate=True) for s, loss in enumerate([0.165, 0.17, 0.168])]
    ids += [store_run(url, "rnn", NORM, s, loss, explode_at=1) for s, loss in enumerate([0.166, 0.164, 0.171])]
    at = open_page("strategies", runs=",".join(map(str, ids)), factor="clipping")
    no_errors(at)
    texts = [m.value.replace("\\", "") for m in at.markdown]   # plain() escapes Markdown characters
    conclusion = next(t for t in texts if "No group solved the task" in t)
    assert "**none**" in conclusion and "**norm ≤ 1.0**" in conclusion
    blocks = [t for t in texts if t.startswith("⚠️ **")]
    assert len(blocks) == 2
    assert any(b.startswith("⚠️ **none**: exploding in 3/3 runs (ρ(W_hh) grew 6.8e+03×); saturated in 3/3 runs")
               for b in blocks)
    assert any(b.startswith("⚠️ **norm ≤ 1.0**: exploding in 3/3 runs (gradient norm up to 1.5e+07)") for b in blocks)
    assert list(at.dataframe[0].value["rank"]) == ["—", "—"]


def test_verdict_blocks_rank_the_cells(lab, open_page):
    _, ids = lab
    at = open_page("strategies", runs=",".join(map(str, ids["cells"])), factor="cell")
    no_errors(at)
    blocks = [m.value.replace("\\", "") for m in at.markdown if m.value.startswith(("**#", "⚠️", "—"))]
    assert [b.split("**")[1:4:2] for b in blocks][:2] in ([["#1", "lstm"], ["#2", "gru"]],
                                                            [["#1", "gru"], ["#2", "lstm"]])
    assert blocks[2].startswith("— **rnn**: no better than the trivial baseline")


def test_cells_on_different_tasks_get_no_best_on_the_page(lab, open_page):
    """GRUs on adding against LSTMs on copy, by cell: the page (which passes its factor) says no cell is
    best, ranks none, and the table's confounded column names the task."""
    from tests.test_strategies_conclusions import put

    url, _ = lab
    ids = [put(url, "gru", s, (0.020 + 0.001 * s) / 6) for s in range(2)]
    ids += [put(url, "lstm", s, 0.05 * (0.050 + 0.001 * s), task={"name": "copy", "seq_len": 50}, baseline=0.05)
            for s in range(2)]
    at = open_page("strategies", runs=",".join(map(str, ids)), factor="cell")
    no_errors(at)
    texts = [m.value.replace("\\", "") for m in at.markdown]
    assert any(t.startswith("No best cell: the groups differ in more than the cell") for t in texts), texts
    df = at.dataframe[0].value
    assert list(df["rank"]) == ["—", "—"] and list(df["group"]) == ["gru", "lstm"]
    assert list(df["confounded"]) == ['between groups: task.name: "adding"', 'between groups: task.name: "copy"']


@pytest.mark.browser
@pytest.mark.slow
def test_the_verdicts_are_on_screen_at_1440_px(sqlite_url, tmp_path):
    """In a real browser 1440 px wide, the conclusion and every group's verdict lie inside the first
    screen, in full (not in a table column that needs scrolling sideways)."""
    # both arms LSTMs: groups that differ in more than the clipping (an RNN against an LSTM) get no best
    ids = [store_run(sqlite_url, "lstm", "none", s, loss, saturate=True) for s, loss in enumerate([0.165, 0.17])]
    ids += [store_run(sqlite_url, "lstm", NORM, s, loss) for s, loss in enumerate([0.004, 0.005])]
    env = {"RNNLAB_DATABASE_URL": sqlite_url, "RNNLAB_HOME": str(tmp_path)}
    with running_app(env, tmp_path / "app.log") as url:
        pw, browser = chromium()
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.goto(f"{url}/strategies?runs={','.join(map(str, ids))}&factor=clipping")
            wait_idle(page, 120_000)
            assert error_texts(page) == []
            for text in ("Best clipping here", "#1 norm ≤ 1.0: solves the task (2/2 runs)",
                         "none: exploding in 2/2 runs (ρ(W_hh) grew 6.8e+03×); saturated in 2/2 runs"):
                box = page.get_by_text(text).first.bounding_box()
                assert box is not None, text
                right, bottom = box["x"] + box["width"], box["y"] + box["height"]
                assert box["x"] >= 0 and right <= 1440 and bottom <= 1000, (text, box)
        finally:
            browser.close()
            pw.stop()


def _baseline_marks(at, title: str = "Validation loss by cell") -> tuple[list[dict], list[dict], list[str]]:
    """(rects, lines, labels) of the baseline marks on the Strategies loss chart."""
    fig = next(f for f in figures(at) if title in f["layout"]["title"]["text"])
    shapes = fig["layout"].get("shapes", [])
    labels = [a["text"] for a in fig["layout"].get("annotations", []) if a.get("text", "").startswith("baseline")]
    return ([s for s in shapes if s.get("type") == "rect"], [s for s in shapes if s.get("type") == "line"], labels)


def test_the_loss_chart_marks_each_cluster_of_baselines_with_its_runs(lab, open_page):
    """A line at the median baseline was wrong for every group whose baseline is not the median (the
    copy task's baseline changes with T): with baselines that really differ (1/6 and 0.5, 3× apart)
    each gets its own line labelled with its runs, and the page says why; with one shared baseline
    there is one line at that value, with no run list."""
    from sqlalchemy import create_engine, text

    url, _ = lab
    ids = [store_run(url, cell, NORM, s, 0.05) for cell in ("rnn", "lstm") for s in range(2)]

    at = open_page("strategies", runs=",".join(map(str, ids)), factor="cell")
    no_errors(at)
    rects, lines, labels = _baseline_marks(at)
    assert rects == [] and len(lines) == 1 and lines[0]["y0"] == pytest.approx(1 / 6, rel=1e-12)  # the adding task's
    assert labels == ["baseline 0.1667"]
    assert not any("baselines differ" in c.value for c in at.caption)

    with create_engine(url).begin() as c:
        c.execute(text("UPDATE runs SET baseline_loss = 0.5 WHERE id IN (:a, :b)"), {"a": ids[0], "b": ids[1]})
    _reset_caches()   # the page's reads are cached for a few seconds, as a user would see after them
    at = open_page("strategies", runs=",".join(map(str, ids)), factor="cell")
    no_errors(at)
    rects, lines, labels = _baseline_marks(at)
    assert rects == [] and sorted(s["y0"] for s in lines) == pytest.approx([1 / 6, 0.5], rel=1e-12)
    assert sorted(labels) == [f"baseline 0.1667 (runs {ids[2]}, {ids[3]})", f"baseline 0.5 (runs {ids[0]}, {ids[1]})"]
    assert any("The groups' trivial baselines differ (0.1667 to 0.5" in c.value for c in at.caption)


def test_the_loss_chart_baseline_is_the_held_out_one_the_verdicts_use(lab, open_page):
    """The mark is the baseline each run's loss ÷ baseline divides by, as Compare draws it: the trivial
    predictor's loss on the run's own held-out set when stored (0.2 here), not the task's analytic 1/6.
    Held-out sets drawn from different seeds give baselines ~1% apart: then one grey band from their
    min to their max (not a line per seed, and not nothing), and no caption: they are one baseline."""
    from sqlalchemy import create_engine, text

    url, _ = lab
    ids = [store_run(url, cell, NORM, s, 0.05) for cell in ("rnn", "lstm") for s in range(2)]
    with create_engine(url).begin() as c:
        c.execute(text("UPDATE runs SET baseline_heldout_loss = 0.2 WHERE id IN (:a, :b, :c, :d)"),
                  dict(zip("abcd", ids)))

    at = open_page("strategies", runs=",".join(map(str, ids)), factor="cell")
    no_errors(at)
    rects, lines, labels = _baseline_marks(at)
    assert rects == [] and len(lines) == 1 and lines[0]["y0"] == pytest.approx(0.2, rel=1e-12)
    assert labels == ["baseline 0.2"]           # Compare's label for a baseline every run shares

    held = {ids[0]: 0.1991, ids[1]: 0.2012, ids[2]: 0.2003}   # three seeds' held-out sets, ~1% apart
    with create_engine(url).begin() as c:
        for rid, v in held.items():
            c.execute(text("UPDATE runs SET baseline_heldout_loss = :v WHERE id = :a"), {"v": v, "a": rid})
    _reset_caches()
    at = open_page("strategies", runs=",".join(map(str, ids)), factor="cell")
    no_errors(at)
    rects, lines, labels = _baseline_marks(at)
    (rect,) = rects
    assert (rect["y0"], rect["y1"]) == (min(held.values()), max(held.values()))   # 0.1991 and 0.2012
    assert rect["line"]["width"] == 0 and rect["opacity"] <= 0.3
    assert sorted(s["y0"] for s in lines) == [0.1991, 0.2012]   # the band's dotted edges, no line per seed
    assert labels == ["baseline 0.1991–0.2012 (each run's held-out set)"]
    assert not any("baselines differ" in c.value for c in at.caption)
