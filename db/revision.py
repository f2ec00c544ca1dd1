"""Developer helper: autogenerate a new migration from db/models.py changes.

Usage: python -m db.revision "add column x"   (compares the ORM with a scratch SQLite database
migrated to the current head, and writes db/migrations/versions/<rev>_<slug>.py; review it).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from alembic import command

from db.migrate import alembic_config, upgrade


def main(argv: list[str]) -> None:
    if not argv:
        sys.exit('usage: python -m db.revision "what changed"')
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'scratch.db'}"
        upgrade(url)
        command.revision(alembic_config(url), message=" ".join(argv), autogenerate=True)


if __name__ == "__main__":
    main(sys.argv[1:])
