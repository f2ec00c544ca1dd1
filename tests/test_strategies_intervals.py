"""The Strategies verdict's intervals use the exact Student t quantile for every number of runs: the old
table said 1.96 beyond 31 runs, so 40 seeds whose 95% upper bound of loss ÷ baseline is just above 1
were said to beat the baseline, and their final-loss interval was too narrow."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from rnnlab import strategies
from rnnlab.spec import parse_spec

N = 40
T975_39 = 2.022691     # t₀.₉₇₅ with 39 degrees of freedom, from a printed table (the old code used 1.96)
B = 1 / 6              # the adding task's analytic baseline


def _group(ratios: list[float]) -> pd.DataFrame:
    """One LSTM group, one finished run per ratio (final loss = ratio × the analytic baseline)."""
    runs, final = [], []
    for i, r in enumerate(ratios, start=1):
        spec = parse_spec({"cell": "lstm", "seed": i, "task": {"name": "adding", "seq_len": 50}}).to_dict()
        runs.append({"id": i, "status": "succeeded", "seed": i, "baseline_loss": B, "seq_len": 50, "spec": spec})
        final.append({"run_id": i, "val_loss": r * B, "horizon": 49.0, "decay_per_step": -0.01, "log_ratio": -0.5})
    runs_df = pd.DataFrame(runs)
    return strategies.summary(runs_df, pd.DataFrame(final), strategies.groups_of(runs_df, "cell")).set_index("group")


def test_forty_seeds_just_short_of_the_baseline_do_not_beat_it():
    """Ratios 0.8 ± d (20 each) with d·√(40/39)/√40 = 0.1: the upper bound is 0.8 + t·0.1, 1.0023 with
    the exact t (does not beat the baseline), 0.996 with the old 1.96 (said it did)."""
    sd = 0.1 * math.sqrt(N)
    d = sd * math.sqrt((N - 1) / N)
    row = _group([0.8 - d] * (N // 2) + [0.8 + d] * (N // 2)).loc["lstm"]
    assert row["finished"] == N
    assert row["_upper"] == pytest.approx(0.8 + T975_39 * 0.1, abs=1e-6)
    assert row["_upper"] > 1 and not row["beats baseline"] and pd.isna(row["rank"])
    assert row["_basis"] == f"spread over {N} seeds"
    assert row["verdict"].startswith("no better than the trivial baseline (loss at 80% of the baseline, "
                                     "95% upper bound 100% (spread over 40 seeds))")


def test_the_final_loss_interval_of_forty_seeds_uses_the_exact_quantile():
    """The log10 final-loss interval is mean ± t₀.₉₇₅,₃₉·s/√40 of the log10 losses."""
    rng = np.random.default_rng(3)
    ratios = list(10 ** rng.normal(-1.0, 0.5, N))
    row = _group(ratios).loc["lstm"]
    u = np.log10(np.array(ratios) * B)
    half = T975_39 * u.std(ddof=1) / math.sqrt(N)
    assert row["_lo"] == pytest.approx(u.mean() - half, abs=1e-7)
    assert row["_hi"] == pytest.approx(u.mean() + half, abs=1e-7)
