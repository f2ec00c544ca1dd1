"""The lost-message check (worker.orphans) against a real filesystem broker folder, a real Redis and
a real database: which queued runs have no message in the broker (Redis: waiting or unacked), the
grace before a re-send, one re-send across workers; and end to end, on both brokers, a queued run
with no message at all is re-sent by a real worker and runs."""

import time

import pytest

from client.submit import submit
from db import store
from rnnlab.queue import TASK_RUN, send_run
from rnnlab.spec import parse_spec
from worker.orphans import OrphanWatch, message_run_id, redis_waiting_run_ids, unsent_queued_runs, waiting_function

SPEC = {"hidden_size": 8, "task": {"name": "adding", "seq_len": 10}, "batch_size": 8,
        "probe": {"batch_size": 4}, "device": "cpu", "epochs": 1, "steps_per_epoch": 5}


def spec(**kw):
    return parse_spec({**SPEC, **kw})


def test_unsent_queued_runs_reads_the_broker_folder(sqlite_url, fs_broker, broker_factory):
    app = fs_broker.app()
    sent = submit([spec(seed=1), spec(seed=2, device="cuda")], url=sqlite_url, app=app)   # cpu and gpu queues
    (unsent,) = store.create_runs([spec(seed=3)], url=sqlite_url)                           # no message
    (other_prefix,) = store.create_runs([spec(seed=4)], url=sqlite_url)
    other = broker_factory("filesystem")
    other.home = fs_broker.home                      # same folder, another setup's queue names
    send_run(other.app(), other_prefix, "cpu")
    (cancelled,) = store.create_runs([spec(seed=5)], url=sqlite_url)
    store.request_cancel(cancelled, url=sqlite_url)  # not queued any more
    waiting = waiting_function(app)
    assert waiting() == set(sent)
    assert [r["id"] for r in unsent_queued_runs(waiting, url=sqlite_url)] == [unsent, other_prefix]

    files = sorted((fs_broker.home / "broker" / "queue").glob(f"*.{fs_broker.prefix}cpu.msg"))
    assert [message_run_id(f.read_bytes()) for f in files] == [sent[0]]
    assert message_run_id(b"{not json") is None and message_run_id(b"") is None


def test_redis_waiting_messages_include_unacked_ones(sqlite_url, broker_factory):
    broker = broker_factory("redis")
    app = broker.app()
    cpu, gpu, taken = submit([spec(seed=1), spec(seed=2, device="cuda"), spec(seed=3)], url=sqlite_url, app=app)
    (unsent,) = store.create_runs([spec(seed=4)], url=sqlite_url)                    # no message
    (other_prefix,) = store.create_runs([spec(seed=5)], url=sqlite_url)
    other = broker_factory("redis")                                                   # same Redis, another setup
    waiting = waiting_function(app)
    with app.connection_for_read() as conn:
        channel = conn.default_channel
        queue = f"{broker.prefix}cpu"
        first = channel.basic_get(queue, no_ack=False)           # a worker took cpu's first message...
        assert first.payload[0] == [cpu]
        send_run(other.app(), other_prefix, "cpu")
        with other.app().connection_for_read() as oconn:          # ...another setup holds one unacked...
            held = oconn.default_channel.basic_get(f"{other.prefix}cpu", no_ack=False)
            assert held is not None
            assert waiting() == {cpu, gpu, taken}                 # ...so cpu is still held (unacked)
            assert [r["id"] for r in unsent_queued_runs(waiting, url=sqlite_url)] == [unsent, other_prefix]
            stale = redis_waiting_run_ids(channel, [queue, f"{broker.prefix}gpu"], unacked_stale_after_s=60,
                                          clock=time.time() + 120)  # two minutes on, still not claimed:
            assert stale == {gpu, taken}                          # its taker died; it no longer counts
            first.ack()                                           # acked: gone from the broker
            assert waiting() == {gpu, taken}
            held.ack()
    app.send_task(TASK_RUN, args=[unsent], queue=f"{broker.prefix}cpu", priority=5)   # another priority list
    assert waiting() == {gpu, taken, unsent}


def test_resent_once_after_the_grace_across_workers(db_url, fs_broker):
    app = fs_broker.app()
    (waiting_run,) = submit([spec(seed=1)], url=db_url, app=app)
    (lost,) = store.create_runs([spec(seed=2)], url=db_url)
    waiting = waiting_function(app)
    a = OrphanWatch(waiting, worker="a@host", grace_s=5, url=db_url)
    b = OrphanWatch(waiting, worker="b@host", grace_s=5, url=db_url)
    assert a.check(clock=0) == [] and b.check(clock=0) == []       # first seen missing
    assert a.check(clock=4) == [] and b.check(clock=4) == []       # not for long enough yet
    assert a.check(clock=5) == [{"id": lost, "queue": "cpu"}]      # a wins the compare-and-set...
    assert b.check(clock=5) == []                                  # ...so b does not send it again
    run = store.get_run(lost, url=db_url)
    assert run["status"] == "queued" and "task message lost" in run["message"] and "a@host" in run["message"]
    # b's observation starts over (the message changed) and a's too: no re-send before another grace
    assert a.check(clock=6) == [] and b.check(clock=6) == [] and a.check(clock=10) == []
    send_run(app, lost, "cpu")                                     # the message is back: nothing to do
    assert a.check(clock=20) == [] and b.check(clock=30) == []
    assert store.get_run(waiting_run, url=db_url)["message"] is None


