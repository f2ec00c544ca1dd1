"""worker.kombu_internals, the one module that reaches into kombu, against the installed kombu: its
version is in the tested range, the methods copied from it are unchanged, the attributes and keys it
relies on exist, and a message sent through Celery lands where the module looks for it, in a real
filesystem broker and a real Redis. And no other module of worker/, db/, rnnlab/, client/ or cli/
touches kombu's private names, transport modules or storage layout (an AST scan; old code:
worker/orphans.py read Redis keys and message files itself, worker/broker_guard.py subclassed kombu's
transports)."""

from __future__ import annotations

import ast
import re
import time
import tomllib
from pathlib import Path

import kombu
import pytest
import redis
from kombu.transport import TRANSPORT_ALIASES, _transport_cache, resolve_transport, virtual
from kombu.transport import filesystem as kombu_filesystem
from kombu.transport import redis as kombu_redis

from rnnlab.queue import TASK_RUN, send_run
from worker import broker_guard
from worker import kombu_internals as ki

REPO = Path(__file__).resolve().parents[2]
SCANNED = ("worker", "db", "rnnlab", "client", "cli")
ALLOWED = {"worker/kombu_internals.py"}


def test_installed_kombu_is_in_the_tested_range_and_pinned_to_it():
    assert ki.kombu_supported(), f"kombu {kombu.__version__} is outside the tested range {ki.KOMBU_RANGE}"
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    (pin,) = [d for d in deps if re.match(r"kombu\b", d)]
    (low, high) = ki.KOMBU_RANGE
    assert pin.replace(" ", "") == f"kombu>={low[0]}.{low[1]},<{high[0]}.{high[1]}"


@pytest.mark.parametrize("where", sorted(ki.COPIED_SOURCE))
def test_the_kombu_methods_copied_or_replaced_are_unchanged(where):
    """RedisChannel's _get and _brpop_read are copies of kombu's, FilesystemChannel._get replaces kombu's: a
    kombu whose originals changed must be read again (and the copies redone) before it is allowed."""
    assert ki.source_hash(where) == ki.COPIED_SOURCE[where], f"{where} changed in kombu {kombu.__version__}"


def test_the_attributes_relied_on_exist():
    ch = kombu_redis.Channel
    assert ch.unacked_key == "unacked" and ch.unacked_index_key == "unacked_index"
    assert isinstance(ch.sep, str) and ch.sep and list(ch.priority_steps)[0] == 0
    for name in ("_q_for_pri", "_get", "_brpop_read", "_maybe_update_queues_expire", "_flush_brpop_reauth",
                 "conn_or_acquire", "Message"):
        assert callable(getattr(ch, name)), name
    assert ch._in_poll is False and isinstance(ch.from_transport_options, tuple)
    assert "global_keyprefix" in ch.from_transport_options
    assert issubclass(kombu_filesystem.Channel, virtual.Channel)
    assert "data_folder_in" in vars(kombu_filesystem.Channel)   # the option, read on the channel
    assert isinstance(TRANSPORT_ALIASES, dict) and isinstance(_transport_cache, dict)
    assert ki.Empty is kombu_filesystem.Empty   # both raise queue.Empty


def test_a_subclass_reads_its_extra_transport_options(redis_url, broker_factory):
    prefix = broker_factory("redis").prefix
    options = broker_guard.transport_options(prefix)
    with kombu.Connection(redis_url, transport=broker_guard.RedisTransport, transport_options=options) as conn:
        ch = conn.default_channel
        assert (ch.quarantine_key, ch.quarantine_max) == (f"{prefix}quarantine", broker_guard.QUARANTINE_MAX)
        assert "visibility_timeout" in type(ch).from_transport_options   # kombu's own are kept


def _run_id(env: dict) -> int:
    assert env["headers"]["task"] == TASK_RUN      # Celery protocol 2: the task name in the headers
    args, _kwargs, _embed = ki.envelope_body(env)
    return args[0]


