"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-27 03:39:04.425113
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None

# JSON on SQLite, JSONB on Postgres (frozen here: migrations never import the live models)
JSONType = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


def upgrade() -> None:
    op.create_table('sweeps',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=True),
    sa.Column('spec', JSONType, nullable=False),
    sa.Column('owner', sa.String(length=100), nullable=True),
    sa.Column('n_runs', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sweeps'))
    )
    op.create_table('workers',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('host', sa.String(length=200), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=True),
    sa.Column('queues', sa.String(length=100), nullable=False),
    sa.Column('device', sa.String(length=200), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('current_run_id', sa.Integer(), nullable=True),
    sa.Column('stopped_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_workers'))
    )
    op.create_table('runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sweep_id', sa.Integer(), nullable=True),
    sa.Column('name', sa.String(length=200), nullable=True),
    sa.Column('spec', JSONType, nullable=False),
    sa.Column('spec_version', sa.Integer(), nullable=False),
    sa.Column('spec_hash', sa.String(length=64), nullable=False),
    sa.Column('task', sa.String(length=40), nullable=False),
    sa.Column('cell', sa.String(length=10), nullable=False),
    sa.Column('activation', sa.String(length=20), nullable=True),
    sa.Column('init', sa.String(length=40), nullable=False),
    sa.Column('clip', sa.String(length=10), nullable=False),
    sa.Column('seq_len', sa.Integer(), nullable=False),
    sa.Column('hidden_size', sa.Integer(), nullable=False),
    sa.Column('num_layers', sa.Integer(), nullable=False),
    sa.Column('seed', sa.Integer(), nullable=False),
    sa.Column('queue', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('message', sa.Text(), nullable=True),
    sa.Column('cancel_requested', sa.Boolean(), nullable=False),
    sa.Column('owner', sa.String(length=100), nullable=True),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('worker', sa.String(length=200), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('code_version', sa.String(length=80), nullable=True),
    sa.Column('info', JSONType, nullable=True),
    sa.Column('metric_name', sa.String(length=40), nullable=True),
    sa.Column('baseline_loss', sa.Float(), nullable=True),
    sa.Column('baseline_metric', sa.Float(), nullable=True),
    sa.Column('epochs_total', sa.Integer(), nullable=False),
    sa.Column('epochs_done', sa.Integer(), nullable=False),
    sa.Column('last_val_loss', sa.Float(), nullable=True),
    sa.Column('last_val_metric', sa.Float(), nullable=True),
    sa.Column('last_horizon', sa.Float(), nullable=True),
    sa.Column('last_log_ratio', sa.Float(), nullable=True),
    sa.Column('diagnosis', sa.Text(), nullable=True),
    sa.CheckConstraint("status IN ('queued','running','succeeded','failed','diverged','cancelled')", name=op.f('ck_runs_status')),
    sa.ForeignKeyConstraint(['sweep_id'], ['sweeps.id'], name=op.f('fk_runs_sweep_id_sweeps'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_runs'))
    )
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.create_index('ix_runs_spec_hash', ['spec_hash'], unique=False)
        batch_op.create_index('ix_runs_status_created', ['status', 'created_at'], unique=False)
        batch_op.create_index('ix_runs_sweep', ['sweep_id'], unique=False)

    op.create_table('checkpoints',
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('epoch', sa.Integer(), nullable=False),
    sa.Column('state', sa.LargeBinary(), nullable=False),
    sa.Column('saved_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_checkpoints_run_id_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('run_id', name=op.f('pk_checkpoints'))
    )
    op.create_table('epochs',
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('epoch', sa.Integer(), nullable=False),
    sa.Column('steps', sa.Integer(), nullable=False),
    sa.Column('train_loss', sa.Float(), nullable=True),
    sa.Column('val_loss', sa.Float(), nullable=True),
    sa.Column('val_metric', sa.Float(), nullable=True),
    sa.Column('grad_norm_mean', sa.Float(), nullable=True),
    sa.Column('grad_norm_max', sa.Float(), nullable=True),
    sa.Column('clip_fraction', sa.Float(), nullable=True),
    sa.Column('nonfinite_steps', sa.Integer(), nullable=False),
    sa.Column('train_seconds', sa.Float(), nullable=False),
    sa.Column('diag_seconds', sa.Float(), nullable=False),
    sa.Column('probed', sa.Boolean(), nullable=False),
    sa.Column('nan_fields', JSONType, nullable=True),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_epochs_run_id_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('run_id', 'epoch', name=op.f('pk_epochs'))
    )
    op.create_table('grad_profiles',
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('epoch', sa.Integer(), nullable=False),
    sa.Column('layer', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=1), nullable=False),
    sa.Column('seq_len', sa.Integer(), nullable=False),
    sa.Column('norms', JSONType, nullable=False),
    sa.CheckConstraint("kind IN ('h','c')", name=op.f('ck_grad_profiles_kind')),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_grad_profiles_run_id_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('run_id', 'epoch', 'layer', 'kind', name=op.f('pk_grad_profiles'))
    )
    op.create_table('histograms',
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('epoch', sa.Integer(), nullable=False),
    sa.Column('param', sa.String(length=100), nullable=False),
    sa.Column('counts', JSONType, nullable=False),
    sa.Column('zeros', sa.Integer(), nullable=False),
    sa.Column('nonfinite', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_histograms_run_id_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('run_id', 'epoch', 'param', name=op.f('pk_histograms'))
    )
    op.create_table('layer_stats',
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('epoch', sa.Integer(), nullable=False),
    sa.Column('layer', sa.Integer(), nullable=False),
    sa.Column('rho', sa.Float(), nullable=True),
    sa.Column('sigma_max', sa.Float(), nullable=True),
    sa.Column('gamma_sigma_max', sa.Float(), nullable=True),
    sa.Column('gate_spectra', JSONType, nullable=True),
    sa.Column('saturated_frac', sa.Float(), nullable=True),
    sa.Column('dead_frac', sa.Float(), nullable=True),
    sa.Column('gate_mean', JSONType, nullable=True),
    sa.Column('gate_saturated', JSONType, nullable=True),
    sa.Column('log_ratio', sa.Float(), nullable=True),
    sa.Column('decay_per_step', sa.Float(), nullable=True),
    sa.Column('horizon', sa.Float(), nullable=True),
    sa.Column('steps_in_past', sa.Float(), nullable=True),
    sa.Column('nan_fields', JSONType, nullable=True),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_layer_stats_run_id_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('run_id', 'epoch', 'layer', name=op.f('pk_layer_stats'))
    )
    op.create_table('param_stats',
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('epoch', sa.Integer(), nullable=False),
    sa.Column('param', sa.String(length=100), nullable=False),
    sa.Column('grad_norm_mean', sa.Float(), nullable=True),
    sa.Column('grad_norm_max', sa.Float(), nullable=True),
    sa.Column('update_ratio', sa.Float(), nullable=True),
    sa.Column('weight_norm', sa.Float(), nullable=True),
    sa.Column('nan_fields', JSONType, nullable=True),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_param_stats_run_id_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('run_id', 'epoch', 'param', name=op.f('pk_param_stats'))
    )
    op.create_table('run_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('worker', sa.String(length=200), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('outcome', sa.String(length=20), nullable=True),
    sa.Column('message', sa.Text(), nullable=True),
    sa.Column('resumed_from_epoch', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_run_attempts_run_id_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_run_attempts')),
    sa.UniqueConstraint('run_id', 'attempt', name=op.f('uq_run_attempts_run_id_attempt'))
    )
    op.create_table('run_tags',
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('tag', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_run_tags_run_id_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('run_id', 'tag', name=op.f('pk_run_tags'))
    )
    with op.batch_alter_table('run_tags', schema=None) as batch_op:
        batch_op.create_index('ix_run_tags_tag', ['tag'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('run_tags', schema=None) as batch_op:
        batch_op.drop_index('ix_run_tags_tag')

    op.drop_table('run_tags')
    op.drop_table('run_attempts')
    op.drop_table('param_stats')
    op.drop_table('layer_stats')
    op.drop_table('histograms')
    op.drop_table('grad_profiles')
    op.drop_table('epochs')
    op.drop_table('checkpoints')
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_index('ix_runs_sweep')
        batch_op.drop_index('ix_runs_status_created')
        batch_op.drop_index('ix_runs_spec_hash')

    op.drop_table('runs')
    op.drop_table('workers')
    op.drop_table('sweeps')
