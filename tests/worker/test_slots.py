"""Many runs per device (worker.slots, ``rnnlab worker --slots N``): the plan's sizes and refusals, and a
real worker started by the CLI with two slots: two runs train at once (their times in the database
overlap), each slot reads back the torch threads it was given, and a slot killed mid-run loses only its
own run, which is requeued and resumed while the other slot's run carries on untouched."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import uuid

import pytest

from client.submit import submit
from db import store
from rnnlab.spec import parse_spec
from tests.conftest import REPO, WorkerProcess, wait_for_worker, wait_until, worker_env
from worker.slots import MAX_SLOTS, SlotError, _cgroup_cpus, available_cores, plan

FINAL = {"succeeded", "failed", "diverged", "cancelled"}
CLI = [sys.executable, "-c", "from cli.main import main; main()", "worker"]
SLOT_LINE = re.compile(r"run (\d+): slot pid (\d+), torch threads (\d+)")


def spec(seed: int, steps: int = 60, epochs: int = 2):
    return parse_spec({"hidden_size": 16, "task": {"name": "adding", "seq_len": 30}, "batch_size": 8,
                       "probe": {"batch_size": 4}, "device": "cpu", "epochs": epochs, "steps_per_epoch": steps,
                       "seed": seed})


# ------------------------------------------------------------------------------------------
# The plan
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cores", [1, 2, 3, 8, 16])
def test_threads_fill_the_cores_without_exceeding_them(cores):
    for slots in range(1, cores + 1):
        p = plan(slots, cores=cores)
        # the most threads per slot such that slots x threads <= cores
        assert p.threads >= 1 and slots * p.threads <= cores < slots * (p.threads + 1), (cores, slots, p)
        assert p.mem_fraction is None and "CUDA_VISIBLE_DEVICES" not in p.env()
        assert p.env()["RNNLAB_TORCH_THREADS"] == p.env()["OMP_NUM_THREADS"] == str(p.threads)
        assert p.env()["OMP_WAIT_POLICY"] == os.environ.get("OMP_WAIT_POLICY", "PASSIVE")   # idle threads sleep
    assert (plan(1, cores=16).threads, plan(3, cores=16).threads, plan(8, cores=16).threads) == (16, 5, 2)
    assert plan(2, threads=1, cores=cores if cores >= 2 else 2).threads == 1


def test_a_gpu_plan_pins_the_device_and_splits_its_memory():
    p = plan(4, gpu=1, cores=16)
    assert (p.slots, p.threads, p.gpu) == (4, 4, 1) and p.mem_fraction == pytest.approx(0.9 / 4)
    assert p.env()["CUDA_VISIBLE_DEVICES"] == "1" and float(p.env()["RNNLAB_GPU_MEM_FRACTION"]) == pytest.approx(0.225)
    assert plan(8, cuda=True, mem_fraction=0.125, cores=16).mem_fraction == 0.125   # exactly all of it: allowed
    assert plan(1, cuda=True, cores=2).mem_fraction == pytest.approx(0.9)
    # a GPU slot mostly launches kernels: more slots than cores is allowed there, one thread each
    p = plan(8, gpu=0, cores=4)
    assert (p.slots, p.threads, p.mem_fraction) == (8, 1, pytest.approx(0.9 / 8))
    assert plan(8, cuda=True, threads=1, cores=4).threads == 1
    with pytest.raises(SlotError, match="^--threads:"):
        plan(8, cuda=True, threads=2, cores=4)
    with pytest.raises(SlotError, match="^--slots:"):
        plan(8, cores=4)                    # the same on a CPU worker is refused


BAD = [  # (kwargs of plan, the option named, CLI arguments expressing the same)
    ({"slots": 0}, "--slots", ["--slots", "0"]),
    ({"slots": MAX_SLOTS + 1}, "--slots", ["--slots", str(MAX_SLOTS + 1)]),
    ({"slots": 3}, "--slots", ["--slots", "3"]),                                  # more slots than the 2 cores
    ({"slots": 1, "threads": 0}, "--threads", ["--threads", "0"]),
    ({"slots": 1, "threads": 3}, "--threads", ["--threads", "3"]),
    ({"slots": 2, "threads": 2}, "--threads", ["--slots", "2", "--threads", "2"]),   # 4 threads > 2 cores
    ({"slots": 1, "gpu": -1}, "--gpu", ["--gpu", "-1"]),
    ({"slots": 1, "gpu": 64}, "--gpu", ["--gpu", "64"]),
    ({"slots": 1, "mem_fraction": 0.5}, "--mem-fraction", ["--mem-fraction", "0.5"]),   # CPU worker
    ({"slots": 1, "gpu": 0, "mem_fraction": 0.0}, "--mem-fraction", ["--gpu", "0", "--mem-fraction", "0"]),
    ({"slots": 1, "gpu": 0, "mem_fraction": 1.5}, "--mem-fraction", ["--gpu", "0", "--mem-fraction", "1.5"]),
    ({"slots": 1, "gpu": 0, "mem_fraction": float("nan")}, "--mem-fraction", ["--gpu", "0", "--mem-fraction", "nan"]),
    ({"slots": 2, "gpu": 0, "mem_fraction": 0.6}, "--mem-fraction", ["--gpu", "0", "--slots", "2",
                                                                     "--mem-fraction", "0.6"]),
]


@pytest.mark.parametrize("kwargs, option, argv", BAD, ids=[" ".join(b[2]) for b in BAD])
def test_bad_values_are_refused_naming_the_option(kwargs, option, argv, tmp_path):
    with pytest.raises(SlotError, match=f"^{re.escape(option)}:"):
        plan(**kwargs, cores=2)
    # the same value through the real CLI, on a machine with two cores (taskset pins this one to 2)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RNNLAB_")}
    env.update({"RNNLAB_HOME": str(tmp_path), "RNNLAB_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"})
    cmd = ["taskset", "-c", "0,1", *CLI, *argv] if len(os.sched_getaffinity(0)) >= 2 else [*CLI, *argv]
    if available_cores() < 2 and option == "--slots" and kwargs["slots"] == 3:
        pytest.fail("this check needs a machine with at least 2 cores")
    r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    text = " ".join((r.stdout + r.stderr).split())
    assert r.returncode == 2 and f"error: {option}:" in text, text
    assert not (tmp_path / "x.db").exists()   # refused before anything was started or created


def test_an_environment_thread_count_is_checked_like_the_option(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RNNLAB_")}
    env.update({"RNNLAB_HOME": str(tmp_path), "RNNLAB_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
                "RNNLAB_TORCH_THREADS": "2"})
    r = subprocess.run(["taskset", "-c", "0,1", *CLI, "--slots", "2"], cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=120)
    text = " ".join((r.stdout + r.stderr).split())
    assert r.returncode == 2 and "error: --threads: 2 slot(s) x 2 thread(s) = 4 torch threads" in text, text


def test_cgroup_quota_bounds_the_cores(tmp_path):
    assert _cgroup_cpus(tmp_path) is None                      # no cgroup file: no quota
    for text, want in [("max 100000\n", None), ("150000 100000\n", 2), ("50000 100000\n", 1),
                       ("400000 100000\n", 4), ("garbage\n", None)]:
        (tmp_path / "cpu.max").write_text(text)
        assert _cgroup_cpus(tmp_path) == want, text


# ------------------------------------------------------------------------------------------
# A real worker with two slots
# ------------------------------------------------------------------------------------------

def start_cli_worker(tmp_path, db_url, broker, *args: str) -> WorkerProcess:
    """``rnnlab worker --queues cpu <args>`` as a subprocess with the test's database and broker, on 2 cores."""
    name = f"slots-{uuid.uuid4().hex[:6]}@test"
    env = worker_env(db_url, broker)
    env.pop("RNNLAB_TORCH_THREADS")   # the slots size the threads
    env.pop("OMP_NUM_THREADS")
    log_path = tmp_path / f"{name}.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(["taskset", "-c", "0,1", *CLI, "--queues", "cpu", "--name", name, *args], cwd=REPO,
                                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    w = WorkerProcess(name, proc, log_path)
    wait_for_worker(db_url, name, w)
    return w