def test_a_filesystem_message_lands_where_the_module_looks(fs_broker):
    app = fs_broker.app()
    queue = f"{fs_broker.prefix}cpu"
    folder = ki.filesystem_queue_folder(app.conf.broker_transport_options)
    send_run(app, 41, "cpu")
    time.sleep(0.005)                               # names start with kombu's clock in ms: keep them apart
    send_run(app, 42, "cpu")
    send_run(app, 43, "gpu")
    files = ki.message_files(folder, [queue])
    assert [p.parent for p in files] == [folder, folder]
    for p in files:
        assert re.fullmatch(rf"\d+_[0-9a-f-]{{36}}\.{re.escape(queue)}\.msg", p.name), p.name
        assert ki.message_file_queue(p.name) == queue
    envs = [ki.parse_message(ki.read_message_file(p)) for p in files]
    assert [_run_id(e) for e in envs] == [41, 42]   # in the order they were sent: kombu's order
    assert [_run_id(ki.parse_message(ki.read_message_file(p)))
            for p in ki.message_files(folder, [f"{fs_broker.prefix}gpu"])] == [43]
    assert ki.message_files(folder, [f"{fs_broker.prefix}other"]) == []
    with app.connection_for_read() as conn:         # kombu's own consumer takes the first file listed
        msg = conn.default_channel.basic_get(queue, no_ack=True)
        assert msg.payload[0] == [41]
    assert ki.message_files(folder, [queue]) == files[1:]


def test_a_redis_message_lands_where_the_module_looks(redis_url, broker_factory):
    broker = broker_factory("redis")
    app = broker.app()
    queue = f"{broker.prefix}cpu"
    client = redis.Redis.from_url(redis_url)
    send_run(app, 51, "cpu")
    app.send_task(TASK_RUN, args=[52], queue=queue, priority=5)   # another priority level, another list
    with app.connection_for_read() as conn:
        ch = conn.default_channel
        keys = ki.redis_queue_keys(ch, queue)
        assert queue in keys and all(k == queue or k.startswith(queue + ch.sep) for k in keys)
        with_items = sorted(k.decode() for k in client.keys(f"{broker.prefix}*") if client.type(k) == b"list")
        assert len(with_items) == 2 and set(with_items) <= set(keys)   # each message in a list the module reads
        waiting, _held = ki.redis_held(ch, [queue])
        assert sorted(_run_id(ki.parse_message(raw)) for raw in waiting) == [51, 52]
        assert any(client.exists(k) for p in ki.redis_setup_key_patterns(broker.prefix)[1:]
                   for k in client.scan_iter(match=p)), "no exchange binding key where the module says"

        before = time.time()
        taken = ch.basic_get(queue, no_ack=False)                # a worker took one: delivered, not acked
        tag = taken.delivery_tag
        assert client.hexists("unacked", tag) and client.zscore("unacked_index", tag) is not None
        waiting, held = ki.redis_held(ch, [queue])
        mine = [(e, rk, at) for e, rk, at in held if e["properties"]["delivery_tag"] == tag]
        assert len(mine) == 1 and mine[0][1] == queue and abs(mine[0][2] - before) < 60
        assert {_run_id(mine[0][0])} | {_run_id(ki.parse_message(raw)) for raw in waiting} == {51, 52}
        taken.ack()
        assert not client.hexists("unacked", tag)
        _waiting, held = ki.redis_held(ch, [queue])
        assert all(e["properties"]["delivery_tag"] != tag for e, _rk, _at in held)


def test_register_transport_takes_effect_at_once():
    scheme = "rnnlab-kombu-internals-test"
    try:
        ki.register_transport(scheme, "worker.broker_guard:Transport")
        assert resolve_transport(scheme) is broker_guard.Transport
        ki.register_transport(scheme, "worker.broker_guard:RedisTransport")   # the cached class is dropped
        assert resolve_transport(scheme) is broker_guard.RedisTransport
    finally:
        TRANSPORT_ALIASES.pop(scheme, None)
        _transport_cache.pop(scheme, None)


# ---------------------------------------------------------------------------------------------
# No other module touches kombu's internals
# ---------------------------------------------------------------------------------------------

