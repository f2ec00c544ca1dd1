"""Built-in dashboard users: a YAML file of names, roles and bcrypt password hashes.

The file (RNNLAB_USERS_FILE, default ``$RNNLAB_HOME/users.yaml``) looks like::

    users:
      alice: {role: admin, password_hash: "$2b$12$..."}
      bob@example.com: {role: member}        # no password: an OIDC user's role

A file rather than a database table keeps login independent of the results schema and lets an
operator manage users before the database exists. Writes are atomic (temp file + rename) under a
lock file, and the file is created with mode 0600. Login settings (RNNLAB_AUTH, RNNLAB_USERS_FILE, ...)
are fields of rnnlab.settings.Settings, so that the CLI and the dashboard agree on them.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import yaml

ROLES = ("viewer", "member", "admin")
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}")
MIN_PASSWORD_LEN = 8
MAX_PASSWORD_BYTES = 72      # bcrypt uses only the first 72 bytes; longer ones are refused
BCRYPT_ROUNDS = 12


@dataclass(frozen=True)
class UserRecord:
    """One entry of the users file."""

    name: str
    role: str
    password_hash: str | None = None


def check_name(name: str) -> str:
    """Return name if it is a valid user name, else raise ValueError saying what is allowed."""
    if not NAME_PATTERN.fullmatch(name):
        raise ValueError(
            f"user name {name!r} is not allowed: use 1-100 letters, digits and . _ @ + -, "
            "starting with a letter or digit"
        )
    return name


def check_role(role: str) -> str:
    """Return role if it is one of ROLES, else raise ValueError listing them."""
    if role not in ROLES:
        raise ValueError(f"role {role!r} is not allowed; choose one of: {', '.join(ROLES)}")
    return role


def hash_password(password: str) -> str:
    """bcrypt hash of a password, after checking its length."""
    raw = password.encode()
    if len(password) < MIN_PASSWORD_LEN:
        raise ValueError(f"password is too short: use at least {MIN_PASSWORD_LEN} characters")
    if len(raw) > MAX_PASSWORD_BYTES:
        raise ValueError(f"password is too long: bcrypt uses at most {MAX_PASSWORD_BYTES} bytes")
    return bcrypt.hashpw(raw, bcrypt.gensalt(BCRYPT_ROUNDS)).decode()


def default_path() -> Path:
    """The users file named by the settings (read afresh: RNNLAB_USERS_FILE may change at run time)."""
    from rnnlab.settings import Settings

    return Settings().users_path


def load_users(path: Path | None = None) -> dict[str, UserRecord]:
    """All users of the file (empty if it does not exist); raises ValueError on a malformed file."""
    path = path or default_path()
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: not valid YAML ({' '.join(str(e).split())[:300]})") from None
    entries = data.get("users") if isinstance(data, dict) else None
    if entries is None:
        return {}
    if not isinstance(entries, dict):
        raise ValueError(f"{path}: 'users' must be a mapping of name to {{role, password_hash}}")
    out = {}
    for name, entry in entries.items():
        if not isinstance(entry, dict):
            raise ValueError(f"{path}: user {name!r} must be a mapping with a role")
        out[str(name)] = UserRecord(
            name=check_name(str(name)),
            role=check_role(str(entry.get("role"))),
            password_hash=entry.get("password_hash") or None,
        )
    return out


def get_user(name: str, path: Path | None = None) -> UserRecord | None:
    """The user called name, or None."""
    return load_users(path).get(name)


@functools.cache
def _dummy_hash() -> bytes:
    """Compared against when the user does not exist, so that a wrong name costs as much as a wrong
    password. Made on first use, not at import: a hash takes ~0.3 s (it slowed `rnnlab --help`)."""
    return bcrypt.hashpw(b"rnnlab-no-such-user", bcrypt.gensalt(BCRYPT_ROUNDS))


def verify_password(name: str, password: str, path: Path | None = None) -> UserRecord | None:
    """The user if name and password match a user with a password, else None (same cost either way)."""
    user = get_user(name, path)
    stored = (user.password_hash if user else None) or _dummy_hash().decode()
    raw = password.encode()
    try:
        ok = len(raw) <= MAX_PASSWORD_BYTES and bcrypt.checkpw(raw, stored.encode())
    except ValueError:       # a malformed hash in the file
        ok = False
    return user if (ok and user is not None and user.password_hash) else None


@contextlib.contextmanager
def _locked(path: Path):
    """Hold an exclusive lock on path's lock file while the file is read, changed and written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _write(path: Path, users: dict[str, UserRecord]) -> None:
    """Replace the file atomically with users, readable by its owner only."""
    doc = {"users": {
        u.name: {"role": u.role, **({"password_hash": u.password_hash} if u.password_hash else {})}
        for u in sorted(users.values(), key=lambda u: u.name)
    }}
    text = "# rnnlab dashboard users; manage with `rnnlab user add|list|remove`\n"
    text += yaml.safe_dump(doc, sort_keys=False)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def add_user(name: str, role: str, password: str | None, *, path: Path | None = None,
             replace: bool = False) -> UserRecord:
    """Add a user (password None: an OIDC user's role only); replace=True updates an existing one."""
    path = path or default_path()
    record = UserRecord(check_name(name), check_role(role), hash_password(password) if password else None)
    with _locked(path):
        users = load_users(path)
        if name in users and not replace:
            raise ValueError(f"user {name!r} already exists in {path}; pass replace=True (--update) to change it")
        users[name] = record
        _write(path, users)
    return record


def remove_user(name: str, *, path: Path | None = None) -> None:
    """Remove a user; raises KeyError if there is none of that name."""
    path = path or default_path()
    with _locked(path):
        users = load_users(path)
        if name not in users:
            raise KeyError(f"no user {name!r} in {path}")
        del users[name]
        _write(path, users)
