"""`rnnlab user add|list|remove`: manage the dashboard's built-in users (see rnnlab.users)."""

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


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


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
        _fail(str(e))
    password = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif not no_password:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        record = users.add_user(name, role, password, path=file, replace=update)
    except ValueError as e:
        _fail(str(e))
    login = "password" if record.password_hash else "OIDC only"
    where = file or users.default_path()
    typer.echo(f"{'updated' if update else 'added'} {record.name} ({record.role}, {login}) in {where}")


@users_app.command("list")
def list_(file: Path | None = _FILE) -> None:
    """List the users with their roles (never their hashes)."""
    try:
        found = users.load_users(file)
    except ValueError as e:
        _fail(str(e))
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
        _fail(e.args[0])
    typer.echo(f"removed {name}")


if __name__ == "__main__":
    users_app()
