"""Alembic migrations of the results database (applied by db.migrate)."""
