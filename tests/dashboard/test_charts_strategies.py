"""Pieces of the Strategies charts: charts.band keeps a group's colour whatever groups a chart lacks
when given the page's colour map (``group_colors``), and reads.heldout_keys says which baselines are
held-out and of which task configuration (the ``kinds`` of charts.baseline_marks)."""

from __future__ import annotations

import math

import pandas as pd

from dashboard import charts, reads
from rnnlab.spec import JobSpec


def _df(groups: list[str]) -> pd.DataFrame:
    return pd.DataFrame([{"group": g, "epoch": e, "mean": 0.1 * (i + 1), "lo": 0.05, "hi": 0.5, "n": 2}
                         for i, g in enumerate(groups) for e in range(3)])


def _colour_of_groups(fig) -> dict[str, str]:
    """{group: the colour of its mean line} (the legend entry 'group (n=2)')."""
    out = {}
    for t in fig.data:
        if t.showlegend is not False and t.name and "(n=" in t.name:
            out[t.name.split(" (n=")[0]] = t.line.color
    return out


def test_a_group_missing_from_one_chart_keeps_every_colour():
    page = ["rnn", "lstm", "gru"]
    cmap = charts.colors(page)
    every = _colour_of_groups(charts.band(_df(page), "epoch", "loss", "loss", group_colors=cmap))
    lacking = _colour_of_groups(charts.band(_df(["lstm", "gru"]), "epoch", "profile", "‖g‖", group_colors=cmap))
    assert set(every) == set(page) and set(lacking) == {"lstm", "gru"}
    assert lacking == {g: every[g] for g in ("lstm", "gru")}
    assert len(set(every.values())) == 3     # and the three groups are told apart


def _runs(rows: list[tuple[dict, float | None]]) -> pd.DataFrame:
    """Rows of runs_by_ids: (the JobSpec fields, baseline_heldout_loss)."""
    return pd.DataFrame([{"id": i + 1, "spec": JobSpec.model_validate(s).to_dict(), "baseline_heldout_loss": h,
                          "baseline_loss": 0.1} for i, (s, h) in enumerate(rows)])


def test_heldout_keys_are_none_for_analytic_and_the_task_without_the_seed():
    runs = _runs([
        ({"task": {"name": "adding", "seq_len": 100}, "seed": 0}, 0.1655),
        ({"task": {"name": "adding", "seq_len": 100}, "seed": 1, "cell": "lstm"}, 0.1662),  # another seed, cell
        ({"task": {"name": "adding", "seq_len": 200}, "seed": 0}, 0.1671),                 # another T
        ({"task": {"name": "adding", "variant": "p13", "seq_len": 100}, "seed": 0}, 0.04),  # another variant
        ({"task": {"name": "copy", "seq_len": 100}, "seed": 0}, 0.17),
        ({"task": {"name": "copy", "seq_len": 100, "n_symbols": 9}, "seed": 0}, 0.18),      # another alphabet
        ({"task": {"name": "copy", "seq_len": 190}, "seed": 0}, None),                      # analytic
        ({"task": {"name": "copy", "seq_len": 200}, "seed": 0}, math.nan),                  # analytic
        ({"task": {"name": "digits"}, "seed": 0}, 2.3),
        ({"task": {"name": "digits", "perm_seed": 5}, "seed": 1}, 2.3),   # not permuted: perm_seed does not act
        ({"task": {"name": "digits", "permuted": True, "perm_seed": 5}, "seed": 1}, 2.3),
    ])
    keys = list(reads.heldout_keys(runs))
    assert keys[6] is None and keys[7] is None
    assert keys[0] == keys[1] and keys[8] == keys[9]
    held = [k for i, k in enumerate(keys) if i not in (1, 6, 7, 9)]
    assert None not in held and len(set(held)) == len(held)   # every other configuration its own key
    # without a task spec a value is never put in a band
    assert list(reads.heldout_keys(runs.drop(columns="spec"))) == [None] * len(runs)
