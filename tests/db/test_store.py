"""The write store on both backends: the run lifecycle, exactly-once claims, idempotent epochs,
NaN/inf round trips, user actions and the reaper."""

import datetime as dt
import math
import time

import pytest

from db import store
from db.attempts import now
from rnnlab.spec import SweepSpec, expand_sweep, parse_spec
from tests.synthetic import epoch_record, run_info

TINY = {"hidden_size": 8, "task": {"name": "adding", "seq_len": 10}, "epochs": 2, "steps_per_epoch": 2}


def spec(**kw):
    return parse_spec({**TINY, **kw})


def test_create_runs_denormalizes_the_spec_and_tags(db_url):
    ids = store.create_runs([spec(seed=1), spec(cell="lstm", device="cuda")], owner="ana", tags=["x", "y"],
                            url=db_url)
    a, b = (store.get_run(i, url=db_url) for i in ids)
    assert (a["status"], a["cell"], a["activation"], a["seed"], a["seq_len"], a["queue"]) == \
        ("queued", "rnn", "tanh", 1, 10, "cpu")
    assert (b["cell"], b["activation"], b["queue"], b["owner"]) == ("lstm", None, "gpu", "ana")
    assert a["tags"] == ["x", "y"] and a["spec"] == spec(seed=1).to_dict()
    assert a["code_version"].startswith("0.1.0") and a["attempts"] == 0 and a["epochs_total"] == 2


def test_sweep_is_created_atomically_with_its_runs(db_url):
    sweep = SweepSpec(name="grid", base=TINY, vary={"cell": ["rnn", "gru"]}, seeds=[0, 1])
    specs = expand_sweep(sweep)
    ids = store.create_runs(specs, sweep=sweep, url=db_url)
    assert len(ids) == 4
    assert {store.get_run(i, url=db_url)["sweep_id"] for i in ids} != {None}
    found = store.find_existing([s.spec_hash() for s in specs[:2]] + ["nope"], url=db_url)
    assert found == {specs[0].spec_hash(): [ids[0]], specs[1].spec_hash(): [ids[1]]}


def test_create_runs_writes_nothing_when_a_tag_is_bad(db_url):
    with pytest.raises(ValueError, match="tag"):
        store.create_runs([spec()], tags=["ok", ""], url=db_url)
    assert store.list_runs(url=db_url)[1] == 0


def test_claim_is_exactly_once(db_url):
    (run_id,) = store.create_runs([spec()], url=db_url)
    first = store.claim_run(run_id, "w1", url=db_url)
    assert first["status"] == "running" and first["attempt"] == 1 and first["worker"] == "w1"
    assert store.claim_run(run_id, "w2", url=db_url) is None
    assert store.claim_run(run_id, "w1", stale_after_s=60, url=db_url) is None  # heartbeat is fresh
    assert store.claim_run(999, "w1", url=db_url) is None
    assert [a["attempt"] for a in store.get_run(run_id, url=db_url)["attempt_history"]] == [1]


def test_record_epoch_is_idempotent_and_fenced(db_url):
    (run_id,) = store.create_runs([spec(cell="lstm", num_layers=2)], url=db_url)
    store.claim_run(run_id, "w1", url=db_url)
    store.record_info(run_id, run_info("lstm", 10, 2), attempt=1, url=db_url)
    for e in (0, 1, 1, 2):
        store.record_epoch(run_id, epoch_record(e, cell="lstm", seq_len=10, num_layers=2, seed=e), attempt=1,
                           url=db_url)
    recs = store.epoch_records(run_id, url=db_url)
    assert [r.epoch for r in recs] == [0, 1, 2]
    assert len(recs[1].layers) == 2 and len(recs[1].layers[1].grad_c) == 10
    run = store.get_run(run_id, url=db_url)
    assert run["epochs_done"] == 2 and run["last_val_loss"] == recs[2].val_loss
    with pytest.raises(store.LostOwnership):
        store.record_epoch(run_id, epoch_record(3), attempt=2, url=db_url)


def _same(a, b):
    return (math.isnan(a) and math.isnan(b)) if isinstance(a, float) and math.isnan(a) else a == b


