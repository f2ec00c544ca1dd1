"""Start-up stays cheap by construction: what `rnnlab --help` and `rnnlab train` import.

Timings are in bench/startup.py; this checks the cause instead (a heavy import creeping in), in a fresh
interpreter each time."""

import subprocess
import sys

import pytest

HEAVY = ("torch", "pandas", "sqlalchemy", "alembic", "celery", "kombu", "streamlit", "plotly", "numpy")


def loaded(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys\nprint(' '.join(sorted(sys.modules)))"],
                         capture_output=True, text=True, check=True).stdout.split()
    return {m for m in HEAVY if m in out}


def test_help_imports_none_of_the_heavy_libraries():
    assert loaded("from typer.testing import CliRunner\nfrom cli.main import app\n"
                  "r = CliRunner().invoke(app, ['--help'])\nassert r.exit_code == 0, r.output") == set()


@pytest.mark.parametrize("module, allowed", [
    ("worker.foreground", {"sqlalchemy"}),    # rnnlab train: the recorder and the store, before the engine
    ("db.store", {"sqlalchemy"}),             # every worker write
])
def test_the_training_path_does_not_load_the_dashboards_libraries(module, allowed):
    assert loaded(f"import {module}") <= allowed
