"""SQLAlchemy ORM tables of the results database (SQLite by default, PostgreSQL for teams).

ORM rows stay inside ``db/``: callers get plain dicts/DataFrames. ``docs/schema.md`` documents
every table and column. Float columns that may hold NaN keep a ``nan_fields`` list, because SQLite
turns NaN into NULL; ``db.store`` restores them on read.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from rnnlab.records import FINAL_STATUSES, RUN_STATUSES  # noqa: F401  (defined once, in the core; re-exported)

# Named constraints and indexes (stable names make migrations and drift checks reliable).
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


# JSON on SQLite (query with json_each / ->>), JSONB on Postgres (query with jsonb_array_elements,
# ->, ->>, @>): plain JSON on Postgres cannot be compared or indexed.
JSONType = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")

_fk_run = lambda: ForeignKey("runs.id", ondelete="CASCADE")  # noqa: E731


class Sweep(Base):
    __tablename__ = "sweeps"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    spec: Mapped[dict] = mapped_column(JSONType, nullable=False)           # the SweepSpec as submitted
    owner: Mapped[str | None] = mapped_column(String(100))
    n_runs: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (
        CheckConstraint(
            "status IN ('queued','running','succeeded','failed','diverged','cancelled')",
            name="status",
        ),
        Index("ix_runs_status_created", "status", "created_at"),
        Index("ix_runs_sweep", "sweep_id"),
        Index("ix_runs_spec_hash", "spec_hash"),
        {"sqlite_autoincrement": True},  # a deleted run's id is never reused (migration 0004)
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sweep_id: Mapped[int | None] = mapped_column(ForeignKey("sweeps.id", ondelete="SET NULL"))
    name: Mapped[str | None] = mapped_column(String(200))
    spec: Mapped[dict] = mapped_column(JSONType, nullable=False)            # JobSpec.to_dict()
    spec_version: Mapped[int] = mapped_column(Integer, nullable=False)
    spec_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    # denormalized from spec, for fast filtering and plain SQL
    task: Mapped[str] = mapped_column(String(40), nullable=False)
    cell: Mapped[str] = mapped_column(String(10), nullable=False)
    activation: Mapped[str | None] = mapped_column(String(20))
    init: Mapped[str] = mapped_column(String(40), nullable=False)        # recurrent init name
    clip: Mapped[str] = mapped_column(String(10), nullable=False)        # none | norm | value
    seq_len: Mapped[int] = mapped_column(Integer, nullable=False)
    hidden_size: Mapped[int] = mapped_column(Integer, nullable=False)
    num_layers: Mapped[int] = mapped_column(Integer, nullable=False)
    seed: Mapped[int] = mapped_column(Integer, nullable=False)
    queue: Mapped[str] = mapped_column(String(20), nullable=False)       # cpu | gpu
    # lifecycle
    status: Mapped[str] = mapped_column(String(12), nullable=False, default="queued")
    message: Mapped[str | None] = mapped_column(Text)                     # outcome / reason
    cancel_requested: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    owner: Mapped[str | None] = mapped_column(String(100))
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    worker: Mapped[str | None] = mapped_column(String(200))               # workers.name
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=3)
    code_version: Mapped[str | None] = mapped_column(String(80))
    # facts from the engine (RunInfo) and a summary of the latest epoch
    info: Mapped[dict | None] = mapped_column(JSONType)                       # RunInfo as a dict
    metric_name: Mapped[str | None] = mapped_column(String(40))
    baseline_loss: Mapped[float | None] = mapped_column(Float)
    baseline_metric: Mapped[float | None] = mapped_column(Float)
    epochs_total: Mapped[int] = mapped_column(Integer, nullable=False)
    epochs_done: Mapped[int] = mapped_column(Integer, nullable=False, default=0)  # last epoch recorded
    last_val_loss: Mapped[float | None] = mapped_column(Float)
    last_val_metric: Mapped[float | None] = mapped_column(Float)
    last_horizon: Mapped[float | None] = mapped_column(Float)             # layer 0, latest probe
    last_log_ratio: Mapped[float | None] = mapped_column(Float)
    diagnosis: Mapped[str | None] = mapped_column(Text)                   # "vanishing, horizon 14 steps"
    baseline_heldout_loss: Mapped[float | None] = mapped_column(Float)    # trivial predictor on this held-out set


class RunTag(Base):
    __tablename__ = "run_tags"
    run_id: Mapped[int] = mapped_column(_fk_run(), primary_key=True)
    tag: Mapped[str] = mapped_column(String(100), primary_key=True)
    __table_args__ = (Index("ix_run_tags_tag", "tag"),)


class RunAttempt(Base):
    """One row per claim of a run by a worker: the attempt history."""

    __tablename__ = "run_attempts"
    __table_args__ = (UniqueConstraint("run_id", "attempt"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(_fk_run(), nullable=False)
    attempt: Mapped[int] = mapped_column(Integer, nullable=False)
    worker: Mapped[str | None] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str | None] = mapped_column(String(20))   # succeeded|failed|diverged|cancelled|lost|interrupted
    message: Mapped[str | None] = mapped_column(Text)
    resumed_from_epoch: Mapped[int | None] = mapped_column(Integer)


class Epoch(Base):
    """Per-epoch scalars (EpochRecord). Epoch 0 is at initialization."""

    __tablename__ = "epochs"
    run_id: Mapped[int] = mapped_column(_fk_run(), primary_key=True)
    epoch: Mapped[int] = mapped_column(Integer, primary_key=True)
    steps: Mapped[int] = mapped_column(Integer, nullable=False)
    train_loss: Mapped[float | None] = mapped_column(Float)
    val_loss: Mapped[float | None] = mapped_column(Float)
    val_metric: Mapped[float | None] = mapped_column(Float)
    val_loss_se: Mapped[float | None] = mapped_column(Float)   # standard error of val_loss over sequences
    grad_norm_mean: Mapped[float | None] = mapped_column(Float)
    grad_norm_max: Mapped[float | None] = mapped_column(Float)
    clip_fraction: Mapped[float | None] = mapped_column(Float)
    nonfinite_steps: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    train_seconds: Mapped[float] = mapped_column(Float, nullable=False)
    diag_seconds: Mapped[float] = mapped_column(Float, nullable=False)
    probed: Mapped[bool] = mapped_column(Boolean, nullable=False)
    nan_fields: Mapped[list | None] = mapped_column(JSONType)   # names of columns whose value is NaN
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class ParamStatRow(Base):
    __tablename__ = "param_stats"
    run_id: Mapped[int] = mapped_column(_fk_run(), primary_key=True)
    epoch: Mapped[int] = mapped_column(Integer, primary_key=True)
    param: Mapped[str] = mapped_column(String(100), primary_key=True)
    grad_norm_mean: Mapped[float | None] = mapped_column(Float)
    grad_norm_max: Mapped[float | None] = mapped_column(Float)
    update_ratio: Mapped[float | None] = mapped_column(Float)
    weight_norm: Mapped[float | None] = mapped_column(Float)
    nan_fields: Mapped[list | None] = mapped_column(JSONType)


class LayerStatRow(Base):
    __tablename__ = "layer_stats"
    run_id: Mapped[int] = mapped_column(_fk_run(), primary_key=True)
    epoch: Mapped[int] = mapped_column(Integer, primary_key=True)
    layer: Mapped[int] = mapped_column(Integer, primary_key=True)
    rho: Mapped[float | None] = mapped_column(Float)
    sigma_max: Mapped[float | None] = mapped_column(Float)
    gamma_sigma_max: Mapped[float | None] = mapped_column(Float)
    gate_spectra: Mapped[dict | None] = mapped_column(JSONType)
    saturated_frac: Mapped[float | None] = mapped_column(Float)
    dead_frac: Mapped[float | None] = mapped_column(Float)
    gate_mean: Mapped[dict | None] = mapped_column(JSONType)
    gate_saturated: Mapped[dict | None] = mapped_column(JSONType)
    log_ratio: Mapped[float | None] = mapped_column(Float)
    decay_per_step: Mapped[float | None] = mapped_column(Float)
    horizon: Mapped[float | None] = mapped_column(Float)
    steps_in_past: Mapped[float | None] = mapped_column(Float)
    nan_fields: Mapped[list | None] = mapped_column(JSONType)


class GradProfile(Base):
    """One compact row per run × epoch × layer × kind: the whole profile t = 1..T as a JSON
    array of numbers (NaN/±inf as the strings 'NaN'/'Infinity'/'-Infinity').
    kind 'h' is ‖∂L/∂h_t‖, kind 'c' is ‖∂L/∂c_t‖ (LSTM), kind 'h_last' is ‖∂ℓ_T/∂h_t‖ (the last
    step's loss alone; every-step tasks only)."""

    __tablename__ = "grad_profiles"
    __table_args__ = (CheckConstraint("kind IN ('h','c','h_last')", name="kind"),)
    run_id: Mapped[int] = mapped_column(_fk_run(), primary_key=True)
    epoch: Mapped[int] = mapped_column(Integer, primary_key=True)
    layer: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    seq_len: Mapped[int] = mapped_column(Integer, nullable=False)
    norms: Mapped[list] = mapped_column(JSONType, nullable=False)


class Histogram(Base):
    """Gradient histogram of one parameter on the fixed log10|g| bins of rnnlab.records."""

    __tablename__ = "histograms"
    run_id: Mapped[int] = mapped_column(_fk_run(), primary_key=True)
    epoch: Mapped[int] = mapped_column(Integer, primary_key=True)
    param: Mapped[str] = mapped_column(String(100), primary_key=True)
    counts: Mapped[list] = mapped_column(JSONType, nullable=False)   # HIST_LEN ints
    zeros: Mapped[int] = mapped_column(Integer, nullable=False)
    nonfinite: Mapped[int] = mapped_column(Integer, nullable=False)


class Checkpoint(Base):
    """The latest checkpoint of a run (engine state as bytes), so that any worker on any machine
    can resume a requeued run."""

    __tablename__ = "checkpoints"
    run_id: Mapped[int] = mapped_column(_fk_run(), primary_key=True)
    epoch: Mapped[int] = mapped_column(Integer, nullable=False)
    state: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    saved_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class Worker(Base):
    __tablename__ = "workers"
    name: Mapped[str] = mapped_column(String(200), primary_key=True)    # Celery hostname
    host: Mapped[str] = mapped_column(String(200), nullable=False)
    pid: Mapped[int | None] = mapped_column(Integer)
    queues: Mapped[str] = mapped_column(String(100), nullable=False)    # "cpu" / "gpu" / "cpu,gpu"
    device: Mapped[str | None] = mapped_column(String(200))             # "cpu" or GPU name
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    current_run_id: Mapped[int | None] = mapped_column(Integer)
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    slots: Mapped[int | None] = mapped_column(Integer)    # runs at a time (its pool size); NULL: not reported


class LoginThrottle(Base):
    """Failed sign-ins per key ('client:<addr>', 'pair:<addr>|<name>'), shared by every dashboard
    process, so throttling holds across processes and restarts."""

    __tablename__ = "login_throttle"
    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, nullable=False)
    first_failure_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    last_failure_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SavedView(Base):
    """A named view of a dashboard page (runs, compare, strategies, explorer): its URL query string,
    listed for the whole team."""

    __tablename__ = "saved_views"
    __table_args__ = (UniqueConstraint("page", "name"), {"sqlite_autoincrement": True})
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    page: Mapped[str] = mapped_column(String(20), nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    query: Mapped[str] = mapped_column(Text, nullable=False)               # URL query string, ≤ 4096 chars
    owner: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
