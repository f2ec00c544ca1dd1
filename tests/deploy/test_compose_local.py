"""docker-compose.yml without Docker: each service's own command and environment as a local process.

postgres-init → migrate → dashboard + worker-cpu + flower, then one run end to end: sign in and
submit it from the dashboard in Chromium, the worker trains it, its rows land in Postgres, the SQL
console's read-only role refuses a write, and Flower refuses requests without credentials.
(worker-gpu is started too: there is no GPU here, so it refuses to start, says why, and registers
nothing; started anyway it would fail every run on the gpu queue.)
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request

import psycopg
import pytest
import redis as redis_lib
from local_stack import BIN, LocalStack, wait_http
from pg_helpers import PG_BASE_URL, REPO, fresh_database

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

USER, PASSWORD = "alice", "alice-secret-pass"
FLOWER_USER, FLOWER_PASSWORD = "ops", "flower-secret-pass"


def init_postgres(stack: LocalStack, pg_port: int) -> None:
    """Run docker/postgres-init/* with the postgres service's environment, as the image does on first start."""
    env = {**stack.environment("postgres"), "PGHOST": "127.0.0.1", "PGPORT": str(pg_port)}
    for script in sorted((REPO / "docker" / "postgres-init").iterdir()):
        result = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"{script.name}: {result.stderr}"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    from sqlalchemy import make_url

    pg_port = make_url(PG_BASE_URL).port or 5432
    with fresh_database("e2e") as t:
        stack = LocalStack(tmp_path_factory.mktemp("compose"), pg_port=pg_port, env_overrides={
            "POSTGRES_USER": t.owner, "POSTGRES_DB": t.db, "RNNLAB_READONLY_USER": t.readonly,
            "RNNLAB_READONLY_PASSWORD": t.readonly_password, "RNNLAB_READONLY_TIMEOUT": "5s",
            "FLOWER_USER": FLOWER_USER, "FLOWER_PASSWORD": FLOWER_PASSWORD, "RNNLAB_CPU_CONCURRENCY": "1",
        })
        stack.target = t
        try:
            init_postgres(stack, pg_port)
            stack.start_redis()
            _wait_redis(stack)
            migrate = stack.run("migrate")
            assert migrate.returncode == 0, migrate.stdout + migrate.stderr
            # as `docker compose run --rm dashboard rnnlab user add ...` would
            add = subprocess.run([str(BIN / "rnnlab"), "user", "add", USER, "--role", "member", "--password-stdin"],
                                 input=PASSWORD + "\n",
                                 cwd=REPO, env=stack.environment("dashboard"), capture_output=True, text=True,
                                 timeout=60)
            assert add.returncode == 0, add.stdout + add.stderr
            stack.dashboard = stack.start("dashboard")
            stack.worker = stack.start("worker-cpu")
            stack.gpu_worker = stack.start("worker-gpu")     # no GPU here: refused at start (exit 2)
            stack.flower = stack.start("flower")
            stack.dashboard_url = f"http://127.0.0.1:{stack.port(8501)}"
            stack.flower_url = f"http://127.0.0.1:{stack.port(5555)}"
            wait_http(stack.dashboard_url + "/_stcore/health", proc=stack.dashboard)
            wait_http(stack.flower_url + "/", ok=(401,), proc=stack.flower)
            yield stack
        finally:
            stack.stop_all()
            for svc in stack.running:
                print(f"----- {svc.name} log (tail)\n{svc.log()[-3000:]}")


def _wait_redis(stack: LocalStack, timeout: float = 20) -> None:
    url = stack.environment("worker-cpu")["RNNLAB_BROKER_URL"]
    deadline = time.monotonic() + timeout
    while True:
        try:
            redis_lib.Redis.from_url(url, socket_timeout=2).ping()
            return
        except redis_lib.RedisError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def owner_db(stack: LocalStack) -> psycopg.Connection:
    return psycopg.connect(stack.target.libpq(stack.target.owner), autocommit=True)


def wait_for(fetch, check, timeout: float, what: str, stack: LocalStack):
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = fetch()
        if check(value):
            return value
        time.sleep(0.5)
    raise TimeoutError(f"{what}: last value {value!r}\n----- worker log\n{stack.worker.log()[-4000:]}")


# ---- the services come up ----------------------------------------------------------------------------

def test_redis_runs_with_the_password_and_appendonly(stack):
    url = stack.environment("worker-cpu")["RNNLAB_BROKER_URL"]
    with pytest.raises(redis_lib.AuthenticationError):
        redis_lib.Redis(host="127.0.0.1", port=stack.redis_port, socket_timeout=2).ping()
    assert redis_lib.Redis.from_url(url).config_get("appendonly") == {"appendonly": "yes"}


def test_migrate_created_the_schema_and_the_readonly_role_can_read_it(stack):
    with owner_db(stack) as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"runs", "epochs", "workers", "alembic_version"} <= tables
    with psycopg.connect(stack.target.libpq(stack.target.readonly)) as conn:
        assert conn.execute("SELECT count(*) FROM alembic_version").fetchone() == (1,)


def test_workers_register_with_their_names_hosts_and_devices(stack):
    rows = wait_for(lambda: _workers(stack), lambda r: len(r) >= 1, 90, "worker registration", stack)
    host = socket.gethostname()              # in the containers: compose's hostnames main-cpu, main-gpu0
    by_name = {r[0]: r[1:] for r in rows}
    assert by_name["cpu@main"] == (host, "cpu", "cpu")


def test_the_gpu_worker_without_a_gpu_is_refused_at_start_and_registers_nothing(stack):
    """worker-gpu's own command on this machine, which has no GPU: it exits 2 and says why (started anyway,
    it would fail every run it took off the gpu queue); the gpu runs stay queued for a worker with one."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: worker-gpu starts")
    try:
        code = stack.gpu_worker.proc.wait(timeout=180)
    except subprocess.TimeoutExpired:
        pytest.fail(f"worker-gpu is still running:\n{stack.gpu_worker.log()[-3000:]}")
    said = " ".join(stack.gpu_worker.log().split())
    assert code == 2 and "no CUDA GPU is visible to torch here" in said, said[-3000:]
    assert "gpu0@main" not in {r[0] for r in _workers(stack)}


def _workers(stack):
    with owner_db(stack) as conn:
        return conn.execute("SELECT name, host, queues, device FROM workers WHERE stopped_at IS NULL").fetchall()


# ---- Flower ------------------------------------------------------------------------------------------

def test_flower_requires_basic_auth(stack):
    for path in ("/", "/workers", "/tasks", "/api/workers", "/api/tasks"):
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(stack.flower_url + path, timeout=10)
        assert e.value.code == 401, path
    bad = urllib.request.Request(stack.flower_url + "/", headers=_basic("ops", "wrong"))
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(bad, timeout=10)
    assert e.value.code == 401


def test_flower_sees_the_worker_with_credentials(stack):
    req = urllib.request.Request(stack.flower_url + "/api/workers?refresh=1",
                                 headers=_basic(FLOWER_USER, FLOWER_PASSWORD))

    def fetch():
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    workers = wait_for(fetch, bool, 90, "flower /api/workers", stack)
    assert "cpu@main" in workers, workers


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


# ---- the dashboard, in a browser ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    exe = shutil.which("chromium")
    assert exe, "Debian's chromium is needed for the browser tests (apt-get install -y chromium)"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield b
        b.close()


def _settle(page) -> None:
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=60_000)
    page.wait_for_timeout(300)


def _set_number(page, label: str, value: int) -> None:
    box = page.get_by_role("spinbutton", name=label, exact=True)
    box.fill(str(value))
    box.press("Enter")
    _settle(page)


@pytest.mark.browser
def test_dashboard_requires_sign_in_then_submits_a_run_that_the_worker_trains(stack, browser):
    page = browser.new_page()
    page.set_default_timeout(60_000)
    try:
        page.goto(stack.dashboard_url)
        page.get_by_role("textbox", name="Password").wait_for()
        _settle(page)
        body = page.inner_text("body")
        assert "Sign in" in body
        assert "New experiment" not in body and "Runs" not in body    # no pages, no data before sign-in

        page.get_by_role("textbox", name="User name").fill(USER)
        page.get_by_role("textbox", name="Password").fill("not-the-password")
        page.get_by_role("button", name="Sign in").click()
        page.get_by_text("Wrong user name or password.").wait_for()
        assert "New experiment" not in page.inner_text("body")

        page.get_by_role("textbox", name="User name").fill(USER)
        page.get_by_role("textbox", name="Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("link", name="New experiment").click()
        page.get_by_role("heading", name="New experiment").wait_for()
        _settle(page)
        for label, value in [("Sequence length T", 10), ("Hidden size", 8), ("Batch size", 16), ("Epochs", 2),
                             ("Steps per epoch", 5)]:
            _set_number(page, label, value)
        page.get_by_role("button", name="Submit 1 run(s)").click()
        page.get_by_text("Submitted 1 run(s)").wait_for()
    except Exception:
        page.screenshot(path=str(stack.tmp / "dashboard.png"), full_page=True)
        raise
    finally:
        page.close()

    run = wait_for(lambda: _runs(stack), lambda rows: rows and rows[0][2] in ("succeeded", "failed", "diverged"),
                   240, "the submitted run to finish", stack)
    (run_id, owner, status, worker, epochs_total), = run
    assert owner == USER
    assert status == "succeeded", status
    assert worker == "cpu@main"
    assert epochs_total == 2
    with owner_db(stack) as conn:
        epochs = [r[0] for r in conn.execute("SELECT epoch FROM epochs WHERE run_id = %s ORDER BY epoch", (run_id,))]
        profiles = conn.execute("SELECT count(*) FROM grad_profiles WHERE run_id = %s", (run_id,)).fetchone()[0]
    assert epochs == [0, 1, 2]
    assert profiles > 0


def _runs(stack):
    with owner_db(stack) as conn:
        return conn.execute("SELECT id, owner, status, worker, epochs_total FROM runs ORDER BY id").fetchall()


# ---- the SQL console's connection ------------------------------------------------------------------------

def test_sql_console_reads_but_refuses_writes_through_the_readonly_role(stack):
    from db.console import QueryError, run_sql

    url = stack.environment("dashboard")["RNNLAB_READONLY_DATABASE_URL"]
    assert stack.target.readonly in url
    wait_for(lambda: _workers(stack), lambda r: len(r) >= 1, 90, "worker registration", stack)   # run alone too
    df, _ = run_sql("SELECT count(*) AS n FROM workers", url=url)
    assert int(df["n"][0]) >= 1
    before = _runs(stack)
    for sql in ("DELETE FROM runs", "UPDATE runs SET owner = 'mallory'", "DROP TABLE epochs"):
        with pytest.raises(QueryError, match="read-only|permission denied"):
            run_sql(sql, url=url)
    with pytest.raises(QueryError):        # refused one way or another (multiple commands, read-only)
        run_sql("SET TRANSACTION READ WRITE; DELETE FROM runs", url=url)
    assert _runs(stack) == before
    with pytest.raises(QueryError, match="statement timeout"):
        run_sql("SELECT pg_sleep(5)", url=url, timeout_s=1)
