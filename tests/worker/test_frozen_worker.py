"""A worker frozen (SIGSTOP) in the middle of a write transaction (bench/faults "SIGSTOP past reassignment").
Postgres: its run's row stays locked, so before the fix every other worker's reaper waited on that lock
until the frozen worker woke, and the run was never taken over; now Postgres ends the frozen session
after lost_after (worker.heartbeat.bound_transactions), the reaper requeues the run, another worker
claims it, and the woken worker's writes are refused. SQLite: the frozen process holds the file's write
lock and every other writer waits; now a live worker kills it once its run is lost (it is a stopped pool
child of a worker with a lost run), and reaps the run. The frozen worker is a real process stopped with
SIGSTOP inside a fenced write, as the fault suite's victim is."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from db import store
from rnnlab.spec import parse_spec
from worker.heartbeat import WorkerHeartbeat

TINY = {"hidden_size": 8, "task": {"name": "adding", "seq_len": 10}, "epochs": 5, "steps_per_epoch": 2}
LOST_S = 1.0
ROOT = Path(__file__).resolve().parents[2]

# the frozen worker: bounded as a worker is (worker.app), then a fenced write that stops itself half-way
FROZEN = """
import os, signal, sys
from sqlalchemy import text
from db import store
from db.attempts import fence
from db.engine import session
from worker.heartbeat import bound_transactions
from worker.runner import db_retry

url, run_id, lost_s = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
bound_transactions(lost_s)
calls = []

def write():
    with session(url, write=True) as s:
        fence(s, run_id, 1, message="the frozen worker's write")
        if not calls:
            calls.append(1)
            print("locked", flush=True)
            os.kill(os.getpid(), signal.SIGSTOP)
        s.execute(text("SELECT 1"))

try:
    db_retry(write, "frozen write", run_id)   # as the runner writes: a transient error is retried
    print("write committed", flush=True)
except Exception as e:
    print("write refused:", type(e).__name__, flush=True)
print("heartbeat accepted" if store.run_heartbeat(run_id, 1, url=url) else "heartbeat refused", flush=True)
"""


def stopped(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T"


def reap_until_requeued(url: str, run_id: int, deadline_s: float) -> bool:
    """Call reap_lost (as every worker's heartbeat does) in a thread until it requeues ``run_id``; False if
    it has not by ``deadline_s`` (a reaper blocked on the row lock never returns on its own)."""
    done = threading.Event()

    def loop():
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            if run_id in [r["id"] for r in store.reap_lost(LOST_S, url=url).requeued]:
                done.set()
                return
            time.sleep(0.2)

    threading.Thread(target=loop, daemon=True).start()
    return done.wait(deadline_s + 5)


def test_frozen_worker_loses_its_run_and_its_late_writes(pg_url):
    (run_id,) = store.create_runs([parse_spec(TINY)], url=pg_url)
    assert store.claim_run(run_id, "frozen", url=pg_url)["attempt"] == 1
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", FROZEN, pg_url, str(run_id), str(LOST_S)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        while not stopped(proc.pid):
            time.sleep(0.05)
        requeued = reap_until_requeued(pg_url, run_id, 30)
        assert requeued, "the frozen worker's run was not requeued while it was stopped"
        assert store.claim_run(run_id, "live", url=pg_url)["attempt"] == 2
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        out, _ = proc.communicate(timeout=60)
    assert "write refused: LostOwnership" in out, out   # retried on a new connection, then fenced off
    assert "heartbeat refused" in out, out
    run = store.get_run(run_id, url=pg_url)
    assert (run["status"], run["worker"], run["attempts"]) == ("running", "live", 2)


def test_sqlite_frozen_training_process_is_killed_and_its_run_taken_over(sqlite_url):
    (run_id,) = store.create_runs([parse_spec(TINY)], url=sqlite_url)
    # the frozen worker: this process is its main process, the child below its training (pool) process
    store.heartbeat("frozen", host=socket.gethostname(), pid=os.getpid(), queues="cpu", device="cpu", start=True,
                    url=sqlite_url)
    assert store.claim_run(run_id, "frozen", url=sqlite_url)["attempt"] == 1
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", FROZEN, sqlite_url, str(run_id), str(LOST_S)], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sent = []
    live = WorkerHeartbeat("live", host=socket.gethostname(), pid=1, queues="cpu", device="cpu", period_s=0.2,
                           lost_after_s=LOST_S, send_run=lambda i, q: sent.append(i), url=sqlite_url)
    try:
        assert proc.stdout.readline().strip() == "locked"
        while not stopped(proc.pid):
            time.sleep(0.05)
        live.start()
        end = time.monotonic() + 60
        while not sent and time.monotonic() < end:
            time.sleep(0.2)
        assert sent == [run_id], "the frozen worker's run was not requeued while it was stopped"
        assert store.claim_run(run_id, "live", url=sqlite_url)["attempt"] == 2
    finally:
        live.stop()
        os.kill(proc.pid, signal.SIGCONT)
        proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    run = store.get_run(run_id, url=sqlite_url)
    assert (run["status"], run["worker"], run["attempts"]) == ("running", "live", 2)
    assert run["message"] != "the frozen worker's write"
