"""A verdict counts every seed of the scale: a seed whose run failed is no evidence for the claim, so a
claim that holds on the other seeds is inconclusive, never reproduced. Seed intervals beyond 30 degrees
of freedom and NaN seeds are reported exactly."""

from __future__ import annotations

import math

import pytest
from scipy import stats

import studies
from studies.core import Number, t95
from studies.data import load
from tests.studies.helpers import plant

ACT = studies.get("activations")
GOOD = {"sigmoid": (-30.0, 4.0), "tanh": (-1.0, 49.0), "relu": (-0.2, 49.0)}


def test_a_claim_holding_on_the_complete_seeds_is_inconclusive_when_a_seed_failed(sqlite_url):
    seeds = ACT.scales["paper"].seeds
    assert len(seeds) > 3                               # room for 3 complete seeds and failed ones

    def values(spec):
        lr, hz = GOOD[spec.activation]
        failed = spec.activation == "relu" and spec.seed in seeds[3:]
        return {"log_ratio0": lr - 0.1 * spec.seed, "horizon0": hz, "status": "failed" if failed else "succeeded"}

    plant(ACT, sqlite_url, values, scale="paper")
    out = ACT.decide(load(ACT, "paper", sqlite_url), "paper")
    assert out.seeds_complete == list(seeds[:3])
    assert out.verdict == studies.INCONCLUSIVE, out.reason
    assert f"{len(seeds) - 3} of the {len(seeds)} seeds lack a finished run" in out.reason


@pytest.mark.parametrize("n", [2, 5, 31, 32, 40, 100, 1000])
def test_t_quantile_matches_scipy(n):
    assert t95(n) == pytest.approx(stats.t.ppf(0.975, n - 1), abs=2e-4)


def test_a_nan_seed_is_left_out_and_said():
    n = Number("x", "g", {0: 1.0, 1: math.nan, 2: 3.0}, sql="")
    s = n.summary()
    half = stats.t.ppf(0.975, 1) * math.sqrt(2) / math.sqrt(2)     # std of (1, 3) is √2, n = 2
    assert s["mean"] == 2.0 and s["hi"] == pytest.approx(2.0 + half)
    assert n.text().endswith("(1 seed NaN, left out)")


def test_a_nan_horizon_at_a_middle_length_fails_the_seq_len_check(sqlite_url):
    """Python's max/min skip a NaN that is not first: a NaN horizon (‖g_T‖ = 0 or non-finite) must fail
    the 'same horizon at every T' check, not pass it."""
    seq = studies.get("seq-len")
    Ts = sorted({s.task.seq_len for s in seq.specs("cpu")})
    mid = Ts[len(Ts) // 2]

    def values(spec):
        c, T = spec.cell, spec.task.seq_len
        ratio = 0.001 if c == "lstm" else (1.0 if T == Ts[-1] else 0.5)
        hz = math.nan if (c == "rnn" and T == mid) else (12.0 if c == "rnn" else 10.0)
        return {"val_loss": ratio / 6, "horizon0": hz, "log_ratio0": -0.2 * T, "horizon_last": T - 1.0}

    plant(seq, sqlite_url, values)
    out = seq.decide(load(seq, "cpu", sqlite_url), "cpu")
    first = out.checks[0]
    assert not any(first.per_seed.values()), first.per_seed
    assert out.verdict == studies.NOT_REPRODUCED, out.reason
