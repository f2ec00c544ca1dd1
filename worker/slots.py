"""Many runs per device: ``rnnlab worker --slots N`` trains N runs at once, each in its own process.

A slot is one child of Celery's prefork pool (``--slots N`` is prefork concurrency N, with the
prefetch multiplier 1 and late acks of rnnlab.queue unchanged), so everything that holds for one
run per worker holds per slot: each child heartbeats its own run (worker.heartbeat.RunMonitor), the
worker's main process beats and reaps for all of them, and a child that dies (SIGKILL, the kernel's
OOM killer) loses only its own run, which the reaper requeues once its heartbeat is stale.

The plan (``plan``) is made in the CLI before Celery starts and handed to the children through the
environment (``SlotPlan.env``):

- CPU threads: each child gets ``--threads`` torch threads, by default ``max(1, cores // slots)``;
  ``slots x threads`` may not exceed the cores this process may use (its CPU affinity and cgroup
  quota, ``available_cores``): such a plan is refused, not warned about, because oversubscribed
  torch threads make every run slower than running fewer of them. OpenMP's idle threads sleep
  instead of spinning (``OMP_WAIT_POLICY=PASSIVE`` unless the environment sets it): with spinning
  threads, a small run with 2 threads took 11-70 s instead of 1.2 s on a loaded 2-core machine
  (docs/benchmarks.md, "Sweep throughput").
- GPU memory (``--gpu`` or a ``gpu`` queue): each child caps PyTorch's CUDA allocator at
  ``--mem-fraction`` of the device, by default ``0.9 / slots`` (the rest is left for the N CUDA
  contexts, which the cap does not count), with ``torch.cuda.set_per_process_memory_fraction`` when
  its first run starts (``before_run``; never in the main process, which must not touch CUDA). A run
  that needs more fails with CUDA's out-of-memory error instead of starving its neighbours.
- CPU memory: no per-process cap. RLIMIT_AS counts virtual address space, and torch, glibc's
  per-thread arenas and the CUDA libraries reserve gigabytes of it that are never touched, so any
  limit low enough to matter breaks imports and thread creation first. Cap the whole worker with
  its container's memory limit instead: the kernel then kills the largest child, and its run is
  requeued like any lost run (and failed after ``max_attempts``).

``init_child`` runs in each pool child (worker.app's worker_process_init hook); ``before_run`` at
the start of each task (worker.tasks), which also logs the slot's facts as read back from torch.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

MAX_SLOTS = 64
MAX_GPU_INDEX = 63
DEFAULT_GPU_SHARE = 0.9   # of the device's memory, split between the slots by default

ENV_SLOTS = "RNNLAB_SLOTS"
ENV_THREADS = "RNNLAB_TORCH_THREADS"
ENV_MEM_FRACTION = "RNNLAB_GPU_MEM_FRACTION"

_child: dict = {}


class SlotError(ValueError):
    """A bad --slots/--threads/--gpu/--mem-fraction value; the message names the option."""


def _cgroup_cpus(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """The cgroup v2 CPU quota as whole cores (rounded up), or None when there is none."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    try:
        return max(1, math.ceil(int(quota) / int(period)))
    except (ValueError, ZeroDivisionError):
        return None


def available_cores() -> int:
    """The cores this process may run on: its CPU affinity, bounded by a cgroup quota (a container's --cpus)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    quota = _cgroup_cpus()
    return max(1, min(cores, quota) if quota else cores)


@dataclass(frozen=True)
class SlotPlan:
    """How one worker shares its device: ``slots`` child processes of ``threads`` torch threads each."""

    slots: int
    threads: int
    cores: int
    gpu: int | None = None              # the physical GPU (CUDA_VISIBLE_DEVICES), None: as the environment has it
    mem_fraction: float | None = None   # per-process CUDA allocator cap; None on a CPU worker

    def env(self) -> dict[str, str]:
        """The environment the worker's children read (set before torch is imported anywhere)."""
        env = {ENV_SLOTS: str(self.slots), ENV_THREADS: str(self.threads),
               "OMP_NUM_THREADS": str(self.threads), "MKL_NUM_THREADS": str(self.threads),
               "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY") or "PASSIVE"}
        if self.gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = str(self.gpu)
        if self.mem_fraction is not None:
            env[ENV_MEM_FRACTION] = f"{self.mem_fraction:.6g}"
        return env

    def describe(self) -> str:
        text = f"{self.slots} slot(s) x {self.threads} torch thread(s) on {self.cores} core(s)"
        if self.mem_fraction is not None:
            text += f", CUDA memory cap {self.mem_fraction:.3g} of the GPU per slot"
        return text


