"""Tiny specs for the engine tests."""

import pytest
import torch

from rnnlab.spec import parse_spec

torch.set_num_threads(1)


def tiny(**over):
    """A tiny, fast job spec; keyword arguments override fields (dicts replace whole sub-specs)."""
    d = {"hidden_size": 8, "epochs": 2, "steps_per_epoch": 3, "batch_size": 4,
         "task": {"name": "adding", "seq_len": 12}, "probe": {"batch_size": 3}, "device": "cpu"}
    d.update(over)
    return parse_spec(d)


@pytest.fixture(name="tiny")
def tiny_fixture():
    """The ``tiny(**overrides)`` spec factory."""
    return tiny
