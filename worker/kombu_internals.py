"""Every use of kombu's internals in rnnlab, in one module (tested with kombu 5.7.0; pyproject pins
``kombu>=5.7,<5.8``, KOMBU_RANGE).

The lost-message check (worker.orphans) reads the messages a broker holds, and the broker guard
(worker.broker_guard) replaces how a worker takes them; kombu has no public API for either, so both go
through the functions and classes here, and no other module of rnnlab touches kombu's private names,
its transport modules or its storage layout. tests/worker/test_kombu_internals.py checks every
assumption below against the installed kombu, a real Redis and a real filesystem broker (and scans
the other modules for private kombu names), so an upgrade that breaks one fails there, loudly.

What rnnlab relies on:

- The stored message (the "envelope") of kombu's virtual transports: JSON ``{"body", "content-encoding",
  "content-type", "headers", "properties": {"body_encoding", "delivery_tag", ...}}``; the body is
  base64-encoded when ``properties.body_encoding`` is "base64" (envelope_body).
- The filesystem transport: one file per message in the folder of the ``data_folder_in`` transport
  option, named ``<monotonic ms>_<uuid>.<queue>.msg``, written under an exclusive flock and taken
  in sorted name order by ``Channel._get`` (message_files, read_message_file, FilesystemChannel).
- The Redis transport: one list per queue and priority level (``Channel._q_for_pri``, over
  ``priority_steps``: ``queue`` and ``queue<sep><n>``); a message delivered and not acked yet is kept
  in the ``unacked`` hash (delivery tag → JSON ``[envelope, exchange, routing_key]``) with its delivery
  time in the ``unacked_index`` sorted set (``Channel.unacked_key``, ``unacked_index_key``); keys are
  not prefixed unless the ``global_keyprefix`` option is set (redis_held, RedisChannel). Exchange
  bindings live in ``_kombu.binding.<exchange>`` sets (redis_setup_key_patterns).
- Messages are popped by ``Channel._get`` and ``Channel._brpop_read``: RedisChannel's are copies of
  kombu 5.7.0's with the decoding moved into a hook (COPIED_SOURCE holds the hashes of the originals).
  A channel reads its transport options from the names in ``Channel.from_transport_options``.
- Transports are looked up by name in ``kombu.transport.TRANSPORT_ALIASES``, cached in its private
  ``_transport_cache`` (register_transport).
"""

from __future__ import annotations

import base64
import hashlib
import inspect
import os
from collections.abc import Iterable
from pathlib import Path

import kombu
from kombu.transport import TRANSPORT_ALIASES, _transport_cache, filesystem, redis
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import loads

KOMBU_RANGE = ((5, 7), (5, 8))   # tested: 5.7 <= kombu < 5.8 (pyproject.toml pins the same)

# sha256 of the source of the kombu methods that are copied or replaced here, as in kombu 5.7.0: a kombu
# whose methods changed must be read again before these copies are trusted (tests/worker/test_kombu_internals.py)
COPIED_SOURCE = {
    "kombu.transport.redis:Channel._brpop_read": "c42518699709f2df90f55a048fe6346612ae5527e5c4a6819f2c0920dc62088f",
    "kombu.transport.redis:Channel._get": "be26a9f1eb4cf8da2aa65f4815a1709bf80b4434b064d3d7146872d318ad506c",
    "kombu.transport.filesystem:Channel._get": "ecaf5682c3d5145860fabbdc8c62e07f1095d35e779e7e2bf25c06b888b946b0",
}

Empty = redis.Empty   # queue.Empty: what a transport's _get raises when nothing is waiting

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: read without the lock
    fcntl = None


def kombu_version() -> tuple[int, int]:
    return tuple(int(x) for x in kombu.__version__.split(".")[:2])


def kombu_supported() -> bool:
    """Whether the installed kombu is in the tested range."""
    low, high = KOMBU_RANGE
    return low <= kombu_version() < high


