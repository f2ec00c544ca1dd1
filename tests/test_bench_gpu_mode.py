"""bench/engine_overhead.py's device modes, run as the user runs it (a subprocess): the CPU table at tiny
sizes, the GPU table's layout on the CPU (--clock wall), and --device cuda on a machine without CUDA."""

import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
TINY = ["--epochs", "1", "--steps", "3", "--seq-len", "20", "--hidden", "16", "--batch", "8",
        "--repeats", "1", "--unrolled-reps", "0", "--threads", "1"]
CELLS = ["lstm", "gru", "rnn", "rnn:sigmoid"]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "bench" / "engine_overhead.py"), *args],
                          cwd=REPO, capture_output=True, text=True, timeout=300)


def _table(stdout: str) -> tuple[list[str], list[list[str]]]:
    """(header cells, body rows) of the one markdown table printed."""
    lines = [ln for ln in stdout.splitlines() if ln.startswith("|")]
    split = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines]
    assert set(split[1][0]) == {"-"}, lines[:2]
    return split[0], split[2:]


@pytest.mark.parametrize("clock", ["cpu", "wall"])
def test_engine_overhead_prints_one_row_per_cell_with_finite_ratios(clock):
    p = _run("--device", "cpu", "--clock", clock, "--cells", *CELLS, *TINY)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "Traceback" not in p.stderr
    header, rows = _table(p.stdout)
    assert [r[0] for r in rows] == ["lstm", "gru", "rnn/tanh", "rnn/sigmoid"]
    ratio_cols = [i for i, h in enumerate(header) if "ratio" in h]
    if clock == "cpu":   # the CPU layout, unchanged: CPU-time columns and both paired ratios
        assert p.stdout.startswith("CPU only")
        assert len(header) == 9 and "CPU ms" in header[1]
        assert [header[i] for i in ratio_cols] == ["paired ratio (CPU time)", "paired ratio (wall time)",
                                                   "end-to-end ratio (wall)"]
    else:                # the GPU layout: wall time only, and the clock named
        assert "clock: wall time" in p.stdout
        assert len(header) == 8 and "wall ms" in header[1] and not any("CPU" in h for h in header)
        assert [header[i] for i in ratio_cols] == ["paired ratio (wall time)", "end-to-end ratio (wall)"]
    for r in rows:
        assert len(r) == len(header)
        values = [float(r[i]) for i in range(1, len(r))]
        assert all(math.isfinite(v) and v >= 0 for v in values), r
        # The paired ratio counts the engine's steps plus epoch 0's and epoch 1's diagnostics (held-out
        # evaluation of 512 sequences, probe, checkpoint) against 3 plain steps: it must exceed 1.
        assert float(r[ratio_cols[0]]) > 1.0, r
        assert float(r[ratio_cols[-1]]) > 0, r


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_a_gpu_exits_with_one_line_not_a_traceback():
    p = _run("--device", "cuda", *TINY)
    assert p.returncode != 0
    assert p.stdout == ""
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
    assert lines[0].startswith("engine_overhead: --device cuda") and "no CUDA GPU" in lines[0]
