"""The fault suite's plumbing: one setup (database + broker + real Celery workers) per scenario, tiny
runs submitted through client.submit, and the audit that counts lost and duplicated runs.

Definitions (docs/reliability.md repeats them):
- lost: a run not in a final status (succeeded, failed, diverged, cancelled) when the scenario's
  deadline passed: stuck queued or running.
- duplicated: a run with more than one attempt that finished it (succeeded or diverged); or a
  succeeded run whose epoch rows are not exactly 0..N, whose ``epochs_done`` is not N, or whose
  recorded numbers differ from the same spec trained once in this process (same spec and seed give
  identical records on CPU), i.e. epochs written twice by different attempts with different content.
- recovery time: from the fault's injection to the moment every run of the scenario is final.
"""

from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from rnnlab.records import FINAL_STATUSES as FINAL

REPO = Path(__file__).resolve().parents[2]
HEARTBEAT_S, LOST_AFTER_S = 0.5, 5.0
BASE = {"hidden_size": 8, "task": {"name": "adding", "seq_len": 10}, "batch_size": 8, "probe": {"batch_size": 4},
        "device": "cpu"}
TINY = {**BASE, "epochs": 1, "steps_per_epoch": 2}          # ~0.05 s of training: the load test
SMALL = {**BASE, "epochs": 2, "steps_per_epoch": 10}        # ~0.3 s
MID = {**BASE, "epochs": 4, "steps_per_epoch": 100}         # ~0.7 s per epoch: room to strike mid-epoch
SCALARS = ("steps", "train_loss", "val_loss", "val_metric", "grad_norm_mean", "grad_norm_max")


def engine_hash() -> str:
    """A hash of the engine's source (models/, rnnlab/spec.py, rnnlab/records.py): the working tree can
    change while the suite runs, and records are only comparable between runs of the same engine."""
    import hashlib

    digest = hashlib.sha256()
    files = sorted((REPO / "models").rglob("*.py")) + [REPO / "rnnlab" / "spec.py", REPO / "rnnlab" / "records.py"]
    for f in files:
        digest.update(f.read_bytes())
    return digest.hexdigest()[:12]


def spec(kind: dict, seed: int, **kw):
    from rnnlab.spec import parse_spec

    return parse_spec({**kind, "seed": seed, **kw})


# ------------------------------------------------------------------------------------------
# Workers
# ------------------------------------------------------------------------------------------

@dataclass
class Worker:
    """A real ``celery -A worker.app worker`` process in its own process group."""

    name: str
    proc: subprocess.Popen
    log_path: Path
    expected_exit: bool = False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def signal_group(self, sig: int) -> None:
        if self.alive():
            os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL the worker and its pool children, as a crash or an OOM kill would."""
        self.expected_exit = True
        self.signal_group(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, timeout: float = 30) -> None:
        """Warm shutdown (SIGTERM to the main process); SIGKILL if it does not exit in time."""
        self.expected_exit = True
        if not self.alive():
            return
        self.signal_group(signal.SIGCONT)
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def died(self) -> bool:
        """Exited without being told to (a crash)."""
        return not self.alive() and not self.expected_exit

    def crash_line(self) -> str | None:
        """The worker's last 'Unrecoverable error' or last traceback line, if any."""
        text = self.log()
        found = re.findall(r"Unrecoverable error: [^\n]*", text)
        if found:
            return found[-1][:200]
        lines = [ln for ln in text.splitlines() if re.match(r"^\w+(\.\w+)*(Error|Exception)\b", ln)]
        return lines[-1][:200] if lines else None


# ------------------------------------------------------------------------------------------
# A setup: one database, one broker, its workers
# ------------------------------------------------------------------------------------------