def slot_lines(w: WorkerProcess) -> list[tuple[int, int, int]]:
    """(run id, pid, torch threads) for each run a slot started, from the worker's log."""
    return [tuple(map(int, m.groups())) for m in SLOT_LINE.finditer(w.log())]


@pytest.fixture
def two_cores():
    if len(os.sched_getaffinity(0)) < 2:
        pytest.fail("the slot tests pin the worker to 2 cores (taskset -c 0,1); this machine has fewer")


@pytest.mark.slow   # real worker processes: not in the fast tier
@pytest.mark.timeout(240)
def test_two_slots_train_two_runs_at_once_with_one_thread_each(two_cores, sqlite_url, fs_broker, tmp_path,
                                                               wait_status):
    ids = submit([spec(1), spec(2)], url=sqlite_url, app=fs_broker.app())
    w = start_cli_worker(tmp_path, sqlite_url, fs_broker, "--slots", "2")
    try:
        runs = [wait_status(sqlite_url, i, FINAL, 200, [w]) for i in ids]
    finally:
        w.stop()
    assert [r["status"] for r in runs] == ["succeeded"] * 2, [r["message"] for r in runs]
    assert all(r["worker"] == w.name and r["attempts"] == 1 for r in runs)
    # concurrency, from the database's clock: each run started before the other finished
    starts = [r["attempt_history"][0]["started_at"] for r in runs]
    ends = [r["attempt_history"][0]["ended_at"] for r in runs]
    assert max(starts) < min(ends), (starts, ends)
    # each run trained in its own slot process, with cores // slots = 2 // 2 = 1 torch thread (read back in the child)
    lines = slot_lines(w)
    assert sorted(run for run, _, _ in lines) == sorted(ids), w.log()[-3000:]
    assert len({pid for _, pid, _ in lines}) == 2 and w.proc.pid not in {pid for _, pid, _ in lines}
    assert [threads for _, _, threads in lines] == [1, 1]
    assert "2 slot(s) x 1 torch thread(s) on 2 core(s)" in w.log()
    # the workers row says how many runs it trains at a time (the New page's time estimate counts slots)
    from db.liveness import list_workers

    (row,) = [r for r in list_workers(url=sqlite_url) if r["name"] == w.name]
    assert row["slots"] == 2


