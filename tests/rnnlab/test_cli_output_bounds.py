"""What the command line prints and what it refuses (the cli-rev review):

- `rnnlab sql`'s table rounded floats to 6 decimals: a stored 1.49e-06 read 0.000001 (--csv kept it);
- `rnnlab train`'s summary wrote the loss ÷ baseline with '.1%': 5e-5 of 1/6 read "0.0% of it", and a
  diverged run's NaN read "nan% of it";
- `train --json` and `export -o` into a folder that does not exist ended in a traceback with exit 1, for
  train after the run had trained and been recorded as succeeded;
- bad input to `sql` and `user` exited 1 (2 everywhere else); `compare --tag` took a tag of any length and
  echoed all of it; `runs --tag` took any number of tags.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from db import store
from db.store import MAX_TAG_CHARS, MAX_TAGS
from rnnlab.spec import parse_spec

REPO = Path(__file__).resolve().parents[2]
TINY = {"hidden_size": 4, "task": {"name": "adding", "seq_len": 5}, "epochs": 1, "steps_per_epoch": 1,
        "batch_size": 4, "probe": {"batch_size": 2}, "device": "cpu"}


@pytest.fixture
def url(home):
    from db.migrate import upgrade

    u = f"sqlite:///{home / 'rnnlab.db'}"
    upgrade(u)
    return u


def _said(r) -> str:
    return " ".join((r.stdout + r.stderr).split())


# ------------------------------------------------------------------------------------------------
# rnnlab sql: every significant digit
# ------------------------------------------------------------------------------------------------

def test_the_sql_table_keeps_every_significant_digit():
    from db.console import as_text

    rows = [(1.49e-06, 2.4e-06, 0.0, 50.0, 3, None, "x"),
            (math.nan, math.inf, -math.inf, 0.1 + 0.2, None, 7, None)]
    lines = [ln.split() for ln in as_text(list("abcdefg"), rows).splitlines()]
    assert lines[0] == list("abcdefg")
    assert lines[1] == ["1.49e-06", "2.4e-06", "0", "50", "3", "NULL", "x"], lines
    assert lines[2] == ["NaN", "inf", "-inf", "0.30000000000000004", "NULL", "7", "NULL"], lines
    assert all(float(t) == v for t, v in zip(lines[1][:4], rows[0][:4]))   # each reads back exactly


def test_rnnlab_sql_shows_a_stored_small_loss_as_stored(cli, url):
    """A run's val loss of 1.49e-06 and ‖g‖ of 2.4e-06, stored through the store and read back with
    `rnnlab sql`: the table shows them as --csv does (it showed 0.000001 and 0.000002)."""
    from tests.synthetic import epoch_record, run_info

    (rid,) = store.create_runs([parse_spec({**TINY, "epochs": 2})], url=url)
    store.claim_run(rid, "w", url=url)
    store.record_info(rid, run_info(seq_len=5), attempt=1, url=url)
    for e in range(3):
        rec = epoch_record(e, seq_len=5)
        if e == 2:
            rec.val_loss, rec.grad_norm_mean = 1.49e-06, 2.4e-06
        store.record_epoch(rid, rec, attempt=1, url=url)
    query = f"SELECT epoch, val_loss, grad_norm_mean FROM epochs WHERE run_id = {rid} AND epoch = 2"
    table, csv = cli("sql", query), cli("sql", "--csv", query)
    assert table.returncode == 0 and csv.returncode == 0, table.stderr + csv.stderr
    assert table.stdout.split() == ["epoch", "val_loss", "grad_norm_mean", "2", "1.49e-06", "2.4e-06"], table.stdout
    assert csv.stdout.split() == ["epoch,val_loss,grad_norm_mean", "2,1.49e-06,2.4e-06"], csv.stdout


# ------------------------------------------------------------------------------------------------
# rnnlab train's summary
# ------------------------------------------------------------------------------------------------

def _summary_text(status: str, message: str, records) -> str:
    from tests.synthetic import run_info
    from worker.foreground import _summary

    buf = io.StringIO()
    _summary(Console(file=buf, width=300), status, message, {"info": run_info("lstm", 50), "records": records}, None)
    return buf.getvalue()


def test_the_train_summary_never_rounds_a_small_loss_to_zero_percent():
    from tests.synthetic import epoch_record

    rec = epoch_record(5, cell="lstm", seq_len=50)
    rec.probed, rec.val_loss = False, 5e-5                  # 0.03% of the baseline 1/6
    text = _summary_text("succeeded", "trained 5 epochs", [rec])
    assert "val loss 5e-05 vs baseline 0.1667 (0.03% of it)" in text, text


def test_the_train_summary_of_a_diverged_run_says_the_loss_is_not_finite():
    from tests.synthetic import epoch_record

    recs = [epoch_record(e, cell="lstm", seq_len=50) for e in (1, 2)]
    for r in recs:
        r.probed = False
    recs[0].val_loss, recs[1].val_loss = 0.1, math.nan
    text = " ".join(_summary_text("diverged", "non-finite loss at epoch 2", recs).split())
    assert "nan%" not in text.lower(), text
    assert ("val loss NaN at epoch 2: not a finite number, so not comparable with the baseline 0.1667; "
            "the last finite val loss was 0.1 at epoch 1 (60% of it)") in text, text


# ------------------------------------------------------------------------------------------------
# output files: checked before the work
# ------------------------------------------------------------------------------------------------

def test_train_json_into_a_missing_folder_is_refused_before_training(cli, home, tmp_path):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(yaml.safe_dump(TINY))
    target = tmp_path / "no" / "such" / "out.json"
    r = cli("train", spec, "--json", target)
    said = _said(r)
    assert r.returncode == 2 and "Traceback" not in said, said
    assert f"--json: got '{target}', but the folder '{target.parent}' does not exist" in said, said
    assert "epoch" not in r.stdout and "succeeded" not in said, said     # nothing trained
    assert not (home / "rnnlab.db").exists() or store.list_runs(url=f"sqlite:///{home / 'rnnlab.db'}")[1] == 0
    r = cli("train", spec, "--no-db", "--json", tmp_path)                 # a folder, not a file
    assert r.returncode == 2 and f"--json: '{tmp_path}' is a folder" in _said(r), _said(r)


def test_export_into_a_missing_folder_is_refused(cli, url, tmp_path):
    (rid,) = store.create_runs([parse_spec(TINY)], url=url)
    target = tmp_path / "no" / "such" / "x.csv"
    r = cli("export", rid, "-f", "csv", "-o", target)
    said = _said(r)
    assert r.returncode == 2 and "Traceback" not in said, said
    assert f"-o/--output: got '{target}', but the folder '{target.parent}' does not exist" in said, said
    assert not target.parent.exists()


def test_a_json_file_that_cannot_be_written_after_training_is_a_message_not_a_traceback(tmp_path):
    """The CLI checks the path first; if writing still fails (here: the path is a folder, which only a
    caller that skips the check can give), train_foreground says so and exits 1."""
    from worker.foreground import train_foreground

    buf = io.StringIO()
    code = train_foreground(parse_spec(TINY), json_out=tmp_path, record=False, owner=None, tags=[],
                            console=Console(file=buf, width=300))
    text = " ".join(buf.getvalue().split())
    assert code == 1 and f"error: --json: could not write {tmp_path}" in text, text


# ------------------------------------------------------------------------------------------------
# exit codes and tag bounds
# ------------------------------------------------------------------------------------------------

def test_sql_options_out_of_bounds_exit_2_and_a_refused_query_exits_1(cli, url):
    r = cli("sql", "--limit", 99_999_999, "SELECT 1")
    assert r.returncode == 2 and "--limit 99999999 is above the console's row limit" in r.stderr, r.stderr
    r = cli("sql", "--timeout", 1e9, "SELECT 1")
    assert r.returncode == 2 and "--timeout 1e+09 is above the console's timeout" in r.stderr, r.stderr
    r = cli("sql", "DELETE FROM runs")
    assert r.returncode == 1 and "read-only" in r.stderr, r.stderr


def test_user_bad_input_exits_2_and_a_broken_file_exits_1(cli, tmp_path):
    f = tmp_path / "users.yaml"
    r = cli("user", "add", "Bad Name!", "--no-password", "--file", f)
    assert r.returncode == 2 and "user name 'Bad Name!' is not allowed" in r.stderr, r.stderr
    r = cli("user", "add", "alice", "--role", "owner", "--no-password", "--file", f)
    assert r.returncode == 2 and "role 'owner' is not allowed" in r.stderr, r.stderr
    r = cli("user", "add", "alice", "--password-stdin", "--file", f, stdin="short\n")
    assert r.returncode == 2 and "at least 8 characters" in r.stderr, r.stderr
    assert not f.exists()
    r = cli("user", "add", "alice", "--password-stdin", "--file", f, stdin="secret-pass\n")
    assert r.returncode == 0, r.stderr
    r = cli("user", "add", "alice", "--password-stdin", "--file", f, stdin="other-pass\n")
    assert r.returncode == 2 and "already exists" in r.stderr and "--update" in r.stderr, r.stderr
    before = f.read_text()
    r = cli("user", "add", "alice", "--update", "--password-stdin", "--file", f, stdin="\n")
    assert r.returncode == 2 and "at least 8 characters" in r.stderr, r.stderr   # not "no password"
    assert f.read_text() == before and "password_hash" in before
    r = cli("user", "remove", "nobody", "--file", f)
    assert r.returncode == 2 and "no user 'nobody'" in r.stderr, r.stderr
    f.write_text("users:\n  alice: {role: wizard}\n")
    for args in (["list"], ["remove", "alice"], ["add", "bob", "--no-password"]):
        r = cli("user", *args, "--file", f)
        assert r.returncode == 1 and "role 'wizard' is not allowed" in r.stderr and "Traceback" not in r.stderr, \
            (args, r.stderr)


def test_compare_tag_is_bounded_and_not_echoed_whole(cli, url):
    r = cli("compare", "--by", "cell", "--tag", "x" * 120_000)
    assert r.returncode == 2 and f"a tag is 1 to {MAX_TAG_CHARS} characters" in _said(r), r.stderr[:300]
    assert "(120,000 characters)" in _said(r) and len(r.stderr) < 500, len(r.stderr)
    r = cli("compare", "--by", "x" * 120_000, "--tag", "t")
    assert r.returncode == 2 and len(r.stderr) < 500, len(r.stderr)


def test_runs_tags_are_bounded_like_a_runs_tags(cli, url):
    (rid,) = store.create_runs([parse_spec(TINY)], tags=["keep"], url=url)
    r = cli("runs", *["--tag", "y"] * (MAX_TAGS + 1))
    assert r.returncode == 2 and f"--tag: {MAX_TAGS + 1} tags; at most {MAX_TAGS}" in _said(r), _said(r)
    r = cli("runs", "--tag", "x" * (MAX_TAG_CHARS + 1))
    assert r.returncode == 2 and f"a tag is 1 to {MAX_TAG_CHARS} characters" in _said(r), _said(r)
    r = cli("runs", *["--tag", "keep"] * MAX_TAGS)                       # at the bound: listed
    assert r.returncode == 0 and f"\n│ {rid} " in r.stdout, r.stdout + r.stderr
