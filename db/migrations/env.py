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
                _foreign_keys_back_on(connection)


def _foreign_keys_back_on(connection) -> None:
    """Never leave a pooled connection with foreign keys off: a file database's connection is thrown
    away (the pool opens a fresh one with every pragma); an in-memory database lives only in this
    connection, so the pragma is set back on it instead, after the migration's transaction."""
    database = connection.engine.url.database
    if database and database != ":memory:" and "mode=memory" not in str(connection.engine.url):
        connection.invalidate()
        return
    if connection.in_transaction():
        connection.commit()
    driver = connection.connection.driver_connection
    if driver.in_transaction:
        driver.commit()
    driver.execute("PRAGMA foreign_keys = ON")


if context.is_offline_mode():
    run_offline()
else:
    run_online()