def kombu_private_names() -> set[str]:
    """Private (single underscore) names of the kombu and Celery classes and transport modules rnnlab uses."""
    import celery
    from kombu.message import Message

    names: set[str] = set()
    for cls in (kombu_redis.Channel, kombu_redis.Transport, kombu_redis.QoS, kombu_filesystem.Channel,
                kombu_filesystem.Transport, virtual.Channel, virtual.Transport, virtual.QoS, kombu.Connection,
                kombu.Producer, kombu.Consumer, kombu.Queue, kombu.Exchange, Message, celery.Celery):
        names |= {n for n in dir(cls) if n.startswith("_") and not n.startswith("__")}
    import kombu.transport as transports

    for module in (transports, kombu_redis, kombu_filesystem, virtual):
        names |= {n for n in vars(module) if n.startswith("_") and not n.startswith("__")}
    return names


# public-looking names that are kombu's storage layout or transport internals
INTERNAL_ATTRIBUTES = {"sep", "priority_steps", "unacked_key", "unacked_index_key", "unacked_mutex_key",
                       "from_transport_options", "conn_or_acquire", "parse_response", "data_folder_in"}


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def kombu_internal_uses(source: str, private: set[str]) -> list[str]:
    """What in ``source`` reaches into kombu: imports of kombu's transport or utility modules or of
    private kombu/Celery names, private kombu attribute names, the internal attributes above, and
    string constants naming kombu's Redis keys or message files."""
    tree = ast.parse(source)
    docstrings = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)}
    found = []
    for node in ast.walk(tree):
        where = f"line {getattr(node, 'lineno', '?')}"
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            imported = [] if isinstance(node, ast.Import) else [a.name for a in node.names]
            for module in modules:
                parts = module.split(".")
                if parts[0] not in ("kombu", "celery"):
                    continue
                if module.startswith(("kombu.transport", "kombu.utils")) or \
                        any(p.startswith("_") for p in parts + imported):
                    found.append(f"{where}: imports {module} {imported or ''}".strip())
        elif isinstance(node, ast.Attribute):
            if node.attr in private or (node.attr in INTERNAL_ATTRIBUTES and
                                        _dotted(node.value) not in ("os", "os.path", "posixpath")):
                found.append(f"{where}: .{node.attr}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            s = node.value
            if s in ("unacked", "unacked_index", "unacked_mutex") or "_kombu." in s or s.endswith(".msg"):
                found.append(f"{where}: {s!r}")
    return found


def test_the_scan_finds_each_kind_of_use():
    private = kombu_private_names()
    assert "_transport_cache" in private and "_q_for_pri" in private and "_deliver" in private
    examples = {
        "from kombu.transport import redis": 1, "from kombu.transport import _transport_cache": 1,
        "from kombu.utils.json import loads": 1, "import kombu.transport.filesystem": 1,
        "from celery._state import get_current_app": 1,
        "keys = channel._q_for_pri(q, 3)": 1, "channel.priority_steps": 1, "k = ch.sep": 1,
        "pipe.hgetall(channel.unacked_key)": 1, "c.hgetall('unacked')": 1, "name = f'{q}.msg'": 1,
        "p = '_kombu.binding.x'": 1,
        # public API and look-alikes: not flagged
        "from kombu import Queue": 0, "import os\nx = os.sep": 0, "conn.default_channel.basic_get(q)": 0,
        "def f():\n    '''reads kombu's unacked hash'''": 0, "self._missing = {}": 0,
    }
    for source, n in examples.items():
        assert len(kombu_internal_uses(source, private)) == n, (source, kombu_internal_uses(source, private))


def test_no_module_but_kombu_internals_touches_kombus_internals():
    private = kombu_private_names()
    offenders = {}
    for folder in SCANNED:
        for path in sorted((REPO / folder).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            if rel in ALLOWED:
                continue
            uses = kombu_internal_uses(path.read_text(encoding="utf-8"), private)
            if uses:
                offenders[rel] = uses
    assert offenders == {}, f"use worker/kombu_internals.py instead: {offenders}"
    assert kombu_internal_uses((REPO / "worker/kombu_internals.py").read_text(), private)   # the scan sees it


def test_a_message_that_is_not_utf8_is_refused_not_patched():
    """Bad bytes raise (so the guard quarantines the message) instead of becoming U+FFFD in the body."""
    from worker.kombu_internals import parse_message

    with pytest.raises(UnicodeDecodeError):
        parse_message(b'{"body": "x\xff"}')
    assert parse_message(b'{"body": "x"}') == {"body": "x"}
