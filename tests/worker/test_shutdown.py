"""A warm shutdown of a real worker (SIGTERM, as ``docker compose stop`` or Ctrl-C sends) in the
middle of a run: the worker exits within seconds instead of after the run, the run goes back to
the queue with its attempt marked interrupted, and another worker resumes it from the checkpoint
to the same records as an uninterrupted run, on both brokers."""

import dataclasses
import time

import pytest

from client.submit import submit
from db import store
from rnnlab.spec import parse_spec

# about a second or more an epoch on this machine: the run is still going when the worker is stopped
SPEC = {"hidden_size": 16, "task": {"name": "adding", "seq_len": 30}, "batch_size": 16,
        "probe": {"batch_size": 4}, "device": "cpu", "epochs": 4, "steps_per_epoch": 300, "seed": 3}
FINAL = {"succeeded", "failed", "diverged", "cancelled"}


def comparable(rec) -> dict:
    d = dataclasses.asdict(rec)
    d.pop("train_seconds")
    d.pop("diag_seconds")
    return d


@pytest.mark.timeout(240)
def test_warm_shutdown_hands_the_run_back(sqlite_url, broker, start_worker, wait_status):
    spec = parse_spec(SPEC)
    (run_id,) = submit([spec], url=sqlite_url, app=broker.app())
    first = start_worker(sqlite_url, broker)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:   # epoch 1 and its checkpoint are written, the run goes on
        run, ckpt = store.get_run(run_id, url=sqlite_url), store.load_checkpoint(run_id, url=sqlite_url)
        if run["status"] == "running" and ckpt and ckpt[0] >= 1:
            break
        time.sleep(0.1)
    assert run["status"] == "running" and run["epochs_done"] < SPEC["epochs"], (run, first.log()[-3000:])

    t0 = time.monotonic()
    first.terminate()                    # SIGTERM: Celery's warm shutdown
    first.proc.wait(30)                  # without the hand-back it would wait for the whole run
    print(f"worker exited {time.monotonic() - t0:.1f} s after SIGTERM")
    run = store.get_run(run_id, url=sqlite_url)
    assert run["status"] == "queued", (run, first.log()[-3000:])
    assert run["message"].startswith("requeued after attempt 1: worker ") and "shut down" in run["message"]
    assert [a["outcome"] for a in run["attempt_history"]] == ["interrupted"]
    assert run["max_attempts"] == 4      # 3 by default, plus the interrupted attempt given back
    log = first.log()
    assert "handed back to the cpu queue" in log
    assert f"run {run_id} handed back by {first.name}; its task is sent again" in log   # after it stopped consuming

    (reference,) = submit([spec], url=sqlite_url, app=broker.app())   # the same seed, never interrupted
    second = start_worker(sqlite_url, broker)   # takes the re-sent message, then the reference
    run = wait_status(sqlite_url, run_id, FINAL, 120, [second])
    ref = wait_status(sqlite_url, reference, FINAL, 120, [second])
    assert (run["status"], ref["status"]) == ("succeeded", "succeeded"), (run["message"], second.log()[-3000:])
    hist = run["attempt_history"]
    assert [a["outcome"] for a in hist] == ["interrupted", "succeeded"] and hist[1]["resumed_from_epoch"] >= 1
    recorded = store.epoch_records(run_id, url=sqlite_url)
    assert [r.epoch for r in recorded] == list(range(SPEC["epochs"] + 1))
    want = store.epoch_records(reference, url=sqlite_url)
    assert [comparable(r) for r in recorded] == [comparable(r) for r in want]
