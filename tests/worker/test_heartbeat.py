"""The run monitor and the worker heartbeat against a real database (in-process threads)."""

import time

from db import store
from rnnlab.spec import parse_spec
from worker.heartbeat import RunMonitor, WorkerHeartbeat

SPEC = parse_spec({"hidden_size": 8, "task": {"name": "adding", "seq_len": 10}, "epochs": 1})


def wait(pred, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return False


def test_monitor_sees_cancel_within_a_second(db_url):
    (run_id,) = store.create_runs([SPEC], url=db_url)
    store.claim_run(run_id, "w1", url=db_url)
    mon = RunMonitor(run_id, 1, heartbeat_s=0.2, poll_s=0.2, url=db_url)
    mon.start()
    try:
        assert not mon.should_stop()
        t0 = time.monotonic()
        store.request_cancel(run_id, url=db_url)
        assert wait(mon.should_stop, 2.0) and time.monotonic() - t0 < 1.0
        assert mon.cancelled.is_set() and not mon.lost.is_set()
    finally:
        mon.stop()


def test_monitor_stops_a_worker_that_lost_its_run(db_url):
    (run_id,) = store.create_runs([SPEC], url=db_url)
    store.claim_run(run_id, "w1", url=db_url)
    mon = RunMonitor(run_id, 1, heartbeat_s=0.2, poll_s=0.1, url=db_url)
    mon.start()
    try:
        time.sleep(0.3)
        before = store.get_run(run_id, url=db_url)["heartbeat_at"]
        assert wait(lambda: store.get_run(run_id, url=db_url)["heartbeat_at"] > before)   # it beats
        assert store.claim_run(run_id, "w2", stale_after_s=0.0, url=db_url)["attempt"] == 2  # taken over
        assert wait(mon.should_stop) and mon.lost.is_set()
    finally:
        mon.stop()


def test_worker_heartbeat_registers_reaps_and_resends(db_url):
    (run_id,) = store.create_runs([SPEC], url=db_url)
    store.claim_run(run_id, "dead@host", url=db_url)
    sent = []
    hb = WorkerHeartbeat("live@host", host="host", pid=1, queues="cpu", device="cpu", period_s=0.1,
                         lost_after_s=0.3, send_run=lambda i, q: sent.append((i, q)), url=db_url)
    hb.start()
    try:
        assert wait(lambda: sent == [(run_id, "cpu")], 5.0), sent
        run = store.get_run(run_id, url=db_url)
        assert run["status"] == "queued" and "dead@host lost" in run["message"]
    finally:
        hb.stop()
    time.sleep(0.3)
    assert sent == [(run_id, "cpu")]   # sent once, although the reaper ran many times


def test_requeue_message_is_retried_when_the_broker_hiccups(db_url):
    (run_id,) = store.create_runs([SPEC], url=db_url)
    store.claim_run(run_id, "dead@host", url=db_url)
    calls = []

    def flaky_send(i, q):
        calls.append(i)
        if len(calls) == 1:
            raise ConnectionError("broker down")

    hb = WorkerHeartbeat("live@host", host="host", pid=1, queues="cpu", device="cpu", period_s=0.1,
                         lost_after_s=0.3, send_run=flaky_send, url=db_url)
    hb.start()
    try:
        assert wait(lambda: len(calls) >= 2, 5.0)
    finally:
        hb.stop()
    assert calls == [run_id, run_id]


def _child_waits_for_the_flag(out) -> None:
    from worker import heartbeat

    deadline = time.monotonic() + 10
    while not heartbeat.worker_stopping() and time.monotonic() < deadline:
        time.sleep(0.01)
    out.put(heartbeat.worker_stopping())


def test_shutdown_flag_reaches_a_forked_child_and_stops_the_monitor(db_url):
    import multiprocessing

    from worker import heartbeat

    heartbeat.share_stop_flag()                     # as the worker's main process does before forking
    try:
        ctx = multiprocessing.get_context("fork")
        out = ctx.Queue()
        child = ctx.Process(target=_child_waits_for_the_flag, args=(out,))
        child.start()
        (run_id,) = store.create_runs([SPEC], url=db_url)
        store.claim_run(run_id, "w1", url=db_url)
        mon = RunMonitor(run_id, 1, heartbeat_s=5, url=db_url)
        assert not mon.should_stop() and not mon.interrupted
        heartbeat.stop_this_process()               # what the shutdown signal handler does
        assert mon.should_stop() and mon.interrupted  # at the very next step, no polling delay
        assert out.get(timeout=10) is True           # the child saw it through shared memory
        child.join(10)
        assert child.exitcode == 0
        mon.cancelled.set()                          # a cancel seen by the monitor wins: not "interrupted"
        assert mon.should_stop() and not mon.interrupted
    finally:
        heartbeat.SHARED_STOP = None
        heartbeat._LOCAL_STOP[0] = False
