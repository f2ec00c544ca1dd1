"""A sweep's paths are bounded before any grid point is built, an error names a bounded grid point, and
huge integers are refused with short messages (never a traceback, never kilobytes of digits)."""

from __future__ import annotations

import tracemalloc

import pytest
from typer.testing import CliRunner

from rnnlab.spec import (
    MAX_SWEEP_ERRORS,
    MAX_SWEEP_PATH_CHARS,
    MAX_SWEEP_PATHS,
    SpecError,
    expand_sweep,
    int_text,
    parse_spec,
    parse_sweep,
)

BASE = {"task": {"name": "adding", "seq_len": 5}, "hidden_size": 4}


def test_a_sweep_with_more_paths_than_a_spec_has_fields_is_refused_when_parsed():
    # one run with 65,000 varied paths (a 900 kB file, under the 1 MB cap) took > 60 s and ~37 GB
    tracemalloc.start()
    try:
        with pytest.raises(SpecError) as e:
            parse_sweep({"base": BASE, "vary": {f"k{i}": [1] for i in range(65_000)}})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert e.value.errors == [f"vary: 65,000 paths; a sweep sets at most {MAX_SWEEP_PATHS} dotted field paths "
                              f"(a job spec has about 40 fields)"]
    assert peak < 50_000_000
    with pytest.raises(SpecError, match=r"points\[1\]: 101 paths; a sweep sets at most 100"):
        parse_sweep({"base": BASE, "points": [{"cell": "gru"}, {f"k{i}": 1 for i in range(101)}]})
    with pytest.raises(SpecError, match=f"has 201 characters; a dotted field path has at most {MAX_SWEEP_PATH_CHARS}"):
        parse_sweep({"base": BASE, "points": [{"a" * 201: 1}]})
    assert len(parse_sweep({"base": BASE, "vary": {f"k{i}": [1] for i in range(MAX_SWEEP_PATHS)}}).vary) == 100


def test_errors_of_a_grid_point_name_a_bounded_point_once_each():
    # 100 unknown paths: 100 errors, each naming at most four path=value pairs (was: all 100, every time)
    sweep = parse_sweep({"base": BASE, "vary": {f"k{i}": ["x" * 500] for i in range(MAX_SWEEP_PATHS)}})
    with pytest.raises(SpecError) as e:
        expand_sweep(sweep)
    assert len(e.value.errors) == MAX_SWEEP_PATHS
    first = e.value.errors[0]
    assert first.startswith("[k0='xxxxxxxxxxxxxxxxx") and "… 96 more] k0: unknown field" in first
    assert max(len(m) for m in e.value.errors) < 400
    # the pairs that differ between grid points come first; every error once, in grid order
    sweep = parse_sweep({"base": BASE, "vary": {**{f"a{i}": [1] for i in range(6)}, "hidden_size": [0, 8, -1]}})
    with pytest.raises(SpecError) as e:
        expand_sweep(sweep)
    firsts = [m.split("] ", 1)[0] for m in e.value.errors]
    assert firsts[0] == "[hidden_size=0, a0=1, a1=1, a2=1, … 3 more" and firsts[-1].startswith("[hidden_size=-1, a0=1")
    assert len(e.value.errors) == len(set(e.value.errors)) == 2 * 6 + 2 + 6   # 6 unknown fields per point


def test_checking_stops_after_a_thousand_distinct_errors():
    # 2,000 bad fields under a varied group are no [base] error: every one of 50 grid points repeated them
    # (100,000 errors; a 1 MB file holds 65,000 such fields, and a sweep 1,000 grid points)
    task = {"name": "adding", **{f"x{i}": 1 for i in range(2000)}}
    sweep = parse_sweep({"base": {**BASE, "task": task}, "vary": {"task.seq_len": list(range(5, 55))}})
    with pytest.raises(SpecError) as e:
        expand_sweep(sweep)
    assert MAX_SWEEP_ERRORS == 1000 and len(e.value.errors) == 2001
    assert e.value.errors[0].startswith("[task.seq_len=5] task.x0: unknown field")
    assert e.value.errors[-1] == "sweep: checking stopped after 2,000 errors, at grid point 1 of 50; fix these first"


def test_int_text_names_a_huge_number_by_its_digits():
    assert [int_text(n) for n in (0, 4096, -7, 10**15 - 1)] == ["0", "4096", "-7", "999999999999999"]
    assert int_text(2_000_000_000, commas=True) == "2,000,000,000"
    assert int_text(10**15) == "a 16-digit number" and int_text(-(10**20)) == "a negative 21-digit number"
    assert int_text(int("9" * 4299)) == "a 4,299-digit number"
    assert int_text(10**9000) == "a 9,001-digit number"   # past Python's 4,300-digit str() limit


@pytest.mark.parametrize("digits", [300, 4299])
def test_a_huge_hidden_size_is_refused_in_short_messages(digits):
    # 4,299 digits: the work product has > 4,300 and formatting it raised ValueError (a traceback from the
    # CLI, "New experiment hit an error" on the New page); 300 digits printed kilobytes of them
    with pytest.raises(SpecError) as e:
        parse_spec({**BASE, "hidden_size": int("9" * digits)})
    assert e.value.errors[0] == (f"hidden_size: got a {digits:,}-digit number; the operator's limit is 4096 "
                                 f"(RNNLAB_MAX_HIDDEN_SIZE raises it)")
    assert all(len(m) < 250 for m in e.value.errors), e.value.errors


def test_a_huge_p13_length_is_refused_not_an_overflow():
    # JobSpec.steps took int(T·0.1) of a 400-digit T: OverflowError (int too large to convert to float)
    with pytest.raises(SpecError) as e:
        parse_spec({"task": {"name": "adding", "variant": "p13", "seq_len": int("9" * 400)}})
    assert e.value.errors[0].startswith("task.seq_len: got a 400-digit number; the operator's limit is 10000")
    assert all(len(m) < 250 for m in e.value.errors)


def test_a_huge_seed_in_a_sweep_is_named_by_its_digits():
    with pytest.raises(SpecError) as e:
        parse_sweep({"base": BASE, "seeds": [0, -int("9" * 4000)]})
    assert e.value.errors == ["seeds: 1 negative seed (a negative 4,000-digit number); seeds must be ≥ 0"]


def test_the_cli_refuses_a_4299_digit_hidden_size_with_one_line(tmp_path, monkeypatch):
    from cli.main import app

    monkeypatch.setenv("RNNLAB_HOME", str(tmp_path / "home"))
    for k in ("RNNLAB_DATABASE_URL", "RNNLAB_BROKER_URL"):
        monkeypatch.delenv(k, raising=False)
    f = tmp_path / "big.yaml"
    f.write_text("hidden_size: " + "9" * 4299 + "\n")
    res = CliRunner().invoke(app, ["submit", str(f), "--dry-run"])
    out = res.output
    assert res.exit_code == 2 and isinstance(res.exception, SystemExit), (res.exception, out)   # fail(): exit 2
    assert "Traceback" not in out and "ValueError" not in out
    assert "hidden_size: got a 4,299-digit number" in out and len(out) < 3000, out
