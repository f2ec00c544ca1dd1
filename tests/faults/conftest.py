"""The fault suite's short subset imports the harness from bench/faults (the repository root on sys.path)."""

import sys
from pathlib import Path

REPO = str(Path(__file__).resolve().parents[2])
if REPO not in sys.path:
    sys.path.insert(0, REPO)
