"""Studies: named, versioned experiments that test one published claim each (docs/studies.md).

``STUDIES`` is the registry the CLI (``rnnlab study``) and the dashboard's Studies page share.
Torch-free: running a study in-process (`rnnlab study run NAME --local`) goes through worker.local, in the CLI.
"""

from studies.builtin import STUDIES
from studies.core import (
    INCONCLUSIVE,
    MIN_SEEDS,
    NOT_REPRODUCED,
    PENDING,
    REPRODUCED,
    SCALES,
    VERDICTS,
    Check,
    Figure,
    Number,
    Outcome,
    Scale,
    Study,
    StudyData,
)


def get(name: str) -> Study:
    """The study called ``name``, or a ValueError listing the known ones."""
    if name not in STUDIES:
        raise ValueError(f"study: got {name[:60]!r}; known studies: {', '.join(STUDIES)}")
    return STUDIES[name]


__all__ = ["STUDIES", "get", "Study", "Scale", "StudyData", "Outcome", "Number", "Check", "Figure", "SCALES",
           "MIN_SEEDS", "VERDICTS", "REPRODUCED", "NOT_REPRODUCED", "INCONCLUSIVE", "PENDING"]
