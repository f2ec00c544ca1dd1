"""Fixtures of the command-line tests: a fresh RNNLAB_HOME and the environment a `rnnlab` child process
runs in (none of the caller's RNNLAB_* settings, one torch thread, a wide terminal)."""

from __future__ import annotations

import os

import pytest


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
