"""A verdict counts every seed of the scale: a seed whose run failed is no evidence for the claim, so a
claim that holds on the other seeds is inconclusive, never reproduced. Seed intervals beyond 30 degrees
of freedom and NaN seeds are reported exactly."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from scipy import stats

import studies
from studies.core import Check, Number, Scale, Study, StudyData, decide, t95
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


# ---------------------------------------------------------------------------------------------
# a check with no value on a seed (None: no evidence either way) counts that seed like a failed one
# ---------------------------------------------------------------------------------------------

def _decide_checks(values: dict[int, list[bool | None]]):
    """decide on a 5-seed study whose analysis returns one check per column of ``values`` ({seed: [value
    of check 0, check 1, ...]}), every run finished; a None's why names its seed."""
    seeds = tuple(sorted(values))
    n = len(next(iter(values.values())))

    def analyse(study, data):
        return [Check(f"check {i}", {s: values[s][i] for s in seeds},
                      {s: f"seed {s}'s run diverged" for s in seeds if values[s][i] is None}) for i in range(n)], [], []

    study = Study(name="t", version=1, title="t", claim="c", source="s", group_by="hidden_size", analyse=analyse,
                  scales={"cpu": Scale(base={}, vary={"hidden_size": [8]}, seeds=seeds)})
    runs = pd.DataFrame({"id": range(len(seeds)), "status": "succeeded", "seed": list(seeds),
                         "point": study.points("cpu")[0]})
    empty = pd.DataFrame(columns=["run_id"])
    return decide(study, StudyData(tag=study.tag("cpu"), runs=runs, epochs=empty, layers=empty), "cpu")


@pytest.mark.parametrize(("values", "verdict"), [
    # every check holds on 4 seeds, the fifth has no evidence: never reproduced with a seed unaccounted for
    ({0: [True, True], 1: [True, True], 2: [True, True], 3: [True, True], 4: [True, None]}, studies.INCONCLUSIVE),
    # a check fails on 3 seeds, 2 give no evidence: refuted on every seed with evidence (at least 3)
    ({0: [False, True], 1: [True, False], 2: [False, False], 3: [True, None], 4: [None, None]},
     studies.NOT_REPRODUCED),
    # a failing check outweighs one with no value on the same seed (False and unknown is False)
    ({0: [False, None], 1: [False, True], 2: [False, True], 3: [False, True], 4: [False, True]},
     studies.NOT_REPRODUCED),
    # holds on 2, fails on 1, 2 without evidence: 3 seeds with evidence, split
    ({0: [True, True], 1: [True, True], 2: [False, True], 3: [None, True], 4: [True, None]}, studies.INCONCLUSIVE),
    # only 2 seeds with evidence
    ({0: [True, True], 1: [True, True], 2: [None, True], 3: [True, None], 4: [None, None]}, studies.INCONCLUSIVE),
    ({s: [True, True] for s in range(5)}, studies.REPRODUCED),
])
def test_a_seed_without_evidence_counts_neither_for_nor_against(values, verdict):
    out = _decide_checks(values)
    assert out.verdict == verdict, out.reason
    unknown = [s for s, v in values.items() if None in v and False not in v]
    for s in values:
        said = f"seed {s}: seed {s}'s run diverged: no evidence either way" in out.reason
        assert said == (s in unknown), (s, out.reason)


@pytest.mark.parametrize(("vals", "mean", "text"), [
    # a mean holding −∞ and finite values is −∞, whatever the finite values' signs (the docstring's rule)
    ([-math.inf, 1.0, 2.0], -math.inf, "−∞ (seeds −∞ … 2)"),
    ([-math.inf, -1.0, 2.0], -math.inf, "−∞ (seeds −∞ … 2)"),
    ([1.0, 2.0, math.inf], math.inf, "∞ (seeds 1 … ∞)"),
    ([-2.0, 1.0, math.inf], math.inf, "∞ (seeds −2 … ∞)"),
    # only +∞ together with −∞ has no mean
    ([-math.inf, 1.0, math.inf], math.nan, "NaN (seeds −∞ … ∞)"),
])
def test_the_mean_of_infinite_values_is_the_infinity_unless_both_occur(vals, mean, text):
    n = Number("x", "g", dict(enumerate(vals)), sql="")
    s = n.summary()
    assert (math.isnan(s["mean"]) if math.isnan(mean) else s["mean"] == mean), s
    assert (s["min"], s["max"]) == (min(vals), max(vals))
    assert n.text() == text
