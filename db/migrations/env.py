"""Alembic environment: migrates the URL given by db.migrate (render_as_batch for SQLite)."""

from alembic import context

from db.engine import default_url, get_engine
from db.models import Base

config = context.config
url = config.attributes.get("rnnlab_url") or default_url()


def run_offline() -> None:
    context.configure(url=url, target_metadata=Base.metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    with get_engine(url).connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True,
                          compare_type=True)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
