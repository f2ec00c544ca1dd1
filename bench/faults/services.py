"""The fault suite's own services: a private Redis and a private PostgreSQL on free ports, and a small
tmpfs to fill. Nothing here touches the shared services on 6379/5432.

PostgreSQL runs from Debian's server binaries (``initdb``, ``pg_ctl``; /usr/lib/postgresql/<v>/bin is
searched too) as the ``postgres`` user when we are root (the server refuses to run as root), with
trust authentication on 127.0.0.1 only and its socket in its own folder.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path


class ServiceError(RuntimeError):
    """A private service could not be started, stopped or mounted."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_binary(name: str) -> str:
    """A server binary on PATH or in Debian's versioned PostgreSQL folder."""
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)),
                                       None)
    if not found:
        raise ServiceError(f"{name} is needed (apt-get install redis-server postgresql); it is not on PATH")
    return found


def _as_postgres(cmd: list[str]) -> list[str]:
    """Run cmd as the postgres user when we are root (the server refuses root)."""
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--"] + cmd


class RedisServer:
    """A private redis-server; ``persistent``: append-only file on (fsync every write) or no persistence."""

    def __init__(self, root: Path, *, persistent: bool):
        self.dir = Path(root) / ("redis-aof" if persistent else "redis-mem")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port, self.persistent, self.proc = free_port(), persistent, None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        persist = ["--appendonly", "yes", "--appendfsync", "always"] if self.persistent else ["--appendonly", "no"]
        cmd = [find_binary("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
               "--save", "", *persist]
        log = open(self.dir / "redis.log", "a")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self._wait_ping()

    def _wait_ping(self, timeout: float = 20) -> None:
        import redis

        client = redis.Redis(port=self.port, socket_timeout=2)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServiceError(f"redis-server on port {self.port} exited with {self.proc.returncode}")
            try:
                if client.ping():
                    return
            except redis.RedisError:
                time.sleep(0.1)
        raise ServiceError(f"redis-server on port {self.port} did not answer within {timeout} s")

    def stop(self) -> None:
        """SIGTERM: Redis shuts down cleanly (flushing its append-only file when it has one)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def version(self) -> str:
        out = subprocess.run([find_binary("redis-server"), "--version"], capture_output=True, text=True)
        return out.stdout.split(" v=")[-1].split()[0] if " v=" in out.stdout else out.stdout.strip()


class PostgresServer:
    """A private PostgreSQL cluster in ``root``/pgdata (initdb on first start), on a free port."""

    def __init__(self, root: Path, *, name: str = "pg"):
        self.root = Path(root) / name
        self.data = self.root / "pgdata"
        self.port = free_port()

    def _pg(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        cmd = _as_postgres([find_binary(args[0]), *args[1:]])
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if out.returncode != 0:
            raise ServiceError(f"{' '.join(args[:2])} failed ({out.returncode}): {out.stderr.strip()[-2000:]}")
        return out

    def init(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
            os.chmod(self.root, 0o755)
        self._pg("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")

    def start(self) -> None:
        if not self.data.exists():
            self.init()
        opts = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                f"-c synchronous_commit=off -c max_connections=200")
        self._pg("pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.root / "server.log"), "-w", "-t", "60",
                 "start")

    def stop(self, mode: str = "fast") -> None:
        """``mode``: fast (clients disconnected, clean) or immediate (like a crash)."""
        if (self.data / "postmaster.pid").exists():
            self._pg("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new database, migrated to the current schema; returns its SQLAlchemy URL."""
        import psycopg

        from db.migrate import upgrade

        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True,
                             connect_timeout=10) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = self.url(name)
        upgrade(url)
        return url

    def version(self) -> str:
        out = subprocess.run([find_binary("pg_ctl"), "--version"], capture_output=True, text=True)
        return out.stdout.strip().removeprefix("pg_ctl (PostgreSQL) ") or "?"


class Tmpfs:
    """A small tmpfs mounted at ``path`` (needs root); ``error`` says why when the mount was refused."""

    def __init__(self, path: Path, size: str):
        self.path, self.size, self.mounted, self.error = Path(path), size, False, None

    def mount(self) -> bool:
        self.path.mkdir(parents=True, exist_ok=True)
        out = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.size},mode=1777", "tmpfs", str(self.path)],
                             capture_output=True, text=True)
        self.mounted = out.returncode == 0
        if not self.mounted:
            self.error = f"mount -t tmpfs refused ({out.returncode}): {out.stderr.strip() or out.stdout.strip()}"
        return self.mounted

    def fill(self, headroom: int = 0) -> Path:
        """Write a filler file until the filesystem is full (ENOSPC), then give back ``headroom`` bytes."""
        filler = self.path / "filler.bin"
        chunk = b"\0" * (1 << 16)
        with open(filler, "wb", buffering=0) as f:
            try:
                while True:
                    f.write(chunk)
            except OSError:
                pass
        with open(filler, "ab", buffering=0) as f:   # the last few bytes too
            try:
                while True:
                    f.write(b"\0" * 512)
            except OSError:
                pass
        if headroom:
            os.truncate(filler, max(0, filler.stat().st_size - headroom))
        return filler

    def free(self) -> None:
        (self.path / "filler.bin").unlink(missing_ok=True)

    def umount(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.path)], capture_output=True)
            self.mounted = False
