"""Sign-in throttling under real concurrency (dashboard.auth.claim_attempt) on SQLite and Postgres,
and the refusal to serve a dashboard without sign-in on a non-loopback address."""

from __future__ import annotations

import threading
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from dashboard import auth
from db import throttle
from db.engine import get_engine
from db.models import LoginThrottle
from rnnlab import users

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _parallel(n, fn):
    out = [None] * n
    bar = threading.Barrier(n)

    def go(i):
        bar.wait()
        out[i] = fn(i)
    ts = [threading.Thread(target=go, args=(i,)) for i in range(n)]
    [t.start() for t in ts]
    [t.join(120) for t in ts]
    return out


def _counts(url):
    with get_engine(url).connect() as conn:
        return dict(conn.execute(select(LoginThrottle.key, LoginThrottle.failures)).all())


def test_parallel_tries_get_only_the_free_ones(db_url):
    eng = get_engine(db_url)
    waits = _parallel(20, lambda i: auth.claim_attempt("10.0.0.9", "alice", engine=eng, now=T0))
    assert sum(w.seconds == 0 for w in waits) == throttle.PAIR_FREE
    refused = [w for w in waits if w.seconds > 0]
    assert len(refused) == 15 and all("for this name" in w.reason for w in refused)
    assert _counts(db_url) == {"pair:10.0.0.9|alice": 5, "client:10.0.0.9": 5}   # refusals count nothing
    # the wait runs out: exactly one of the next parallel tries gets through
    later = T0 + timedelta(seconds=throttle.BASE_S + 0.1)
    waits = _parallel(10, lambda i: auth.claim_attempt("10.0.0.9", "alice", engine=eng, now=later))
    assert sum(w.seconds == 0 for w in waits) == 1
    assert auth.claim_attempt("10.0.0.1", "alice", engine=eng, now=later).seconds == 0   # another client


def test_parallel_guesses_across_names_hit_the_client_budget(db_url):
    eng = get_engine(db_url)
    waits = _parallel(40, lambda i: auth.claim_attempt("10.6.6.6", f"user{i}", engine=eng, now=T0))
    assert sum(w.seconds == 0 for w in waits) == throttle.CLIENT_FREE


def test_a_good_password_clears_the_pair_and_does_not_spend_the_budget(db_url):
    eng = get_engine(db_url)
    for _ in range(3):
        auth.claim_attempt("10.0.0.9", "alice", engine=eng, now=T0)
    auth.claim_attempt("10.0.0.9", "bob", engine=eng, now=T0)
    auth.clear_attempt("10.0.0.9", "alice", engine=eng)
    assert _counts(db_url) == {"client:10.0.0.9": 3, "pair:10.0.0.9|bob": 1}
    assert throttle.wait_for("10.0.0.9", "alice", engine=eng, now=T0).seconds == 0


def test_a_good_password_leaves_the_address_as_it_was(db_url):
    """An address (a NAT, a proxy, 'unknown') with 40 failures whose lock has run out: alice signs in with
    her right password. Her try was counted before the check (41 failures, a new 15-minute lock) and
    the success only took one back, so the lock stayed and the next person at that address, bob, had to
    wait 15 min; each success also refreshed last_failure_at, so the 24 h reset never came. The row is
    now put back as it was before her try."""
    eng = get_engine(db_url)
    t = LoginThrottle.__table__
    with eng.begin() as conn:                             # the old failures, two hours before
        conn.execute(t.insert().values(key="client:10.0.0.9", failures=40, first_failure_at=T0 - timedelta(hours=3),
                                       last_failure_at=T0 - timedelta(hours=2),
                                       locked_until=T0 - timedelta(hours=2) + timedelta(minutes=15)))

    def row():
        with eng.connect() as conn:
            r = conn.execute(select(t).where(t.c.key == "client:10.0.0.9")).one()
        return r.failures, throttle._utc(r.last_failure_at), throttle._utc(r.locked_until)

    before = row()
    assert before[0] == 40 and before[2] < T0             # its lock has run out by now
    wait = auth.claim_attempt("10.0.0.9", "alice", engine=eng, now=T0)
    assert wait.seconds == 0 and row()[0] == 41
    auth.clear_attempt("10.0.0.9", "alice", engine=eng, undo=wait.undo)
    assert row() == before
    assert auth.claim_attempt("10.0.0.9", "bob", engine=eng, now=T0 + timedelta(seconds=1)).seconds == 0


def test_a_good_password_after_another_try_meanwhile_takes_back_only_its_own(db_url):
    """When another try at the address was counted between alice's claim and her good password, her
    row can no longer be put back whole: one failure is taken back, and the other try's count stays."""
    eng = get_engine(db_url)
    wait = auth.claim_attempt("10.0.0.9", "alice", engine=eng, now=T0)
    auth.claim_attempt("10.0.0.9", "mallory", engine=eng, now=T0 + timedelta(seconds=1))
    auth.clear_attempt("10.0.0.9", "alice", engine=eng, undo=wait.undo)
    assert _counts(db_url) == {"client:10.0.0.9": 1, "pair:10.0.0.9|mallory": 1}


