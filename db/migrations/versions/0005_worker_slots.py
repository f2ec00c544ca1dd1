"""workers.slots: how many runs a worker trains at a time

The time estimate on the New experiment page spreads a sweep over the slots of the live workers that
serve its queue; before this column a worker started with ``--slots N`` counted as one. NULL for a
worker that has not reported it (one slot is assumed).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 15:05:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('workers') as batch_op:
        batch_op.add_column(sa.Column('slots', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('workers') as batch_op:
        batch_op.drop_column('slots')
