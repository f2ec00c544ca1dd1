"""A full disk in the embedded setup (filesystem broker + SQLite, both on one small tmpfs): the disk
fills up mid-run, the worker's writes fail with "database or disk is full", and it neither dies nor
fails the run: each write retries, then the run is handed back; the database stays readable; once
space is freed the run ends succeeded. Old code: the failed write was caught and the run marked
failed (or, when that write failed too, the task's retry left a 0-byte message that killed the worker)."""

import dataclasses
import subprocess
import time
from pathlib import Path

import pytest

from client.submit import submit
from db import store
from db.migrate import upgrade
from rnnlab.spec import parse_spec

SLOW = {"hidden_size": 16, "task": {"name": "adding", "seq_len": 30}, "epochs": 12, "steps_per_epoch": 10,
        "batch_size": 8, "probe": {"batch_size": 4}, "device": "cpu", "seed": 5}
FINAL = {"succeeded", "failed", "diverged", "cancelled"}


@pytest.fixture
def tmpfs(tmp_path):
    """A 30 MB tmpfs (we run as root); the test fails, saying why, if mounting is refused."""
    mnt = tmp_path / "small-disk"
    mnt.mkdir()
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=30m", "tmpfs", str(mnt)], capture_output=True,
                         text=True)
    assert out.returncode == 0, f"mount -t tmpfs refused: {out.stderr.strip()}"
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def fill(folder: Path) -> Path:
    """Write a file until the filesystem is full (ENOSPC)."""
    filler = folder / "filler.bin"
    with open(filler, "wb", buffering=0) as f:
        for size in (1 << 20, 4096, 1):
            try:
                while True:
                    f.write(b"\0" * size)
            except OSError:
                pass
    return filler


@pytest.mark.timeout(300)
def test_a_full_disk_mid_run_does_not_kill_the_worker_or_fail_the_run(tmpfs, fs_broker, start_worker, wait_status):
    home = tmpfs / "home"
    home.mkdir()
    broker = dataclasses.replace(fs_broker, home=home, env={**fs_broker.env, "RNNLAB_HOME": str(home)})
    url = f"sqlite:///{tmpfs / 'rnnlab.db'}"
    upgrade(url)
    w = start_worker(url, broker, RNNLAB_DB_RETRY_SECONDS="3")
    (run_id,) = submit([parse_spec(SLOW)], url=url, app=broker.app())
    deadline = time.monotonic() + 120
    while store.get_run(run_id, url=url)["epochs_done"] < 1:
        assert time.monotonic() < deadline, w.log()[-3000:]
        time.sleep(0.1)
    filler = fill(tmpfs)
    deadline = time.monotonic() + 60
    while "database or disk is full" not in w.log():
        assert time.monotonic() < deadline, w.log()[-3000:]
        time.sleep(0.2)
    time.sleep(6)   # past the write's retries: the worker tries to hand the run back
    assert store.get_run(run_id, url=url)["status"] in ("running", "queued")   # still readable, not failed
    assert w.proc.poll() is None, w.log()[-3000:]
    filler.unlink()
    run = wait_status(url, run_id, FINAL, 200, [w])
    assert run["status"] == "succeeded", (run["message"], w.log()[-4000:])
    assert w.proc.poll() is None, w.log()[-3000:]
    assert [r.epoch for r in store.epoch_records(run_id, url=url)] == list(range(SLOW["epochs"] + 1))
    assert "disk full" in w.log()   # the worker said what went wrong
