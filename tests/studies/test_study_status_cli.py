"""`rnnlab study status` prints each check's verdict per seed as the study decides it: a seed whose
target run diverged is 'no evidence' with the reason, not 'fails', and the check is marked [??] (no
seed fails) rather than [!!]; a check that fails on a seed is [!!]."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import studies
from tests.studies.helpers import plant

REPO = Path(__file__).resolve().parents[2]
ADD = studies.get("adding")


def _status(url: str, home: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RNNLAB_")}
    env.update({"RNNLAB_HOME": str(home), "RNNLAB_DATABASE_URL": url, "COLUMNS": "250"})
    proc = subprocess.run([sys.executable, "-m", "cli.main", "study", "status", "adding"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _line(out: str, start: str) -> str:
    return next(ln for ln in out.splitlines() if start in ln)


def test_a_diverged_target_seed_reads_no_evidence_not_fails(sqlite_url, tmp_path):
    def values(spec):
        if spec.cell == "rnn" and spec.seed == 1:
            return {"status": "diverged", "val_loss": math.inf}
        return {"val_loss": 0.17 if spec.cell == "rnn" else 0.001}
    plant(ADD, sqlite_url, values)
    out = _status(sqlite_url, tmp_path)
    stays = _line(out, "the tanh RNN stays at the baseline")
    assert stays.lstrip().startswith("[??]")
    assert "seed 0 holds" in stays and "seed 2 holds" in stays
    assert "seed 1 no evidence (" in stays and "diverged" in stays.split("seed 1 no evidence", 1)[1]
    assert "fails" not in stays.rsplit(": seed 0", 1)[1]
    assert _line(out, "LSTM and GRU solve it").lstrip().startswith("[ok]")
    assert "inconclusive" in _line(out, "verdict:")


def test_a_failing_seed_is_marked_fails(sqlite_url, tmp_path):
    def values(spec):   # the tanh RNN at the baseline on seeds 0 and 1, solved on seed 2
        return {"val_loss": (0.01 if spec.seed == 2 else 0.17) if spec.cell == "rnn" else 0.001}
    plant(ADD, sqlite_url, values)
    out = _status(sqlite_url, tmp_path)
    stays = _line(out, "the tanh RNN stays at the baseline")
    seeds = stays.rsplit(": seed 0", 1)[1]
    assert stays.lstrip().startswith("[!!]")
    assert seeds == " holds, seed 1 holds, seed 2 fails"
