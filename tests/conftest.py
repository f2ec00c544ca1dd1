"""Shared fixtures: real databases (SQLite file, a throwaway Postgres database), real brokers
(filesystem, Redis with queue names unique to this test run) and real Celery worker processes.

Nothing here skips: if Redis or Postgres is down, the tests that need them fail, saying so.

- ``sqlite_url``: a fresh, migrated SQLite file per test.
- ``pg_url``: the session's Postgres database (created and migrated once per test session from
  RNNLAB_TEST_POSTGRES_URL, dropped at the end), emptied before each test.
- ``db_url``: parametrized over both.
- ``fresh_pg_database``: factory of empty, unmigrated Postgres databases (dropped afterwards).
- ``redis_url``: RNNLAB_TEST_REDIS_URL, checked to answer.
- ``broker``: parametrized over filesystem and Redis; a ``Broker`` with its env and ``.app()``.
  ``fs_broker`` is a filesystem one; ``broker_factory("redis")`` makes one of a given kind.
  Redis queues are named ``rnnlab-test-<run>-<test>-cpu`` (RNNLAB_QUEUE_PREFIX), so parallel test
  runs sharing one Redis never see each other's messages; they are deleted at the end.
- ``start_worker``: starts a real ``celery -A worker.app worker`` subprocess with the test's database
  and broker (heartbeat 0.5 s, lost after 5 s), waits until it has registered in the workers table,
  and stops it (and any left running) at the end of the test. ``.kill()`` SIGKILLs it and its children.
- ``wait_status``: poll a run until it reaches one of the given statuses (shows worker logs on timeout).
- ``page_db``: the Studies page's database for AppTest (``sqlite_url``, a home of its own, caches cleared).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PG_BASE_URL = os.environ.get("RNNLAB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_BASE_URL = os.environ.get("RNNLAB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
TEST_RUN = uuid.uuid4().hex[:8]   # names of this test run's Postgres database and Redis queues


# ------------------------------------------------------------------------------------------
# The fast tier: ./scripts/test --fast
# ------------------------------------------------------------------------------------------

# Fixtures that mean a test needs Postgres, Redis, a real worker process or a browser.
SLOW_FIXTURES = {"pg_url", "pg_server_url", "fresh_pg_database", "redis_url", "start_worker", "broker_factory"}
SLOW_PARAMS = {"postgres", "redis"}   # db_url[postgres], broker[redis]
SLOW_FOLDERS = ("deploy", "faults")   # the compose stack, sign-in against real services, fault injection


def pytest_addoption(parser):
    parser.addoption("--fast", action="store_true", default=False,
                     help="the fast tier: unit tests and SQLite only (no Postgres, Redis, worker processes, "
                          "browser or compose stack); the full suite stays the default")


def is_slow_item(item) -> bool:
    """True when a test needs a service, a worker process, a browser or the compose stack."""
    if item.get_closest_marker("slow") or item.get_closest_marker("browser"):
        return True
    if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
        return True
    callspec = getattr(item, "callspec", None)
    if callspec and SLOW_PARAMS & {str(v) for v in callspec.params.values()}:
        return True
    parts = Path(str(item.fspath)).relative_to(REPO / "tests").parts
    return bool(parts) and parts[0] in SLOW_FOLDERS


def pytest_collection_modifyitems(config, items):
    if not config.getoption("--fast"):
        return
    keep, drop = [], []
    for item in items:
        (drop if is_slow_item(item) else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


# ------------------------------------------------------------------------------------------
# Databases
# ------------------------------------------------------------------------------------------

def _pg_admin_connect():
    import psycopg

    url = PG_BASE_URL.replace("postgresql+psycopg://", "postgresql://")
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as e:
        pytest.fail(f"PostgreSQL is needed at {PG_BASE_URL} (RNNLAB_TEST_POSTGRES_URL) and is not reachable: {e}")


def _pg_db_url(dbname: str) -> str:
    from sqlalchemy import make_url

    return make_url(PG_BASE_URL).set(database=dbname).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_server_url():
    """A migrated Postgres database for this test session (dropped afterwards)."""
    from db.engine import dispose_all
    from db.migrate import upgrade

    name = f"rnnlab_test_{TEST_RUN}"
    with _pg_admin_connect() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = _pg_db_url(name)
    upgrade(url)
    yield url
    dispose_all()
    with _pg_admin_connect() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def fresh_pg_database():
    """Factory: an empty (unmigrated) Postgres database for this test, dropped afterwards."""
    from db.engine import dispose_all

    names = []

    def make() -> str:
        name = f"rnnlab_test_{TEST_RUN}_{uuid.uuid4().hex[:6]}"
        with _pg_admin_connect() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        names.append(name)
        return _pg_db_url(name)

    yield make
    if names:
        dispose_all()
        with _pg_admin_connect() as conn:
            for name in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _truncate_all(url: str) -> None:
    from sqlalchemy import text

    from db.engine import get_engine
    from db.models import Base

    names = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with get_engine(url).begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture
def pg_url(pg_server_url):
    """The session's Postgres database, emptied for this test."""
    _truncate_all(pg_server_url)
    return pg_server_url


