"""Command-line input the bounds-rev review found unchecked:

- `rnnlab worker --name` took any name: 305 characters with a bidi character were stored, though the
  workers.name, runs.worker and run_attempts.worker columns are String(200);
- `rnnlab user add --password-stdin` read the whole first line before checking its length (100 MB of input
  took 232 MB of memory);
- `rnnlab runs --tag` bounded the tags' count and length but let control and bidi characters through
  (db.store.tag_problem refuses them in every stored tag).

Each is run as a user would run it: `python -m cli.main` in a subprocess with its own RNNLAB_HOME.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cli.main import MAX_WORKER_NAME_CHARS
from db import store
from rnnlab.spec import parse_spec
from rnnlab.users import MAX_PASSWORD_BYTES

REPO = Path(__file__).resolve().parents[2]
TINY = {"hidden_size": 4, "task": {"name": "adding", "seq_len": 5}, "epochs": 1, "steps_per_epoch": 1,
        "batch_size": 4, "probe": {"batch_size": 2}, "device": "cpu"}


def _said(r) -> str:
    return " ".join((r.stderr + r.stdout).split())


# ------------------------------------------------------------------------------------------------
# worker --name
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", [
    "w" * 300 + "\u202e\x1b[2J",              # the review's: 305 characters with a bidi override
    "w" * (MAX_WORKER_NAME_CHARS + 1),         # stored as celery@NAME: over the column's 200
    "gpu1@main\u202e",
    "cpu\nworker",
    "gpu%h",                                   # Celery would expand %h into the host name
    "",
])
def test_a_worker_name_that_does_not_fit_is_refused_at_start(cli, home, name):
    r = cli("worker", "--name", name)
    assert r.returncode == 2, _said(r)[:300]
    said = _said(r)
    assert ("--name: got" in said and f"a worker name is 1 to {MAX_WORKER_NAME_CHARS} characters" in said
            and "letters, digits and . _ - @" in said), said
    assert len(said) < 400                                      # never echoed whole
    assert not (home / "rnnlab.db").exists()                    # refused before the database is touched


def test_the_name_check_lets_the_documented_names_through():
    from cli.main import check_worker_name

    for name in ("gpu1@main", "cpu@main", "local1-4242@host.example.org", "w_1", "w" * MAX_WORKER_NAME_CHARS):
        assert check_worker_name(name) == name


# ------------------------------------------------------------------------------------------------
# user add --password-stdin
# ------------------------------------------------------------------------------------------------

def test_password_stdin_reads_no_more_than_a_password_can_be(env, tmp_path):
    """A megabyte on stdin without a newline: refused as too long, and the command reads (about) one
    buffer of it, not the whole line (the offset of the file it read, shared with this process, says how
    far it got)."""
    big = tmp_path / "stdin.txt"
    big.write_bytes(b"x" * 1_000_000)
    users_file = tmp_path / "users.yaml"
    with open(big, "rb") as f:
        r = subprocess.run([sys.executable, "-m", "cli.main", "user", "add", "carol", "--password-stdin",
                            "--file", str(users_file)], cwd=REPO, env=env, stdin=f, capture_output=True,
                           text=True, timeout=120)
        read = os.lseek(f.fileno(), 0, os.SEEK_CUR)
    assert r.returncode == 2 and f"password is too long: bcrypt uses at most {MAX_PASSWORD_BYTES} bytes" in r.stderr, \
        r.stderr[-300:]
    assert read < 100_000, f"read {read:,} bytes of a line that could not be a password"
    assert not users_file.exists() or "carol" not in (yaml.safe_load(users_file.read_text()) or {}).get("users", {})


@pytest.mark.parametrize(("line", "ok"), [
    ("p" * MAX_PASSWORD_BYTES + "\n", True),
    ("p" * MAX_PASSWORD_BYTES + "\r\n", True),         # a Windows line end is not part of the password
    ("p" * MAX_PASSWORD_BYTES, True),                  # no line end at all
    ("p" * (MAX_PASSWORD_BYTES + 1) + "\n", False),
    ("é" * 37 + "\n", False),                          # 37 characters, 74 bytes
])
def test_password_stdin_keeps_the_length_rule_at_its_bound(cli, tmp_path, line, ok):
    users_file = tmp_path / "users.yaml"
    r = cli("user", "add", "carol", "--password-stdin", "--file", users_file, stdin=line)
    if ok:
        assert r.returncode == 0, r.stderr[-300:]
        import bcrypt

        stored = yaml.safe_load(users_file.read_text())["users"]["carol"]["password_hash"]
        assert bcrypt.checkpw(line.rstrip("\r\n").encode(), stored.encode())
    else:
        assert r.returncode == 2 and "password is too long" in r.stderr, r.stderr[-300:]


# ------------------------------------------------------------------------------------------------
# runs --tag
# ------------------------------------------------------------------------------------------------

@pytest.fixture
def url(home):
    from db.migrate import upgrade

    u = f"sqlite:///{home / 'rnnlab.db'}"
    upgrade(u)
    return u


@pytest.mark.parametrize(("tag", "char"), [("x\u202ey", "U+202E"), ("\x1b[2Jred", "U+001B"),
                                           ("two\nlines", "U+000A"), ("a\u2066b", "U+2066")])
def test_runs_tag_with_a_character_no_stored_tag_has_is_refused(cli, url, tag, char):
    store.create_runs([parse_spec(TINY)], tags=["keep"], url=url)
    r = cli("runs", "--tag", "keep", "--tag", tag)
    said = _said(r)
    assert r.returncode == 2 and "--tag: got" in said and char in said and "are not allowed" in said, said[:400]
    assert tag not in r.stderr                       # shown escaped, never raw
    r = cli("runs", "--tag", "keep")                 # a plain tag still lists the run
    assert r.returncode == 0 and "keep" in r.stdout, _said(r)[:400]
