"""last-step-loss profiles, held-out uncertainty, sign-in throttle

- grad_profiles.kind is widened to 8 characters and may be 'h_last': ‖∂ℓ_T/∂h_t‖, the gradient
  of the last step's loss alone (recorded for every-step tasks, where kind 'h' is ‖∂L/∂h_t‖ of the
  whole loss).
- epochs.val_loss_se: standard error of the held-out loss (std of per-sequence losses / √N).
- runs.baseline_heldout_loss: the trivial predictor's loss on this run's own held-out set.
- login_throttle: failed sign-ins per key (client, client+name), shared by dashboard processes.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 01:55:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('grad_profiles', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_grad_profiles_kind'), type_='check')
        batch_op.alter_column('kind', existing_type=sa.String(length=1), type_=sa.String(length=8),
                              existing_nullable=False)
        batch_op.create_check_constraint(op.f('ck_grad_profiles_kind'), "kind IN ('h','c','h_last')")
    with op.batch_alter_table('epochs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('val_loss_se', sa.Float(), nullable=True))
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('baseline_heldout_loss', sa.Float(), nullable=True))
    op.create_table('login_throttle',
    sa.Column('key', sa.String(length=300), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('first_failure_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_failure_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_login_throttle'))
    )


def downgrade() -> None:
    op.drop_table('login_throttle')
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_column('baseline_heldout_loss')
    with op.batch_alter_table('epochs', schema=None) as batch_op:
        batch_op.drop_column('val_loss_se')
    op.execute("DELETE FROM grad_profiles WHERE kind = 'h_last'")
    with op.batch_alter_table('grad_profiles', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_grad_profiles_kind'), type_='check')
        batch_op.alter_column('kind', existing_type=sa.String(length=8), type_=sa.String(length=1),
                              existing_nullable=False)
        batch_op.create_check_constraint(op.f('ck_grad_profiles_kind'), "kind IN ('h','c')")
