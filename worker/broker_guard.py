"""The worker's filesystem broker, hardened: a message file that is empty, not a kombu message, or
unreadable is moved to a quarantine folder and logged, and the worker goes on with the next one.

kombu's own filesystem transport parses each file it takes and lets the error escape, which stops the
worker ("Unrecoverable error: JSONDecodeError"): a full disk that left a 0-byte message file in the
queue folder killed every worker that started on it. A quarantined file's run is still ``queued`` in
the database with no message waiting, so the workers' lost-message check (worker.orphans) re-sends it.

Taking a file is an atomic rename into a ``taking`` folder beside ``queue`` (one worker wins, as with
kombu's own move); it is read under a shared lock, as kombu writes it under an exclusive one. An empty
file younger than EMPTY_GRACE_S is left alone: a sender may have created it and not written yet.
Installed for the worker process only (install(), called by worker.app); senders keep kombu's
transport, whose writes are unchanged. Everything that reaches into kombu (the transports' private
methods, the folder layout, the registration) is in worker.kombu_internals; this module holds the policy.

The Redis transport gets the same guard (RedisChannel): kombu decodes each message it pops (BRPOP or
RPOP) and lets a JSONDecodeError escape, so one emptied, truncated or binary list item stopped every
worker that popped it. Here an item that is not a kombu message is logged, pushed as it was onto the
``<prefix>quarantine`` list (the newest QUARANTINE_MAX kept), and skipped; having been popped, it is
gone from the queue, so the lost-message check re-sends its run as above.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from worker import kombu_internals

log = logging.getLogger(__name__)

EMPTY_GRACE_S = 5.0
QUARANTINE_MAX = 1000   # items kept on a Redis quarantine list (the oldest are trimmed)


def quarantine(path: Path, folder: Path, why: str) -> Path | None:
    """Move a bad message file (or folder) into ``folder``; the new path, or None if it could not be moved
    (then it is deleted, so it cannot stop a worker again)."""
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / path.name
    try:
        os.rename(path, dest)
    except OSError as e:
        log.error("broker message %s is bad (%s) and could not be quarantined (%s); deleting it", path.name, why, e)
        try:
            os.remove(path)
        except OSError:
            pass
        return None
    log.error("broker message %s is bad (%s); moved to %s (its run, if any, is re-sent by the lost-message "
              "check)", path.name, why, dest)
    return dest


class Channel(kombu_internals.FilesystemChannel):
    """kombu's filesystem channel that skips (and quarantines) bad message files."""

    def take(self, path: Path):
        """The parsed message in ``path``, taken from the queue; None if it was not ours to take or bad."""
        base = self.queue_folder.parent
        try:
            st = path.stat()
        except OSError:
            return None   # taken by another worker meanwhile
        if st.st_size == 0 and time.time() - st.st_mtime < EMPTY_GRACE_S and path.is_file():
            return None   # a sender may still be writing it
        taking = base / "taking"
        taking.mkdir(exist_ok=True)
        mine = taking / path.name
        try:
            os.rename(path, mine)
        except FileNotFoundError:
            return None
        except OSError as e:
            quarantine(path, base / "quarantine", f"cannot be taken: {e}")
            return None
        try:
            payload = kombu_internals.parse_message(kombu_internals.read_message_file(mine))
            self.check_message(payload)   # what kombu builds next: a bad envelope fails here, not there
        except Exception as e:  # noqa: BLE001 - any bad file is quarantined, never fatal
            why = "empty" if mine.is_file() and mine.stat().st_size == 0 else f"{type(e).__name__}: {e}"
            quarantine(mine, base / "quarantine", why[:300])
            return None
        os.remove(mine)
        return payload


class Transport(kombu_internals.FilesystemTransport):
    Channel = Channel


class RedisChannel(kombu_internals.RedisChannel):
    """kombu's Redis channel whose pops skip (and quarantine) items that are not kombu messages."""

    quarantine_key = "quarantine"
    quarantine_max = QUARANTINE_MAX
    extra_options = ("quarantine_key", "quarantine_max")

    def decode_item(self, item: bytes, queue: str):
        """The message in a popped list item; None (the item quarantined) if it is not one."""
        try:
            payload = kombu_internals.parse_message(item)
            self.check_message(payload)   # what kombu builds next: a bad envelope fails here, not there
        except Exception as e:  # noqa: BLE001 - any bad item is quarantined, never fatal
            why = "empty" if not item else f"{type(e).__name__}: {e}"
            self.quarantine(item, queue, why[:300])
            return None
        return payload

    def quarantine(self, item: bytes, queue: str, why: str) -> None:
        key = self.quarantine_key
        try:
            self.push_capped(key, item, max(int(self.quarantine_max), 1))
        except Exception as e:  # noqa: BLE001 - the item is dropped then; it must not stop the worker
            log.error("broker message from Redis list %s is bad (%s) and could not be quarantined (%s: %s); "
                      "dropped it: %r", queue, why, type(e).__name__, e, item[:200])
            return
        log.error("broker message from Redis list %s is bad (%s); pushed onto Redis list %s (its run, if any, "
                  "is re-sent by the lost-message check): %r", queue, why, key, item[:200])


class RedisTransport(kombu_internals.RedisTransport):
    Channel = RedisChannel


def transport_options(prefix: str) -> dict:
    """Transport options for the guarded transports: where a bad Redis item goes (ignored elsewhere)."""
    return {"quarantine_key": f"{prefix}quarantine", "quarantine_max": QUARANTINE_MAX}


def install() -> None:
    """Make ``filesystem://``, ``redis://`` and ``rediss://`` mean the guarded transports in this process."""
    kombu_internals.register_transport("filesystem", "worker.broker_guard:Transport")
    for name in ("redis", "rediss"):
        kombu_internals.register_transport(name, "worker.broker_guard:RedisTransport")
