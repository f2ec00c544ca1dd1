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

When a slot finds this worker's GPU unusable at the start of a gpu run (worker.runner hands the run
back to the queue), the worker stops taking gpu runs: the slot asks the main process (remote control
command GPU_LOST_COMMAND, to this worker only; stop_taking), which cancels its consumer of the gpu
queue, logs an error saying why, reports the queues it still serves and "GPU unusable: ..." as its
device on its workers row, and then sends the run's task again, so another GPU worker takes it and this
one cannot. Its other queues and its other slots' runs go on. Should the main process not answer
(remote control turned off, the broker unreachable), the worker shuts down warm instead.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess

from celery import signals
from celery.worker.control import control_command

from db.attempts import now
from rnnlab.queue import get_app, queue_name, send_run
from rnnlab.settings import get_settings
from worker import broker_guard, heartbeat, slots

log = logging.getLogger(__name__)
broker_guard.install()   # a bad message (file or Redis list item) is quarantined, not fatal
app = get_app()
app.conf.broker_transport_options = {**app.conf.broker_transport_options,
                                     **broker_guard.transport_options(app.conf.rnnlab_queue_prefix)}
_state: dict = {}
GPU_LOST_COMMAND = "rnnlab_gpu_lost"
STOP_REPLY_S = 30.0   # how long a slot waits for its main process to take the gpu queue off


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
    _state["consumer"] = sender
    log.info("rnnlab worker %s ready: queues %s, device %s, %s slot(s), %s torch thread(s) each", sender.hostname,
             queues, device, os.environ.get(slots.ENV_SLOTS, "?"), os.environ.get(slots.ENV_THREADS, "all"))


@signals.worker_init.connect
def _share_stop_flag(**_):
    _state["main_pid"] = os.getpid()   # before the pool forks: a slot knows its worker's main process
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


def stop_taking(hostname: str, queue: str, problem: str, run_id: int | None) -> None:
    """In the slot that found this worker's GPU unusable (worker.runner): have the worker's main process
    stop consuming ``queue`` and then send the task of ``run_id`` again (handed back and queued; None:
    nothing to send). Returns once the main process has the request; during a warm shutdown nothing is
    asked (the shutdown re-sends the runs handed back meanwhile)."""
    if heartbeat.worker_stopping():
        return
    problem = problem[:500]
    consumer = _state.get("consumer")
    if os.getpid() == _state.get("main_pid") and consumer is not None:   # the solo pool: this is the main process
        consumer.call_soon(_drop_queue, consumer, queue, problem, run_id)
        return
    try:
        replies = app.control.broadcast(GPU_LOST_COMMAND, arguments={"queue": queue, "problem": problem,
                                                                     "run_id": run_id},
                                        destination=[hostname], reply=True, timeout=STOP_REPLY_S, limit=1)
    except Exception:  # noqa: BLE001 - the broker is unreachable: shut down instead
        log.exception("could not ask worker %s to stop consuming the %s queue", hostname, queue)
        replies = []
    if replies:
        return
    log.error("worker %s: its main process did not answer the request to stop consuming the %s queue (remote "
              "control off, or the broker unreachable); shutting the worker down instead, as its GPU is "
              "unusable: %s", hostname, queue, problem)
    main = _state.get("main_pid")
    if main is not None:
        os.kill(main, signal.SIGTERM)   # a warm shutdown: its consumer closes, its other runs are handed back
    if run_id is not None:   # handed back before the shutdown began, so the shutdown does not re-send it
        try:
            send_run(app, run_id, queue)
        except Exception:  # noqa: BLE001
            log.exception("run %s: could not send its task again; the workers' lost-message check will", run_id)


@control_command(name=GPU_LOST_COMMAND, args=[("queue", str), ("problem", str), ("run_id", int)],
                 signature="<queue> <problem> [run_id]")
def rnnlab_gpu_lost(state, queue: str, problem: str = "", run_id: int | None = None, **_):
    """Remote control command (GPU_LOST_COMMAND), in the worker's main process: a slot found the GPU
    unusable; stop consuming ``queue``, then send the task of the run it handed back (``run_id``) again.
    Deferred to the consumer's loop (call_soon), as Celery's own cancel_consumer is."""
    state.consumer.call_soon(_drop_queue, state.consumer, queue, problem, run_id)
    return {"ok": f"no longer consuming from the {queue} queue"}


def _drop_queue(consumer, queue: str, problem: str, run_id: int | None) -> None:
    """In the main process's consumer loop: cancel the consumer of ``queue`` (once), report it, then
    send the handed-back run's task again: this worker can no longer take it."""
    name = queue_name(queue, app.conf.rnnlab_queue_prefix)
    hostname = getattr(consumer, "hostname", "?")
    if name in consumer.app.amqp.queues.consume_from:
        consumer.cancel_task_queue(name)
        remaining = _logical_queues(list(consumer.app.amqp.queues.consume_from))
        log.error("rnnlab worker %s: its GPU is unusable (%s); it no longer takes runs from the %s queue (still "
                  "serving: %s). Restart it once `nvidia-smi` sees the GPU again", hostname, problem, queue,
                  remaining or "no queue")
        hb = _state.get("heartbeat")
        if hb is not None:   # the workers panel and the submit page see it no longer serves the queue
            hb.queues, hb.device = remaining, f"GPU unusable: {problem}"[:200]
    if run_id is not None:
        try:
            send_run(app, run_id, queue)
            log.warning("run %s handed back by %s (no usable GPU); its task is sent again", run_id, hostname)
        except Exception:  # noqa: BLE001 - the lost-message check (worker.orphans) re-sends it later
            log.exception("run %s: could not send its task again; the workers' lost-message check will", run_id)


import worker.tasks  # noqa: E402,F401 - registers the task on the app
