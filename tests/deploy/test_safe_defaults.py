"""Safe defaults of the shared dashboard: no raw HTML rendering, XSRF and CORS protection left on."""

from __future__ import annotations

import re

import pytest
from compose_helpers import REPO, services

UNSAFE = re.compile(r"unsafe_allow_html\s*=\s*True|\bst\.html\(|components\.v1\.html|components\.html\(")


@pytest.mark.parametrize("path", sorted((REPO / "dashboard").rglob("*.py")), ids=lambda p: p.name)
def test_dashboard_renders_no_raw_html(path):
    hits = [line.strip() for line in path.read_text().splitlines() if UNSAFE.search(line)]
    assert not hits, f"{path.relative_to(REPO)} renders raw HTML (user text could inject script): {hits}"


def test_no_config_turns_off_xsrf_or_cors():
    configs = [p for p in REPO.rglob("config.toml") if ".streamlit" in p.parts and ".venv" not in p.parts]
    for cfg in configs:
        text = cfg.read_text()
        assert not re.search(r"enable(Xsrf|XSRF)Protection\s*=\s*false|enableCORS\s*=\s*false", text), cfg
    flags = " ".join(services()["dashboard"]["command"])
    assert "enableXsrfProtection" not in flags and "enableCORS" not in flags