def test_nan_and_inf_round_trip(db_url):
    (run_id,) = store.create_runs([spec(cell="lstm")], url=db_url)
    store.claim_run(run_id, "w1", url=db_url)
    info = run_info("lstm", 10)
    info.baseline_metric = math.inf
    store.record_info(run_id, info, attempt=1, url=db_url)
    rec = epoch_record(1, cell="lstm", seq_len=10, nonfinite=True)
    store.record_epoch(run_id, rec, attempt=1, url=db_url)
    (back,) = store.epoch_records(run_id, url=db_url)
    assert math.isnan(back.val_loss) and back.grad_norm_max == math.inf and back.train_loss == -math.inf
    p0 = next(p for p in back.params if p.name == rec.params[0].name)
    assert math.isnan(p0.grad_norm_mean) and p0.update_ratio == math.inf
    assert [p.name for p in back.params] == [p.name for p in rec.params]
    l0 = back.layers[0]
    assert math.isnan(l0.horizon) and l0.log_ratio == -math.inf and math.isnan(l0.gate_mean["i"])
    assert math.isnan(l0.grad_h[0]) and l0.grad_h[1:3] == [math.inf, -math.inf]
    for x, y in zip(rec.layers[0].grad_h[3:], l0.grad_h[3:]):
        assert abs(x - y) <= 5e-5 * abs(x)   # 5 significant digits
    assert store.get_run(run_id, url=db_url)["baseline_metric"] == math.inf


def test_checkpoint_resume_drops_rows_after_the_checkpoint(db_url):
    (run_id,) = store.create_runs([spec()], url=db_url)
    store.claim_run(run_id, "w1", url=db_url)
    for e in range(3):
        store.record_epoch(run_id, epoch_record(e, seq_len=10), attempt=1, url=db_url)
    store.save_checkpoint(run_id, 1, b"state-1", attempt=1, url=db_url)
    # the worker dies; its heartbeat goes stale; a new worker takes over
    time.sleep(0.05)
    run = store.claim_run(run_id, "w2", stale_after_s=0.01, url=db_url)
    assert run["attempt"] == 2 and run["epochs_done"] == 1
    assert [r.epoch for r in store.epoch_records(run_id, url=db_url)] == [0, 1]
    assert store.load_checkpoint(run_id, url=db_url) == (1, b"state-1")
    hist = store.get_run(run_id, url=db_url)["attempt_history"]
    assert [(a["attempt"], a["outcome"], a["resumed_from_epoch"]) for a in hist] == [(1, "lost", None), (2, None, 1)]
    assert store.finish_run(run_id, "succeeded", "done", attempt=1, url=db_url) is False  # the old owner
    assert store.finish_run(run_id, "succeeded", "done", attempt=2, url=db_url) is True


def test_diagnosis_is_fenced_by_the_attempt(db_url):
    (run_id,) = store.create_runs([spec()], url=db_url)
    store.claim_run(run_id, "w1", url=db_url)
    store.record_diagnosis(run_id, "from attempt 1", attempt=1, url=db_url)
    time.sleep(0.05)
    assert store.claim_run(run_id, "w2", stale_after_s=0.01, url=db_url)["attempt"] == 2
    store.record_diagnosis(run_id, "from attempt 2", attempt=2, url=db_url)
    with pytest.raises(store.LostOwnership):   # the old owner cannot overwrite the new one's diagnosis
        store.record_diagnosis(run_id, "stale, from attempt 1", attempt=1, url=db_url)
    assert store.get_run(run_id, url=db_url)["diagnosis"] == "from attempt 2"


