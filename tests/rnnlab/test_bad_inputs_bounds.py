"""bench/bad_inputs.py's submit channel parses each spec under no size limits, so that submit() itself is what
refuses it; its "big" limits lifted every limit but RNNLAB_MAX_PARAMS (added later), so a spec over the
parameter limit was refused by the schema-only parse, never by submit(). tests/rnnlab/test_limits.py runs
every case through every channel; this checks the parameter rows and what the submit channel relies on."""

from __future__ import annotations

import pytest

from bench.bad_inputs import CASES, run_all, unlimited
from rnnlab.spec import Limits, expand_sweep, parse_spec, parse_sweep

PARAMS = [c for c in CASES if c.expect == "RNNLAB_MAX_PARAMS"]


def test_the_schema_only_limits_lift_every_size_limit():
    lifted = unlimited()
    for name in Limits.model_fields:
        if name.startswith("max_"):
            assert getattr(lifted, name) > getattr(Limits(), name), name


def test_there_are_parameter_rows_for_a_spec_and_a_sweep():
    assert {c.doc is not None for c in PARAMS} == {True, False}, [c.id for c in PARAMS]


@pytest.mark.parametrize("case", PARAMS, ids=[c.id for c in PARAMS])
def test_a_spec_over_the_parameter_limit_is_refused_by_submit_itself(case):
    # what the submit channel hands to submit() passes the schema: the refusal below is submit()'s
    specs = ([parse_spec(case.doc, unlimited())] if case.doc is not None
             else expand_sweep(parse_sweep(case.sweep), unlimited()))
    over = [s for s in specs if s.num_params > Limits().max_params]
    assert over and all(s.num_params < 10 * Limits().max_params for s in specs)   # over it, and nothing heavy
    (row,) = run_all([case])
    for channel in ("cli", "form", "submit"):
        msg = row[channel]
        assert msg and "RNNLAB_MAX_PARAMS raises it" in msg and f"got {over[0].num_params:,}" in msg, (channel, msg)
        assert "the operator's limit is 30,000,000" in msg, (channel, msg)
