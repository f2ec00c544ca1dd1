"""Held-out evaluation of a fused net on the CPU runs in chunks of EVAL_CHUNK_CPU sequences: the same numbers."""

import sys

import pytest

from models.train import Trainer, evaluate

T = sys.modules["models.train"]


@pytest.mark.parametrize("cell,task", [("lstm", {"name": "adding", "seq_len": 12}),     # output at the last step
                                       ("gru", {"name": "copy", "seq_len": 6}),         # output at every step
                                       ("rnn", {"name": "adding", "seq_len": 12})])
def test_chunked_evaluation_gives_the_same_numbers(tiny, monkeypatch, cell, task):
    tr = Trainer(tiny(cell=cell, task=task))
    assert tr.net.fused and max(b.size for b in tr.task.heldout()) > T.EVAL_CHUNK_CPU  # the chunked path runs
    chunked = evaluate(tr.net, tr.task, tr.device)
    monkeypatch.setattr(T, "EVAL_CHUNK_CPU", 10**9)
    whole = evaluate(tr.net, tr.task, tr.device)
    monkeypatch.setattr(T, "EVAL_CHUNK_CPU", 7)   # chunks that do not divide the batch
    odd = evaluate(tr.net, tr.task, tr.device)
    assert chunked == pytest.approx(whole, rel=1e-6) and odd == pytest.approx(whole, rel=1e-6)
