"""The `rnnlab` command line, run as a user runs it (a subprocess with its own RNNLAB_HOME)."""

import csv
import io
import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from db import store
from rnnlab.spec import parse_spec

REPO = Path(__file__).resolve().parents[2]
TINY = {"hidden_size": 8, "task": {"name": "adding", "seq_len": 10}, "epochs": 2, "steps_per_epoch": 3,
        "batch_size": 8, "probe": {"batch_size": 4}, "device": "cpu"}


def db_url(home):
    return f"sqlite:///{home / 'rnnlab.db'}"


def write(path, doc):
    path.write_text(yaml.safe_dump(doc))
    return path


def test_example_spec_is_a_valid_spec(cli):
    r = cli("spec", "--example")
    assert r.returncode == 0
    assert parse_spec(yaml.safe_load(r.stdout)).task.name == "adding"


def test_train_records_in_the_db_and_writes_json(cli, home, tmp_path):
    spec = write(tmp_path / "tiny.yaml", TINY)
    r = cli("train", spec, "--json", tmp_path / "out.json", "--tag", "cli")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "succeeded" in r.stdout and "vs baseline" in r.stdout and "diagnosis:" in r.stdout
    doc = json.loads((tmp_path / "out.json").read_text())
    assert doc["status"] == "succeeded" and [e["epoch"] for e in doc["epochs"]] == [0, 1, 2]
    run = store.get_run(doc["run_id"], url=db_url(home))
    assert run["status"] == "succeeded" and run["tags"] == ["cli"] and run["epochs_done"] == 2
    assert [r.val_loss for r in store.epoch_records(run["id"], url=db_url(home))] == \
        [e["val_loss"] for e in doc["epochs"]]


def test_train_no_db_writes_no_database(cli, home, tmp_path):
    r = cli("train", write(tmp_path / "tiny.yaml", TINY), "--no-db")
    assert r.returncode == 0, r.stderr
    assert not (home / "rnnlab.db").exists()


@pytest.mark.parametrize("command", ["train", "submit"])
def test_invalid_spec_exits_2_naming_the_field_and_writes_nothing(cli, home, tmp_path, command):
    bad = write(tmp_path / "bad.yaml", {**TINY, "hidden_size": -3, "cell": "lstm", "activation": "relu"})
    r = cli(command, bad)
    assert r.returncode == 2
    assert "hidden_size" in r.stderr
    assert not (home / "rnnlab.db").exists() and not (home / "broker").exists()


def test_missing_file_exits_2(cli, tmp_path):
    r = cli("submit", tmp_path / "nope.yaml")
    assert r.returncode == 2 and "file not found" in r.stderr


def test_submit_sweep_reports_duplicates_then_queues(cli, home, tmp_path):
    sweep = write(tmp_path / "sweep.yaml", {"base": TINY, "vary": {"cell": ["rnn", "gru", "rnn"]}, "seeds": [0, 1]})
    r = cli("submit", sweep, "--dry-run", torch=False)
    assert r.returncode == 0, r.stderr
    assert "6 runs" in r.stdout and "2 duplicate(s)" in r.stdout and "nothing submitted" in r.stdout
    assert store.list_runs(url=db_url(home))[1] == 0
    r = cli("submit", sweep, "--tag", "grid", torch=False)
    assert r.returncode == 0, r.stderr
    assert "queued 6 run(s): 1-6" in r.stdout
    runs, total = store.list_runs(url=db_url(home))
    assert total == 6 and (runs["tags"] == "grid").all() and runs["sweep_id"].notna().all()
    assert len(list((home / "broker" / "queue").iterdir())) == 6   # one message per run
    r = cli("submit", sweep, "--dry-run", torch=False)
    assert "6 already in the database" in r.stdout
    r = cli("submit", sweep, "--skip-existing", torch=False)
    assert "nothing to submit" in r.stdout and store.list_runs(url=db_url(home))[1] == 6


