"""re-hash runs with the canonical spec form

Runs created before the canonical form (rnnlab.spec.JobSpec.canonical) carry the hash of the spec as
written, so equivalent specs had different hashes. This data migration recomputes ``spec_hash`` for
every run whose stored spec still validates; a row whose spec no longer validates keeps its hash
(duplicate detection also looks up the old form). It imports the live spec code on purpose: the
hash is defined by that code, not by the schema. Downgrade keeps the new hashes (they are valid
under both revisions' lookups).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 02:50:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

BATCH = 500


def _canonical_hash(spec: dict) -> str | None:
    from pydantic import ValidationError

    from rnnlab.spec import JobSpec

    data = dict(spec or {})
    data.pop("spec_version", None)
    try:
        return JobSpec.model_validate(data).spec_hash()
    except (ValidationError, ValueError, TypeError):
        return None


def upgrade() -> None:
    conn = op.get_bind()
    runs = sa.table("runs", sa.column("id", sa.Integer), sa.column("spec", sa.JSON),
                    sa.column("spec_hash", sa.String))
    last = 0
    while True:
        rows = conn.execute(sa.select(runs.c.id, runs.c.spec, runs.c.spec_hash)
                            .where(runs.c.id > last).order_by(runs.c.id).limit(BATCH)).all()
        if not rows:
            break
        last = rows[-1].id
        changes = []
        for r in rows:
            spec = r.spec
            if isinstance(spec, str):   # SQLite JSON comes back as text through a bare table()
                import json
                spec = json.loads(spec)
            new = _canonical_hash(spec)
            if new and new != r.spec_hash:
                changes.append({"rid": r.id, "h": new})
        if changes:
            conn.execute(sa.text("UPDATE runs SET spec_hash = :h WHERE id = :rid"), changes)


def downgrade() -> None:
    pass