@pytest.mark.slow   # real worker processes: not in the fast tier
@pytest.mark.timeout(240)
def test_one_slot_gets_all_the_cores(two_cores, sqlite_url, fs_broker, tmp_path, wait_status):
    (run_id,) = submit([spec(3, steps=5, epochs=1)], url=sqlite_url, app=fs_broker.app())
    w = start_cli_worker(tmp_path, sqlite_url, fs_broker, "--slots", "1")
    try:
        run = wait_status(sqlite_url, run_id, FINAL, 200, [w])
    finally:
        w.stop()
    assert run["status"] == "succeeded", run["message"]
    assert [(r, t) for r, _, t in slot_lines(w)] == [(run_id, 2)]
    from db.liveness import list_workers

    assert [r["slots"] for r in list_workers(url=sqlite_url) if r["name"] == w.name] == [1]


@pytest.mark.timeout(300)
def test_a_killed_slot_loses_only_its_own_run(two_cores, sqlite_url, broker_factory, tmp_path, wait_status):
    broker = broker_factory("redis")
    victim_id, other_id = submit([spec(7, steps=150, epochs=4), spec(8, steps=150, epochs=4)], url=sqlite_url,
                                 app=broker.app())
    w = start_cli_worker(tmp_path, sqlite_url, broker, "--slots", "2")
    try:
        def both_past_epoch_1():
            runs = [store.get_run(i, url=sqlite_url) for i in (victim_id, other_id)]
            ckpts = [store.load_checkpoint(i, url=sqlite_url) for i in (victim_id, other_id)]
            return all(r["status"] == "running" for r in runs) and all(c and c[0] >= 1 for c in ckpts)

        wait_until(both_past_epoch_1, 150, "both runs did not reach epoch 1 together", w)
        pids = {run: pid for run, pid, _ in slot_lines(w)}
        victim_pid, other_pid = pids[victim_id], pids[other_id]
        assert victim_pid != other_pid and w.proc.pid not in (victim_pid, other_pid)
        os.kill(victim_pid, signal.SIGKILL)        # one slot dies, as under the kernel's OOM killer
        victim = wait_status(sqlite_url, victim_id, FINAL, 200, [w])
        other = wait_status(sqlite_url, other_id, FINAL, 200, [w])
        assert w.proc.poll() is None               # the worker itself lives on
    finally:
        w.stop()
    assert (victim["status"], other["status"]) == ("succeeded", "succeeded"), (victim["message"], w.log()[-3000:])
    hist = victim["attempt_history"]
    assert [(a["attempt"], a["worker"], a["outcome"]) for a in hist] == [(1, w.name, "lost"), (2, w.name, "succeeded")]
    assert hist[1]["resumed_from_epoch"] >= 1
    assert [(a["attempt"], a["outcome"]) for a in other["attempt_history"]] == [(1, "succeeded")]
    assert [r["epoch"] for r in store.epoch_scalars(victim_id, url=sqlite_url)] == [0, 1, 2, 3, 4]
    lines = slot_lines(w)
    assert [pid for run, pid, _ in lines if run == other_id] == [other_pid]   # the other run was never restarted
    assert victim_pid not in [pid for run, pid, _ in lines if run != victim_id] and \
        [pid for run, pid, _ in lines if run == victim_id][-1] != victim_pid   # resumed in a fresh slot process


@pytest.mark.slow   # a real worker process: not in the fast tier
@pytest.mark.timeout(120)
@pytest.mark.parametrize("pool, args, slots", [("solo", [], 1), ("prefork", ["-c", "2"], 2)])
def test_a_worker_reports_the_runs_it_trains_at_a_time(sqlite_url, fs_broker, tmp_path, pool, args, slots):
    """The workers row's slots is the pool's own size: a solo pool trains one run at a time, though its
    concurrency defaults to the core count (it reported 2 here, 16 on a 16-core machine)."""
    from db.liveness import list_workers
    from tests.conftest import WorkerProcess, wait_for_worker, worker_env

    name = f"{pool}-{os.getpid()}@test"
    log_path = tmp_path / f"{pool}.log"
    cmd = [sys.executable, "-m", "celery", "-A", "worker.app", "worker", "-n", name, "-Q", fs_broker.prefix + "cpu",
           "-P", pool, *args, "-l", "INFO", "--without-mingle", "--without-gossip"]
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, env=worker_env(sqlite_url, fs_broker), stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    w = WorkerProcess(name, proc, log_path)
    try:
        wait_for_worker(sqlite_url, name, w)
        assert [r["slots"] for r in list_workers(url=sqlite_url) if r["name"] == name] == [slots], w.log()[-2000:]
    finally:
        w.stop()
