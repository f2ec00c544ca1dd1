"""A worker started before its database is reachable still migrates it, registers and heartbeats
once the database comes up (a real worker process)."""

import time

import pytest
from sqlalchemy import select

from db.engine import session
from db.models import Worker


@pytest.mark.timeout(120)
def test_worker_started_before_the_database_heartbeats_once_it_is_up(tmp_path, fs_broker, start_worker):
    folder = tmp_path / "not-yet"        # SQLite cannot open a file in a missing folder: "the DB is down"
    db_url = f"sqlite:///{folder / 'rnnlab.db'}"
    w = start_worker(db_url, fs_broker, wait=False)
    deadline = time.monotonic() + 60
    while "ready" not in w.log() and time.monotonic() < deadline:   # Celery's own "… ready." line
        assert w.proc.poll() is None, w.log()[-3000:]
        time.sleep(0.2)
    deadline = time.monotonic() + 30     # a few failed beats, seen in the log
    while w.log().count("heartbeat failed") < 2 and time.monotonic() < deadline:
        assert w.proc.poll() is None, w.log()[-3000:]
        time.sleep(0.1)
    assert w.log().count("heartbeat failed") >= 2, w.log()[-3000:]
    folder.mkdir()                       # the database comes up
    deadline = time.monotonic() + 30
    row = None
    while row is None and time.monotonic() < deadline:
        assert w.proc.poll() is None, w.log()[-3000:]
        try:
            with session(db_url) as s:
                row = s.execute(select(Worker.name, Worker.heartbeat_at).where(Worker.name == w.name)).first()
        except Exception:  # noqa: BLE001 - the worker has not migrated it yet
            pass
        time.sleep(0.2)
    assert row is not None, f"worker never registered:\n{w.log()[-4000:]}"
    later, deadline = row.heartbeat_at, time.monotonic() + 30   # and it keeps beating (period 0.5 s)
    while later <= row.heartbeat_at and time.monotonic() < deadline:
        time.sleep(0.1)
        with session(db_url) as s:
            later = s.execute(select(Worker.heartbeat_at).where(Worker.name == w.name)).scalar_one()
    assert later > row.heartbeat_at
