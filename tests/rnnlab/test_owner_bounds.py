"""The owner recorded on runs is 1 to client.submit.MAX_OWNER_CHARS (100) characters, the length of
runs.owner and sweeps.owner, and is checked before anything is written: by client.submit.submit, by
`rnnlab train` (worker.foreground.train_foreground) and by `rnnlab submit`. Old code: a 5,000-character
owner was stored whole on SQLite, and on PostgreSQL the insert failed as "database not writable"."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from rich.console import Console
from sqlalchemy import func, select

from client.submit import MAX_OWNER_CHARS, check_owner, submit
from db import store
from db.engine import session
from rnnlab.spec import SpecError, parse_spec

REPO = Path(__file__).resolve().parents[2]
TINY = {"hidden_size": 4, "task": {"name": "adding", "seq_len": 5}, "epochs": 1, "steps_per_epoch": 1,
        "batch_size": 4, "probe": {"batch_size": 2}, "device": "cpu"}
LONG = "o" * 5000
REFUSED = r"owner: got 'o+\.\.\.o+'; an owner is 1 to 100 characters \(this one has 5,000\)"


def _counts(url: str) -> tuple[int, int]:
    from db.models import Run, Sweep

    with session(url) as s:
        return (s.execute(select(func.count()).select_from(Run)).scalar_one(),
                s.execute(select(func.count()).select_from(Sweep)).scalar_one())


@pytest.mark.parametrize("owner, problem", [
    (None, None), ("a", None), ("a" * 100, None), ("Ada Lovelace", None),
    ("", "owner: got ''; an owner is 1 to 100 characters"),
    ("   ", "owner: got '   '; an owner is 1 to 100 characters"),
    ("a" * 101, "an owner is 1 to 100 characters (this one has 101)"),
    ("ada\x00", "U+0000"),
    ("ada\u202e", "U+202E"),
    (42, "owner: got 42; an owner is 1 to 100 characters"),
])
def test_check_owner(owner, problem):
    assert MAX_OWNER_CHARS == 100
    found = check_owner(owner)
    if problem is None:
        assert found == []
    else:
        (msg,) = found
        assert msg.startswith("owner: ") and problem in msg, msg


def test_submit_refuses_a_too_long_owner_and_writes_nothing(db_url, fs_broker):
    with pytest.raises(SpecError, match=REFUSED):
        submit([parse_spec(TINY)], owner=LONG, url=db_url, app=fs_broker.app())
    assert _counts(db_url) == (0, 0)
    # the limit itself is stored whole (on PostgreSQL: the column takes it)
    (run_id,) = submit([parse_spec(TINY)], owner="o" * 100, url=db_url, app=fs_broker.app())
    assert store.get_run(run_id, url=db_url)["owner"] == "o" * 100


@pytest.fixture
def settings_url(db_url, monkeypatch):
    from rnnlab.settings import get_settings

    monkeypatch.setenv("RNNLAB_DATABASE_URL", db_url)
    get_settings.cache_clear()
    yield db_url
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.mark.parametrize("how", ["--owner", "USER"])
def test_train_refuses_a_too_long_owner_before_writing(settings_url, monkeypatch, how):
    from worker.foreground import EXIT_BAD_INPUT, train_foreground

    if how == "USER":          # no owner given: the OS user name, checked the same way
        monkeypatch.setenv("USER", LONG)
    out = io.StringIO()
    code = train_foreground(parse_spec(TINY), json_out=None, record=True, owner=LONG if how == "--owner" else None,
                            tags=[], console=Console(file=out, width=300), url=settings_url)
    assert code == EXIT_BAD_INPUT == 2
    assert "error:" in out.getvalue()
    assert " ".join(out.getvalue().split()).count("an owner is 1 to 100 characters (this one has 5,000)") == 1
    assert _counts(settings_url) == (0, 0)


def test_the_cli_refuses_a_too_long_owner_without_a_traceback(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RNNLAB_")}
    env.update({"RNNLAB_HOME": str(home), "OMP_NUM_THREADS": "1", "COLUMNS": "200"})
    spec = tmp_path / "tiny.yaml"
    spec.write_text(yaml.safe_dump(TINY))
    for command in ("train", "submit"):
        r = subprocess.run([sys.executable, "-m", "cli.main", command, str(spec), "--owner", LONG], cwd=REPO,
                           env=env, capture_output=True, text=True, timeout=180)
        said = " ".join((r.stdout + r.stderr).split())
        assert r.returncode == 2, (command, r.stdout[-2000:], r.stderr[-2000:])
        assert "Traceback" not in said
        assert "an owner is 1 to 100 characters (this one has 5,000)" in said, said[-2000:]
        # on stderr, as an error, like every other refused input (not the run's stdout)
        assert "error:" in r.stderr and "1 to 100 characters" in " ".join(r.stderr.split()), (command, r.stderr)
        db = home / "rnnlab.db"
        assert not db.exists() or _counts(f"sqlite:///{db}") == (0, 0)


def test_train_with_an_empty_user_records_the_run_with_no_owner(settings_url, monkeypatch):
    """No --owner and $USER set but empty: the run is recorded without an owner, as before the check;
    an empty $USER is no owner, not a refused one."""
    from worker.foreground import train_foreground

    monkeypatch.setenv("USER", "")
    out = io.StringIO()
    code = train_foreground(parse_spec(TINY), json_out=None, record=True, owner=None, tags=[],
                            console=Console(file=out, width=300), url=settings_url)
    assert code == 0, out.getvalue()
    assert _counts(settings_url) == (1, 0)
    (run,) = [store.get_run(i, url=settings_url) for i in (1,)]
    assert run["owner"] is None and run["status"] == "succeeded"


def test_a_local_study_refuses_a_too_long_owner_before_writing(db_url):
    """`rnnlab study run NAME --local --owner …` creates the study's runs through studies.service.create,
    which checked the specs but not the owner: nine runs were stored with a 5,000-character owner."""
    import studies
    from studies.service import create

    with pytest.raises(SpecError, match=REFUSED):
        create(studies.get("activations"), "cpu", owner=LONG, url=db_url)
    assert _counts(db_url) == (0, 0)
    ids = create(studies.get("activations"), "cpu", owner="ada", url=db_url)
    assert {store.get_run(i, url=db_url)["owner"] for i in ids} == {"ada"}

