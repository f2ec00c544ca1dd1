"""What a task reads and builds is bounded before it is read or built: the one-hot width of copy and
charlm counts in the memory check (RNNLAB_MAX_WORK), a charlm text has at most MAX_CHARLM_VOCAB distinct
characters, a data file (charlm's text, forecast's CSV) at most MAX_DATA_FILE_BYTES (checked with
os.stat before reading), task.path at most MAX_PATH_CHARS characters, and a SpecError's message lists
at most MAX_ERRORS_SHOWN errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import rnnlab.spec as S
from models.errors import EngineError
from models.tasks import make_task
from rnnlab.spec import (
    MAX_CHARLM_VOCAB,
    MAX_DATA_FILE_BYTES,
    MAX_ERRORS_SHOWN,
    MAX_PATH_CHARS,
    Limits,
    SpecError,
    parse_spec,
)

DOC = (Path(__file__).resolve().parents[2] / "docs" / "spec.md").read_text()


# -- the one-hot width in the memory check -----------------------------------------------------

def test_copy_one_hot_width_counts_in_the_memory_check():
    """copy T=9980, n_symbols=64, hidden_size=1, batch 4096 passed (hidden·steps·batch·layers is only
    41M) and its first batch then allocated 10 GiB: 10,000 steps × 4096 × 66 one-hot floats."""
    spec = {"task": {"name": "copy", "seq_len": 9980, "n_symbols": 64, "n_copy": 10},
            "hidden_size": 1, "batch_size": 4096, "device": "cpu"}
    with pytest.raises(SpecError) as e:
        parse_spec(spec, Limits())
    assert e.value.errors == [
        "steps·batch_size·width (width = task.n_symbols + 2 = 66, the one-hot symbols): got 2,703,360,000; "
        "the operator's limit is 2,000,000,000 (RNNLAB_MAX_WORK raises it)"]
    # the probe batch counts too; exactly at the limit is allowed
    limits = Limits(max_work=10_000 * 66 * 100)
    parse_spec({**spec, "batch_size": 100, "probe": {"batch_size": 100}}, limits)
    with pytest.raises(SpecError) as e:
        parse_spec({**spec, "batch_size": 100, "probe": {"batch_size": 101}}, limits)
    assert e.value.errors == [
        "steps·probe.batch_size·width (width = task.n_symbols + 2 = 66, the one-hot symbols): got 66,660,000; "
        "the operator's limit is 66,000,000 (RNNLAB_MAX_WORK raises it)"]


def test_charlm_width_is_the_bundled_vocabulary_or_the_cap_for_a_users_file():
    limits = Limits(max_work=100 * 64 * MAX_CHARLM_VOCAB)
    assert parse_spec({"task": {"name": "charlm"}}, limits).width == S.BUNDLED_CHARLM_VOCAB
    ok = parse_spec({"task": {"name": "charlm", "path": "/data/t.txt"}}, limits)   # exactly at the limit
    assert ok.width == MAX_CHARLM_VOCAB
    with pytest.raises(SpecError) as e:
        parse_spec({"task": {"name": "charlm", "path": "/data/t.txt"}, "batch_size": 65}, limits)
    assert e.value.errors == [
        "steps·batch_size·width (width = up to 1,024, the distinct characters a task.path text may have "
        "(MAX_CHARLM_VOCAB)): got 6,656,000; the operator's limit is 6,553,600 (RNNLAB_MAX_WORK raises it)"]
    parse_spec({"task": {"name": "charlm"}, "batch_size": 65}, limits)   # the bundled text is 66 wide


@pytest.mark.parametrize("task", [
    {"name": "adding"}, {"name": "adding", "variant": "p13"}, {"name": "copy", "n_symbols": 13, "seq_len": 5},
    {"name": "temporal_order"}, {"name": "digits"}, {"name": "charlm"}, {"name": "forecast"},
])
def test_the_width_the_spec_counts_is_the_width_the_engine_builds(task):
    spec = parse_spec({"task": task, "device": "cpu"})
    t = make_task(spec.task, 0)
    built = max(t.input_size, t.output_size if t.output_mode == "every" else 0)
    assert spec.width == built


def test_bundled_vocabulary_constant_matches_the_bundled_text():
    from models.tasks.charlm import read_text

    assert S.BUNDLED_CHARLM_VOCAB == len(set(read_text(None))) <= MAX_CHARLM_VOCAB


# -- charlm's vocabulary ----------------------------------------------------------------------

def _charlm(path: Path):
    return make_task(parse_spec({"task": {"name": "charlm", "path": str(path), "seq_len": 2}}).task, 0)


def test_charlm_refuses_a_text_wider_than_the_cap_naming_the_path_and_the_limit(tmp_path):
    chars = [chr(0x4E00 + i) for i in range(MAX_CHARLM_VOCAB + 1)]
    wide = tmp_path / "wide.txt"
    wide.write_text("".join(chars) * 3, encoding="utf-8")
    with pytest.raises(EngineError) as e:
        _charlm(wide)
    assert str(e.value) == (f"task.path: {wide} has 1,025 distinct characters; a charlm text may have at most "
                            f"1,024 (rnnlab.spec.MAX_CHARLM_VOCAB), the width of its one-hot inputs and outputs")
    at_cap = tmp_path / "cap.txt"
    at_cap.write_text("".join(chars[:-1]) * 3, encoding="utf-8")
    assert _charlm(at_cap).input_size == MAX_CHARLM_VOCAB


# -- data files -------------------------------------------------------------------------------

def _forecast(path: Path):
    return make_task(parse_spec({"task": {"name": "forecast", "series": "csv", "path": str(path),
                                          "seq_len": 2}}).task, 0)


@pytest.mark.parametrize("build", [_charlm, _forecast], ids=["charlm", "forecast"])
def test_a_data_file_over_the_limit_is_refused_before_it_is_read(tmp_path, monkeypatch, build):
    monkeypatch.setattr(S, "MAX_DATA_FILE_BYTES", 1000)
    f = tmp_path / "data.csv"
    f.write_text("x\n" + "1.5\n" * 250)   # 1,002 bytes
    with pytest.raises(EngineError) as e:
        build(f)
    assert str(e.value) == (f"task.path: {f} is 1,002 bytes; a data file may have at most 1,000 bytes "
                            f"(rnnlab.spec.MAX_DATA_FILE_BYTES)")
    f.write_text("x\n" + "1.5\n" * 249)   # 998 bytes: read as before
    assert build(f).seq_len == 2


@pytest.mark.parametrize("build", [_charlm, _forecast], ids=["charlm", "forecast"])
def test_a_sparse_20_gib_file_is_refused_by_its_size_without_reading_it(tmp_path, monkeypatch, build):
    f = tmp_path / "big.txt"
    with open(f, "wb") as h:
        h.truncate(20 * 2**30)
    monkeypatch.setattr("builtins.open", lambda *a, **k: pytest.fail(f"opened {a[0]} to read it"))
    with pytest.raises(EngineError, match=f"is 21,474,836,480 bytes; a data file may have at most "
                                          f"{MAX_DATA_FILE_BYTES:,} bytes"):
        build(f)


def test_a_data_file_that_grows_after_the_stat_is_refused_by_the_bounded_read(tmp_path, monkeypatch):
    from models.tasks import base

    monkeypatch.setattr(S, "MAX_DATA_FILE_BYTES", 100)
    f = tmp_path / "t.txt"
    f.write_text("ab" * 100)
    real = os.stat(f)
    small = os.stat_result((real.st_mode, real.st_ino, real.st_dev, real.st_nlink, real.st_uid, real.st_gid,
                            10, 0, 0, 0))
    monkeypatch.setattr(base.os, "stat", lambda p, *a, **k: small)
    with pytest.raises(EngineError, match="is more than 100 bytes; a data file may have at most 100 bytes"):
        base.read_data_file(str(f))


def test_missing_and_non_regular_data_files_still_fail_naming_task_path(tmp_path):
    with pytest.raises(EngineError, match="task.path: file not found: "):
        _charlm(tmp_path / "nope.txt")
    with pytest.raises(EngineError, match="is not a regular file"):
        _forecast(tmp_path)


def test_forecast_csv_reads_crlf_and_a_bom_as_before(tmp_path):
    f = tmp_path / "s.csv"
    f.write_bytes(b"\xef\xbb\xbf" + b"".join(b"%d\r\n" % i for i in range(40)))
    from models.tasks.forecast import read_csv_columns

    cols = read_csv_columns(str(f))
    assert cols.shape == (40, 1) and cols[0, 0] == 0.0   # the BOM does not turn row 1 into a header


# -- task.path's length -----------------------------------------------------------------------

@pytest.mark.parametrize("task", [{"name": "charlm"}, {"name": "forecast", "series": "csv"}])
def test_task_path_has_a_length_cap(task):
    parse_spec({"task": {**task, "path": "/" + "p" * (MAX_PATH_CHARS - 1)}})
    with pytest.raises(SpecError) as e:
        parse_spec({"task": {**task, "path": "/" + "p" * MAX_PATH_CHARS}})
    (msg,) = e.value.errors
    assert msg.startswith("task.path: got '/ppp") and msg.endswith("string should have at most 4096 characters")
    assert len(msg) < 200


# -- SpecError's message ----------------------------------------------------------------------

def test_spec_error_lists_at_most_twenty_errors_then_the_count():
    with pytest.raises(SpecError) as e:
        parse_spec({f"x{i}": 1 for i in range(60_000)})
    assert len(e.value.errors) == 60_000   # the callers still get every error
    lines = str(e.value).splitlines()
    assert MAX_ERRORS_SHOWN == 20 and len(lines) == 1 + 20 + 1
    assert lines[1] == "  - x0: unknown field (check the spelling; see `rnnlab spec --example`)"
    assert lines[-1] == "  … and 59,980 more"
    assert str(SpecError(["a"] * 20)).splitlines()[-1] == "  - a"   # 20 are listed whole


def test_the_limits_are_documented():
    assert f"{MAX_DATA_FILE_BYTES:,} bytes" in DOC and f"{MAX_CHARLM_VOCAB:,} distinct characters" in DOC
    assert f"{MAX_PATH_CHARS:,} characters" in DOC and "first 20" in DOC
    assert "steps · batch_size · width" in DOC
