"""Start-up cost of the `rnnlab` command: `--help`, and `train` up to its first optimizer step.

Usage: .venv/bin/python bench/startup.py [--repeats 5]

Each row runs the command as a fresh process, --repeats times, and reports the median wall time and
the median CPU time (user + system of the child; the figure that survives a busy machine). The
`train` rows run a 1-epoch, 1-step tanh RNN (H=16, adding T=20): the whole command, so the time to
its first step is at most the row's figure (it also holds epoch 0's diagnostics, one step, the last
epoch's diagnostics and the summary). `python -c "import torch"` is the floor any `train` pays.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SPEC = """cell: rnn
activation: tanh
epochs: 1
steps_per_epoch: 1
hidden_size: 16
task: {name: adding, seq_len: 20}
"""


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run of ``cmd``; fails loudly if it fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    rnnlab = str(BIN / "rnnlab")
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "tiny.yaml"
        spec.write_text(SPEC)
        env = {**os.environ, "RNNLAB_DATABASE_URL": f"sqlite:///{tmp}/rnnlab.db"}
        subprocess.run([rnnlab, "train", str(spec)], env=env, capture_output=True, check=True)  # creates the DB
        rows = [
            ("rnnlab --help", [rnnlab, "--help"], "under 0.5 s"),
            ('python -c "import torch" (the floor of any train)', [sys.executable, "-c", "import torch"], ""),
            ("rnnlab train tiny.yaml --no-db (1 step, whole command)", [rnnlab, "train", str(spec), "--no-db"],
             "first step within 2 s"),
            ("rnnlab train tiny.yaml (SQLite, 1 step, whole command)", [rnnlab, "train", str(spec)],
             "first step within 2 s"),
        ]
        print(f"load average before: {os.getloadavg()[0]:.2f}; cores: {os.cpu_count()}; repeats: {args.repeats}")
        print("| command | median wall (s) | median CPU (s) | target |")
        print("|---|---|---|---|")
        for name, cmd, target in rows:
            runs = [timed(cmd, env) for _ in range(args.repeats)]
            wall = statistics.median(r[0] for r in runs)
            cpu = statistics.median(r[1] for r in runs)
            print(f"| `{name}` | {wall:.2f} | {cpu:.2f} | {target} |", flush=True)
        print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