@pytest.fixture
def sqlite_url(tmp_path):
    """A fresh, migrated SQLite database file."""
    from db.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'rnnlab.db'}"
    upgrade(url)
    return url


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request):
    """A fresh migrated database on each backend."""
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")


# ------------------------------------------------------------------------------------------
# Brokers
# ------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def redis_url():
    """The test Redis (RNNLAB_TEST_REDIS_URL); this run's queues are deleted at the end."""
    import redis

    client = redis.Redis.from_url(REDIS_BASE_URL, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as e:
        pytest.fail(f"Redis is needed at {REDIS_BASE_URL} (RNNLAB_TEST_REDIS_URL) and is not reachable: {e}")
    yield REDIS_BASE_URL
    keys = list(client.scan_iter(match=f"*rnnlab-test-{TEST_RUN}-*", count=1000))
    if keys:
        client.delete(*keys)


@dataclass
class Broker:
    """A broker for one test: its URL (None = filesystem), the home folder and queue prefix."""

    kind: str
    url: str | None
    home: Path
    prefix: str
    env: dict[str, str] = field(default_factory=dict)

    def app(self):
        from rnnlab.queue import make_app

        return make_app(self.url or "filesystem://", home=self.home, prefix=self.prefix)


def make_broker(kind: str, home: Path, redis: str | None) -> Broker:
    prefix = f"rnnlab-test-{TEST_RUN}-{uuid.uuid4().hex[:6]}-"
    env = {"RNNLAB_HOME": str(home), "RNNLAB_QUEUE_PREFIX": prefix}
    url = None
    if kind == "redis":
        url = redis
        env["RNNLAB_BROKER_URL"] = redis
    return Broker(kind, url, home, prefix, env)


@pytest.fixture(params=["filesystem", "redis"])
def broker(request, tmp_path):
    """A broker of each kind, private to this test."""
    home = tmp_path / "home"
    home.mkdir()
    redis = request.getfixturevalue("redis_url") if request.param == "redis" else None
    return make_broker(request.param, home, redis)


@pytest.fixture
def fs_broker(tmp_path):
    """A filesystem broker private to this test."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return make_broker("filesystem", home, None)


# ------------------------------------------------------------------------------------------
# Worker processes
# ------------------------------------------------------------------------------------------

@dataclass
class WorkerProcess:
    """A real Celery worker subprocess (its own process group, so kill() takes its children too)."""

    name: str
    proc: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL the worker and its pool children, as a crash or an OOM kill would."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def terminate(self) -> None:
        """Ask for a warm shutdown (SIGTERM to the main process) without waiting."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 20) -> None:
        """Warm shutdown (SIGTERM); SIGKILL if it does not exit in time."""
        self.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()


def worker_env(db_url: str, broker: Broker, **extra: str) -> dict[str, str]:
    """Environment of a worker process: this test's database and broker, fast heartbeats."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RNNLAB_")}
    env.update(broker.env)
    env.update({
        "RNNLAB_DATABASE_URL": db_url, "RNNLAB_HEARTBEAT_SECONDS": "0.5", "RNNLAB_LOST_AFTER_SECONDS": "5",
        "RNNLAB_TORCH_THREADS": "1", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1",
    })
    env.update(extra)
    return env


def wait_for_worker(db_url: str, name: str, proc: WorkerProcess, timeout: float = 60) -> None:
    from sqlalchemy import select

    from db.engine import session
    from db.models import Worker

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.proc.poll() is not None:
            raise RuntimeError(f"worker {name} exited with {proc.proc.returncode}:\n{proc.log()[-4000:]}")
        with session(db_url) as s:
            if s.execute(select(Worker.name).where(Worker.name == name, Worker.stopped_at.is_(None))).first():
                return
        time.sleep(0.2)
    raise TimeoutError(f"worker {name} did not register within {timeout} s:\n{proc.log()[-4000:]}")


@pytest.fixture
def start_worker(tmp_path):
    """Factory: start_worker(db_url, broker, queues="cpu", concurrency=1, **env) -> WorkerProcess."""
    started: list[WorkerProcess] = []

    def start(db_url: str, broker: Broker, *, queues: str = "cpu", concurrency: int = 1,
              wait: bool = True, **extra_env: str) -> WorkerProcess:
        name = f"w{len(started) + 1}-{uuid.uuid4().hex[:6]}@test"
        log_path = tmp_path / f"worker-{len(started) + 1}.log"
        prefixed = ",".join(broker.prefix + q for q in queues.split(","))
        cmd = [sys.executable, "-m", "celery", "-A", "worker.app", "worker", "-n", name, "-Q", prefixed,
               "-c", str(concurrency), "--pool", "prefork", "-l", "INFO", "--without-mingle",
               "--without-gossip"]
        with open(log_path, "w") as log:
            proc = subprocess.Popen(cmd, cwd=REPO, env=worker_env(db_url, broker, **extra_env),
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wp = WorkerProcess(name, proc, log_path)
        started.append(wp)
        if wait:
            wait_for_worker(db_url, name, wp)
        return wp

    yield start
    for wp in started:
        wp.terminate()
    for wp in started:
        wp.stop()


def wait_until(cond, timeout: float, what: str, *workers: WorkerProcess):
    """Poll ``cond()`` every 0.2 s until it returns something truthy, and return that; on timeout raise
    TimeoutError with ``what`` and the workers' logs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.2)
    logs = "\n".join(f"--- {w.name}\n{w.log()[-3000:]}" for w in workers)
    raise TimeoutError(f"{what}:\n{logs}")


def wait_for_status(db_url: str, run_id: int, statuses, timeout: float = 120, workers=()) -> dict:
    """Poll a run until its status is one of ``statuses``; the workers' logs are shown on timeout."""
    from db.store import get_run

    statuses = {statuses} if isinstance(statuses, str) else set(statuses)
    deadline = time.monotonic() + timeout
    run = None
    while time.monotonic() < deadline:
        run = get_run(run_id, url=db_url)
        if run and run["status"] in statuses:
            return run
        time.sleep(0.2)
    logs = "\n".join(f"--- {w.name}\n{w.log()[-3000:]}" for w in workers)
    raise TimeoutError(f"run {run_id} stayed {run and run['status']!r} (wanted {statuses}):\n{logs}")


@pytest.fixture
def wait_status():
    """The wait_for_status helper, as a fixture: wait_status(db_url, run_id, statuses, timeout, workers)."""
    return wait_for_status


@pytest.fixture
def broker_factory(request, tmp_path):
    """Factory: broker_factory("filesystem" | "redis") -> a Broker private to this test."""
    def make(kind: str) -> Broker:
        home = tmp_path / f"home-{kind}"
        home.mkdir(exist_ok=True)
        redis = request.getfixturevalue("redis_url") if kind == "redis" else None
        return make_broker(kind, home, redis)

    return make


@pytest.fixture
def page_db(sqlite_url, tmp_path, monkeypatch):
    """The Studies page's database: a test SQLite file, a home of its own (its filesystem broker), and
    the settings and Streamlit caches cleared before and after."""
    import streamlit as st

    from rnnlab.settings import get_settings

    (tmp_path / "home").mkdir()
    monkeypatch.setenv("RNNLAB_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("RNNLAB_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    st.cache_data.clear()
    st.cache_resource.clear()
    yield sqlite_url
    get_settings.cache_clear()
    st.cache_data.clear()
