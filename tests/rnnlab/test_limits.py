"""Strict input and sizes checked before anything is built: more than 50 bad inputs (bench/bad_inputs.py)
through the CLI, the dashboard's form-collecting functions and submit(), each refused with a message
naming the field; seed ranges counted from their bounds; the sweep builder not even drawn for a role
that cannot submit; submit() enforcing the limits itself."""

import tracemalloc

import pytest

from bench.bad_inputs import CASES, NA, TINY, run_all
from rnnlab.spec import Limits, SpecError, load, parse_spec

CHANNELS = ("cli", "form", "submit")


@pytest.fixture(scope="module")
def results():
    return {r["id"]: r for r in run_all()}


def test_more_than_fifty_bad_inputs_each_through_at_least_one_channel():
    assert len(CASES) > 50 and len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_refused_naming_the_problem(results, case):
    # every channel that can express the input (NA: the form has no widget for a duplicate YAML key, …)
    tried = [ch for ch in CHANNELS if results[case.id][ch] != NA]
    assert tried, f"no channel can express {case.what!r}"
    for channel in tried:
        msg = results[case.id][channel]
        assert msg is not None, f"{case.what!r} was accepted through the {channel}"
        assert case.expect in msg, f"{channel}: {msg}"
        assert "Traceback" not in msg, f"{channel}: {msg}"


def test_every_case_is_tried_somewhere(results):
    assert all(any(results[c.id][ch] != NA for ch in CHANNELS) for c in CASES)


def test_seed_range_is_counted_from_its_bounds_not_built():
    from dashboard.sweeps import parse_seeds

    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="2,000,001 seeds.*at most 1000 runs.*RNNLAB_MAX_SWEEP_RUNS"):
            parse_seeds("0-2000000", 1000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000   # a list of 2M ints would take ~80 MB
    assert parse_seeds("0-2, 5", 1000) == [0, 1, 2, 5]
    assert len(parse_seeds("0-999", 1000)) == 1000


def test_sweep_grid_size_is_arithmetic(tmp_path):
    # 10^12 grid points: refused at once, by multiplication (expanding would never finish)
    import yaml

    doc = {"base": TINY, "vary": {k: list(range(1, 11)) for k in (
        "hidden_size", "epochs", "steps_per_epoch", "batch_size", "num_layers", "probe.every")}}
    head = yaml.safe_dump(doc, default_flow_style=True, width=10**9).strip()[:-1]   # "{base: …, vary: …"
    path = tmp_path / "huge.yaml"
    path.write_text(head + ", seeds: [" + ", ".join(map(str, range(1_000_000))) + "]}\n")
    assert path.stat().st_size > 1_000_000   # …and the file is over the size cap too
    with pytest.raises(SpecError, match="at most 1,000,000 bytes"):
        load(path)
    path.write_text(head + ", seeds: [" + ", ".join(map(str, range(1000))) + "]}\n")
    with pytest.raises(SpecError, match=r"1,000,000,000 runs .*RNNLAB_MAX_SWEEP_RUNS"):
        load(path)


@pytest.mark.parametrize("role, builds", [("viewer", False), ("member", True)])
def test_the_sweep_builder_is_not_drawn_for_a_role_that_cannot_submit(monkeypatch, role, builds):
    from streamlit.testing.v1 import AppTest

    from dashboard import auth

    monkeypatch.setattr(auth, "current_user", lambda: auth.User(name="u", role=role))

    def page():
        import streamlit as st

        from dashboard import sweeps

        st.session_state.setdefault("sw.seeds", "0-20000000")
        vary, seeds, _, errors, _ = sweeps.render_builder()
        st.write(f"seeds={len(seeds)}")
        for e in errors:
            st.error(e)

    at = AppTest.from_function(page, default_timeout=60).run()
    assert not at.exception
    assert at.markdown[-1].value == ("seeds=1" if builds else "seeds=0")
    if builds:   # the range was counted and refused; the builder fell back to one seed
        assert any("20,000,001 seeds" in e.value for e in at.error)
        assert len(at.text_input) >= 2
    else:
        assert len(at.text_input) == 0 and any("cannot build sweeps" in i.value for i in at.info)


def test_submit_enforces_the_limits_itself_and_writes_nothing(sqlite_url, fs_broker):
    from client.submit import submit
    from db import store

    loose = Limits(max_hidden_size=10**6, max_work=10**18)
    spec = parse_spec({**TINY, "hidden_size": 5000}, loose)   # built under looser limits
    with pytest.raises(SpecError, match="hidden_size: got 5000; the operator's limit is 4096"):
        submit([spec], url=sqlite_url, app=fs_broker.app(), limits=Limits())
    with pytest.raises(SpecError, match="U\\+202E"):
        submit([parse_spec(TINY)], tags=["ok", "x\u202ey"], url=sqlite_url, app=fs_broker.app())
    with pytest.raises(SpecError, match="runs: got 3 in one submission; the operator's limit is 2"):
        submit([parse_spec({**TINY, "seed": i}) for i in range(3)], url=sqlite_url, app=fs_broker.app(),
               limits=Limits(max_sweep_runs=2))
    assert store.list_runs(url=sqlite_url)[1] == 0
    assert not list((fs_broker.home / "broker" / "queue").glob("*.msg"))


def test_real_sequence_length_and_probe_batch_count():
    # the memory bound uses the steps the engine unrolls (copy: T + 2·n_copy; p13: up to 1.1·T) and
    # the probe batch, not just task.seq_len and batch_size
    copy = parse_spec({"task": {"name": "copy", "seq_len": 50, "n_copy": 10}})
    p13 = parse_spec({"task": {"name": "adding", "variant": "p13", "seq_len": 100}})
    assert (copy.steps, p13.steps) == (70, 109)
    limits = Limits(max_work=128 * 70 * 64)
    parse_spec({"task": {"name": "copy", "seq_len": 50, "n_copy": 10}}, limits)   # exactly at the limit
    with pytest.raises(SpecError, match="hidden_size·steps·batch_size·num_layers: got 589,824"):
        parse_spec({"task": {"name": "copy", "seq_len": 50, "n_copy": 11}}, limits)
    with pytest.raises(SpecError, match="hidden_size·steps·probe.batch_size·num_layers: got 1,146,880"):
        parse_spec({"task": {"name": "copy", "seq_len": 50, "n_copy": 10}, "batch_size": 1,
                    "probe": {"batch_size": 128}}, limits)