def source_hash(where: str) -> str:
    """sha256 of the source of ``module:Class.method`` in the installed kombu."""
    module, _, name = where.partition(":")
    obj = __import__(module, fromlist=["_"])
    for part in name.split("."):
        obj = getattr(obj, part)
    return hashlib.sha256(inspect.getsource(obj).encode()).hexdigest()


# ---------------------------------------------------------------------------------------------
# The stored message
# ---------------------------------------------------------------------------------------------

def parse_message(raw: bytes | str) -> dict:
    """A stored message (a filesystem message file, a Redis list item) parsed as kombu does; ValueError
    (including UnicodeDecodeError) if it is not JSON."""
    # strict UTF-8: kombu's bytes_to_str would put U+FFFD in place of bad bytes and deliver a corrupt message
    return loads(raw.decode("utf-8") if isinstance(raw, (bytes, bytearray)) else raw)


def envelope_body(env: dict):
    """The body of a parsed envelope, decoded: base64 undone when ``properties.body_encoding`` says so,
    bytes decoded by ``content-encoding``, and JSON text parsed (a Celery message is JSON)."""
    body = env.get("body")
    if (env.get("properties") or {}).get("body_encoding") == "base64":
        body = base64.b64decode(body)
    if isinstance(body, (bytes, bytearray)):
        body = body.decode(env.get("content-encoding") or "utf-8")
    if isinstance(body, str):
        body = loads(body)
    return body


# ---------------------------------------------------------------------------------------------
# The filesystem transport
# ---------------------------------------------------------------------------------------------

MESSAGE_SUFFIX = ".msg"


def filesystem_queue_folder(options: dict) -> Path:
    """The folder the filesystem transport takes messages from (its ``data_folder_in`` option)."""
    return Path(options["data_folder_in"])


def message_file_queue(filename: str) -> str | None:
    """The queue of a message file named ``<time>_<uuid>.<queue>.msg`` (kombu's own test: what follows the
    first dot); None for another file."""
    rest = filename.partition(".")[2]
    return rest[: -len(MESSAGE_SUFFIX)] if rest.endswith(MESSAGE_SUFFIX) else None


def message_files(folder: str | Path, queues: Iterable[str]) -> list[Path]:
    """The message files waiting in ``folder`` for ``queues``, in the order kombu takes them."""
    wanted = set(queues)
    return [Path(folder) / name for name in sorted(os.listdir(folder)) if message_file_queue(name) in wanted]


def read_message_file(path: Path) -> bytes:
    """A message file's bytes, under a shared lock (kombu writes it under an exclusive one)."""
    with open(path, "rb") as f:
        if fcntl is not None:
            fcntl.flock(f.fileno(), fcntl.LOCK_SH)
        try:
            return f.read()
        finally:
            if fcntl is not None:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)


class FilesystemChannel(filesystem.Channel):
    """kombu's filesystem channel whose ``_get`` hands each waiting message file of the queue, in kombu's
    order, to ``take(path)``: the parsed message, or None to go on with the next file."""

    @property
    def queue_folder(self) -> Path:
        return Path(self.data_folder_in)

    def take(self, path: Path) -> dict | None:   # pragma: no cover - subclasses decide
        raise NotImplementedError

    def check_message(self, payload: dict) -> None:
        """Raise as kombu would when it builds the message from ``payload`` (a bad envelope)."""
        self.Message(payload, channel=self)

    def _get(self, queue):
        for path in message_files(self.queue_folder, [queue]):
            payload = self.take(path)
            if payload is not None:
                return payload
        raise Empty()


class FilesystemTransport(filesystem.Transport):
    Channel = FilesystemChannel


# ---------------------------------------------------------------------------------------------
# The Redis transport
# ---------------------------------------------------------------------------------------------

def redis_supported(options: dict) -> bool:
    """Whether the keys of a Redis broker with these transport options can be read here (not with a
    ``global_keyprefix``: every key would be misread)."""
    return not options.get("global_keyprefix")


