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
transport, whose writes are unchanged.

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

from kombu.transport import TRANSPORT_ALIASES, _transport_cache, filesystem, redis
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import loads

log = logging.getLogger(__name__)

EMPTY_GRACE_S = 5.0
QUARANTINE_MAX = 1000   # items kept on a Redis quarantine list (the oldest are trimmed)

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None


def _read_locked(path: Path) -> bytes:
    with open(path, "rb") as f:
        if fcntl is not None:
            fcntl.flock(f.fileno(), fcntl.LOCK_SH)
        return f.read()


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


class Channel(filesystem.Channel):
    """kombu's filesystem channel whose _get skips (and quarantines) bad message files."""

    @property
    def _base(self) -> Path:
        return Path(self.data_folder_in).parent

    def _get(self, queue):
        suffix = f"{queue}.msg"
        folder = Path(self.data_folder_in)
        for name in sorted(os.listdir(folder)):
            if name.partition(".")[2] != suffix:   # kombu's own test: "<time>_<uuid>.<queue>.msg"
                continue
            payload = self._take(folder / name)
            if payload is not None:
                return payload
        raise filesystem.Empty()

    def _take(self, path: Path):
        """The parsed message in ``path``, taken from the queue; None if it was not ours to take or bad."""
        try:
            st = path.stat()
        except OSError:
            return None   # taken by another worker meanwhile
        if st.st_size == 0 and time.time() - st.st_mtime < EMPTY_GRACE_S and path.is_file():
            return None   # a sender may still be writing it
        taking = self._base / "taking"
        taking.mkdir(exist_ok=True)
        mine = taking / path.name
        try:
            os.rename(path, mine)
        except FileNotFoundError:
            return None
        except OSError as e:
            quarantine(path, self._base / "quarantine", f"cannot be taken: {e}")
            return None
        try:
            raw = _read_locked(mine)
            payload = loads(raw.decode("utf-8"))
            self.Message(payload, channel=self)   # what kombu builds next: a bad envelope fails here, not there
        except Exception as e:  # noqa: BLE001 - any bad file is quarantined, never fatal
            why = "empty" if mine.is_file() and mine.stat().st_size == 0 else f"{type(e).__name__}: {e}"
            quarantine(mine, self._base / "quarantine", why[:300])
            return None
        os.remove(mine)
        return payload


class Transport(filesystem.Transport):
    Channel = Channel


# kombu internals, tested with kombu 5.7.0 (pyproject pins kombu>=5.7,<5.8): RedisChannel._brpop_read and
# RedisChannel._get are kombu's own methods of that version with the decoding moved into _decode.
class RedisChannel(redis.Channel):
    """kombu's Redis channel whose pops skip (and quarantine) items that are not kombu messages."""

    quarantine_key = "quarantine"
    quarantine_max = QUARANTINE_MAX
    from_transport_options = redis.Channel.from_transport_options + ("quarantine_key", "quarantine_max")

    def _decode(self, item: bytes, queue: str):
        """The message in a popped list item; None (the item quarantined) if it is not one."""
        try:
            payload = loads(bytes_to_str(item))
            self.Message(payload, channel=self)   # what kombu builds next: a bad envelope fails here, not there
        except Exception as e:  # noqa: BLE001 - any bad item is quarantined, never fatal
            why = "empty" if not item else f"{type(e).__name__}: {e}"
            self._quarantine(item, queue, why[:300])
            return None
        return payload

    def _quarantine(self, item: bytes, queue: str, why: str) -> None:
        key, keep = self.quarantine_key, max(int(self.quarantine_max), 1)
        try:
            with self.conn_or_acquire() as client:
                client.pipeline().lpush(key, item).ltrim(key, 0, keep - 1).execute()
        except Exception as e:  # noqa: BLE001 - the item is dropped then; it must not stop the worker
            log.error("broker message from Redis list %s is bad (%s) and could not be quarantined (%s: %s); "
                      "dropped it: %r", queue, why, type(e).__name__, e, item[:200])
            return
        log.error("broker message from Redis list %s is bad (%s); pushed onto Redis list %s (its run, if any, "
                  "is re-sent by the lost-message check): %r", queue, why, key, item[:200])

    def _brpop_read(self, **options):
        try:
            try:
                dest__item = self.client.parse_response(self.client.connection, "BRPOP", **options)
            except self.connection_errors:
                self.client.connection.disconnect()   # the next poll reconnects
                raise
            if not dest__item:
                raise redis.Empty()
            dest, item = dest__item
            dest = bytes_to_str(dest).rsplit(self.sep, 1)[0]
            self._queue_cycle.rotate(dest)
            payload = self._decode(item, dest)
            if payload is None:
                return False
            self.connection._deliver(payload, dest)
            return True
        finally:
            self._in_poll = None
            self._flush_brpop_reauth()

    def _get(self, queue):
        with self.conn_or_acquire() as client:
            for pri in self.priority_steps:
                while (item := client.rpop(self._q_for_pri(queue, pri))) is not None:
                    self._maybe_update_queues_expire(client, queue)
                    payload = self._decode(item, queue)
                    if payload is not None:
                        return payload
            self._maybe_update_queues_expire(client, queue)
            raise redis.Empty()


class RedisTransport(redis.Transport):
    Channel = RedisChannel


def transport_options(prefix: str) -> dict:
    """Transport options for the guarded transports: where a bad Redis item goes (ignored elsewhere)."""
    return {"quarantine_key": f"{prefix}quarantine", "quarantine_max": QUARANTINE_MAX}


def install() -> None:
    """Make ``filesystem://``, ``redis://`` and ``rediss://`` mean the guarded transports in this process."""
    TRANSPORT_ALIASES["filesystem"] = "worker.broker_guard:Transport"
    for name in ("redis", "rediss"):
        TRANSPORT_ALIASES[name] = "worker.broker_guard:RedisTransport"
    for name in ("filesystem", "redis", "rediss"):
        _transport_cache.pop(name, None)
