"""Bulk submit on a real Redis and a real database (both backends): 1,000 runs created in one batched
INSERT, ids in the order of the specs, one message per run on the right queue, the 'being sent' mark
cleared; a broker that cannot be reached fails exactly the runs not sent. Speed is measured in
bench/bulk_submit.py, not here."""

import pytest

from db import store
from rnnlab.queue import SENDING
from rnnlab.spec import parse_spec
from rnnlab.submit import submit
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
    runs = {r["id"]: r for r in store.list_runs(limit=2000, url=db_url)}
    assert [runs[i]["seed"] for i in ids] == list(range(1000))            # ids follow the specs' order
    assert all(runs[i]["message"] is None and runs[i]["status"] == "queued" for i in ids)
    assert all(runs[i]["tags"] == ["bulk"] for i in ids)
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
    from rnnlab.submit import _clear_sending

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