def test_release_hands_a_run_back_without_using_an_attempt(db_url):
    (run_id,) = store.create_runs([spec()], max_attempts=2, url=db_url)
    store.heartbeat("w1", host="h", pid=1, queues="cpu", device="cpu", url=db_url)
    store.claim_run(run_id, "w1", url=db_url)
    for e in range(3):
        store.record_epoch(run_id, epoch_record(e, seq_len=10), attempt=1, url=db_url)
    store.save_checkpoint(run_id, 1, b"state-1", attempt=1, url=db_url)
    assert store.release_run(run_id, "worker w1 shut down", attempt=2, url=db_url) is None   # not its attempt
    assert store.release_run(run_id, "worker w1 shut down", attempt=1, url=db_url) == "queued"
    run = store.get_run(run_id, url=db_url)
    assert (run["status"], run["attempts"], run["max_attempts"]) == ("queued", 1, 3)
    assert run["message"] == "requeued after attempt 1: worker w1 shut down"
    assert [(a["outcome"], a["message"]) for a in run["attempt_history"]] == [("interrupted", "worker w1 shut down")]
    assert store.list_workers(url=db_url)[0]["current_run_id"] is None
    assert store.released_by("w1", url=db_url) == [{"id": run_id, "queue": "cpu"}]
    assert store.released_by("w2", url=db_url) == []
    later = now() + dt.timedelta(seconds=60)             # a later shutdown of a worker with the same name
    assert store.released_by("w1", since=later, url=db_url) == []
    assert store.release_run(run_id, "again", attempt=1, url=db_url) is None       # queued: nothing to release
    with pytest.raises(store.LostOwnership):
        store.record_epoch(run_id, epoch_record(3, seq_len=10), attempt=1, url=db_url)
    again = store.claim_run(run_id, "w2", url=db_url)                             # resumes from the checkpoint
    assert again["attempt"] == 2 and again["epochs_done"] == 1
    assert store.released_by("w1", url=db_url) == []                               # running again
    assert [r.epoch for r in store.epoch_records(run_id, url=db_url)] == [0, 1]


def test_release_of_a_run_whose_cancel_was_requested_cancels_it(db_url):
    (run_id,) = store.create_runs([spec()], url=db_url)
    store.claim_run(run_id, "w1", url=db_url)
    assert store.request_cancel(run_id, url=db_url) is True    # the monitor has not seen it yet
    assert store.release_run(run_id, "worker w1 shut down", attempt=1, url=db_url) == "cancelled"
    run = store.get_run(run_id, url=db_url)
    assert run["status"] == "cancelled" and run["finished_at"] is not None   # not queued forever
    assert [a["outcome"] for a in run["attempt_history"]] == ["cancelled"]
    assert store.released_by("w1", url=db_url) == []
    assert store.request_cancel(run_id, url=db_url) is False  # finished


def test_reaper_requeues_then_fails_when_attempts_run_out(db_url):
    (run_id,) = store.create_runs([spec()], max_attempts=2, url=db_url)
    store.heartbeat("w1", host="h", pid=1, queues="cpu", device="cpu", url=db_url)
    store.claim_run(run_id, "w1", url=db_url)
    assert store.reap_lost(60, url=db_url).requeued == []
    time.sleep(0.05)
    reaped = store.reap_lost(0.01, url=db_url)
    assert reaped.requeued == [{"id": run_id, "queue": "cpu"}]
    run = store.get_run(run_id, url=db_url)
    assert run["status"] == "queued" and "w1 lost" in run["message"]
    store.claim_run(run_id, "w2", url=db_url)
    time.sleep(0.05)
    assert store.reap_lost(0.01, url=db_url).failed == [run_id]
    run = store.get_run(run_id, url=db_url)
    assert run["status"] == "failed" and "gave up after 2 attempts" in run["message"]
    assert [a["outcome"] for a in run["attempt_history"]] == ["lost", "lost"]


def test_reaper_cancels_a_lost_run_whose_cancel_was_requested(db_url):
    (run_id,) = store.create_runs([spec()], url=db_url)
    store.heartbeat("w1", host="h", pid=1, queues="cpu", device="cpu", url=db_url)
    store.claim_run(run_id, "w1", url=db_url)
    assert store.request_cancel(run_id, url=db_url) is True
    time.sleep(0.05)   # the worker dies before it sees the flag; its heartbeat goes stale
    reaped = store.reap_lost(0.01, url=db_url)
    assert (reaped.requeued, reaped.failed, reaped.cancelled) == ([], [], [run_id])
    run = store.get_run(run_id, url=db_url)
    assert run["status"] == "cancelled" and run["finished_at"] is not None and "w1 lost" in run["message"]
    assert [a["outcome"] for a in run["attempt_history"]] == ["lost"]
    assert store.claim_run(run_id, "w2", stale_after_s=0.0, url=db_url) is None
    assert store.reap_lost(0.0, url=db_url).cancelled == []


