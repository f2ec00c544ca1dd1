"""Schema migrations: run Alembic (scripts in db/migrations) from code, serialized across processes.

``rnnlab db upgrade`` and ``ensure_schema`` call ``upgrade``. Concurrent upgrades are not safe in
Alembic itself (alembic #633), so Postgres takes an advisory lock and SQLite a file lock first.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import make_url, text

from db.engine import default_url, get_engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
PG_LOCK_KEY = 0x726E6E6C  # 'rnnl'


def alembic_config(url: str | None = None) -> Config:
    """An Alembic config pointing at db/migrations and ``url`` (no alembic.ini needed)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["rnnlab_url"] = url or default_url()
    return cfg


def head() -> str:
    """The newest migration's revision id."""
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def current(url: str | None = None) -> str | None:
    """The database's revision (None for an empty database)."""
    with get_engine(url).connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@contextlib.contextmanager
def _migration_lock(url: str) -> Iterator[None]:
    u = make_url(url)
    if u.get_backend_name() == "sqlite" and u.database and u.database != ":memory:":
        lock_path = Path(u.database + ".migrate.lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_path, "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)
    elif u.get_backend_name() == "postgresql":
        with get_engine(url).connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": PG_LOCK_KEY})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": PG_LOCK_KEY})
                conn.commit()
    else:
        yield


def upgrade(url: str | None = None, revision: str = "head") -> str | None:
    """Migrate the database to ``revision``; returns the revision it is at afterwards."""
    url = url or default_url()
    with _migration_lock(url):
        command.upgrade(alembic_config(url), revision)
    return current(url)


def known(revision: str) -> bool:
    """Whether this code's migrations know ``revision`` (a database migrated by newer code is at one they
    do not)."""
    try:
        return ScriptDirectory.from_config(alembic_config("sqlite://")).get_revision(revision) is not None
    except Exception:  # noqa: BLE001 - alembic raises several types for an unknown revision
        return False


def ensure_schema(url: str | None = None) -> None:
    """Upgrade the database if it is not at the newest revision (cheap when it is). A database already
    migrated by newer code (a revision these migrations do not know) is left as it is, with a warning:
    during a rolling upgrade an older worker keeps working against the newer schema (migrations only
    add), where alembic's upgrade would fail ("Can't locate revision") on every heartbeat."""
    at = current(url)
    if at == head():
        return
    if at is not None and not known(at):
        import logging

        logging.getLogger("rnnlab.db").warning(
            "the database is at revision %s, newer than this code's %s: not migrating; upgrade rnnlab here",
            at, head())
        return
    upgrade(url)
