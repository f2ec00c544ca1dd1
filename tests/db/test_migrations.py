"""Migrations build the schema from empty on both backends, and the ORM never drifts from them."""

import threading

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from db.engine import get_engine
from db.migrate import current, ensure_schema, head, upgrade
from db.models import Base

FIX = (
    "db/models.py and the migrations in db/migrations/versions disagree. If you changed the models, "
    "generate a migration:  .venv/bin/python -m db.revision \"describe the change\"  then review the new "
    "file in db/migrations/versions/ (and update docs/schema.md). Differences:\n"
)


def test_upgrade_from_empty_creates_every_table(tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    assert current(url) is None
    assert upgrade(url) == head()
    assert set(inspect(get_engine(url)).get_table_names()) == set(Base.metadata.tables) | {"alembic_version"}
    ensure_schema(url)  # a no-op at head
    assert current(url) == head()


def test_orm_matches_migrations(db_url):
    with get_engine(db_url).connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert not diff, FIX + "\n".join(map(str, diff))


def test_sqlite_pragmas(sqlite_url):
    with get_engine(sqlite_url).connect() as conn:
        pragmas = {p: conn.exec_driver_sql(f"PRAGMA {p}").scalar() for p in
                   ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")}
    assert pragmas == {"journal_mode": "wal", "synchronous": 1, "foreign_keys": 1, "busy_timeout": 30000}



@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_concurrent_upgrades_are_serialized(backend, tmp_path, fresh_pg_database):
    """Several processes starting at once (workers, the app) may all migrate; none may fail."""
    url = f"sqlite:///{tmp_path / 'race.db'}" if backend == "sqlite" else fresh_pg_database()
    errors = []

    def migrate():
        try:
            upgrade(url)
        except Exception as e:  # noqa: BLE001 - collected
            errors.append(e)

    threads = [threading.Thread(target=migrate) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and current(url) == head()


def test_a_database_migrated_by_newer_code_is_left_alone_by_an_older_worker(db_url, caplog):
    """A rolling upgrade: `rnnlab db upgrade` ran with newer code (a revision this code does not know)
    while an older worker is still running or starts. Its first heartbeat calls ensure_schema, which
    tried to upgrade and failed on every beat ("Can't locate revision"): the worker never registered.
    It now leaves the database as it is and says so."""
    import logging

    from sqlalchemy import text

    upgrade(db_url)
    with get_engine(db_url).begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    try:
        with caplog.at_level(logging.WARNING, logger="rnnlab.db"):
            ensure_schema(db_url)
        assert current(db_url) == "9999"
        assert any("newer than this code" in r.getMessage() for r in caplog.records)
    finally:   # the PostgreSQL test database is shared by the tests that follow: give it its revision back
        with get_engine(db_url).begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head()})
