"""The operator's parameter limit (RNNLAB_MAX_PARAMS): JobSpec.num_params, computed from the spec, equals
the parameter count of the model the engine builds, for every cell, activation and task; a spec over the
limit is refused before anything is built; every preset and study fits with a wide margin."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from rnnlab.spec import Limits, SpecError, check_limits, expand_sweep, parse_spec

TASKS = [
    {"name": "adding", "seq_len": 5},
    {"name": "copy", "seq_len": 3, "n_symbols": 5, "n_copy": 2},
    {"name": "temporal_order", "seq_len": 10},
    {"name": "digits"},
    {"name": "charlm", "seq_len": 5},
    {"name": "forecast", "seq_len": 5},
]
CELLS = [("rnn", "tanh"), ("rnn", "relu"), ("rnn", "sigmoid"), ("rnn", "prelu"), ("lstm", None), ("gru", None)]


def _built(spec):
    from models.build import build_model
    from models.tasks import make_task

    net = build_model(spec, make_task(spec.task, spec.seed))
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize(("cell", "act"), CELLS)
def test_num_params_is_the_built_models_count(cell, act):
    for task, (h, layers) in zip(TASKS, itertools.cycle([(1, 1), (3, 2), (7, 3), (16, 1), (5, 4)])):
        spec = parse_spec({"task": task, "cell": cell, "activation": act, "hidden_size": h, "num_layers": layers,
                           "device": "cpu"})
        assert spec.num_params == _built(spec), (cell, act, task["name"], h, layers)


def test_num_params_bounds_a_charlm_text_by_the_vocabulary_cap(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("abcab cab\n" * 200)
    spec = parse_spec({"task": {"name": "charlm", "path": str(text), "seq_len": 5}, "cell": "gru",
                       "hidden_size": 4, "device": "cpu"})
    assert spec.io_sizes == (1024, 1024)
    assert _built(spec) < spec.num_params == 3 * 4 * (1024 + 4 + 2) + 4 * 1024 + 1024


def test_a_model_over_the_parameter_limit_is_refused_before_anything_is_built():
    # LSTM H4096, 8 layers, T=2, batch 1 passed every limit (work 65,536): 1,006,931,969 parameters, 4 GB,
    # about 12 GB per checkpoint into one database row
    doc = {"cell": "lstm", "hidden_size": 4096, "num_layers": 8, "task": {"name": "adding", "seq_len": 2},
           "batch_size": 1, "probe": {"batch_size": 1}}
    with pytest.raises(SpecError) as e:
        parse_spec(doc)
    assert e.value.errors == [
        "parameters (lstm: 4 gate blocks × hidden_size 4096 × 8 layers, 2 in, 1 out): got 1,006,931,969; the "
        "operator's limit is 30,000,000 (RNNLAB_MAX_PARAMS raises it)"]
    assert check_limits(parse_spec(doc, Limits(max_params=1_006_931_969)), Limits(max_params=1_006_931_969)) == []


def test_every_preset_study_and_example_fits_the_parameter_limit_tenfold():
    from dashboard.presets import PRESETS
    from rnnlab.spec import SweepSpec, load
    from studies import STUDIES

    many = Limits(max_sweep_runs=10**6)
    specs = [s for _, sweep in PRESETS.values() for s in expand_sweep(sweep, many)]
    specs += [s for study in STUDIES.values() for scale in study.scales for s in study.specs(scale, many)]
    for f in sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml")):
        doc = load(f)
        specs += expand_sweep(doc) if isinstance(doc, SweepSpec) else [doc]
    assert len(specs) > 100
    assert max(s.num_params for s in specs) * 10 <= Limits().max_params


def test_the_parameter_limit_is_documented():
    doc = (Path(__file__).resolve().parents[2] / "docs" / "spec.md").read_text()
    assert f"| `RNNLAB_MAX_PARAMS` | {Limits().max_params:,} |" in doc