@dataclass
class Setup:
    """One scenario's database and broker (queues private to it) and the workers it started."""

    backend: str            # "sqlite+filesystem" or "postgres+redis"
    db_url: str
    home: Path
    broker_url: str | None  # None: the filesystem broker under home
    log_dir: Path | None = None   # worker logs (default: beside home); never on the disk under fault
    prefix: str = field(default_factory=lambda: f"rnnlab-faults-{uuid.uuid4().hex[:6]}-")
    workers: list[Worker] = field(default_factory=list)
    engines: set[str] = field(default_factory=set)   # engine_hash() at each worker start
    _app: object = None

    def app(self):
        if self._app is None:
            from rnnlab.queue import make_app

            self._app = make_app(self.broker_url or "filesystem://", home=self.home, prefix=self.prefix)
        return self._app

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RNNLAB_")}
        env.update({"RNNLAB_HOME": str(self.home), "RNNLAB_QUEUE_PREFIX": self.prefix,
                    "RNNLAB_DATABASE_URL": self.db_url, "RNNLAB_HEARTBEAT_SECONDS": str(HEARTBEAT_S),
                    "RNNLAB_LOST_AFTER_SECONDS": str(LOST_AFTER_S), "RNNLAB_TORCH_THREADS": "1",
                    "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"})
        if self.broker_url:
            env["RNNLAB_BROKER_URL"] = self.broker_url
        env.update(extra)
        return env

    def start_workers(self, n: int = 1, *, wrapper: tuple[str, ...] = (), wait: bool = True,
                      **extra_env: str) -> list[Worker]:
        """Start n workers (concurrency 1 each); ``wrapper``: a command prefix such as faketime's."""
        self.engines.add(engine_hash())
        new = [self._spawn(wrapper, extra_env) for _ in range(n)]
        if wait:
            for w in new:
                wait_registered(self.db_url, w)
        return new

    def _spawn(self, wrapper: tuple[str, ...], extra_env: dict) -> Worker:
        i = len(self.workers) + 1
        name = f"f{i}-{uuid.uuid4().hex[:4]}@faults"
        log_path = (self.log_dir or self.home.parent) / f"{self.home.name}-worker{i}.log"
        cmd = [*wrapper, sys.executable, "-m", "celery", "-A", "worker.app", "worker", "-n", name,
               "-Q", f"{self.prefix}cpu", "-c", "1", "--pool", "prefork", "-l", "INFO", "--without-mingle",
               "--without-gossip"]
        with open(log_path, "w") as log:
            proc = subprocess.Popen(cmd, cwd=REPO, env=self.env(**extra_env), stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        w = Worker(name, proc, log_path)
        self.workers.append(w)
        return w

    def submit(self, specs) -> list[int]:
        from client.submit import submit

        return submit(list(specs), url=self.db_url, app=self.app())

    def stop_all(self) -> None:
        for w in self.workers:
            if w.alive():
                w.expected_exit = True
                w.signal_group(signal.SIGCONT)
                w.proc.send_signal(signal.SIGTERM)
        for w in self.workers:
            w.stop()

    def logs(self) -> str:
        return "\n".join(w.log() for w in self.workers)


def wait_registered(db_url: str, w: Worker, timeout: float = 120) -> None:
    from sqlalchemy import select

    from db.engine import session
    from db.models import Worker as WorkerRow

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not w.alive():
            raise RuntimeError(f"worker {w.name} exited with {w.proc.returncode}:\n{w.log()[-3000:]}")
        try:
            with session(db_url) as s:
                if s.execute(select(WorkerRow.name).where(WorkerRow.name == w.name)).first():
                    return
        except Exception:  # noqa: BLE001 - the database may be the thing under fault
            pass
        time.sleep(0.2)
    raise TimeoutError(f"worker {w.name} did not register within {timeout} s:\n{w.log()[-3000:]}")


# ------------------------------------------------------------------------------------------
# Watching runs
# ------------------------------------------------------------------------------------------

def statuses(db_url: str, ids: list[int]) -> dict[int, dict]:
    """id -> {status, epochs_done, attempts, worker} of the given runs (one query)."""
    from sqlalchemy import select

    from db.engine import session
    from db.models import Run

    with session(db_url) as s:
        rows = s.execute(select(Run.id, Run.status, Run.epochs_done, Run.attempts, Run.worker)
                         .where(Run.id.in_(ids))).all()
    return {r.id: {"status": r.status, "epochs_done": r.epochs_done, "attempts": r.attempts, "worker": r.worker}
            for r in rows}


def poll(db_url: str, ids: list[int], until, timeout: float, every: float = 0.2, give_up=None):
    """Poll the runs until ``until(statuses)`` is truthy (returned) or the timeout (None); ``give_up()``
    True also ends it (None). Database errors while polling (the database may be the thing under
    fault) count as 'not yet'."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got = until(statuses(db_url, ids))
        except Exception:  # noqa: BLE001
            got = None
        if got:
            return got
        if give_up is not None and give_up():
            return None
        time.sleep(every)
    return None


def wait_final(db_url: str, ids: list[int], timeout: float, workers: list[Worker] | None = None) -> float | None:
    """Seconds until every run is final, or None if some were not by the timeout, or every worker of
    ``workers`` has exited (nobody is left to finish them)."""
    t0 = time.monotonic()
    give_up = None if workers is None else (lambda: not any(w.alive() for w in workers))
    done = poll(db_url, ids, lambda st: len(st) == len(ids) and all(r["status"] in FINAL for r in st.values()),
                timeout, every=0.25, give_up=give_up)
    return time.monotonic() - t0 if done else None


def running_at_epoch(db_url: str, ids: list[int], epoch: int, timeout: float = 120) -> tuple[int, str] | None:
    """(run id, worker name) of a run that is running with at least ``epoch`` epochs recorded."""
    def hit(st):
        for run_id, r in st.items():
            if r["status"] == "running" and r["epochs_done"] >= epoch and r["worker"]:
                return run_id, r["worker"]
        return None
    return poll(db_url, ids, hit, timeout, every=0.05)


# ------------------------------------------------------------------------------------------
# The audit
# ------------------------------------------------------------------------------------------

_REFS: dict[str, list[dict]] = {}
_REF_ENGINE: list[str] = []   # engine_hash() when this process imported the engine


def reference(sp) -> list[dict]:
    """The spec's epoch scalars from one uninterrupted training in this process (cached by hash)."""
    key = sp.spec_hash()
    if key not in _REFS:
        import torch

        if not _REF_ENGINE:
            _REF_ENGINE.append(engine_hash())
        import models

        torch.set_num_threads(1)
        recs: list = []
        models.train(sp, on_epoch=recs.append)
        _REFS[key] = [{k: getattr(r, k) for k in ("epoch", *SCALARS)} for r in recs]
    return _REFS[key]


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None or (a is None and math.isnan(b)) or (b is None and math.isnan(a))
    return a == b or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) or (math.isnan(a) and math.isnan(b))


