"""Bulk submit on a real Redis and a real database (both backends): 1,000 runs created in one batched
INSERT, ids in the order of the specs, one message per run on the right queue, the 'being sent' mark
cleared; a broker that cannot be reached fails exactly the runs not sent. Speed is measured in
bench/bulk_submit.py, not here."""

import pytest

from client.submit import submit
from db import store
from rnnlab.queue import SENDING
from rnnlab.spec import parse_spec
from worker.orphans import waiting_function

TINY = {"hidden_size": 8, "task": {"name": "adding", "seq_len": 10}, "epochs": 1, "steps_per_epoch": 2,
        "batch_size": 8, "probe": {"batch_size": 4}}


def test_a_thousand_runs_reach_redis_each_once_in_order(db_url, broker_factory):
    import redis as redis_py

    broker = broker_factory("redis")
    app = broker.app()
    specs = [parse_spec({**TINY, "seed": i, "device": "cuda" if i % 10 == 0 else "cpu"}) for i in range(1000)]
    ids = submit(specs, tags=["bulk"], url=db_url, app=app)
    assert len(ids) == 1000 and len(set(ids)) == 1000
    runs = store.runs_by_ids(ids, url=db_url)
    assert runs["id"].tolist() == ids and runs["seed"].tolist() == list(range(1000))  # ids follow the specs' order
    assert runs["message"].isna().all() and (runs["status"] == "queued").all()
    assert (runs["tags"] == "bulk").all()
    assert waiting_function(app)() == set(ids)                            # every run has a message
    r = redis_py.Redis.from_url(broker.url)
    cpu, gpu = (r.llen(f"{broker.prefix}{q}") for q in ("cpu", "gpu"))
    assert (cpu, gpu) == (900, 100)                                       # each exactly once, right queue


def test_broker_down_fails_the_runs_not_sent(sqlite_url, free_port):
    from rnnlab.queue import make_app

    app = make_app(f"redis://127.0.0.1:{free_port}/0", prefix="nowhere-")
    app.conf.broker_connection_retry = False
    app.conf.broker_connection_max_retries = 0
    app.conf.broker_transport_options = {**app.conf.broker_transport_options, "max_retries": 0}
    specs = [parse_spec({**TINY, "seed": i}) for i in range(5)]
    ids = submit(specs, url=sqlite_url, app=app)
    runs = [store.get_run(i, url=sqlite_url) for i in ids]
    assert {r["status"] for r in runs} == {"failed"}
    assert all(r["message"].startswith("could not enqueue") and r["message"] != SENDING for r in runs)


def test_the_mark_is_cleared_only_where_it_is_still_the_mark(sqlite_url, fs_broker):
    from client.submit import _clear_sending

    (a, b) = store.create_runs([parse_spec({**TINY, "seed": 1}), parse_spec({**TINY, "seed": 2})],
                               message=SENDING, url=sqlite_url)
    store.fail_unsent(b, "could not enqueue: test", url=sqlite_url)
    _clear_sending([a, b], SENDING, url=sqlite_url)
    assert store.get_run(a, url=sqlite_url)["message"] is None
    assert store.get_run(b, url=sqlite_url)["message"] == "could not enqueue: test"


@pytest.fixture
def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cap_database(url: str):
    """Hold the SQLite file at its present size with SQLite's own limit (PRAGMA max_page_count, on every new
    connection of the store's engine): a write that needs a new page then fails with SQLITE_FULL, 'database
    or disk is full', exactly as on a full disk. Returns the function that lifts the cap."""
    from sqlalchemy import event

    from db.engine import get_engine

    engine = get_engine(url)
    with engine.connect() as c:
        pages = c.exec_driver_sql("PRAGMA page_count").scalar()

    def cap(dbapi_conn, _record):
        dbapi_conn.execute(f"PRAGMA max_page_count = {pages}")

    event.listen(engine, "connect", cap)
    engine.dispose()

    def lift():
        event.remove(engine, "connect", cap)
        engine.dispose()
    return lift


def _run_ids(url: str) -> list[int]:
    runs, total = store.list_runs(page_size=1000, url=url)
    assert total == len(runs)
    return sorted(runs["id"].tolist())


def test_a_full_database_refuses_the_submission_and_creates_nothing(sqlite_url, fs_broker):
    app = fs_broker.app()
    store.create_runs([parse_spec({**TINY, "seed": 0})], url=sqlite_url)
    before = _run_ids(sqlite_url)
    lift = _cap_database(sqlite_url)
    try:
        with pytest.raises(ValueError, match=r"database not writable \(disk full: database or disk is full\): "
                                              r"no run was created"):
            submit([parse_spec({**TINY, "seed": i}) for i in range(1, 101)], url=sqlite_url, app=app)
    finally:
        lift()
    assert _run_ids(sqlite_url) == before          # nothing half-written...
    assert waiting_function(app)() == set()        # ...and no message for a run that does not exist


def test_runs_the_full_database_could_not_fail_go_to_the_lost_message_check(sqlite_url, fs_broker, tmp_path):
    """The disk fills between the commit of the rows and the send: the broker cannot write the messages
    and the database cannot record that. submit() says so, and the runs, still marked as being sent,
    are re-sent by the lost-message check once their stamp is stale (worker.orphans.SENDING_STALE_S, 30 s),
    not after 10 minutes."""
    import datetime as dt

    from celery.signals import before_task_publish
    from sqlalchemy import update

    from db.attempts import db_now
    from db.engine import session
    from db.models import Run
    from worker.orphans import OrphanWatch

    app = fs_broker.app()
    not_a_folder = tmp_path / "full"
    not_a_folder.write_text("")                    # the broker cannot write a message file here
    app.conf.broker_transport_options = {**app.conf.broker_transport_options, "data_folder_out": str(not_a_folder)}
    lifts = []

    def fill(**_):
        if not lifts:
            lifts.append(_cap_database(sqlite_url))
    before_task_publish.connect(fill, weak=False)
    try:
        with pytest.raises(ValueError) as refused:   # client.submit.SubmitError
            submit([parse_spec({**TINY, "seed": i}) for i in range(300)], url=sqlite_url, app=app)
    finally:
        before_task_publish.disconnect(fill)
        for lift in lifts:
            lift()
    ids = _run_ids(sqlite_url)
    assert len(ids) == 300
    text = str(refused.value)
    assert type(refused.value).__name__ == "SubmitError"
    assert "database not writable (disk full" in text and f"while sending runs {ids[0]}-{ids[-1]}: " in text
    runs = [store.get_run(i, url=sqlite_url) for i in ids]
    assert {(r["status"], r["message"]) for r in runs} == {("queued", SENDING)}
    watch = OrphanWatch(waiting_function(fs_broker.app()), worker="w@host", grace_s=1, url=sqlite_url)
    assert watch.check(clock=0) == [] and watch.check(clock=1) == []    # the stamp is fresh: still sending
    with session(sqlite_url, write=True) as s:    # a minute on: the stamp never moved again
        s.execute(update(Run).values(heartbeat_at=db_now(s) - dt.timedelta(seconds=60)))
    assert sorted(r["id"] for r in watch.check(clock=2)) == ids
