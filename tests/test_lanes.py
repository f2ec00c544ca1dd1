"""The lane table of docs/design.md, enforced: which of our packages each package may import.

Every import is counted, at module level or inside a function (a lazy import is still a
dependency). The core (``rnnlab``) depends on nothing of ours; entry points (``cli``) sit on top."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = {"rnnlab", "models", "db", "worker", "client", "studies", "dashboard", "cli"}

# package -> the packages of ours it may import (itself included). Mirrors docs/design.md.
LANES = {
    "rnnlab": {"rnnlab"},
    "models": {"rnnlab", "models"},
    "db": {"rnnlab", "db"},
    "worker": {"rnnlab", "models", "db", "worker"},
    "client": {"rnnlab", "db", "client"},
    "studies": {"rnnlab", "db", "client", "studies"},
    "dashboard": {"rnnlab", "db", "client", "studies", "dashboard"},
    "cli": OURS,
}
NO_TORCH = {"rnnlab", "db", "client", "studies", "dashboard"}


def imports_of(path: Path, pkg: str) -> set[str]:
    """Top-level names of every module ``path`` imports (relative imports count as its own package)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                names.add(pkg)
            elif node.module:
                names.add(node.module.split(".")[0])
    return names


def package_files(pkg: str) -> list[Path]:
    return sorted(p for p in (ROOT / pkg).rglob("*.py") if "__pycache__" not in p.parts)


def test_every_package_has_a_lane():
    found = {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()}
    assert found - {"tests", "bench"} <= set(LANES), f"packages with no lane: {found - set(LANES)}"


@pytest.mark.parametrize("pkg", sorted(LANES))
def test_package_stays_in_its_lane(pkg):
    assert (ROOT / pkg).is_dir(), f"the lane table names {pkg}/, which does not exist: update LANES and docs/design.md"
    bad = []
    for f in package_files(pkg):
        names = imports_of(f, pkg)
        for name in sorted((names & OURS) - LANES[pkg]):
            bad.append(f"{f.relative_to(ROOT)} imports {name}")
        if pkg in NO_TORCH and "torch" in names:
            bad.append(f"{f.relative_to(ROOT)} imports torch")
    assert not bad, f"{pkg}/ may import only {sorted(LANES[pkg])}:\n" + "\n".join(bad)


def test_the_scan_sees_lazy_and_relative_imports(tmp_path):
    """The checker itself: a function-level import and a relative import are both found."""
    f = tmp_path / "probe.py"
    f.write_text("def f():\n    import db.store\n    from . import build\n")
    assert imports_of(f, "models") == {"db", "models"}
