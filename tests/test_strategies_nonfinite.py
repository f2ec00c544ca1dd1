"""A group's final loss on the Strategies page is the geometric mean of its finished runs' finite final
losses (0 counts as LOSS_FLOOR, the best possible). A NaN final loss (a diverged run; SQLite hands a
stored NaN back as NULL) is no loss at all: it must neither count as 0 nor as the floor. np.fmax(NaN,
floor) returns the floor, which once turned a diverged seed into the best possible loss."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from rnnlab import strategies
from rnnlab.spec import parse_spec

B = 1 / 6


def _summary(groups: dict[str, list[float]]) -> pd.DataFrame:
    runs, final, i = [], [], 0
    for cell, losses in groups.items():
        for seed, loss in enumerate(losses):
            i += 1
            spec = parse_spec({"cell": cell, "seed": seed, "task": {"name": "adding", "seq_len": 50}}).to_dict()
            status = "succeeded" if loss is not None and math.isfinite(loss) else "diverged"
            runs.append({"id": i, "status": status, "seed": seed, "baseline_loss": B, "seq_len": 50, "spec": spec})
            final.append({"run_id": i, "val_loss": loss, "horizon": 10.0, "decay_per_step": -0.1,
                          "log_ratio": -3.0})
    runs_df = pd.DataFrame(runs)
    return strategies.summary(runs_df, pd.DataFrame(final), strategies.groups_of(runs_df, "cell")).set_index("group")


@pytest.mark.parametrize("bad", [math.nan, None])
def test_a_nan_final_loss_is_left_out_not_floored(bad):
    s = _summary({"rnn": [0.16, 0.17, bad], "lstm": [0.011, 0.012, 0.010]})
    rnn, lstm = s.loc["rnn"], s.loc["lstm"]
    want = 10 ** np.mean(np.log10([0.16, 0.17]))          # the finite seeds' geometric mean
    assert rnn["final loss"] == pytest.approx(want, rel=1e-12)
    assert rnn["final loss"] > lstm["final loss"]           # the diverged group does not look best
    assert rnn["diverged"] == 1
    assert not rnn["beats baseline"]


def test_a_zero_final_loss_still_counts_as_the_floor():
    s = _summary({"lstm": [0.0, 1e-6]})
    want = 10 ** np.mean(np.log10([strategies.LOSS_FLOOR, 1e-6]))
    assert s.loc["lstm"]["final loss"] == pytest.approx(want, rel=1e-12)


def test_an_infinite_final_loss_is_left_out_of_the_mean_like_nan():
    s = _summary({"rnn": [0.2, math.inf]})
    assert s.loc["rnn"]["final loss"] == pytest.approx(0.2, rel=1e-12)
    assert s.loc["rnn"]["diverged"] == 1