def test_run_commands_work_without_torch(cli, home, tmp_path):
    r = cli("submit", write(tmp_path / "one.yaml", TINY), torch=False)
    assert r.returncode == 0, r.stderr
    r = cli("runs", "--status", "queued", torch=False)
    assert r.returncode == 0 and "rnn/tanh adding T=10" in r.stdout, r.stderr
    r = cli("show", 1, torch=False)
    assert r.returncode == 0 and "queued" in r.stdout and "seq_len: 10" in r.stdout, r.stderr
    r = cli("cancel", 1, torch=False)
    assert r.returncode == 0 and "cancel requested" in r.stdout
    assert store.get_run(1, url=db_url(home))["status"] == "cancelled"
    r = cli("export", 1, "--format", "csv", torch=False)
    assert r.returncode == 0 and r.stdout.startswith("epoch,steps,train_loss"), r.stderr
    r = cli("db", "upgrade", torch=False)
    assert r.returncode == 0 and re.search(r"is at revision \d{4}\b", r.stdout), r.stdout
    store.heartbeat("gpu0@box", host="box", pid=7, queues="gpu", device="NVIDIA H100", url=db_url(home))
    r = cli("workers", torch=False)
    assert r.returncode == 0 and "gpu0@box" in r.stdout and "alive" in r.stdout and "NVIDIA H100" in r.stdout


@pytest.mark.parametrize("args", [("show", 999), ("cancel", 999), ("export", 999), ("requeue", 999)])
def test_unknown_run_id_exits_2(cli, args):
    r = cli(*args, torch=False)
    assert r.returncode == 2 and "run 999 not found" in r.stderr


@pytest.mark.parametrize("command", ["show", "cancel", "export", "requeue"])
@pytest.mark.parametrize("run_id", ["99999999999999999999", "0", str(2 ** 31)])
def test_a_run_id_out_of_range_is_refused_naming_the_argument(cli, command, run_id):
    r = cli(command, "--", run_id, torch=False)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and "OverflowError" not in r.stderr
    err = " ".join(r.stderr.split())
    assert f"RUN_ID: got {run_id}; a run id is a whole number from 1 to 2,147,483,647" in err


def test_too_many_tags_are_refused_before_anything_is_written(cli, home, tmp_path):
    from db.store import MAX_TAGS

    tags = [a for i in range(MAX_TAGS + 1) for a in ("--tag", f"t{i}")]
    for command in ("submit", "train"):
        r = cli(command, write(tmp_path / "one.yaml", TINY), *tags, torch=command == "train")
        assert r.returncode == 2, (r.stdout, r.stderr)
        assert "Traceback" not in r.stderr
        assert f"tags: {MAX_TAGS + 1} tags; at most {MAX_TAGS} per run" in " ".join(r.stderr.split())
        assert not (home / "rnnlab.db").exists() or store.list_runs(url=db_url(home))[1] == 0


def test_requeue_with_the_broker_down_says_so_and_how_to_resend(cli, home):
    from db.migrate import upgrade

    upgrade(db_url(home))
    (run_id,) = store.create_runs([parse_spec(TINY)], url=db_url(home))
    store.claim_run(run_id, "w", url=db_url(home))
    store.finish_run(run_id, "failed", "boom", attempt=1, url=db_url(home))
    cli.env["RNNLAB_BROKER_URL"] = "redis://127.0.0.1:1/0"   # nothing listens there
    try:
        r = cli("requeue", run_id, torch=False)
    finally:
        del cli.env["RNNLAB_BROKER_URL"]
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    err = " ".join(r.stderr.split())
    assert f"run {run_id} is queued, but the broker is unreachable" in err
    assert f"rnnlab requeue {run_id}` again" in err
    assert store.get_run(run_id, url=db_url(home))["status"] == "queued"


def test_bad_options_exit_2(cli):
    assert cli("runs", "--status", "done", torch=False).returncode == 2
    r = cli("runs", "--limit", 1001, torch=False)   # one page of db.reads.list_runs at most
    assert r.returncode == 2 and "--limit" in r.stderr and "1000" in r.stderr, r.stderr
    assert cli("export", 1, "--format", "xml", torch=False).returncode == 2
    assert cli("worker", "--queues", "tpu").returncode == 2


def test_export_json_keeps_nan(cli, home, tmp_path):
    from db.migrate import upgrade
    from tests.synthetic import epoch_record

    upgrade(db_url(home))
    (run_id,) = store.create_runs([parse_spec(TINY)], url=db_url(home))
    store.claim_run(run_id, "w", url=db_url(home))
    store.record_epoch(run_id, epoch_record(0, seq_len=10, nonfinite=True), attempt=1, url=db_url(home))
    r = cli("export", run_id, "-o", tmp_path / "run.json", torch=False)
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "run.json").read_text())
    assert doc["epochs"][0]["val_loss"] == "NaN" and doc["epochs"][0]["grad_norm_max"] == "Infinity"
    assert doc["run"]["id"] == run_id and doc["spec"]["hidden_size"] == 8