@dataclass
class Audit:
    runs: int
    lost: list[int]
    duplicated: dict[int, str]          # run id -> why
    status_counts: Counter
    messages: Counter                   # failure messages of failed runs (shortened)
    lost_attempts: int                  # attempts closed as 'lost' (a worker went silent)
    requeued_runs: int                  # runs with more than one attempt
    content_checked: bool = True        # False: the engine's source changed during the scenario


def all_run_ids(db_url: str) -> list[int]:
    """Every run in the setup's database (each scenario has its own database)."""
    from sqlalchemy import select

    from db.engine import session
    from db.models import Run

    with session(db_url) as s:
        return list(s.execute(select(Run.id).order_by(Run.id)).scalars())


def audit(db_url: str, ids: list[int], engines: set[str] | None = None) -> Audit:
    """Count lost and duplicated runs (see the module docstring) among ``ids``. ``engines``: the
    engine_hash() values the workers started with; if they differ from this process's engine, the
    recorded numbers are not compared (only the structural checks count)."""
    from sqlalchemy import select

    from db.engine import session
    from db.models import Epoch, Run, RunAttempt
    from rnnlab.spec import parse_spec

    with session(db_url) as s:
        runs = {r.id: r for r in s.execute(select(Run.id, Run.status, Run.message, Run.epochs_done, Run.epochs_total,
                                                  Run.attempts, Run.spec).where(Run.id.in_(ids))).all()}
        attempts = s.execute(select(RunAttempt.run_id, RunAttempt.outcome).where(RunAttempt.run_id.in_(ids))).all()
        epochs = s.execute(select(Epoch.run_id, Epoch.epoch, *[getattr(Epoch, k) for k in SCALARS])
                           .where(Epoch.run_id.in_(ids))).all()
    by_run: dict[int, list] = {}
    for e in epochs:
        by_run.setdefault(e.run_id, []).append(e)
    finishers = Counter(a.run_id for a in attempts if a.outcome in ("succeeded", "diverged"))
    out = Audit(len(ids), [], {}, Counter(r.status for r in runs.values()), Counter(),
                sum(1 for a in attempts if a.outcome == "lost"), sum(1 for r in runs.values() if r.attempts > 1))
    if engines and runs:
        reference(parse_spec(next(iter(runs.values())).spec))   # imports the engine (and notes its hash)
        out.content_checked = engines == set(_REF_ENGINE)
    for run_id in ids:
        r = runs.get(run_id)
        if r is None or r.status not in FINAL:
            out.lost.append(run_id)
            continue
        if r.status == "failed":
            out.messages[(r.message or "")[:160]] += 1
        sp = parse_spec(r.spec) if out.content_checked else None
        why = _duplicate_reason(r, finishers[run_id], by_run.get(run_id, []), sp)
        if why:
            out.duplicated[run_id] = why
    return out


def _duplicate_reason(r, finishers: int, rows: list, sp) -> str | None:
    if finishers > 1:
        return f"{finishers} attempts finished it"
    if r.status != "succeeded":
        return None
    got = sorted(rows, key=lambda e: e.epoch)
    if [e.epoch for e in got] != list(range(r.epochs_total + 1)):
        return f"epoch rows {[e.epoch for e in got]} (expected 0..{r.epochs_total})"
    if r.epochs_done != r.epochs_total:
        return f"epochs_done {r.epochs_done} after success (expected {r.epochs_total}): written backwards"
    if sp is not None:
        for want, e in zip(reference(sp), got):
            bad = [k for k in SCALARS if not _same(getattr(e, k), want[k])]
            if bad:
                return f"epoch {e.epoch} differs from an uninterrupted run in {', '.join(bad)}"
    return None
