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
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from kombu.transport import TRANSPORT_ALIASES, _transport_cache, filesystem
from kombu.utils.json import loads

log = logging.getLogger(__name__)

EMPTY_GRACE_S = 5.0

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


def install() -> None:
    """Make ``filesystem://`` mean this transport in this process."""
    TRANSPORT_ALIASES["filesystem"] = "worker.broker_guard:Transport"
    _transport_cache.pop("filesystem", None)
