"""Run docker-compose.yml's services as local processes: each service's own command and environment.

Stand-ins for the containers: PostgreSQL is the local server (a fresh database and roles, named
through the .env variables; it trusts local connections, so the passwords in the URLs are ignored);
Redis is a private `redis-server` started with the redis service's own command (so requirepass and
appendonly are real) on a free port. What differs from the containers is rewritten, and only that:
host names `postgres`/`redis` become 127.0.0.1 with the local ports, fixed container ports become
free local ports, container paths (/config) become temporary folders.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from compose_helpers import MAIN, REPO, filled_env, validator

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, ok=(200,), timeout: float = 90, proc: Service | None = None) -> int:
    """Poll url until it answers with one of the ok statuses; returns that status."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        if proc is not None and proc.proc.poll() is not None:
            raise RuntimeError(f"{proc.name} exited with {proc.proc.returncode}:\n{proc.log()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                last = r.status
        except urllib.error.HTTPError as e:
            last = e.code
        except OSError as e:
            last = e
        if last in ok:
            return last
        time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer {ok} within {timeout} s (last: {last})"
                       + (f":\n{proc.log()[-4000:]}" if proc else ""))


@dataclass
class Service:
    """One running service process (own process group, output in a log file)."""

    name: str
    proc: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 20) -> None:
        if self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


@dataclass
class LocalStack:
    """The compose services of one test, interpolated with .env overrides and made local."""

    tmp: Path
    env_overrides: dict[str, str]
    pg_port: int
    redis_port: int = field(default_factory=free_port)
    ports: dict[int, int] = field(default_factory=dict)     # container port -> local port
    running: list[Service] = field(default_factory=list)

    def __post_init__(self):
        doc = validator().load_compose(MAIN, filled_env(**self.env_overrides))
        self.services = doc["services"]
        self.config_dir = self.tmp / "config"
        self.config_dir.mkdir(parents=True, exist_ok=True)
        self.home = self.tmp / "home"
        self.home.mkdir(exist_ok=True)

    def port(self, container_port: int) -> int:
        """The local port standing in for a container port."""
        return self.ports.setdefault(container_port, free_port())

    def localize(self, value: str) -> str:
        """Rewrite what only exists inside compose's network and containers."""
        value = value.replace("@postgres:5432/", f"@127.0.0.1:{self.pg_port}/")
        value = value.replace("@redis:6379/", f"@127.0.0.1:{self.redis_port}/")
        value = value.replace("/config/", f"{self.config_dir}/")
        for flag in ("--server.port=", "--port="):
            for cport in (8501, 5555):
                value = value.replace(f"{flag}{cport}", f"{flag}{self.port(cport)}")
        return value.replace("--server.address=0.0.0.0", "--server.address=127.0.0.1").replace(
            "--address=0.0.0.0", "--address=127.0.0.1")

    def environment(self, name: str) -> dict[str, str]:
        """The service's environment (localized) on a clean base: no RNNLAB_* from the test run."""
        base = {k: v for k, v in os.environ.items() if k in ("LANG", "LC_ALL", "TZ", "PGHOST", "PGPORT")}
        base.update(PATH=f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}", HOME=str(self.home),
                    PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1")
        env = self.services[name].get("environment") or {}
        base.update({k: self.localize(str(v)) for k, v in env.items()})
        return base

    def command(self, name: str) -> list[str]:
        """The service's command, localized, with its program taken from the venv when it is there."""
        cmd = [self.localize(str(c)) for c in self.services[name]["command"]]
        if (BIN / cmd[0]).exists():
            cmd[0] = str(BIN / cmd[0])
        return cmd

    def start(self, name: str, extra_args: list[str] = ()) -> Service:
        """Start a long-running service in the background."""
        log_path = self.tmp / f"{name}.log"
        with open(log_path, "w") as log:
            proc = subprocess.Popen(self.command(name) + list(extra_args), cwd=REPO,
                                    env=self.environment(name), stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        svc = Service(name, proc, log_path)
        self.running.append(svc)
        return svc

    def run(self, name: str, timeout: float = 180) -> subprocess.CompletedProcess:
        """Run a one-shot service (like migrate) to completion."""
        return subprocess.run(self.command(name), cwd=REPO, env=self.environment(name), capture_output=True,
                              text=True, timeout=timeout)

    def start_redis(self) -> Service:
        """The redis service's own command on a free port, with its data in a temporary folder."""
        if not shutil.which("redis-server"):
            raise RuntimeError("redis-server is needed to stand in for the redis service "
                               "(apt-get install redis-server)")
        data = self.tmp / "redis"
        data.mkdir(exist_ok=True)
        return self.start("redis", ["--port", str(self.redis_port), "--bind", "127.0.0.1", "--dir", str(data),
                                    "--save", ""])

    def stop_all(self) -> None:
        for svc in reversed(self.running):
            svc.stop()