def redis_queue_keys(channel, queue: str) -> list[str]:
    """The Redis lists of ``queue``, one per priority level (``queue``, ``queue<sep>3``, …)."""
    return sorted({channel._q_for_pri(queue, p) for p in channel.priority_steps})


def redis_held(channel, queue_names: list[str]) -> tuple[list[bytes], list[tuple[dict, str, float | None]]]:
    """What a Redis broker holds for ``queue_names``, read in one round trip: the items waiting in their
    lists, and every message delivered and not acked yet (of any queue) as ``(envelope, routing_key,
    delivered_at)`` (``delivered_at``: Unix time; None if unknown). ``channel``: a kombu Redis channel."""
    keys = sorted({k for q in queue_names for k in redis_queue_keys(channel, q)})
    pipe = channel.client.pipeline(transaction=False)
    for key in keys:
        pipe.lrange(key, 0, -1)
    pipe.hgetall(channel.unacked_key)
    pipe.zrange(channel.unacked_index_key, 0, -1, withscores=True)
    *lists, unacked, index = pipe.execute()
    delivered = dict(index)
    held = []
    for tag, raw in unacked.items():
        try:
            env, _exchange, routing_key = loads(bytes_to_str(raw))
        except (ValueError, TypeError):
            continue
        if isinstance(env, dict):
            held.append((env, routing_key, delivered.get(tag)))
    return [item for entries in lists for item in entries], held


def redis_setup_key_patterns(prefix: str) -> list[str]:
    """Key patterns of what a setup whose queue names start with ``prefix`` leaves in Redis: its queue
    lists and their exchange bindings."""
    return [f"{prefix}*", f"_kombu.binding*.{prefix}*"]


class RedisChannel(redis.Channel):
    """kombu's Redis channel whose pops (``_get``, ``_brpop_read``) hand each popped item to
    ``decode_item(item, queue)``: the parsed message, or None to skip it. A subclass names the extra
    transport options it reads in ``extra_options``."""

    extra_options: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.from_transport_options = redis.Channel.from_transport_options + tuple(cls.extra_options)

    def decode_item(self, item: bytes, queue: str) -> dict | None:
        return parse_message(item)

    def check_message(self, payload: dict) -> None:
        """Raise as kombu would when it builds the message from ``payload`` (a bad envelope)."""
        self.Message(payload, channel=self)

    def push_capped(self, key: str, item: bytes, keep: int) -> None:
        """Push ``item`` onto the Redis list ``key``, keeping its newest ``keep`` items."""
        with self.conn_or_acquire() as client:
            client.pipeline().lpush(key, item).ltrim(key, 0, keep - 1).execute()

    # kombu 5.7.0's Channel._brpop_read and Channel._get, with loads(...) replaced by decode_item
    def _brpop_read(self, **options):
        try:
            try:
                dest__item = self.client.parse_response(self.client.connection, "BRPOP", **options)
            except self.connection_errors:
                self.client.connection.disconnect()   # the next poll reconnects
                raise
            if not dest__item:
                raise Empty()
            dest, item = dest__item
            dest = bytes_to_str(dest).rsplit(self.sep, 1)[0]
            self._queue_cycle.rotate(dest)
            payload = self.decode_item(item, dest)
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
                    payload = self.decode_item(item, queue)
                    if payload is not None:
                        return payload
            self._maybe_update_queues_expire(client, queue)
            raise Empty()


class RedisTransport(redis.Transport):
    Channel = RedisChannel


# ---------------------------------------------------------------------------------------------
# Transport registration
# ---------------------------------------------------------------------------------------------

def register_transport(scheme: str, target: str) -> None:
    """Make the URL scheme ``scheme`` (``filesystem``, ``redis``…) mean the transport class ``target``
    (``"module:Class"``) in this process, for connections made from now on."""
    TRANSPORT_ALIASES[scheme] = target
    _transport_cache.pop(scheme, None)
