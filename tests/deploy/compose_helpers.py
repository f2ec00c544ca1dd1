"""Helpers of the deploy tests: load scripts/validate_compose.py and the compose files."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MAIN = REPO / "docker-compose.yml"
WORKERS = REPO / "docker-compose.workers.yml"
ENV_EXAMPLE = REPO / ".env.example"


def validator():
    """The scripts/validate_compose.py module."""
    name = "validate_compose"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / "validate_compose.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def filled_env(**overrides: str) -> dict[str, str]:
    """.env.example's values with every empty one filled in (as an operator would), plus overrides."""
    v = validator()
    env = {k: (val or f"test-{k.lower()}") for k, val in v.read_env_file(ENV_EXAMPLE).items()}
    env.update(overrides)
    return env


def services(path: Path = MAIN, **overrides: str) -> dict[str, dict]:
    """The interpolated services of a compose file."""
    return validator().load_compose(path, filled_env(**overrides))["services"]
