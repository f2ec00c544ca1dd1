"""The lost-message check: queued runs whose task message is gone from the broker.

A run can be left ``queued`` with no message anywhere: kombu's filesystem transport deletes a
message file when a worker takes it, so a worker killed after that but before it claimed the run
(db.store.claim_run) loses it; with Redis, a task that gave up retrying a database outage
(worker.tasks) is acked, and a Redis restarted without its append-only file forgets its lists. The
reaper of running runs cannot see these. So each worker's heartbeat also compares the queued runs in
the database with the messages the broker still holds: with the filesystem broker, the files waiting
in ``data_folder_in``; with Redis, the messages waiting in the queue lists (every priority level)
plus those delivered to a worker and not yet acked (kombu's ``unacked`` hash) less than
``grace_s`` ago (an older one whose run is still queued was taken by a worker that died before
claiming it; Redis would redeliver it only after the visibility timeout, days later). A queued run
with no message, still so (same attempts and message, never seen held) for ``grace_s``
(RNNLAB_LOST_AFTER_SECONDS) over consecutive checks, gets its task re-sent. The grace covers the
short, normal gaps: a worker that took the message and is claiming the run.
A run whose submission is still being sent (client.submit commits the rows with the message
rnnlab.queue.SENDING and clears it batch by batch as the tasks reach the broker) is not treated as
lost while it says so and its submitter makes progress: create_runs stamps the mark (heartbeat_at, by
the database's clock) and the submitter refreshes the stamp of the runs it has still to send every few
seconds, so a mark whose stamp is older than SENDING_STALE_S (30 s, at least ``grace_s``) was left by a
submitter that died or could not write to the database, and its runs are re-sent like any other. (A
mark with no stamp, from an older submitter, waits SENDING_GRACE_S, 10 min.)

The re-send is recorded on the run's ``message`` by a compare-and-set (db.liveness.note_resent):
one worker wins, and every other worker's observation starts over because the message changed,
so a run's task is re-sent at most once per ``grace_s`` whatever the number of workers. A duplicate
anyway is harmless: the claim is atomic.

Cost: each check reads every waiting message of this setup's queues, a few times per grace period
and only while the database has queued runs: with 10,000 queued runs, about 0.2 s (Redis) to 0.4 s
(filesystem) per check (bench/lost_message_check.py). Other brokers (e.g. AMQP) are not checked.
How each broker stores its messages is kombu's business, read through worker.kombu_internals (the one
module that touches kombu's internals, tested against the installed kombu).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from db import liveness
from db.attempts import now
from rnnlab.queue import QUEUES, SENDING, SENDING_GRACE_S, TASK_RUN
from worker import kombu_internals

log = logging.getLogger(__name__)

# a run marked as being sent whose stamp is older than this was left by a submitter that stopped: a live
# submitter refreshes the stamp every few seconds (client.submit.STAMP_EVERY_S) while it sends
SENDING_STALE_S = 30.0

def message_run_id(raw: bytes | str) -> int | None:
    """The run id in one stored kombu message (a filesystem message file, a Redis list entry) of task
    "rnnlab.run"; None if it is another task or unreadable."""
    try:
        env = kombu_internals.parse_message(raw)
    except ValueError:
        return None
    return envelope_run_id(env) if isinstance(env, dict) else None


def envelope_run_id(env: dict) -> int | None:
    """The run id in a parsed kombu envelope of task "rnnlab.run"; None if it is another task or malformed.

    The envelope's body (kombu_internals.envelope_body) is the Celery message: protocol 2 ``[args,
    kwargs, embed]`` (task name in the headers) or protocol 1 ``{"task", "args", ...}``."""
    try:
        headers = env.get("headers") or {}
        body = kombu_internals.envelope_body(env)
        if isinstance(body, dict):                       # protocol 1
            task, args = body.get("task"), body.get("args")
        else:                                            # protocol 2
            task, args = headers.get("task"), body[0]
        if task != TASK_RUN or not args:
            return None
        return int(args[0])
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        return None


def waiting_run_ids(folder: str | Path, prefix: str) -> set[int]:
    """Run ids with a task message waiting in the filesystem broker ``folder`` on this setup's
    queues (``prefix`` + cpu/gpu). A file taken by a worker while we read is simply not waiting."""
    out: set[int] = set()
    for path in kombu_internals.message_files(folder, [f"{prefix}{q}" for q in QUEUES]):
        try:
            raw = kombu_internals.read_message_file(path)
        except OSError:
            continue
        run_id = message_run_id(raw)
        if run_id is not None:
            out.add(run_id)
    return out


def redis_waiting_run_ids(channel, queue_names: list[str], *, unacked_stale_after_s: float | None = None,
                          clock: float | None = None) -> set[int]:
    """Run ids whose task message a Redis broker still holds for the queues ``queue_names``: waiting
    in a queue list (every priority level) or delivered and not acked yet (only this setup's routing
    keys count). ``channel``: a kombu Redis channel (kombu_internals.redis_held reads both).

    ``unacked_stale_after_s``: an unacked message delivered longer ago than this whose run is still
    queued was most likely taken by a worker killed before it claimed the run; Redis would redeliver
    it only after the visibility timeout (days), so it does not count as held. (A task waiting out a
    retry countdown also holds its message unacked: re-sending it then is a harmless duplicate, the
    claim being atomic.)"""
    waiting, unacked = kombu_internals.redis_held(channel, queue_names)
    out = {message_run_id(raw) for raw in waiting}
    t = time.time() if clock is None else clock
    for env, routing_key, delivered_at in unacked:
        if unacked_stale_after_s is not None and delivered_at is not None and t - delivered_at > unacked_stale_after_s:
            continue
        if routing_key in queue_names:
            out.add(envelope_run_id(env))
    out.discard(None)
    return out


def waiting_function(app, *, unacked_stale_after_s: float | None = None) -> Callable[[], set[int]] | None:
    """A function returning the run ids whose task message the app's broker still holds, for the
    filesystem broker and Redis; None for any other broker (not checked), and for a Redis setup with
    a ``global_keyprefix`` transport option (not supported here: the keys would be misread)."""
    url = str(app.conf.broker_url or "")
    prefix = app.conf.rnnlab_queue_prefix
    options = app.conf.broker_transport_options or {}
    if url.startswith("filesystem"):
        folder = kombu_internals.filesystem_queue_folder(options)
        return lambda: waiting_run_ids(folder, prefix)
    if url.startswith(("redis://", "rediss://")) and kombu_internals.redis_supported(options):
        names = [f"{prefix}{q}" for q in QUEUES]
        # a Redis that hangs must not stall the heartbeat thread that runs this check
        timeouts = {"socket_timeout": 30, "socket_connect_timeout": 10}

        def redis_waiting() -> set[int]:
            with app.connection_for_read(transport_options=timeouts) as conn:
                return redis_waiting_run_ids(conn.default_channel, names,
                                             unacked_stale_after_s=unacked_stale_after_s)
        return redis_waiting
    return None


def unsent_queued_runs(waiting: Callable[[], set[int]], *, url: str | None = None) -> list[dict]:
    """One look: the queued runs (db.liveness.queued_runs rows) with no message waiting. The
    database is read first, so a run claimed in between shows as missing once, never as waiting."""
    queued = liveness.queued_runs(url=url)
    if not queued:
        return []
    present = waiting()
    return [r for r in queued if r["id"] not in present]


def sending_mark_ages(run_ids: list[int], *, url: str | None = None) -> dict[int, float | None]:
    """Seconds since each run's 'being sent' stamp (heartbeat_at), by the database's clock; None where
    there is no stamp."""
    from sqlalchemy import select

    from db.attempts import aware, db_now
    from db.engine import session
    from db.models import Run

    out: dict[int, float | None] = {}
    with session(url) as s:
        t = db_now(s)
        for i in range(0, len(run_ids), 500):
            rows = s.execute(select(Run.id, Run.heartbeat_at).where(Run.id.in_(run_ids[i:i + 500])))
            out.update({r.id: None if r.heartbeat_at is None else (t - aware(r.heartbeat_at)).total_seconds()
                        for r in rows})
    return out


class OrphanWatch:
    """Remembers since when each queued run has been seen with no waiting message; ``check()``
    returns the runs to re-send now, each already recorded on the run (one winner across workers)."""

    def __init__(self, waiting: Callable[[], set[int]], *, worker: str, grace_s: float,
                 url: str | None = None):
        self.waiting, self.worker, self.grace_s, self.url = waiting, worker, grace_s, url
        self._missing: dict[int, tuple[float, int, str | None]] = {}   # id -> (since, attempts, message)

    def is_due(self, run: dict, silent: float, mark_ages: dict[int, float | None]) -> bool:
        """Whether a run missing from the broker for ``silent`` seconds is lost: after ``grace_s``; a run
        whose submitter is still sending it (message rnnlab.queue.SENDING) only once the mark's stamp
        is also SENDING_STALE_S old (at least ``grace_s``) by the database's clock (``mark_ages``), or,
        with no stamp, after SENDING_GRACE_S."""
        if silent < self.grace_s:
            return False
        if run["message"] != SENDING:
            return True
        age = mark_ages.get(run["id"])
        if age is None:
            return silent >= SENDING_GRACE_S
        return age >= max(self.grace_s, SENDING_STALE_S)

    def check(self, clock: float | None = None) -> list[dict]:
        t = time.monotonic() if clock is None else clock
        missing = {r["id"]: r for r in unsent_queued_runs(self.waiting, url=self.url)}
        marked = [i for i, r in missing.items() if r["message"] == SENDING and i in self._missing]
        mark_ages = sending_mark_ages(marked, url=self.url) if marked else {}
        seen: dict[int, tuple[float, int, str | None]] = {}
        due = []
        for run_id, r in missing.items():
            prev = self._missing.get(run_id)
            if prev is None or prev[1:] != (r["attempts"], r["message"]):
                seen[run_id] = (t, r["attempts"], r["message"])   # first seen (or its state changed)
                continue
            seen[run_id] = prev
            if self.is_due(r, t - prev[0], mark_ages):
                due.append(r)
        self._missing = seen   # waiting, claimed, finished or changed runs start over
        resend = []
        for r in due:
            silent = t - self._missing[r["id"]][0]
            note = (f"task message lost (not held by the broker for {silent:.0f} s); re-sent by "
                    f"{self.worker} at {now():%Y-%m-%d %H:%M:%S} UTC")
            if liveness.note_resent(r["id"], r["attempts"], r["message"], note, url=self.url):
                resend.append({"id": r["id"], "queue": r["queue"]})
            self._missing.pop(r["id"], None)
        return resend
