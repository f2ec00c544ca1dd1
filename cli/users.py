"""`rnnlab user add|list|remove`: manage the dashboard's built-in users (see rnnlab.users).

Exit codes: 0 done; 2 bad input, as in the CLI's other commands (a name, role or password that is not
allowed, a user that already exists without --update, no such user to remove), checked before the file is
changed; 1 the work failed (a malformed or unwritable users file).
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from rnnlab import users

users_app = typer.Typer(
    help="Manage the dashboard's built-in users (bcrypt-hashed passwords in RNNLAB_USERS_FILE).",
    no_args_is_help=True,
)

_FILE = typer.Option(None, "--file", help="users file (default: RNNLAB_USERS_FILE or $RNNLAB_HOME/users.yaml)")


EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


def _fail(message: str, code: int = EXIT_FAILED) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _load(file: Path | None) -> dict:
    """The users file's users; exit 1 if it is malformed or cannot be read."""
    try:
        return users.load_users(file)
    except (ValueError, OSError) as e:
        _fail(str(e))


def _check_password(password: str) -> None:
    """rnnlab.users.hash_password's length rule, checked here so that a bad password is bad input (exit 2)
    and an empty line on stdin is refused, not taken as 'no password' (an OIDC-only user)."""
    if len(password) < users.MIN_PASSWORD_LEN:
        _fail(f"password is too short: use at least {users.MIN_PASSWORD_LEN} characters", EXIT_BAD_INPUT)
    if len(password.encode()) > users.MAX_PASSWORD_BYTES:
        _fail(f"password is too long: bcrypt uses at most {users.MAX_PASSWORD_BYTES} bytes", EXIT_BAD_INPUT)


@users_app.command("add")
def add(
    name: str = typer.Argument(..., help="user name (for OIDC users: their e-mail address)"),
    role: str = typer.Option("member", "--role", help="viewer, member or admin"),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="read the password from stdin"),
    no_password: bool = typer.Option(False, "--no-password", help="no password: only sets an OIDC user's role"),
    update: bool = typer.Option(False, "--update", help="change the role/password of an existing user"),
    file: Path | None = _FILE,
) -> None:
    """Add a user; prompts for the password (twice) unless --password-stdin or --no-password."""
    try:
        users.check_name(name)
        users.check_role(role)
    except ValueError as e:
        _fail(str(e), EXIT_BAD_INPUT)
    if name in _load(file) and not update:
        _fail(f"user {name!r} already exists in {file or users.default_path()}; pass --update to change it",
              EXIT_BAD_INPUT)
    password = None
    if password_stdin:
        # at most one character more than a password may have (no character is under a byte), so that a
        # long line is refused without being read whole (100 MB on stdin took 232 MB of memory)
        password = sys.stdin.readline(users.MAX_PASSWORD_BYTES + 1).rstrip("\r\n")
    elif not no_password:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if password is not None:
        _check_password(password)
    try:
        record = users.add_user(name, role, password, path=file, replace=update)
    except (ValueError, OSError) as e:   # the file (malformed, unwritable) or a user added meanwhile
        _fail(str(e))
    login = "password" if record.password_hash else "OIDC only"
    where = file or users.default_path()
    typer.echo(f"{'updated' if update else 'added'} {record.name} ({record.role}, {login}) in {where}")


@users_app.command("list")
def list_(file: Path | None = _FILE) -> None:
    """List the users with their roles (never their hashes)."""
    found = _load(file)
    if not found:
        typer.echo(f"no users in {file or users.default_path()}")
        return
    width = max(len(n) for n in found)
    typer.echo(f"{'NAME':<{width}}  ROLE    LOGIN")
    for u in sorted(found.values(), key=lambda u: u.name):
        typer.echo(f"{u.name:<{width}}  {u.role:<6}  {'password' if u.password_hash else 'oidc'}")


@users_app.command("remove")
def remove(name: str = typer.Argument(..., help="user name"), file: Path | None = _FILE) -> None:
    """Remove a user; they are signed out of the dashboard at their next interaction."""
    try:
        users.remove_user(name, path=file)
    except KeyError as e:
        _fail(e.args[0], EXIT_BAD_INPUT)
    except (ValueError, OSError) as e:   # a malformed or unwritable users file
        _fail(str(e))
    typer.echo(f"removed {name}")


if __name__ == "__main__":
    users_app()
