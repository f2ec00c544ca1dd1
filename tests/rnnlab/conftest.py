"""Fixtures of the command-line tests: a fresh RNNLAB_HOME and the environment a `rnnlab` child process
runs in (none of the caller's RNNLAB_* settings, one torch thread, a wide terminal)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NO_TORCH = "import sys; sys.modules['torch'] = None; sys.modules['models'] = None; " \
           "from cli.main import main; sys.argv[0] = 'rnnlab'; main()"


@pytest.fixture
def home(tmp_path):
    h = tmp_path / "home"
    h.mkdir()
    return h


@pytest.fixture
def env(home):
    e = {k: v for k, v in os.environ.items() if not k.startswith("RNNLAB_")}
    e.update({"RNNLAB_HOME": str(home), "OMP_NUM_THREADS": "1", "COLUMNS": "200"})
    return e


@pytest.fixture
def cli(env):
    """cli(*args, stdin=None, torch=True, timeout=120) -> CompletedProcess of `rnnlab ARGS` in a child
    process; torch=False makes importing torch fail there; the timeout only guards against a command
    (a worker, say) that starts when it should have been refused."""

    def run(*args, stdin=None, torch=True, timeout=120):
        cmd = [sys.executable, "-m", "cli.main"] if torch else [sys.executable, "-c", NO_TORCH]
        return subprocess.run([*cmd, *map(str, args)], cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=timeout, input=stdin)

    run.env = env
    return run
