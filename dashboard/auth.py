"""Who is using the dashboard and what they may do (viewer < member < admin).

Without login configured, everyone is the local user with the admin role (the laptop setup).
The team deployment extends this module with OIDC (st.login) and built-in users.
"""

from __future__ import annotations

from dataclasses import dataclass

ROLES = ("viewer", "member", "admin")
ACTIONS = ("view", "submit", "cancel", "edit", "delete", "sql")


@dataclass(frozen=True)
class User:
    name: str
    role: str


LOCAL_USER = User(name="local", role="admin")


def current_user() -> User:
    """The signed-in user; call at the top of every page (it may stop the page to show a login)."""
    return LOCAL_USER


def can(user: User, action: str, run_owner: str | None = None) -> bool:
    """Whether ``user`` may do ``action`` (one of ACTIONS), on a run owned by ``run_owner``."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; allowed: {', '.join(ACTIONS)}")
    if user.role == "admin":
        return True
    if action in ("view", "sql"):
        return True
    if user.role == "member":
        return action == "submit" or run_owner is None or run_owner == user.name
    return False
