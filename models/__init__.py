"""The rnnlab training engine: tasks, cells, training loop, diagnostics and checkpoints (torch only)."""

from .build import describe
from .errors import EngineError
from .train import train
from .verdict import diagnose

__all__ = ["describe", "train", "diagnose", "EngineError"]
