"""The Strategies page puts the conclusion and each group's verdict on screen, best first, above the
table (AppTest on runs written through the real store): the exploding-init preset's dead arms read
"No group solved the task" and are flagged by name; the seeded cells rank LSTM/GRU above the RNN."""

from __future__ import annotations

from tests.dashboard.conftest import no_errors
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
    assert any(b.startswith("⚠️ **none**: exploding in 3/3 runs (ρ(W_hh) grew 7e+03×); saturated in 3/3 runs")
               for b in blocks)
    assert any(b.startswith("⚠️ **norm ≤ 1.0**: exploding in 3/3 runs (gradient norm up to 2e+07)") for b in blocks)
    assert list(at.dataframe[0].value["rank"]) == ["—", "—"]


def test_verdict_blocks_rank_the_cells(lab, open_page):
    _, ids = lab
    at = open_page("strategies", runs=",".join(map(str, ids["cells"])), factor="cell")
    no_errors(at)
    blocks = [m.value.replace("\\", "") for m in at.markdown if m.value.startswith(("**#", "⚠️", "—"))]
    assert [b.split("**")[1:4:2] for b in blocks][:2] in ([["#1", "lstm"], ["#2", "gru"]],
                                                            [["#1", "gru"], ["#2", "lstm"]])
    assert blocks[2].startswith("— **rnn**: no better than the trivial baseline")
