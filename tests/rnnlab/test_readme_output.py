"""The README's sample output of `rnnlab train examples/temporal_order_rnn.yaml` is what the command
prints: the block is compared line by line with a fresh run (same seed, so the same numbers). It once
showed numbers from an older engine (val 0.09421, ‖g_1‖/‖g_T‖ = 5.3) while the command printed
0.06889 and 1.83."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _readme_block() -> list[str]:
    text = (REPO / "README.md").read_text()
    m = re.search(r"rnnlab train examples/temporal_order_rnn\.yaml\n```.*?seed gives the same numbers\):"
                  r"\n\n```\n(.*?)```", text, re.S)
    assert m, "README.md: the sample output of `rnnlab train examples/temporal_order_rnn.yaml` is missing"
    return [ln.rstrip() for ln in m.group(1).strip("\n").splitlines()]


def test_the_readme_shows_what_rnnlab_train_prints(tmp_path):
    want = _readme_block()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RNNLAB_")}
    env.update({"RNNLAB_HOME": str(tmp_path), "COLUMNS": "200", "OMP_NUM_THREADS": "1"})
    r = subprocess.run([sys.executable, "-m", "cli.main", "train", "examples/temporal_order_rnn.yaml", "--no-db"],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    got = [ln.rstrip() for ln in r.stdout.strip("\n").splitlines()]
    assert got[-len(want):] == want, "\n".join(got[-len(want):])
