"""Sign-in throttling in the login_throttle table (db.throttle), on SQLite and Postgres, shared by
separate processes: per client and name with exponential backoff, a per-client budget across names,
and never a lock on a name alone."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from db import throttle
from db.engine import get_engine
from db.models import LoginThrottle

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def fail(url, client, name, n, now=T0):
    for _ in range(n):
        w = throttle.record_failure(client, name, engine=get_engine(url), now=now)
    return w


def test_backoff_doubles_after_the_free_failures_and_is_capped():
    assert [throttle.backoff_s(n, 5) for n in range(4, 9)] == [0.0, 2.0, 4.0, 8.0, 16.0]
    assert throttle.backoff_s(40, 5) == throttle.MAX_LOCK_S == 900.0


def test_pair_waits_grow_exponentially(db_url):
    eng = get_engine(db_url)
    assert fail(db_url, "10.0.0.9", "alice", throttle.PAIR_FREE - 1).seconds == 0
    w = fail(db_url, "10.0.0.9", "alice", 1)
    assert w.seconds == pytest.approx(2.0) and "for this name" in w.reason
    assert fail(db_url, "10.0.0.9", "alice", 2).seconds == pytest.approx(8.0)
    later = T0 + timedelta(seconds=9)
    assert throttle.wait_for("10.0.0.9", "alice", engine=eng, now=later).seconds == 0


def test_an_attacker_cannot_lock_a_user_out_from_another_address(db_url):
    eng = get_engine(db_url)
    fail(db_url, "10.6.6.6", "admin", 40)                         # far past every free allowance
    assert throttle.wait_for("10.6.6.6", "admin", engine=eng, now=T0).seconds > 60
    assert throttle.wait_for("192.168.1.5", "admin", engine=eng, now=T0).seconds == 0


def test_guessing_across_names_is_limited_per_client(db_url):
    eng = get_engine(db_url)
    for k in range(throttle.CLIENT_FREE):                          # one try per name: no pair ever locks
        fail(db_url, "10.6.6.6", f"user{k}", 1)
    w = throttle.wait_for("10.6.6.6", "somebody-new", engine=eng, now=T0)
    assert w.seconds == pytest.approx(2.0) and w.reason == "too many failed sign-ins from this address"
    assert throttle.wait_for("10.0.0.1", "somebody-new", engine=eng, now=T0).seconds == 0


def test_success_clears_the_pair_but_not_the_client_budget(db_url):
    eng = get_engine(db_url)
    fail(db_url, "10.0.0.9", "alice", throttle.PAIR_FREE + 1)
    for k in range(throttle.CLIENT_FREE):
        fail(db_url, "10.0.0.9", f"guess{k}", 1)
    throttle.record_success("10.0.0.9", "alice", engine=eng)
    with eng.connect() as conn:
        keys = {k for (k,) in conn.execute(select(LoginThrottle.key))}
    assert "pair:10.0.0.9|alice" not in keys and "client:10.0.0.9" in keys
    assert throttle.wait_for("10.0.0.9", "alice", engine=eng, now=T0).seconds > 0    # the client's budget


def test_old_failures_are_forgotten(db_url):
    eng = get_engine(db_url)
    fail(db_url, "10.0.0.9", "alice", throttle.PAIR_FREE + 3)
    much_later = T0 + timedelta(seconds=throttle.FORGET_S + 3600)
    assert fail(db_url, "10.0.0.9", "alice", 1, now=much_later).seconds == 0        # counts from 1 again
    assert throttle.forget_old(engine=eng, now=much_later + timedelta(seconds=throttle.FORGET_S + 1)) == 2


CHILD = """
import sys
from datetime import datetime, timezone
from db import throttle
from db.engine import get_engine
url, client, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
now = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
for k in range(n):
    throttle.record_failure(client, "alice", engine=get_engine(url), now=now)
"""


def test_two_processes_share_the_count_and_lose_no_failure(db_url):
    """Two dashboard processes record failures of the same client at the same time: every failure
    is counted once, and each process sees the lock the other one caused."""
    n = 12
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, db_url, "10.6.6.6", str(n)], cwd=REPO)
             for _ in range(2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    eng = get_engine(db_url)
    with eng.connect() as conn:
        rows = dict(conn.execute(select(LoginThrottle.key, LoginThrottle.failures)).all())
    assert rows == {"pair:10.6.6.6|alice": 2 * n, "client:10.6.6.6": 2 * n}
    w = throttle.wait_for("10.6.6.6", "alice", engine=eng, now=T0)
    assert w.seconds == pytest.approx(throttle.backoff_s(2 * n, throttle.PAIR_FREE))


def test_long_client_and_name_fit_the_key_column(db_url):
    w = fail(db_url, "x" * 500, "n" * 500, throttle.PAIR_FREE)
    assert w.seconds == pytest.approx(2.0)