@pytest.mark.timeout(90)
def test_worker_resends_a_queued_run_with_no_message(sqlite_url, broker, start_worker, wait_status):
    (run_id,) = store.create_runs([spec(seed=7)], url=sqlite_url)    # queued, message never sent (or lost)
    t0 = time.monotonic()
    w = start_worker(sqlite_url, broker)                             # lost after 5 s
    run = wait_status(sqlite_url, run_id, {"succeeded", "failed", "diverged", "cancelled"}, 60, [w])
    assert run["status"] == "succeeded", (run["message"], w.log()[-3000:])
    assert run["attempts"] == 1
    assert f"run {run_id} is queued but its task message is gone from the broker; re-sent" in w.log()
    print(f"re-sent and finished {time.monotonic() - t0:.1f} s after the worker started")


def test_a_submission_still_being_sent_is_never_treated_as_lost(sqlite_url, broker):
    """The lost-message check runs, with a short grace, all through a slow bulk submit (real
    publishes, each made slower by a before_task_publish hook): no run is re-sent or noted lost, and
    afterwards every run has exactly one message and no leftover note."""
    import threading

    from celery.signals import before_task_publish

    app = broker.app()
    specs = [spec(seed=i) for i in range(120)]

    def slow(**_):
        time.sleep(0.02)   # 120 × 20 ms: the submission takes ≈ 2.4 s, eight times the grace
    before_task_publish.connect(slow, weak=False)
    watch = OrphanWatch(waiting_function(app), worker="w@host", grace_s=0.3, url=sqlite_url)
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(ids=submit(specs, url=sqlite_url, app=app)))
    resent, checks = [], 0
    try:
        thread.start()
        while thread.is_alive():
            resent += watch.check()
            checks += 1
            time.sleep(0.05)
        thread.join()
    finally:
        before_task_publish.disconnect(slow)
    ids = result["ids"]
    assert checks >= 10 and resent == []
    t = time.monotonic() + 1
    assert watch.check(clock=t) == [] and watch.check(clock=t + 10) == []   # all held by the broker now
    runs = [store.get_run(i, url=sqlite_url) for i in ids]
    assert [r["message"] for r in runs] == [None] * len(ids) and {r["status"] for r in runs} == {"queued"}
    assert waiting_function(app)() == set(ids)


def _age_marks(url: str, ids: list[int], seconds: float | None) -> None:
    """Set the 'being sent' stamp of these runs to ``seconds`` ago by the database's clock (None: no stamp,
    as an older submitter left it): what a submitter that stopped that long ago leaves behind."""
    import datetime as dt

    from sqlalchemy import update

    from db.attempts import db_now
    from db.engine import session
    from db.models import Run

    with session(url, write=True) as s:
        stamp = None if seconds is None else db_now(s) - dt.timedelta(seconds=seconds)
        s.execute(update(Run).where(Run.id.in_(ids)).values(heartbeat_at=stamp))


def test_a_submission_whose_submitter_stopped_is_resent_after_the_short_grace(db_url, fs_broker):
    """A submitter that died mid-send (or could not write to the database) leaves its runs marked as
    being sent with a stamp that no longer moves: they are re-sent once the stamp is stale (SENDING_STALE_S, 30 s),
    while runs whose stamp is fresh (a live submitter) are left alone however long they wait."""
    from rnnlab.queue import SENDING, SENDING_GRACE_S

    stale, fresh, unstamped = store.create_runs([spec(seed=i) for i in (1, 2, 3)], message=SENDING, url=db_url)
    assert store.get_run(fresh, url=db_url)["heartbeat_at"] is not None     # create_runs stamps the mark
    _age_marks(db_url, [stale], 60)
    _age_marks(db_url, [unstamped], None)
    watch = OrphanWatch(waiting_function(fs_broker.app()), worker="w@host", grace_s=1, url=db_url)
    assert watch.check(clock=0) == []                                       # first seen missing
    assert watch.check(clock=1) == [{"id": stale, "queue": "cpu"}]          # after grace_s, not 10 minutes
    assert "task message lost" in store.get_run(stale, url=db_url)["message"]
    later = {r["id"] for r in watch.check(clock=SENDING_GRACE_S - 1)}
    assert fresh not in later and unstamped not in later                   # fresh stamp: still being sent
    last = {r["id"] for r in watch.check(clock=SENDING_GRACE_S)}
    assert unstamped in last and fresh not in last                         # no stamp: the old 10 minutes
    assert store.get_run(fresh, url=db_url)["message"] == SENDING
