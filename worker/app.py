"""The worker's Celery app (``celery -A worker.app worker`` or ``rnnlab worker``) and its lifecycle hooks.

Before the pool forks: import the engine, so children start warm (not for GPU workers).
On start: migrate the database if needed, record the worker, and start its heartbeat/reaper thread
(started even if the database is not up yet: its loop retries the migration and the beat)
(with the filesystem broker and Redis, it also re-sends queued runs whose message is gone: worker.orphans).
An empty, corrupt or unreadable broker message (a filesystem message file, a Redis list item) is
quarantined and skipped (worker.broker_guard).
In each pool child (a slot: ``rnnlab worker --slots N`` runs N): limit torch's threads (RNNLAB_TORCH_THREADS)
so N children share the cores; worker.slots sizes them and caps each child's CUDA memory.
On a warm shutdown (SIGTERM, Ctrl-C, ``docker compose stop``): a flag shared with the pool children
(worker.heartbeat.stop_this_process) is set; a running run stops at its next step and goes back to the
queue (worker.runner), so the worker exits within seconds instead of after the run; once its
consumer is closed, the main process sends those runs' tasks again, and another worker resumes
them from their checkpoints.
On shutdown: mark the worker stopped. CUDA is never touched here: a GPU's name comes from nvidia-smi.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess

from celery import signals

from db.attempts import now
from rnnlab.queue import get_app, send_run
from rnnlab.settings import get_settings
from worker import broker_guard, heartbeat, slots

log = logging.getLogger(__name__)
broker_guard.install()   # a bad message (file or Redis list item) is quarantined, not fatal
app = get_app()
app.conf.broker_transport_options = {**app.conf.broker_transport_options,
                                     **broker_guard.transport_options(app.conf.rnnlab_queue_prefix)}
_state: dict = {}


def worker_settings():
    return get_settings()


def gpu_name() -> str | None:
    """The name of the (first visible) GPU via nvidia-smi, without initializing CUDA; None if none."""
    cmd = ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"]
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible:
        cmd += ["-i", visible.split(",")[0]]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    names = [line.strip() for line in out.stdout.splitlines() if line.strip()]
    return names[0] if out.returncode == 0 and names else None


def _logical_queues(consumer_queues: list[str]) -> str:
    prefix = app.conf.rnnlab_queue_prefix
    return ",".join(sorted(q[len(prefix):] if q.startswith(prefix) else q for q in consumer_queues))


def _pool_size(consumer) -> int | None:
    """The runs this worker trains at a time: its pool's size (Celery's -c, which `rnnlab worker --slots`
    sets), else RNNLAB_SLOTS; None when neither says."""
    controller = getattr(consumer, "controller", None)
    # the pool's own limit first: the solo pool trains one run at a time whatever -c says (its
    # concurrency defaults to the core count)
    for size in (getattr(getattr(controller, "pool", None), "limit", None), getattr(controller, "concurrency", None)):
        if isinstance(size, int) and size > 0:
            return size
    env = os.environ.get(slots.ENV_SLOTS, "")
    return int(env) if env.isdigit() and int(env) > 0 else None


@signals.worker_ready.connect
def _on_ready(sender=None, **_):
    from db.migrate import ensure_schema
    from worker.heartbeat import WorkerHeartbeat
    from worker.orphans import waiting_function

    s = worker_settings()
    queues = _logical_queues([q.name for q in sender.app.amqp.queues.consume_from.values()])
    device = (gpu_name() or "gpu (unknown)") if "gpu" in queues.split(",") else "cpu"
    hb = WorkerHeartbeat(
        sender.hostname, host=socket.gethostname(), pid=os.getpid(), queues=queues, device=device,
        period_s=s.heartbeat_seconds, lost_after_s=s.lost_after_seconds,
        send_run=lambda run_id, q: send_run(app, run_id, q),
        # re-send queued runs whose message is gone from the broker
        waiting=waiting_function(app, unacked_stale_after_s=s.lost_after_seconds),
        setup=ensure_schema,             # migrated on the first beat that reaches the database
        slots=_pool_size(sender),
    )
    try:
        hb.beat()  # migrated, registered (and stale runs reaped) before the first task arrives
    except Exception:  # noqa: BLE001 - Celery would swallow it and the heartbeat would never start
        log.exception("rnnlab worker %s: the database is not reachable yet; the heartbeat retries every "
                      "%.1f s", sender.hostname, s.heartbeat_seconds)
    hb.start()     # started whatever the first beat did: its loop retries
    _state["heartbeat"] = hb
    log.info("rnnlab worker %s ready: queues %s, device %s, %s slot(s), %s torch thread(s) each", sender.hostname,
             queues, device, os.environ.get(slots.ENV_SLOTS, "?"), os.environ.get(slots.ENV_THREADS, "all"))


@signals.worker_init.connect
def _share_stop_flag(**_):
    heartbeat.share_stop_flag()   # before the pool forks: the children share it
    # before any connection: a worker frozen inside a transaction must not keep its run's row locked
    heartbeat.bound_transactions(worker_settings().lost_after_seconds)


@signals.worker_init.connect
def _preload_engine(**_):
    # Import torch and the engine once in the parent, so that pool children start warm. Importing
    # torch does not initialize CUDA; GPU workers (rnnlab worker -Q gpu) skip this anyway.
    if os.environ.get("RNNLAB_PRELOAD_ENGINE", "1") != "0":
        import models  # noqa: F401


@signals.worker_shutting_down.connect
def _on_shutting_down(**_):
    # Runs inside the main process's signal handler: no logging or locks here. The flag covers the
    # solo pool (the run trains in this process) and the prefork children (shared memory).
    _state["stopping_since"] = now()
    heartbeat.stop_this_process()


@signals.worker_process_init.connect
def _on_child(**_):
    slots.init_child()   # torch threads of this slot (RNNLAB_TORCH_THREADS, sized by rnnlab worker --slots)


@signals.worker_shutdown.connect
def _on_shutdown(sender=None, **_):
    # The consumer is closed and the pool has finished: send the tasks of the runs handed back during
    # the shutdown now, so this worker cannot take them again. If the broker or the database fails
    # here, the workers' lost-message check (worker.orphans) re-sends them later.
    if heartbeat.worker_stopping() and sender is not None:
        from db import store

        try:
            for run in store.released_by(sender.hostname, since=_state.get("stopping_since")):
                send_run(app, run["id"], run["queue"])
                log.warning("run %s handed back by %s; its task is sent again", run["id"], sender.hostname)
        except Exception:  # noqa: BLE001
            log.exception("could not re-send the runs handed back by %s; the workers' lost-message check "
                          "will re-send them", sender.hostname)
    hb = _state.pop("heartbeat", None)
    if hb is not None:
        hb.stop()


import worker.tasks  # noqa: E402,F401 - registers the task on the app