def _stored_run(home, heldout=None):
    """A run with two epochs (val_loss_se stored) through the store, as a worker writes it."""
    from db.migrate import upgrade
    from tests.synthetic import epoch_record, run_info

    upgrade(db_url(home))
    (run_id,) = store.create_runs([parse_spec(TINY)], url=db_url(home))
    store.claim_run(run_id, "w", url=db_url(home))
    info = run_info(seq_len=10)
    info.baseline_heldout_loss = heldout
    store.record_info(run_id, info, attempt=1, url=db_url(home))
    for e in range(2):
        rec = epoch_record(e, seq_len=10)
        rec.val_loss_se = 0.001 * (e + 1) + 1e-9 / 3
        store.record_epoch(run_id, rec, attempt=1, url=db_url(home))
    return run_id


def test_export_csv_has_every_epoch_scalar_of_the_json(cli, home, tmp_path):
    """The CSV's columns are the JSON export's per-epoch scalars (everything but the nested params and
    layers), val_loss_se included, with the same values."""
    run_id = _stored_run(home)
    r = cli("export", run_id, "-o", tmp_path / "run.json", torch=False)
    assert r.returncode == 0, r.stderr
    epochs = json.loads((tmp_path / "run.json").read_text())["epochs"]
    scalars = [k for k, v in epochs[0].items() if not isinstance(v, (list, dict))]
    assert "val_loss_se" in scalars and "params" not in scalars
    r = cli("export", run_id, "--format", "csv", torch=False)
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert set(scalars) <= set(rows[0]), set(scalars) - set(rows[0])
    assert [float(row["val_loss_se"]) for row in rows] == [e["val_loss_se"] for e in epochs]
    assert [float(row["val_loss"]) for row in rows] == [e["val_loss"] for e in epochs]
    assert rows[0]["train_loss"] == "" and epochs[0]["train_loss"] is None        # epoch 0: no training yet


def test_show_prints_both_baselines_and_says_which_is_which(cli, home):
    """The held-out baseline (what the verdicts divide by) next to the analytic one, each labelled."""
    run_id = _stored_run(home, heldout=0.1657446240859728)
    r = cli("show", run_id, torch=False)
    assert r.returncode == 0, r.stderr
    lines = {ln.split()[0]: ln for ln in r.stdout.splitlines() if ln.strip().startswith("baseline")}
    assert "0.1667" in lines["baseline_loss"] and "analytic" in lines["baseline_loss"]
    held = lines["baseline_heldout_loss"]
    assert "0.1657" in held and "held-out" in held and "verdicts" in held
    assert list(lines).index("baseline_heldout_loss") == list(lines).index("baseline_loss") + 1


def _diverged_runs(home):
    """Three runs ended 'diverged' through the store, as a worker ends them: the last epoch's val loss
    NaN, +inf, and a finite one (the update that diverged was skipped); and a queued run (no loss)."""
    from db.migrate import upgrade
    from tests.synthetic import epoch_record, run_info

    upgrade(db_url(home))
    specs = [parse_spec({**TINY, "seed": s}) for s in range(4)]
    ids = store.create_runs(specs, url=db_url(home))
    for run_id, last in zip(ids, (float("nan"), float("inf"), 0.25)):
        store.claim_run(run_id, "w", url=db_url(home))
        store.record_info(run_id, run_info(seq_len=10), attempt=1, url=db_url(home))
        for e in range(2):
            rec = epoch_record(e, seq_len=10)
            if e == 1:
                rec.val_loss, rec.nonfinite_steps = last, 1
            store.record_epoch(run_id, rec, attempt=1, url=db_url(home))
        store.finish_run(run_id, "diverged", "non-finite loss at epoch 1", attempt=1, url=db_url(home))
    return ids


