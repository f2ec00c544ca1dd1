"""The dashboard never imports torch, the engine (models/) or the worker: every dashboard module is
imported and every page is run (AppTest, on a seeded database) in a fresh interpreter, which then
reports what it loaded."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import importlib, json, pkgutil, sys
sys.path.insert(0, {repo!r})
import dashboard
for m in [m for m in pkgutil.iter_modules([{repo!r} + "/dashboard"]) if m.name != "app"]:  # app.py runs below
    importlib.import_module("dashboard." + m.name)
from tests.dashboard.seed import small_lab
from db.migrate import upgrade
upgrade({url!r})
small_lab({url!r})
from streamlit.testing.v1 import AppTest
pages = {{"runs": {{}}, "new": {{}}, "run_detail": {{"run": "1"}}, "compare": {{"runs": "1,3,5"}},
         "strategies": {{"runs": "1,2,3,4,5,6"}}, "query": {{}},
         "studies": {{"study": "activations"}}, "explorer": {{}}}}
errors = []
for page, query in pages.items():
    at = AppTest.from_file({app!r}, default_timeout=60)
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    at.switch_page(f"app_pages/{{page}}.py")
    at.run()
    errors += [f"{{page}}: {{e.value}}" for e in list(at.exception) + list(at.error)]
import db.store, rnnlab.queue, client.submit  # what the pages' actions import lazily
rnnlab.queue.get_app()
bad = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "models", "worker", "sklearn"))
print(json.dumps({{"bad": bad, "errors": errors}}))
"""


def test_dashboard_pages_never_import_torch_models_or_worker(tmp_path):
    url = f"sqlite:///{tmp_path / 'rnnlab.db'}"
    code = SCRIPT.format(repo=str(REPO), url=url, app=str(REPO / "dashboard" / "app.py"))
    env = {"PATH": "/usr/bin:/bin", "RNNLAB_DATABASE_URL": url, "RNNLAB_HOME": str(tmp_path), "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["errors"] == []
    assert result["bad"] == [], f"the dashboard imported {result['bad'][:5]} (and {len(result['bad'])} modules in all)"