@pytest.fixture
def users_env(tmp_path, monkeypatch, sqlite_url):
    from rnnlab.settings import get_settings

    path = tmp_path / "users.yaml"
    monkeypatch.setenv("RNNLAB_USERS_FILE", str(path))
    monkeypatch.setenv("RNNLAB_AUTH", "users")
    monkeypatch.setenv("RNNLAB_DATABASE_URL", sqlite_url)
    get_settings.cache_clear()
    users.add_user("alice", "admin", "alice-pass-1", path=path)
    yield path
    get_settings.cache_clear()


def page():
    import streamlit as st

    from dashboard.auth import current_user

    st.write(f"IN as {current_user().name}")


def test_twenty_browser_tabs_at_once_get_five_password_checks(users_env, monkeypatch):
    checked = []
    real = users.verify_password
    monkeypatch.setattr(users, "verify_password", lambda *a, **k: checked.append(1) or real(*a, **k))
    ats = []
    for i in range(20):
        at = AppTest.from_function(page, default_timeout=120).run()
        at.text_input(key="rnnlab_login_name").input("alice")
        at.text_input(key="rnnlab_login_password").input(f"guess-{i}")
        ats.append(at)
    errors = _parallel(20, lambda i: [e.value for e in ats[i].button[0].click().run().error])
    assert len(checked) == throttle.PAIR_FREE
    assert sum("Too many failed sign-ins" in e[0] for e in errors) == 15


# ---- no sign-in: loopback only --------------------------------------------------------------------

@pytest.mark.parametrize("address, loopback", [
    ("127.0.0.1", True), ("localhost", True), ("::1", True), ("127.0.0.2", True),
    ("", False), ("0.0.0.0", False), ("::", False), ("192.168.1.5", False), ("myhost", False)])
def test_is_loopback(address, loopback):
    assert auth.is_loopback(address) is loopback


def _no_sign_in(tmp_path, monkeypatch, mode):
    from rnnlab.settings import get_settings

    monkeypatch.setenv("RNNLAB_USERS_FILE", str(tmp_path / "none.yaml"))
    monkeypatch.setenv("RNNLAB_AUTH", mode)
    get_settings.cache_clear()


@pytest.mark.parametrize("mode", ["none", "auto"])
@pytest.mark.parametrize("address", ["0.0.0.0", "", "10.1.2.3"])
def test_no_sign_in_on_an_open_address_serves_nothing(tmp_path, monkeypatch, mode, address):
    _no_sign_in(tmp_path, monkeypatch, mode)
    monkeypatch.setattr(auth, "_listening_address", lambda: address)
    at = AppTest.from_function(page).run()
    assert not [m.value for m in at.markdown if "IN as" in m.value]
    msg = at.error[0].value
    assert "rnnlab user add" in msg and "127.0.0.1" in msg


@pytest.mark.parametrize("address", ["127.0.0.1", "localhost", None])
def test_no_sign_in_on_loopback_is_the_local_admin(tmp_path, monkeypatch, address):
    _no_sign_in(tmp_path, monkeypatch, "auto")
    monkeypatch.setattr(auth, "_listening_address", lambda: address)
    at = AppTest.from_function(page).run()
    assert [m.value for m in at.markdown] == ["IN as local"] and not at.error


def test_sign_in_on_an_open_address_is_still_served(users_env, monkeypatch):
    monkeypatch.setattr(auth, "_listening_address", lambda: "0.0.0.0")
    at = AppTest.from_function(page).run()
    assert not at.error and at.text_input(key="rnnlab_login_name")


def test_the_dashboard_config_listens_on_loopback_and_compose_overrides_it():
    import yaml

    cfg = tomllib.loads((REPO / "dashboard" / ".streamlit" / "config.toml").read_text())
    assert cfg["server"]["address"] == "127.0.0.1"
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]["dashboard"]
    assert "--server.address=0.0.0.0" in compose["command"]
    assert compose["environment"]["RNNLAB_AUTH"].startswith("${RNNLAB_AUTH:-users}")
    assert "RNNLAB_AUTH=users" in (REPO / "docker" / "dashboard.Dockerfile").read_text()


def test_a_real_server_started_without_flags_listens_on_loopback_only(tmp_path):
    """`streamlit run dashboard/app.py` from another directory reads dashboard/.streamlit/config.toml."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(REPO / "dashboard" / "app.py"),
                             "--server.port", str(port)], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, "the dashboard did not start"
                time.sleep(0.5)
        listening = [line for line in Path("/proc/net/tcp").read_text().splitlines()[1:]
                     if line.split()[1].endswith(f":{port:04X}") and line.split()[3] == "0A"]
        assert [line.split()[1] for line in listening] == [f"0100007F:{port:04X}"]
    finally:
        proc.terminate()
        proc.wait(20)
