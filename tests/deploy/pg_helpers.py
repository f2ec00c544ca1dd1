"""Throwaway PostgreSQL databases and roles for the deploy tests, and the read-only role's init script."""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from sqlalchemy import make_url

REPO = Path(__file__).resolve().parents[2]
INIT_SCRIPT = REPO / "docker" / "postgres-init" / "10-readonly-role.sh"
PG_BASE_URL = os.environ.get("RNNLAB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@dataclass
class PgTarget:
    """A fresh database with an owner role and a read-only role name (not created yet)."""

    db: str
    owner: str
    readonly: str
    readonly_password: str

    def url(self, role: str) -> str:
        """SQLAlchemy URL of this database as role (the local server trusts local connections)."""
        return make_url(PG_BASE_URL).set(database=self.db, username=role, password=None).render_as_string(
            hide_password=False)

    def libpq(self, role: str) -> str:
        return self.url(role).replace("postgresql+psycopg://", "postgresql://")


def admin() -> psycopg.Connection:
    return psycopg.connect(PG_BASE_URL.replace("postgresql+psycopg://", "postgresql://"), autocommit=True,
                           connect_timeout=5)


@contextlib.contextmanager
def fresh_database(tag: str, superuser: bool = False) -> Iterator[PgTarget]:
    """Create an owner role (CREATEROLE, like the image's POSTGRES_USER; ``superuser``: SUPERUSER, as
    that user is in the postgres image) and its database; drop both after."""
    suffix = uuid.uuid4().hex[:8]
    t = PgTarget(f"rnnlab_{tag}_{suffix}", f"rnnlab_{tag}_own_{suffix}", f"rnnlab_{tag}_ro_{suffix}",
                 f"pw-{uuid.uuid4().hex}")
    with admin() as conn:
        conn.execute(f'CREATE ROLE "{t.owner}" LOGIN {"SUPERUSER" if superuser else "CREATEROLE"}')
        conn.execute(f'CREATE DATABASE "{t.db}" OWNER "{t.owner}"')
    try:
        yield t
    finally:
        with admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{t.db}" WITH (FORCE)')
            for role in (t.readonly, t.owner):
                conn.execute(f'DROP ROLE IF EXISTS "{role}"')


def run_init_script(t: PgTarget, timeout: str = "10s") -> subprocess.CompletedProcess:
    """Run docker/postgres-init/10-readonly-role.sh as the postgres image would, over TCP."""
    u = make_url(PG_BASE_URL)
    env = {**os.environ, "PGHOST": u.host or "127.0.0.1", "PGPORT": str(u.port or 5432),
           "POSTGRES_USER": t.owner, "POSTGRES_DB": t.db, "RNNLAB_READONLY_USER": t.readonly,
           "RNNLAB_READONLY_PASSWORD": t.readonly_password, "RNNLAB_READONLY_TIMEOUT": timeout}
    return subprocess.run(["sh", str(INIT_SCRIPT)], env=env, capture_output=True, text=True, timeout=60)
