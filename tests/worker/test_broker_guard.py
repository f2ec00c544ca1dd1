"""A worker survives bad broker messages. Filesystem broker: an empty message file (a full disk's failed
write), a truncated one, bytes that are not text, and a folder named like a message. Redis: list items
emptied, truncated, binary, or JSON that is not a kombu message. They are quarantined and logged; the
runs whose messages they were are still queued, and the lost-message check re-sends them. Old code:
kombu's JSONDecodeError stopped the worker at start."""

import os
import time
import uuid
from pathlib import Path

import pytest
import redis

from db import store
from rnnlab.queue import filesystem_options, send_run
from rnnlab.spec import parse_spec

TINY = {"hidden_size": 8, "task": {"name": "adding", "seq_len": 10}, "epochs": 1, "steps_per_epoch": 2,
        "batch_size": 8, "probe": {"batch_size": 4}, "device": "cpu"}
FINAL = {"succeeded", "failed", "diverged", "cancelled"}


def _bad_name(prefix: str) -> str:
    return f"{int(time.monotonic() * 1000) - 60_000}_{uuid.uuid4()}.{prefix}cpu.msg"


@pytest.mark.timeout(240)
def test_worker_quarantines_bad_messages_and_their_runs_are_resent(sqlite_url, fs_broker, start_worker,
                                                                   wait_status):
    app = fs_broker.app()
    queue = Path(filesystem_options(fs_broker.home)["data_folder_in"])
    emptied, truncated, normal = store.create_runs([parse_spec({**TINY, "seed": i}) for i in range(3)],
                                                   url=sqlite_url)
    send_run(app, emptied, "cpu")
    (first,) = list(queue.iterdir())
    send_run(app, truncated, "cpu")
    (second,) = [p for p in queue.iterdir() if p != first]
    first.write_bytes(b"")                                    # what a full disk left behind
    old = time.time() - 60
    os.utime(first, (old, old))
    second.write_bytes(second.read_bytes()[:40])              # cut short
    (queue / _bad_name(fs_broker.prefix)).write_bytes(b"\xff\xfe\x00 not a message")
    (queue / _bad_name(fs_broker.prefix)).mkdir()            # cannot be read as a file
    w = start_worker(sqlite_url, fs_broker)
    send_run(app, normal, "cpu")
    for run_id in (normal, emptied, truncated):
        run = wait_status(sqlite_url, run_id, FINAL, 150, [w])
        assert run["status"] == "succeeded", (run_id, run["message"], w.log()[-3000:])
    assert w.proc.poll() is None, w.log()[-3000:]             # still up
    assert len(os.listdir(queue.parent / "quarantine")) == 4
    assert w.log().count("is bad") == 4
    assert "re-sent" in w.log()                               # by the lost-message check


@pytest.mark.timeout(240)
def test_redis_worker_quarantines_bad_items_and_their_runs_are_resent(sqlite_url, redis_url, broker_factory,
                                                                      start_worker, wait_status):
    broker = broker_factory("redis")
    app = broker.app()
    client = redis.Redis.from_url(redis_url)
    key = f"{broker.prefix}cpu"
    emptied, truncated, normal = store.create_runs([parse_spec({**TINY, "seed": i}) for i in range(3)],
                                                   url=sqlite_url)
    send_run(app, emptied, "cpu")
    client.lset(key, 0, b"")                                  # LPUSHed: the newest item is at 0
    send_run(app, truncated, "cpu")
    client.lset(key, 0, client.lindex(key, 0)[:40])
    bad = [b"", client.lindex(key, 0), b"\xff\xfe\x00 not a message", b'{"body": "e30="}', b"5"]
    for item in bad[2:]:
        client.lpush(key, item)
    w = start_worker(sqlite_url, broker)
    send_run(app, normal, "cpu")
    for run_id in (normal, emptied, truncated):
        run = wait_status(sqlite_url, run_id, FINAL, 150, [w])
        assert run["status"] == "succeeded", (run_id, run["message"], w.log()[-3000:])
    assert w.proc.poll() is None, w.log()[-3000:]             # still up
    assert sorted(client.lrange(f"{broker.prefix}quarantine", 0, -1)) == sorted(bad)
    assert w.log().count("is bad") == len(bad)
    assert "re-sent" in w.log()                               # by the lost-message check


def test_redis_get_skips_bad_items_to_the_next_message(redis_url, broker_factory):
    from kombu import Connection

    from worker.broker_guard import RedisTransport, transport_options

    prefix = broker_factory("redis").prefix
    name = f"{prefix}polled"
    client = redis.Redis.from_url(redis_url)
    with Connection(redis_url, transport=RedisTransport, transport_options=transport_options(prefix)) as conn:
        queue = conn.SimpleQueue(name)
        client.lpush(name, b"", b"\x00garbage")               # the oldest: RPOP takes them first
        queue.put({"run": 7})
        assert queue.get_nowait().payload == {"run": 7}   # basic_get; kombu's own: Empty, past the ''
        queue.close()
    assert client.lrange(f"{prefix}quarantine", 0, -1) == [b"\x00garbage", b""]