def test_cancel_queued_and_running(db_url):
    queued, running, done = store.create_runs([spec(seed=1), spec(seed=2), spec(seed=3)], url=db_url)
    assert store.request_cancel(queued, url=db_url) is True
    assert store.get_run(queued, url=db_url)["status"] == "cancelled"
    assert store.claim_run(queued, "w1", url=db_url) is None
    store.claim_run(running, "w1", url=db_url)
    assert store.cancel_requested(running, url=db_url) is False
    assert store.request_cancel(running, url=db_url) is True
    assert store.cancel_requested(running, url=db_url) is True
    store.claim_run(done, "w1", url=db_url)
    store.finish_run(done, "succeeded", "ok", attempt=1, url=db_url)
    assert store.request_cancel(done, url=db_url) is False
    with pytest.raises(store.RunNotFound, match="run 999 not found"):
        store.request_cancel(999, url=db_url)


def test_tags_notes_and_delete(db_url):
    a, b = store.create_runs([spec(seed=1), spec(seed=2)], tags=["old"], url=db_url)
    assert store.set_tags(a, ["new", "new", "z"], url=db_url) == ["new", "z"]
    store.set_notes(a, "looks vanishing", url=db_url)
    run = store.get_run(a, url=db_url)
    assert run["tags"] == ["new", "z"] and run["notes"] == "looks vanishing"
    assert store.list_runs({"all_tags": ["new"]}, url=db_url)[0]["id"].tolist() == [a]
    store.claim_run(a, "w1", url=db_url)
    store.record_epoch(a, epoch_record(0, seq_len=10), attempt=1, url=db_url)
    with pytest.raises(store.RunStateError, match="running"):
        store.delete_run(a, url=db_url)
    store.finish_run(a, "failed", "boom", attempt=1, url=db_url)
    store.delete_run(a, url=db_url)
    assert store.get_run(a, url=db_url) is None and store.epoch_records(a, url=db_url) == []
    assert store.list_runs(url=db_url)[0]["id"].tolist() == [b]
    with pytest.raises(store.RunNotFound):
        store.set_notes(a, "x", url=db_url)


def test_workers_heartbeat_and_stop(db_url):
    store.heartbeat("w1", host="h", pid=1, queues="cpu", device="cpu", url=db_url)
    store.heartbeat("w1", host="h", pid=2, queues="cpu,gpu", device="NVIDIA H100", url=db_url)
    store.worker_stopped("w1", url=db_url)
    from sqlalchemy import select

    from db.engine import session
    from db.models import Worker

    with session(db_url) as s:
        (w,) = s.execute(select(Worker.pid, Worker.queues, Worker.device, Worker.stopped_at)).all()
    assert w[:3] == (2, "cpu,gpu", "NVIDIA H100") and w[3] is not None


def test_requeue_a_cancelled_run_resumes_from_its_checkpoint(db_url):
    (run_id,) = store.create_runs([spec()], max_attempts=1, url=db_url)
    assert store.requeue_run(run_id, url=db_url)["status"] == "queued"   # queued: only resent
    store.claim_run(run_id, "w1", url=db_url)
    for e in range(2):
        store.record_epoch(run_id, epoch_record(e, seq_len=10), attempt=1, url=db_url)
    store.save_checkpoint(run_id, 0, b"s0", attempt=1, url=db_url)
    store.request_cancel(run_id, url=db_url)
    store.finish_run(run_id, "cancelled", "cancelled during epoch 2", attempt=1, url=db_url)
    run = store.requeue_run(run_id, url=db_url)
    assert (run["status"], run["cancel_requested"], run["max_attempts"]) == ("queued", False, 2)
    again = store.claim_run(run_id, "w2", url=db_url)
    assert again["attempt"] == 2 and again["attempt_history"][-1]["resumed_from_epoch"] == 0
    assert [r.epoch for r in store.epoch_records(run_id, url=db_url)] == [0]
    store.finish_run(run_id, "succeeded", "ok", attempt=2, url=db_url)
    with pytest.raises(store.RunStateError, match="succeeded"):
        store.requeue_run(run_id, url=db_url)
