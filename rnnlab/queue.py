"""The Celery app shared by the submitter and the worker (torch-free; no tasks are defined here).

Broker: ``RNNLAB_BROKER_URL`` (e.g. redis://host:6379/0) or, when unset, kombu's filesystem://
transport in ``$RNNLAB_HOME/broker`` (no server; fanout works, so inspect/ping do too). No result
backend: the database is the source of truth. Settings for long jobs that must run exactly once:
late acks, reject on worker loss, prefetch 1, and a Redis visibility timeout above the longest job;
the atomic claim in the database (db.store.claim_run) absorbs the duplicates these allow.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from celery import Celery
from kombu import Queue

TASK_RUN = "rnnlab.run"
QUEUES = ("cpu", "gpu")
# the message of a run whose task the submitter is still sending (client.submit); the lost-message
# check (worker.orphans) gives such runs SENDING_GRACE_S before it treats their message as lost
SENDING = "sending: the submitter is sending this run's task message"
SENDING_GRACE_S = 600.0


def queue_prefix() -> str:
    """Prefix of the broker queue names (RNNLAB_QUEUE_PREFIX; lets several setups share a Redis)."""
    from rnnlab.settings import get_settings

    return get_settings().queue_prefix


def auto_queue() -> str:
    """Where ``device: auto`` runs go: RNNLAB_AUTO_QUEUE ('cpu' by default, or 'gpu')."""
    from rnnlab.settings import get_settings

    value = get_settings().auto_queue
    if value not in QUEUES:
        raise ValueError(f"RNNLAB_AUTO_QUEUE: got {value!r}; allowed: {', '.join(QUEUES)}")
    return value


def queue_name(queue: str, prefix: str | None = None) -> str:
    """The broker queue for a logical queue ('cpu' or 'gpu')."""
    if queue not in QUEUES:
        raise ValueError(f"queue: got {queue!r}; allowed: {', '.join(QUEUES)}")
    return f"{queue_prefix() if prefix is None else prefix}{queue}"


def filesystem_options(home: Path) -> dict:
    """Transport options of the filesystem broker: one shared message folder under ``home``."""
    base = Path(home).resolve() / "broker"
    folders = {"data_folder_in": base / "queue", "data_folder_out": base / "queue",
               "processed_folder": base / "processed", "control_folder": base / "control"}
    for f in folders.values():
        f.mkdir(parents=True, exist_ok=True)
    # polling_interval: how often an idle worker lists the folder (kombu's default, 1 s, adds up to a
    # second between consecutive short runs)
    return {**{k: str(v) for k, v in folders.items()}, "store_processed": False, "polling_interval": 0.2}


def make_app(broker_url: str | None = None, *, home: Path | None = None, prefix: str | None = None,
             visibility_timeout: int | None = None) -> Celery:
    """A configured Celery app; arguments default to the settings (RNNLAB_*)."""
    from rnnlab.settings import get_settings

    s = get_settings()
    broker_url = broker_url or s.broker
    prefix = queue_prefix() if prefix is None else prefix
    if broker_url.startswith("filesystem"):
        options = filesystem_options(home or s.home)
    else:
        options = {"visibility_timeout": visibility_timeout or s.visibility_timeout}
    app = Celery("rnnlab", broker=broker_url, set_as_current=False)
    app.conf.update(
        broker_transport_options=options,
        broker_connection_retry_on_startup=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        task_default_queue=f"{prefix}cpu",
        task_queues=[Queue(f"{prefix}{q}", routing_key=f"{prefix}{q}") for q in QUEUES],
        task_create_missing_queues=True,
        worker_hijack_root_logger=False,
        worker_send_task_events=True,  # for Flower
        task_send_sent_event=True,
    )
    app.conf.rnnlab_queue_prefix = prefix
    return app


@lru_cache
def get_app() -> Celery:
    """The app configured from the settings, created once per process."""
    return make_app()


def send_run(app: Celery, run_id: int, queue: str, producer=None, declare: list | None = None) -> None:
    """Send the task for one run, by name (the sender never imports the worker). ``producer``: a
    kombu producer to reuse (see send_runs); None takes one from the app's pool. ``declare``: None
    declares the queue (once per channel); [] when the caller already did."""
    app.send_task(TASK_RUN, args=[run_id], queue=queue_name(queue, app.conf.rnnlab_queue_prefix),
                  producer=producer, declare=declare)


SEND_BATCH = 250   # messages per Redis pipeline round trip (each task also publishes its 'task-sent' event)


def send_runs(app: Celery, runs: list[tuple[int, str]], on_sent=None) -> None:
    """Send the tasks of many runs ``[(run_id, queue), …]`` through one producer connection, in
    batches of SEND_BATCH: on Redis each batch is one pipelined round trip (kombu's publish batch);
    other transports publish one by one on the same connection. ``on_sent(run_ids)`` is called after
    each batch has reached the broker. An error propagates; the runs of the failed batch and later
    ones were not reported as sent."""
    with app.producer_or_acquire() as producer:
        prefix = app.conf.rnnlab_queue_prefix
        for queue in sorted({q for _, q in runs}):   # declare each queue once, not once per message
            producer.maybe_declare(app.amqp.queues[queue_name(queue, prefix)])
        for i in range(0, len(runs), SEND_BATCH):
            chunk = runs[i:i + SEND_BATCH]
            with producer.batch(max_size=4 * SEND_BATCH):
                for run_id, queue in chunk:
                    send_run(app, run_id, queue, producer=producer, declare=[])
            if on_sent is not None:
                on_sent([run_id for run_id, _ in chunk])
