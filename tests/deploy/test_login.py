"""Dashboard login and roles (dashboard.auth), driven through Streamlit's AppTest."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import auth
from dashboard.auth import ACTIONS, ROLES, User, can
from rnnlab import users


def page():
    """A page as the dashboard writes it: current_user() first, then data."""
    import streamlit as st

    from dashboard.auth import current_user

    user = current_user()
    current_user()                          # a second call in the same run must be harmless
    st.write(f"SECRET DATA for {user.name} ({user.role})")


@pytest.fixture
def users_file(tmp_path, monkeypatch, sqlite_url):
    """A users file, and a database whose login_throttle table counts the failed sign-ins."""
    from rnnlab.settings import get_settings

    path = tmp_path / "users.yaml"
    monkeypatch.setenv("RNNLAB_USERS_FILE", str(path))
    monkeypatch.setenv("RNNLAB_AUTH", "users")
    monkeypatch.setenv("RNNLAB_DATABASE_URL", sqlite_url)
    get_settings.cache_clear()
    yield path
    get_settings.cache_clear()


def texts(at: AppTest) -> str:
    return " ".join([m.value for m in at.markdown] + [t.value for t in at.title] + [e.value for e in at.error])


def sign_in(at: AppTest, name: str, password: str) -> AppTest:
    at.text_input(key="rnnlab_login_name").input(name)
    at.text_input(key="rnnlab_login_password").input(password)
    return at.button[0].click().run(timeout=30)


# ---- roles --------------------------------------------------------------------------------------

def test_contract_is_stable():
    assert ROLES == ("viewer", "member", "admin")
    assert ACTIONS == ("view", "submit", "cancel", "edit", "delete", "sql")
    assert User("a", "viewer") == User(name="a", role="viewer")


# (role, action, owner) -> allowed; owner "me" is the user's own run, "other" someone else's
MATRIX = {
    "viewer": {"view": (1, 1, 1), "sql": (1, 1, 1), "submit": (0, 0, 0), "cancel": (0, 0, 0),
               "edit": (0, 0, 0), "delete": (0, 0, 0)},
    "member": {"view": (1, 1, 1), "sql": (1, 1, 1), "submit": (1, 1, 1), "cancel": (1, 0, 0),
               "edit": (1, 0, 0), "delete": (1, 0, 0)},          # a run with no owner: admins only
    "admin": {a: (1, 1, 1) for a in ACTIONS},
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", ACTIONS)
def test_can(role, action):
    user = User("me", role)
    own, other, unowned = MATRIX[role][action]
    assert can(user, action, "me") is bool(own)
    assert can(user, action, "other") is bool(other)
    assert can(user, action, None) is bool(unowned)


def test_can_rejects_unknown_actions():
    with pytest.raises(ValueError, match="unknown action 'launch'; allowed: view, submit, cancel"):
        can(User("me", "admin"), "launch")


# ---- mode -----------------------------------------------------------------------------------------

def test_auto_mode_without_users_is_the_local_admin(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNLAB_USERS_FILE", str(tmp_path / "users.yaml"))
    monkeypatch.setenv("RNNLAB_AUTH", "auto")
    assert auth.auth_mode() == "none"
    at = AppTest.from_function(page).run(timeout=30)
    assert "SECRET DATA for local (admin)" in texts(at)


def test_auto_mode_with_users_requires_sign_in(tmp_path, monkeypatch):
    path = tmp_path / "users.yaml"
    monkeypatch.setenv("RNNLAB_USERS_FILE", str(path))
    monkeypatch.setenv("RNNLAB_AUTH", "auto")
    users.add_user("alice", "member", "secret-pass", path=path)
    assert auth.auth_mode() == "users"
    at = AppTest.from_function(page).run(timeout=30)
    assert "SECRET DATA" not in texts(at) and "Sign in" in [b.label for b in at.button]


def test_explicit_none_mode_ignores_users(users_file, monkeypatch):
    users.add_user("alice", "member", "secret-pass", path=users_file)
    monkeypatch.setenv("RNNLAB_AUTH", "none")
    assert auth.auth_mode() == "none"


def test_unknown_mode_is_an_error(monkeypatch):
    monkeypatch.setenv("RNNLAB_AUTH", "ldap")
    with pytest.raises(ValueError, match="auth"):
        auth.auth_mode()


# ---- built-in users -------------------------------------------------------------------------------

def test_page_shows_only_the_login_form_until_signed_in(users_file):
    users.add_user("alice", "member", "secret-pass", path=users_file)
    at = AppTest.from_function(page).run(timeout=30)
    assert not at.exception
    assert "SECRET DATA" not in texts(at)
    assert [t.label for t in at.text_input] == ["User name", "Password"]
    at = sign_in(at, "alice", "wrong-pass")
    assert "Wrong user name or password." in texts(at) and "SECRET DATA" not in texts(at)
    at = sign_in(at, "alice", "secret-pass")
    assert "SECRET DATA for alice (member)" in texts(at)
    assert [b.label for b in at.sidebar.button] == ["Sign out"]
    at.sidebar.button[0].click().run(timeout=30)          # sign out
    assert "SECRET DATA" not in texts(at) and len(at.text_input) == 2


def test_unknown_user_gets_the_same_message(users_file):
    users.add_user("alice", "member", "secret-pass", path=users_file)
    at = sign_in(AppTest.from_function(page).run(timeout=30), "mallory", "secret-pass")
    assert "Wrong user name or password." in texts(at) and "SECRET DATA" not in texts(at)


def test_role_changes_and_removal_apply_to_a_signed_in_session(users_file):
    users.add_user("alice", "member", "secret-pass", path=users_file)
    at = sign_in(AppTest.from_function(page).run(timeout=30), "alice", "secret-pass")
    users.add_user("alice", "viewer", "secret-pass", path=users_file, replace=True)
    at.run(timeout=30)
    assert "SECRET DATA for alice (viewer)" in texts(at)
    users.remove_user("alice", path=users_file)
    at.run(timeout=30)
    assert "SECRET DATA" not in texts(at)


LOCK_CHECK = """
import sys
from db import throttle
from db.engine import get_engine
w = throttle.wait_for(sys.argv[2], "alice", engine=get_engine(sys.argv[1]))
print(round(w.seconds))
"""


def test_repeated_failures_lock_this_client_for_the_name_in_every_process(users_file, monkeypatch):
    """After the free failures even the right password is refused, and the lock is in the database:
    another process (a second dashboard) sees it for this client, and not for another client."""
    import subprocess
    import sys

    from sqlalchemy import select

    from db import throttle
    from db.engine import get_engine
    from db.models import LoginThrottle
    from rnnlab.settings import get_settings

    monkeypatch.setattr(throttle, "BASE_S", 600.0)   # a first wait longer than this test
    users.add_user("alice", "member", "secret-pass", path=users_file)
    at = AppTest.from_function(page).run(timeout=30)
    for _ in range(throttle.PAIR_FREE):
        at = sign_in(at, "alice", "wrong-pass")
    at = sign_in(at, "alice", "secret-pass")
    assert "Too many failed sign-ins" in texts(at) and "SECRET DATA" not in texts(at)
    url = get_settings().db_url
    with get_engine(url).connect() as conn:
        keys = {k: n for k, n in conn.execute(select(LoginThrottle.key, LoginThrottle.failures))}
    (pair,) = [k for k in keys if k.startswith("pair:")]
    client = pair.removeprefix("pair:").removesuffix("|alice")
    assert keys == {pair: throttle.PAIR_FREE, f"client:{client}": throttle.PAIR_FREE}
    seen = [subprocess.run([sys.executable, "-c", LOCK_CHECK, url, c], capture_output=True, text=True,
                           check=True).stdout.strip() for c in (client, "10.1.2.3")]
    assert int(seen[0]) > 500 and seen[1] == "0"


@pytest.mark.parametrize("peer, forwarded, trusted, client", [
    ("10.0.0.7", None, set(), "10.0.0.7"),
    ("10.0.0.7", "1.2.3.4", set(), "10.0.0.7"),                           # an untrusted peer's header is ignored
    ("10.0.0.2", "1.2.3.4", {"10.0.0.2"}, "1.2.3.4"),                      # behind a trusted proxy
    ("10.0.0.2", "6.6.6.6, 1.2.3.4", {"10.0.0.2"}, "1.2.3.4"),             # a forged first hop is not believed
    ("10.0.0.2", "1.2.3.4, 10.0.0.3", {"10.0.0.2", "10.0.0.3"}, "1.2.3.4"),  # two proxies
    ("10.0.0.2", None, {"10.0.0.2"}, "10.0.0.2"),
    ("10.0.0.2", "<script>", {"10.0.0.2"}, "unknown"),                     # not an address
])
def test_client_address_believes_forwarded_for_only_from_trusted_proxies(peer, forwarded, trusted, client):
    assert auth.client_from(peer, forwarded, trusted) == client


def test_no_users_yet_shows_how_to_add_one_and_no_data(users_file):
    at = AppTest.from_function(page).run(timeout=30)
    assert "no users are set up yet" in texts(at) and "rnnlab user add NAME --role admin" in texts(at)
    assert "SECRET DATA" not in texts(at)


def test_broken_users_file_shows_no_data(users_file, monkeypatch):
    users_file.write_text("users: [alice]\n")
    at = AppTest.from_function(page).run(timeout=30)
    assert "users file is broken" in texts(at) and "SECRET DATA" not in texts(at)
    monkeypatch.setenv("RNNLAB_AUTH", "auto")                # auto must not fall open either
    assert auth.auth_mode() == "users"


# ---- OIDC ------------------------------------------------------------------------------------------

OIDC_SECRETS = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x" * 32,
                "client_id": "id", "client_secret": "s",
                "server_metadata_url": "https://idp.example/.well-known/openid-configuration"}


def oidc_app(user: dict) -> AppTest:
    at = AppTest.from_function(page)
    at.secrets["auth"] = OIDC_SECRETS
    at.user = user
    return at


def test_oidc_mode_shows_a_sign_in_button_and_no_data(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNLAB_USERS_FILE", str(tmp_path / "users.yaml"))
    monkeypatch.setenv("RNNLAB_AUTH", "oidc")
    at = oidc_app({"is_logged_in": False}).run(timeout=30)
    assert not at.exception
    assert "SECRET DATA" not in texts(at)
    assert [b.label for b in at.button] == ["Sign in with your organization's account"]


def test_oidc_without_an_auth_section_says_so_and_shows_no_data(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNLAB_USERS_FILE", str(tmp_path / "users.yaml"))
    monkeypatch.setenv("RNNLAB_AUTH", "oidc")
    at = AppTest.from_function(page).run(timeout=30)
    assert "no [auth] section" in texts(at) and "SECRET DATA" not in texts(at)


@pytest.mark.parametrize("claims, expected", [
    ({"email": "bob@example.com", "email_verified": True}, "bob@example.com (member)"),
    ({"email": "eve@example.com", "email_verified": True}, "eve@example.com (viewer)"),
    # a missing claim is not a verification, and a username never names a listed user
    ({"email": "bob@example.com", "sub": "idp-7"}, "oidc:idp-7 (viewer)"),
    ({"email": "bob@example.com", "email_verified": False, "sub": "idp-123"}, "oidc:idp-123 (viewer)"),
    ({"preferred_username": "bob@example.com", "sub": "idp-8"}, "oidc:idp-8 (viewer)"),
], ids=["listed", "default-role", "no-verified-claim", "unverified-email", "username-only"])
def test_oidc_role_comes_from_the_users_file_or_the_default(tmp_path, monkeypatch, claims, expected):
    path = tmp_path / "users.yaml"
    monkeypatch.setenv("RNNLAB_USERS_FILE", str(path))
    monkeypatch.setenv("RNNLAB_AUTH", "oidc")
    users.add_user("bob@example.com", "member", None, path=path)
    at = oidc_app({"is_logged_in": True, **claims}).run(timeout=30)
    assert f"SECRET DATA for {expected}" in texts(at)


def test_auto_mode_picks_oidc_when_secrets_have_an_auth_section(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNLAB_USERS_FILE", str(tmp_path / "users.yaml"))
    monkeypatch.setenv("RNNLAB_AUTH", "auto")
    at = oidc_app({"is_logged_in": False}).run(timeout=30)
    assert "SECRET DATA" not in texts(at)
    assert [b.label for b in at.button] == ["Sign in with your organization's account"]


# ---- owner checks of the run actions ----------------------------------------------------------------

def test_members_cannot_change_runs_without_an_owner(sqlite_url, monkeypatch):
    """dashboard.actions on a real database: a member deletes their own run only; a run with no owner
    (e.g. from before owners were recorded) stays until an admin deletes it."""
    import pandas as pd

    from dashboard import actions, reads
    from db import store
    from rnnlab.settings import get_settings
    from rnnlab.spec import parse_spec

    monkeypatch.setenv("RNNLAB_DATABASE_URL", sqlite_url)
    get_settings.cache_clear()
    try:
        spec = parse_spec({"task": {"name": "adding", "seq_len": 20}, "epochs": 1})
        mine, = store.create_runs([spec], owner="me", url=sqlite_url)
        nobodys, = store.create_runs([spec.model_copy(update={"seed": 1})], owner=None, url=sqlite_url)
        actions.set_notes(User("me", "member"), nobodys, None, "mine now")    # as the run page calls it
        assert store.get_run(nobodys, url=sqlite_url)["notes"] in (None, "")
        rows = pd.DataFrame({"id": [mine, nobodys], "owner": pd.Series(["me", None], dtype=object)})
        actions.delete(User("me", "member"), rows)
        left = reads.runs_by_ids([mine, nobodys])["id"].tolist()
        assert left == [nobodys]
        actions.delete(User("boss", "admin"), rows[rows["id"] == nobodys])
        reads.clear()
        assert reads.runs_by_ids([nobodys]).empty
    finally:
        get_settings.cache_clear()
