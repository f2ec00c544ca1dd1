"""run ids are never reused on SQLite; saved views

- runs: on SQLite the table is rebuilt with AUTOINCREMENT, so the id of a deleted run is never
  handed to a new one (an old ``/run?run=26`` link can no longer show another experiment).
  PostgreSQL sequences never reuse ids, so nothing changes there. The rebuild keeps every row,
  column, index and constraint; the copy runs with foreign keys off (db/migrations/env.py), so
  the child tables are untouched. Ids deleted before this migration above the highest surviving
  id cannot be known any more and may still be reused once.
- saved_views: a named Runs / Compare / Strategies / Explorer view, stored as the page's URL query
  string and listed for the whole team.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 05:30:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def _rebuild_runs(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != 'sqlite':
        return
    with op.batch_alter_table('runs', recreate='always',
                              table_kwargs={'sqlite_autoincrement': autoincrement}) as batch_op:
        batch_op.create_check_constraint(
            'status', "status IN ('queued','running','succeeded','failed','diverged','cancelled')")


def upgrade() -> None:
    _rebuild_runs(True)
    op.create_table('saved_views',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('page', sa.String(length=20), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('query', sa.Text(), nullable=False),
    sa.Column('owner', sa.String(length=100), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_saved_views')),
    sa.UniqueConstraint('page', 'name', name=op.f('uq_saved_views_page_name')),
    sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table('saved_views')
    _rebuild_runs(False)
