"""Which spec differences confound a Strategies comparison (rnnlab.strategies.confounds_between and
confounds): the canonical form is compared (JobSpec.canonical: activation null and 'tanh', init.bias null
and 'default' are one spec), fields that do not change what is learned (device, probe.*, name, seed) are
ignored, and so is a field that only the factor's value can set (init.forget_bias exists for the LSTM
only). Every built-in preset and study, grouped by the factor it varies, compares that factor alone."""

from __future__ import annotations

import pandas as pd
import pytest

import studies
from dashboard.presets import PRESETS
from rnnlab import strategies
from rnnlab.spec import expand_sweep, parse_spec

_SWEEPS = [(f"preset {k}", v[1]) for k, v in PRESETS.items()] + [
    (f"study {name} ({scale})", st.sweep(scale)) for name, st in studies.STUDIES.items() for scale in st.scales]


def _synthetic(specs: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Runs (all succeeded) and their final results: loss ÷ baseline 0.01 to 0.5 by group, one per seed."""
    runs = pd.DataFrame({"id": range(len(specs)), "status": "succeeded", "seed": [s["seed"] for s in specs],
                         "baseline_loss": 1.0, "seq_len": [s["task"]["seq_len"] for s in specs], "spec": specs,
                         "info": [None] * len(specs)})
    final = pd.DataFrame({"run_id": range(len(specs)),
                          "val_loss": [0.01 * (1 + i % 50) * (1 + 0.01 * s["seed"]) for i, s in enumerate(specs)]})
    return runs, final


@pytest.mark.parametrize("label, sweep", _SWEEPS, ids=[x[0] for x in _SWEEPS])
def test_every_builtin_sweep_compares_its_factor_alone(label, sweep):
    """The temporal-order preset's LSTM points set init.forget_bias 3, which the spec refuses for GRU and
    RNN: grouped by cell it was 'No best cell … (init.forget_bias: 3.0 (lstm); null (gru, rnn))'."""
    specs = [s.to_dict() for s in expand_sweep(sweep)]
    runs, final = _synthetic(specs)
    factor = strategies.varying_factor(runs)
    groups = strategies.groups_of(runs, factor)
    table = strategies.summary(runs, final, groups, factor=factor)
    assert len(table) >= 2, label
    assert not any(table["_between"]), (label, factor, list(table["_between"]))
    assert not strategies.overall(table, factor).startswith("No best"), label


def _specs(**fields) -> list[dict]:
    base = {"task": {"name": "adding", "seq_len": 50}, "hidden_size": 32}
    return [parse_spec({**base, **fields, "seed": s}).to_dict() for s in range(2)]


@pytest.mark.parametrize("a, b, factor", [
    ({"cell": "lstm", "device": "cpu"}, {"cell": "gru"}, "cell"),                     # device cpu vs auto
    ({"cell": "lstm", "probe": {"every": 2}}, {"cell": "gru"}, "cell"),               # the probe schedule
    ({"cell": "lstm", "init": {"bias": "default"}}, {"cell": "gru"}, "cell"),         # null resolves to 'default'
    ({"cell": "rnn", "clip": {"mode": "norm", "max_norm": 1.0}}, {"cell": "rnn", "activation": "tanh"}, "clipping"),
    ({"cell": "lstm", "init": {"forget_bias": 1.0}}, {"cell": "rnn", "activation": "relu"}, "activation"),
    ({"cell": "lstm", "name": "x"}, {"cell": "gru", "name": "y"}, "cell"),
], ids=["device", "probe", "init.bias", "activation", "forget_bias", "name"])
def test_equivalent_or_unlearned_differences_do_not_confound(a, b, factor):
    assert strategies.confounds_between({"a": _specs(**a), "b": _specs(**b)}, factor) == {}
    assert strategies.confounds(_specs(**a) + _specs(**{**a, "device": "cuda", "probe": {"every": 3}})) == {}


def test_real_differences_still_confound():
    """What is trained differently is still named: another lr, another forget bias on two LSTM groups."""
    between = strategies.confounds_between(
        {"lstm": _specs(cell="lstm", optimizer={"name": "adam", "lr": 0.01}), "gru": _specs(cell="gru")}, "cell")
    assert list(between) == ["optimizer.lr"]
    by_init = strategies.confounds_between(
        {"a": _specs(cell="lstm", init={"forget_bias": 3.0}), "b": _specs(cell="lstm", init="orthogonal")}, "init")
    assert by_init == {}   # init.* is the factor's own
    by_depth = strategies.confounds_between(
        {"1": _specs(cell="lstm", init={"forget_bias": 3.0}), "2": _specs(cell="lstm", num_layers=2)}, "depth")
    assert list(by_depth) == ["init.forget_bias"]
