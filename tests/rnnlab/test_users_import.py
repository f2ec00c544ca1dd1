"""rnnlab.users computes no bcrypt hash at import (it cost `rnnlab --help` ~0.9 s), yet an unknown
name still costs one bcrypt check, like a wrong password."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

COUNT_HASHES = """
import bcrypt
calls = []
real = bcrypt.hashpw
bcrypt.hashpw = lambda *a: calls.append(1) or real(*a)
import rnnlab.users as users
print(len(calls))
users.verify_password("nobody", "whatever-pass", path=__import__("pathlib").Path("/nonexistent/users.yaml"))
print(len(calls))
"""


def test_no_hash_at_import_and_one_for_an_unknown_name():
    out = subprocess.run([sys.executable, "-c", COUNT_HASHES], capture_output=True, text=True, check=True,
                         cwd=REPO).stdout.split()
    assert out == ["0", "1"]
