"""The faults: each scenario builds a fresh setup, submits tiny runs, injects one fault, waits for every
run to end, and returns a Result (one row of docs/reliability.md's table).

Backends: "sqlite+filesystem" (the embedded setup: SQLite file + kombu's filesystem broker) and
"postgres+redis" (the team setup), each on the suite's own private services (bench.faults.services).
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.faults import harness as h
from bench.faults.services import PostgresServer, RedisServer, ServiceError, Tmpfs

SQLITE, POSTGRES = "sqlite+filesystem", "postgres+redis"
SKEW = "+5m"


@dataclass
class Result:
    fault: str
    backend: str
    runs: int = 0
    lost: int = 0
    duplicated: int = 0
    outcome: str = ""
    recovery_s: float | None = None
    used: str = ""
    holds: bool = False
    details: list[str] = field(default_factory=list)

    def row(self) -> list[str]:
        rec = "—" if self.recovery_s is None else f"{self.recovery_s:.1f} s"
        return [self.fault, self.backend, str(self.runs), str(self.lost), str(self.duplicated), self.outcome, rec,
                self.used, "yes" if self.holds else "**no**"]


class Context:
    """The suite's private services, started once and shared by the scenarios (each gets its own
    database and queue names)."""

    def __init__(self, root: Path | None = None, load_runs: int = 1000, load_workers: int = 4):
        self.root = Path(root or tempfile.mkdtemp(prefix="rnnlab-faults-"))
        os.chmod(self.root, 0o755)   # the postgres user must reach its data folder
        self.load_runs, self.load_workers = load_runs, load_workers
        self.pg: PostgresServer | None = None
        self.redis: dict[bool, RedisServer] = {}
        self.setups: list[h.Setup] = []

    def postgres(self) -> PostgresServer:
        if self.pg is None:
            self.pg = PostgresServer(self.root)
            self.pg.start()
        return self.pg

    def redis_server(self, persistent: bool = False) -> RedisServer:
        if persistent not in self.redis:
            self.redis[persistent] = RedisServer(self.root, persistent=persistent)
            self.redis[persistent].start()
        return self.redis[persistent]

    def setup(self, backend: str, *, persistent_redis: bool = False, home: Path | None = None) -> h.Setup:
        tag = uuid.uuid4().hex[:6]
        home = home or self.root / f"home-{tag}"
        home.mkdir(parents=True, exist_ok=True)
        if backend == SQLITE:
            from db.migrate import upgrade

            url = f"sqlite:///{home / 'rnnlab.db'}"
            upgrade(url)
            st = h.Setup(backend, url, home, None, log_dir=self.root)
        else:
            url = self.postgres().create_database(f"faults_{tag}")
            st = h.Setup(backend, url, home, self.redis_server(persistent_redis).url, log_dir=self.root)
        self.setups.append(st)
        return st

    def close(self, keep: bool = False) -> None:
        for st in self.setups:
            st.stop_all()
        for r in self.redis.values():
            r.stop()
        if self.pg is not None:
            try:
                self.pg.stop()
            except ServiceError:
                pass
        from db.engine import dispose_all

        dispose_all()
        if keep:
            print(f"kept {self.root}")
        else:
            shutil.rmtree(self.root, ignore_errors=True)


# ------------------------------------------------------------------------------------------
# Turning an audit into a row
# ------------------------------------------------------------------------------------------

def finish(res: Result, st: h.Setup, ids: list[int], recovery: float | None,
           allowed_failure: Callable[[str], bool] = lambda m: False) -> Result:
    """Audit the runs, describe the outcome, decide whether the guarantee held; stops the workers."""
    died = [w for w in st.workers if w.died()]
    st.stop_all()
    logs = st.logs()
    resent, skipped = logs.count("its task message is gone from the broker; re-sent"), logs.count("not claimable")
    a = h.audit(st.db_url, ids, st.engines)
    res.runs, res.lost, res.duplicated, res.recovery_s = a.runs, len(a.lost), len(a.duplicated), recovery
    parts = [", ".join(f"{n} {s}" for s, n in sorted(a.status_counts.items()))]
    if a.lost_attempts:
        parts.append(f"{a.lost_attempts} attempt(s) lost and resumed")
    if resent or skipped:
        parts.append(f"{resent} re-sent by the lost-message check, {skipped} duplicate deliveries skipped")
    if died:
        parts.append(f"{len(died)} worker(s) crashed")
        res.details += [f"worker {w.name} crashed: {w.crash_line() or 'exit ' + str(w.proc.returncode)}"
                        for w in died]
    bad_fail = sum(n for m, n in a.messages.items() if not allowed_failure(m))
    res.details += [f"failed ×{n}: {m}" for m, n in a.messages.most_common(3)]
    res.details += [f"run {i} duplicated: {why}" for i, why in list(a.duplicated.items())[:3]]
    if a.lost:
        res.details.append(f"lost runs (not final): {a.lost[:10]}")
    if not a.content_checked:
        res.details.append("records not compared with a reference: the engine's source changed during the scenario")
    res.outcome = "; ".join(p for p in parts if p)
    res.holds = not a.lost and not a.duplicated and not died and bad_fail == 0
    return res


def _setup_or_skip(res: Result, make: Callable[[], h.Setup]) -> h.Setup | None:
    try:
        return make()
    except (ServiceError, OSError) as e:
        res.outcome, res.used = "not run", f"{type(e).__name__}: {e}"[:200]
        return None


def _mid_specs(n: int, **kw) -> list:
    return [h.spec(h.MID, seed, **kw) for seed in range(1, n + 1)]


# ------------------------------------------------------------------------------------------
# Scenarios
# ------------------------------------------------------------------------------------------

def sigkill_mid_epoch(ctx: Context, backend: str, runs: int = 3) -> Result:
    """Two workers, three runs; SIGKILL (whole process group) the worker of a run inside its second epoch."""
    res = Result("SIGKILL mid-epoch", backend, used="kill -9 of the worker's process group")
    st = _setup_or_skip(res, lambda: ctx.setup(backend))
    if st is None:
        return res
    st.start_workers(2)
    ids = st.submit(_mid_specs(runs))
    hit = h.running_at_epoch(st.db_url, ids, 1)
    if hit is None:
        return finish(res, st, ids, None)
    time.sleep(0.3)
    victim = next(w for w in st.workers if w.name == hit[1])
    t0 = time.monotonic()
    victim.kill()
    done = h.wait_final(st.db_url, ids, 120, st.workers)
    return finish(res, st, ids, done and time.monotonic() - t0)


def sigstop_past_reassignment(ctx: Context, backend: str) -> Result:
    """SIGSTOP a worker mid-run until another worker has taken its run over, then SIGCONT it."""
    res = Result("SIGSTOP past reassignment, SIGCONT", backend,
                 used=f"SIGSTOP of the worker's process group; lost after {h.LOST_AFTER_S:g} s")
    st = _setup_or_skip(res, lambda: ctx.setup(backend))
    if st is None:
        return res
    st.start_workers(2)
    specs = _mid_specs(3, epochs=6)
    ids = st.submit(specs)
    hit = h.running_at_epoch(st.db_url, ids, 1)
    if hit is None:
        return finish(res, st, ids, None)
    run_id, name = hit
    victim = next(w for w in st.workers if w.name == name)
    t0 = time.monotonic()
    victim.signal_group(signal.SIGSTOP)
    wait_s = h.LOST_AFTER_S + 60
    taken = h.poll(st.db_url, [run_id], lambda s: s[run_id]["attempts"] >= 2 or s[run_id]["status"] in h.FINAL,
                   wait_s)
    if not taken:
        res.details.append(f"the stopped worker's run {run_id} was not reassigned within {wait_s:.0f} s "
                           f"(SIGCONT sent then)")
    time.sleep(1.0)
    victim.signal_group(signal.SIGCONT)
    done = h.wait_final(st.db_url, ids, 120, st.workers)
    time.sleep(2.0)   # let the woken worker try its stale writes before the audit
    res = finish(res, st, ids, done and time.monotonic() - t0)
    res.holds = res.holds and bool(taken)   # a stopped worker must not hold its run: it is reassigned
    return res


def redis_restart(ctx: Context, persistent: bool) -> Result:
    """One worker, twelve short runs; Redis stopped (SIGTERM) for 3 s while most are still queued."""
    what = "with persistence" if persistent else "without persistence"
    res = Result(f"Redis restart {what}", POSTGRES,
                 used="appendonly yes, appendfsync always" if persistent else "--save '' --appendonly no")
    st = _setup_or_skip(res, lambda: ctx.setup(POSTGRES, persistent_redis=persistent))
    if st is None:
        return res
    st.start_workers(1)
    specs = [h.spec(h.SMALL, seed) for seed in range(1, 13)]
    ids = st.submit(specs)
    h.poll(st.db_url, ids, lambda s: sum(r["status"] in h.FINAL for r in s.values()) >= 2, 60)
    server = ctx.redis_server(persistent)
    t0 = time.monotonic()
    server.stop()
    time.sleep(3.0)
    server.start()
    done = h.wait_final(st.db_url, ids, 150, st.workers)
    return finish(res, st, ids, done and time.monotonic() - t0)


def postgres_restart(ctx: Context, runs: int = 4) -> Result:
    """Two workers, four runs; Postgres stopped (pg_ctl -m fast) for 3 s while runs train."""
    res = Result("Postgres restart", POSTGRES, used="pg_ctl stop -m fast, down 3 s, start")
    st = _setup_or_skip(res, lambda: ctx.setup(POSTGRES))
    if st is None:
        return res
    st.start_workers(2)
    ids = st.submit(_mid_specs(runs, epochs=3, steps_per_epoch=80))
    if h.running_at_epoch(st.db_url, ids, 1) is None:
        return finish(res, st, ids, None)
    t0 = time.monotonic()
    ctx.pg.stop("fast")
    time.sleep(3.0)
    ctx.pg.start()
    done = h.wait_final(st.db_url, ids, 150, st.workers)
    return finish(res, st, ids, done and time.monotonic() - t0)


def _disk_full_message(m: str) -> bool:
    return "disk full" in m.lower() or "no space left" in m.lower()


def full_disk(ctx: Context) -> Result:
    """The embedded setup's home (SQLite file + filesystem broker) on a 48 MB tmpfs, filled while runs
    train and submissions arrive, held full 5 s, then freed. A crashed worker is restarted once after
    the space is freed, as a supervisor would (docker's restart policy)."""
    res = Result("Full disk (tmpfs)", SQLITE, used="48 MB tmpfs holding the SQLite file and the broker folder")
    disk = Tmpfs(ctx.root / f"disk-{uuid.uuid4().hex[:4]}", "48m")
    if not disk.mount():
        res.outcome, res.used = "not run", disk.error
        return res
    try:
        return _full_disk_on(ctx, res, disk)
    finally:
        disk.free()   # keep a copy of the database and broker folder for a look (--keep)
        shutil.copytree(disk.path, ctx.root / f"{disk.path.name}-copy", dirs_exist_ok=True)
        disk.umount()


def _full_disk_on(ctx: Context, res: Result, disk: Tmpfs) -> Result:
    st = ctx.setup(SQLITE, home=disk.path / f"home-{uuid.uuid4().hex[:6]}")
    st.start_workers(2)
    st.submit(_mid_specs(4, epochs=3, steps_per_epoch=80))
    h.running_at_epoch(st.db_url, h.all_run_ids(st.db_url), 1)
    t0 = time.monotonic()
    disk.fill(headroom=96 * 1024)   # room for the runs' rows, not for all their messages
    try:   # submissions while the disk fills up: refused or queued, never half-written
        st.submit([h.spec(h.SMALL, seed) for seed in range(101, 121)])
    except Exception as e:  # noqa: BLE001 - a refused submission is a fine outcome; it is reported
        res.details.append(f"submit while full: {type(e).__name__}: {str(e).splitlines()[0][:160]}")
    empty = [p.name for p in (st.home / "broker" / "queue").iterdir() if p.stat().st_size == 0]
    if empty:
        res.details.append(f"{len(empty)} 0-byte message file(s) left in the broker queue by the failed writes")
    time.sleep(5.0)
    disk.free()
    dead = [w for w in st.workers if w.died()]
    if dead:
        res.details.append(f"{len(dead)} worker(s) died while the disk was full; restarted once after freeing it")
        st.start_workers(len(dead), wait=False)
    ids = h.all_run_ids(st.db_url)
    done = h.wait_final(st.db_url, ids, 150, st.workers)
    sending = _left_sending(st.db_url)
    if done is None and sending:   # by design re-sent only after the submitter's grace: wait that long
        from rnnlab.queue import SENDING_GRACE_S

        res.details.append(f"{sending} run(s) left marked 'sending' by the submit() that failed; the lost-message "
                           f"check re-sends them after {SENDING_GRACE_S:.0f} s")
        done = h.wait_final(st.db_url, ids, SENDING_GRACE_S + 90, st.workers)
    return finish(res, st, ids, done and time.monotonic() - t0, _disk_full_message)


def _left_sending(db_url: str) -> int:
    """Queued runs whose message says the submitter is still sending them (rnnlab.queue.SENDING)."""
    from sqlalchemy import func, select

    from db.engine import session
    from db.models import Run

    try:
        from rnnlab.queue import SENDING
    except ImportError:   # a version without the mark
        return 0
    with session(db_url) as s:
        return s.execute(select(func.count()).select_from(Run)
                         .where(Run.status == "queued", Run.message == SENDING)).scalar()


def corrupt_message(ctx: Context, backend: str) -> Result:
    """Six runs queued with no worker; one message emptied, one replaced by garbage, one stray garbage
    message added; then two workers start."""
    res = Result("Empty / corrupt broker message", backend)
    st = _setup_or_skip(res, lambda: ctx.setup(backend))
    if st is None:
        return res
    specs = [h.spec(h.SMALL, seed) for seed in range(1, 7)]
    ids = st.submit(specs)
    res.used = _corrupt_fs(st) if backend == SQLITE else _corrupt_redis(st)
    t0 = time.monotonic()
    st.start_workers(2, wait=False)
    done = h.wait_final(st.db_url, ids, 120, st.workers)
    time.sleep(1.0)
    return finish(res, st, ids, done and time.monotonic() - t0)


def _corrupt_fs(st: h.Setup) -> str:
    folder = Path(st.app().conf.broker_transport_options["data_folder_in"])
    files = sorted(p for p in folder.iterdir() if p.name.endswith(f".{st.prefix}cpu.msg"))
    files[0].write_bytes(b"")
    files[1].write_bytes(b'{"body": "not base64 \x00\xff')
    (folder / f"{time.time():.0f}_{uuid.uuid4()}.{st.prefix}cpu.msg").write_bytes(b"\x00garbage")
    return "a 0-byte message file, a truncated-JSON one, a stray binary one"


def _corrupt_redis(st: h.Setup) -> str:
    import redis

    client = redis.Redis.from_url(st.broker_url)
    key = f"{st.prefix}cpu"
    client.lset(key, 0, b"")
    client.lset(key, 1, b'{"body": "not base64 \x00\xff')
    client.lpush(key, b"\x00garbage")
    return "LSET of one queued message to '', one to truncated JSON, LPUSH of a binary one"


def faketime_library() -> str | None:
    """libfaketime's preload library (Debian's faketime package), or None."""
    import glob

    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1") + glob.glob("/usr/lib/faketime/libfaketime.so.1"))
    return found[0] if found else None


def clock_skew(ctx: Context, backend: str) -> Result:
    """One worker with a clock 5 minutes ahead (libfaketime, preloaded into the worker itself so that
    signals reach it) beside one with the right time; six runs."""
    res = Result("Worker clock +5 min", backend)
    lib = faketime_library()
    if lib is None:
        res.outcome, res.used = "not run", "libfaketime is not installed (apt-get install faketime)"
        return res
    res.used = f"libfaketime FAKETIME={SKEW} on one of two workers"
    st = _setup_or_skip(res, lambda: ctx.setup(backend))
    if st is None:
        return res
    st.start_workers(1)
    st.start_workers(1, LD_PRELOAD=lib, FAKETIME=SKEW)
    specs = _mid_specs(6, epochs=3, steps_per_epoch=80)
    t0 = time.monotonic()
    ids = st.submit(specs)
    done = h.wait_final(st.db_url, ids, 180, st.workers)
    return finish(res, st, ids, done and time.monotonic() - t0)


def load(ctx: Context, backend: str) -> Result:
    """ctx.load_runs one-epoch runs submitted in one call to ctx.load_workers workers already waiting."""
    n, k = ctx.load_runs, ctx.load_workers
    res = Result(f"{n:,}-run load", backend)
    st = _setup_or_skip(res, lambda: ctx.setup(backend))
    if st is None:
        return res
    st.start_workers(k)
    specs = [h.spec(h.TINY, i % 4) for i in range(n)]
    t0 = time.monotonic()
    ids = st.submit(specs)
    submit_s = time.monotonic() - t0
    done = h.wait_final(st.db_url, ids, 120 + 1.5 * n, st.workers)
    total = done and time.monotonic() - t0
    res.used = f"{k} workers × concurrency 1; submit() took {submit_s:.1f} s"
    return finish(res, st, ids, total)


SCENARIOS: dict[str, Callable[[Context], list[Result]]] = {
    "sigkill": lambda c: [sigkill_mid_epoch(c, SQLITE), sigkill_mid_epoch(c, POSTGRES)],
    "sigstop": lambda c: [sigstop_past_reassignment(c, SQLITE), sigstop_past_reassignment(c, POSTGRES)],
    "redis": lambda c: [redis_restart(c, True), redis_restart(c, False)],
    "postgres": lambda c: [postgres_restart(c)],
    "disk": lambda c: [full_disk(c)],
    "corrupt": lambda c: [corrupt_message(c, SQLITE), corrupt_message(c, POSTGRES)],
    "clock": lambda c: [clock_skew(c, SQLITE), clock_skew(c, POSTGRES)],
    "load": lambda c: [load(c, SQLITE), load(c, POSTGRES)],
}
