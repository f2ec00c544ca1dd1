"""Helpers to drive the real dashboard in headless Chromium: start ``streamlit run`` on a free port,
wait for /_stcore/health, wait until a page has finished running, and collect error elements."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
# The options `rnnlab app` should pass too (errors as messages, no developer menu)
STREAMLIT_FLAGS = ["--server.headless", "true", "--client.showErrorDetails", "none", "--client.toolbarMode", "viewer",
                   "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_app(env: dict[str, str], log_path: Path, port: int | None = None) -> Iterator[str]:
    """Start the dashboard as users do and yield its base URL; stop it afterwards."""
    port = port or free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", str(REPO / "dashboard" / "app.py"), "--server.port", str(port),
           "--server.address", "127.0.0.1", *STREAMLIT_FLAGS]
    full_env = {**{k: v for k, v in os.environ.items() if not k.startswith("RNNLAB_")}, **env}
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, env=full_env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"streamlit did not answer /_stcore/health:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.3)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 15)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)


def chromium():
    """A launched headless Chromium (Debian's package; Playwright's own download is not used)."""
    from playwright.sync_api import sync_playwright

    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        raise RuntimeError("chromium is not installed (apt-get install chromium; scripts/test does it)")
    pw = sync_playwright().start()
    return pw, pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)


def wait_idle(page, timeout_ms: int = 60_000) -> None:
    """Wait until the script has finished running and no skeleton placeholder is left."""
    page.wait_for_selector("[data-testid=stApp][data-test-script-state=notRunning]", timeout=timeout_ms)
    page.wait_for_function("() => document.querySelectorAll('[data-testid=stSkeleton]').length === 0",
                           timeout=timeout_ms)
    page.wait_for_timeout(300)
    page.wait_for_selector("[data-testid=stApp][data-test-script-state=notRunning]", timeout=timeout_ms)


def error_texts(page) -> list[str]:
    """Text of every exception element and every error alert on the page."""
    out = [e.inner_text() for e in page.query_selector_all("[data-testid=stException]")]
    for alert in page.query_selector_all("[data-testid=stAlert]"):
        if alert.query_selector("[data-testid=stAlertContentError]"):
            out.append(alert.inner_text())
    return out