def _whole(name: str, value, lo: int, hi: int, hint: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise SlotError(f"{name}: got {value!r}; allowed: a whole number from {lo} to {hi}{hint}")
    return value


def plan(slots: int = 1, *, threads: int | None = None, gpu: int | None = None, cuda: bool = False,
         mem_fraction: float | None = None, cores: int | None = None) -> SlotPlan:
    """Check the options and size the slots; SlotError (naming the option) if they cannot work.

    ``cuda``: the worker trains on a GPU (a ``gpu`` queue or ``--gpu``); only then is a memory cap set.
    ``cores``: the cores to share (default: ``available_cores()``)."""
    cores = available_cores() if cores is None else cores
    slots = _whole("--slots", slots, 1, MAX_SLOTS)
    cuda = cuda or gpu is not None
    # On the CPU every slot computes on its own core(s). On a GPU the device does the work and a slot's
    # CPU thread mostly launches kernels, so more slots than cores is allowed there (one thread each).
    if slots > cores and not cuda:
        raise SlotError(f"--slots: got {slots}; this machine lets the worker use {cores} core(s), and each slot "
                        f"of a CPU worker needs at least one torch thread; allowed: 1 to {cores} (GPU workers "
                        f"may have more slots than cores)")
    if threads is None:
        threads = max(1, cores // slots)
    else:
        threads = _whole("--threads", threads, 1, cores, f" (the {cores} core(s) here)")
        if slots * threads > cores and not (cuda and threads == 1):
            raise SlotError(f"--threads: {slots} slot(s) x {threads} thread(s) = {slots * threads} torch threads, "
                            f"more than the {cores} core(s) here; allowed with --slots {slots}: "
                            f"at most {cores // slots}")
    if gpu is not None:
        gpu = _whole("--gpu", gpu, 0, MAX_GPU_INDEX)
        cuda = True
    if mem_fraction is not None:
        if not cuda:
            raise SlotError("--mem-fraction: only for GPU workers (--gpu N or --queues gpu); a CPU worker's memory "
                            "is capped by its container's memory limit")
        if isinstance(mem_fraction, bool) or not isinstance(mem_fraction, (int, float)) \
                or not math.isfinite(mem_fraction) or not 0 < mem_fraction <= 1:
            raise SlotError(f"--mem-fraction: got {mem_fraction!r}; allowed: a fraction of the GPU's memory "
                            f"above 0 and at most 1")
        if mem_fraction * slots > 1 + 1e-9:
            raise SlotError(f"--mem-fraction: {slots} slot(s) x {mem_fraction:g} = {slots * mem_fraction:.3g} of the "
                            f"GPU's memory, more than all of it; allowed with --slots {slots}: at most "
                            f"{1 / slots:.4g}")
    elif cuda:
        mem_fraction = DEFAULT_GPU_SHARE / slots
    return SlotPlan(slots=slots, threads=threads, cores=cores, gpu=gpu,
                    mem_fraction=float(mem_fraction) if mem_fraction is not None else None)


def apply_env(p: SlotPlan) -> None:
    """Export the plan to this process's environment, before Celery forks its children."""
    os.environ.update(p.env())


# ---------------------------------------------------------------------------------------------
# In the pool children
# ---------------------------------------------------------------------------------------------

def init_child() -> None:
    """In a freshly forked pool child: size torch's thread pool (RNNLAB_TORCH_THREADS)."""
    threads = os.environ.get(ENV_THREADS)
    if threads:
        import torch

        torch.set_num_threads(int(threads))


def before_run(run_id: int) -> dict:
    """At the start of a task in a pool child: apply the CUDA memory cap once per process, and log
    this slot's facts as torch reports them (``run N: slot pid P, torch threads T[, CUDA memory cap F]``).
    Returns those facts."""
    facts: dict = {"pid": os.getpid()}
    try:
        import torch
    except ImportError:   # no engine on this worker: the runner records the failure
        return facts
    facts["threads"] = torch.get_num_threads()
    fraction = os.environ.get(ENV_MEM_FRACTION)
    if fraction and "cap" not in _child:
        try:
            if torch.cuda.is_available():
                torch.cuda.set_per_process_memory_fraction(float(fraction), 0)   # initializes CUDA, in this child only
                _child["cap"] = float(fraction)
        except Exception:  # noqa: BLE001 - a CUDA that cannot start fails the run in the engine, with its message
            log.exception("run %s: could not cap this slot's CUDA memory at %s of the GPU", run_id, fraction)
    if "cap" in _child:
        facts["cuda_mem_fraction"] = _child["cap"]
    cap = f", CUDA memory cap {facts['cuda_mem_fraction']:.3g}" if "cuda_mem_fraction" in facts else ""
    log.info("run %s: slot pid %d, torch threads %d%s", run_id, facts["pid"], facts["threads"], cap)
    return facts
