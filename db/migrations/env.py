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
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # Batch migrations rebuild a table (copy, drop, rename). With foreign keys on, dropping the
            # old table would cascade-delete every child row. SQLite ignores this pragma inside a
            # transaction, so it is set on the driver's connection before SQLAlchemy begins one.
            connection.connection.driver_connection.execute("PRAGMA foreign_keys = OFF")
        try:
            context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True,
                              compare_type=True)
            with context.begin_transaction():
                context.run_migrations()
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise RuntimeError(f"migration left {len(broken)} rows with a dangling foreign key; "
                                           f"rolled back (first: {broken[0]})")
        finally:
            if sqlite:
                connection.invalidate()  # never pool a connection with foreign keys off


if context.is_offline_mode():
    run_offline()
else:
    run_online()
