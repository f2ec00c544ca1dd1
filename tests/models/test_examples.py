"""The example specs in examples/ load, validate and describe (a full run is left to the user)."""

from pathlib import Path

import pytest

from models import describe
from rnnlab.spec import JobSpec, SweepSpec, expand_sweep, load

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_loads_and_describes(path):
    spec = load(path)
    specs = expand_sweep(spec) if isinstance(spec, SweepSpec) else [spec]
    assert all(isinstance(s, JobSpec) for s in specs)
    info = describe(specs[0])
    assert info.seq_len >= 2 and info.num_params > 0


def test_examples_exist():
    names = {p.name for p in EXAMPLES}
    assert {"adding_lstm.yaml", "init_sweep.yaml"} <= names
    assert len(expand_sweep(load(Path(EXAMPLES[0]).parent / "init_sweep.yaml"))) == 16