def test_a_diverged_runs_non_finite_loss_is_shown_not_blank(cli, home):
    """'rnnlab runs' printed a NaN final loss as a blank cell (the runs row keeps it as NULL), as if the
    run had no loss; it reads NaN, inf stays inf, and only a run with no epoch has a blank."""
    nan_id, inf_id, finite_id, queued_id = _diverged_runs(home)
    r = cli("runs", torch=False)
    assert r.returncode == 0, r.stderr
    rows = {int(c[0]): c for c in (re.split(r"\s*│\s*", ln.strip("│ ")) for ln in r.stdout.splitlines())
            if c and c[0].isdigit()}
    header = next(re.split(r"\s*┃\s*", ln.strip("┃ ")) for ln in r.stdout.splitlines() if "val loss" in ln)
    col = header.index("val loss")
    assert rows[nan_id][col] == "NaN" and rows[inf_id][col] == "inf" and rows[finite_id][col] == "0.25"
    assert rows[queued_id][col] == ""
    for run_id, want in ((nan_id, "NaN"), (inf_id, "inf")):
        shown = cli("show", run_id, torch=False).stdout.splitlines()
        epochs = shown[[ln.strip() for ln in shown].index("epochs"):]          # the epochs table, after attempts
        (epoch1,) = [ln for ln in epochs if re.match(r"\s*│\s*1\s*│", ln)]
        assert re.split(r"\s*│\s*", epoch1.strip("│ "))[2] == want, epoch1


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening_addresses(port: int) -> set[str]:
    """The local addresses with a TCP socket listening on ``port`` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            addr, _, hexport = local.partition(":")
            if state != "0A" or int(hexport, 16) != port:   # 0A: LISTEN
                continue
            raw = bytes.fromhex(addr)
            if width == 8:
                found.add(socket.inet_ntop(socket.AF_INET, raw[::-1]))
            else:   # four little-endian 32-bit words
                words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
                found.add(socket.inet_ntop(socket.AF_INET6, words))
    return found


@pytest.mark.timeout(60)
def test_app_shared_on_the_network_without_users_is_refused(cli, home, tmp_path):
    """`rnnlab app --host 0.0.0.0` with no users warned and served every visitor as the admin; the
    dashboard now refuses its pages there, so the command refuses at once, naming the fix, and starts
    nothing (no worker, no server on the port)."""
    port = _free_port()
    r = cli("app", "--port", port, "--host", "0.0.0.0", "--workers", "1", torch=False, timeout=60)
    said = " ".join(r.stderr.split())
    assert r.returncode == 2 and "Traceback" not in said, (r.stdout, r.stderr)
    assert "--host: got '0.0.0.0' with no sign-in" in said and "rnnlab user add NAME --role admin" in said, said
    assert not _listening_addresses(port)
    assert not (home / "rnnlab.db").exists() or not store.list_workers(url=db_url(home))


@pytest.mark.slow   # a worker process and a Streamlit server: not in the fast tier
@pytest.mark.timeout(180)
def test_app_starts_a_worker_and_the_dashboard_and_stops_them(cli, home, tmp_path):
    """`rnnlab app` on embedded defaults: migrates, starts a local worker that trains a submitted run,
    serves the dashboard, and stops the worker when it exits, handing its running run back to the queue."""
    port = _free_port()
    log = open(tmp_path / "app.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "app", "--port", str(port)], cwd=REPO,
                            env=cli.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, (tmp_path / "app.log").read_text()
            time.sleep(0.5)
        assert _listening_addresses(port) == {"127.0.0.1"}   # by default only this machine gets in
        r = cli("submit", write(tmp_path / "one.yaml", TINY), torch=False)
        assert r.returncode == 0, r.stderr
        deadline = time.monotonic() + 90
        while store.get_run(1, url=db_url(home))["status"] != "succeeded":
            assert time.monotonic() < deadline, (tmp_path / "app.log").read_text()[-4000:]
            time.sleep(0.5)
        # a long run, still training when the app stops: the worker hands it back to the queue
        long = {**TINY, "hidden_size": 16, "epochs": 50, "steps_per_epoch": 200}
        assert cli("submit", write(tmp_path / "long.yaml", long), torch=False).returncode == 0
        deadline = time.monotonic() + 90
        while store.get_run(2, url=db_url(home))["epochs_done"] < 1:
            assert time.monotonic() < deadline, (tmp_path / "app.log").read_text()[-4000:]
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(40)
    run = store.get_run(2, url=db_url(home))
    assert run["status"] == "queued", (run, (tmp_path / "app.log").read_text()[-4000:])
    assert [a["outcome"] for a in run["attempt_history"]] == ["interrupted"]
    from sqlalchemy import select

    from db.engine import session
    from db.models import Worker

    with session(db_url(home)) as s:
        stopped = s.execute(select(Worker.stopped_at)).scalars().all()
    assert stopped and all(t is not None for t in stopped), "the local worker was not stopped cleanly"


def test_cli_runs_record_the_os_user_as_owner(cli, home, tmp_path):
    spec = write(tmp_path / "spec.yaml", TINY)
    cli.env.pop("USER", None)                       # e.g. cron or a container: only LOGNAME is set
    cli.env["LOGNAME"] = "h4-tester"
    r = cli("submit", spec, torch=False)
    assert r.returncode == 0, r.stderr
    r = cli("submit", spec, "--owner", "alice", torch=False)
    assert r.returncode == 0, r.stderr
    owners = sorted(store.list_runs(url=db_url(home))[0]["owner"])
    assert owners == ["alice", "h4-tester"]
    # a study's runs too (they were stored with no owner, which only an admin may then change)
    r = cli("study", "run", "activations", torch=False)
    assert r.returncode == 0, r.stderr
    runs = store.list_runs({"all_tags": ["study:activations@v1:cpu"]}, url=db_url(home))[0]
    assert len(runs) == 9 and set(runs["owner"]) == {"h4-tester"}


def test_a_bad_spec_file_gets_one_clear_line_not_a_traceback(cli, tmp_path):
    big = tmp_path / "big.yaml"
    with open(big, "wb") as f:
        f.write(b"name: x\n")
        f.truncate(50_000_000)
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(bytes(range(256)))
    dup = tmp_path / "dup.yaml"
    dup.write_text("hidden_size: 8\nhidden_size: true\n")
    for path, says in [(big, "at most 1,000,000 bytes"), (binary, "binary file"), (dup, "duplicate key")]:
        r = cli("submit", path, "--dry-run", torch=False)
        assert r.returncode == 2 and says in " ".join(r.stderr.split()) and "Traceback" not in r.stderr, r.stderr


def test_text_in_square_brackets_is_printed_as_written(cli, home, tmp_path):
    """rich read "[base]", "[cell='lstm']" or a run named "[red]x" as markup and dropped it: an
    error read "-  junk: unknown field", a run's message lost its grid point."""
    bad = write(tmp_path / "sweep.yaml", {"base": {"junk": 1}, "vary": {"cell": ["rnn", "lstm"]}})
    r = cli("submit", bad, "--dry-run")
    assert r.returncode == 2 and "[base] junk" in r.stderr, r.stderr
    cli("runs")   # creates the database
    (rid,) = store.create_runs([parse_spec({"name": "[red]x[/] [bold]y", "hidden_size": 8})], url=db_url(home))
    store.claim_run(rid, "w", url=db_url(home))
    store.finish_run(rid, "failed", "[cell='lstm'] hidden_size: got 0", attempt=1, url=db_url(home))
    shown = cli("show", rid).stdout
    assert "[red]x[/] [bold]y" in shown and "[cell='lstm'] hidden_size: got 0" in shown, shown
    assert "[red]x[/] [bold]y" in cli("runs").stdout


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has a GPU: the worker may start")
def test_a_gpu_worker_without_a_gpu_refuses_to_start_and_takes_no_run(cli, home, tmp_path):
    """`rnnlab worker --queues gpu` on a machine where torch sees no GPU started, reported 'device gpu
    (unknown)' and failed every run it took off the gpu queue ('no CUDA GPU is visible'), emptying that
    queue. It refuses to start, names why, and the gpu runs stay queued for a worker that has one."""
    spec = write(tmp_path / "gpu.yaml", {**TINY, "device": "cuda"})
    r = cli("submit", spec)
    assert r.returncode == 0, r.stderr
    for queues in ("gpu", "cpu,gpu"):
        r = cli("worker", "--queues", queues, timeout=300)
        said = " ".join(r.stderr.split())
        assert r.returncode == 2 and "Traceback" not in said, (r.stdout[-2000:], r.stderr[-2000:])
        assert f"--queues: got '{queues}', but no CUDA GPU is visible to torch here" in said, said
        assert "a CPU-only build" in said and "those runs stay queued" in said, said
    runs = store.list_runs(url=db_url(home))[0]
    assert list(runs["status"]) == ["queued"]
    from sqlalchemy import func, select

    from db.engine import session
    from db.models import Worker

    with session(db_url(home)) as s:
        assert s.execute(select(func.count()).select_from(Worker)).scalar_one() == 0   # none registered
