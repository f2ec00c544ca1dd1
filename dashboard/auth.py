"""Who is using the dashboard and what they may do (viewer < member < admin).

Login mode (RNNLAB_AUTH, see rnnlab.settings.Settings):
  none   everyone is the local user with the admin role (the laptop setup);
  users  built-in users from the users file, signed in with a form (bcrypt-hashed passwords);
  oidc   Streamlit's st.login against the [auth] section of .streamlit/secrets.toml; the role
         comes from the users file (an entry without password) or RNNLAB_OIDC_DEFAULT_ROLE;
  auto   (default) oidc if secrets have [auth], else users if the users file lists anyone, else none.
Until someone signs in, current_user() shows only the sign-in page and stops the script.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from db.throttle import claim_attempt, clear_attempt  # noqa: F401  (auth.claim_attempt: the sign-in's own)
from rnnlab import users
from rnnlab.settings import Settings
from rnnlab.users import ROLES

ACTIONS = ("view", "submit", "cancel", "edit", "delete", "sql")
SESSION_KEY = "rnnlab_user"


@dataclass(frozen=True)
class User:
    name: str
    role: str


LOCAL_USER = User(name="local", role="admin")


def current_user() -> User:
    """The signed-in user; call at the top of every page (it may stop the page to show a login)."""
    settings = Settings()
    mode = auth_mode(settings)
    if mode == "none":
        _refuse_if_exposed()
        return LOCAL_USER
    if mode == "oidc":
        return _oidc_user(settings)
    return _builtin_user(settings)


def can(user: User, action: str, run_owner: str | None = None) -> bool:
    """Whether ``user`` may do ``action`` (one of ACTIONS), on a run owned by ``run_owner``."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; allowed: {', '.join(ACTIONS)}")
    if user.role == "admin":
        return True
    if action in ("view", "sql"):
        return True
    if user.role == "member":
        # a run with no owner (e.g. submitted before owners were recorded) is an admin's to change
        return action == "submit" or (run_owner is not None and run_owner == user.name)
    return False


def auth_mode(settings: Settings | None = None) -> str:
    """The login mode in force: 'none', 'users' or 'oidc' (resolving 'auto')."""
    settings = settings or Settings()
    if settings.auth != "auto":
        return settings.auth
    if _oidc_configured():
        return "oidc"
    try:
        return "users" if users.load_users(settings.users_path) else "none"
    except ValueError:
        return "users"          # a broken users file must not open the dashboard to everyone


def _oidc_configured() -> bool:
    try:
        return "auth" in st.secrets
    except Exception:  # noqa: BLE001 - no or unreadable secrets file: no OIDC
        return False


# ---- no sign-in only on loopback -------------------------------------------------------------

def _listening_address() -> str | None:
    """server.address of the Streamlit server that runs this page ('' when it listens on every
    interface); None when no server listens (Streamlit's AppTest, bare mode)."""
    from streamlit import runtime
    from streamlit.runtime import Runtime

    if not runtime.exists() or type(runtime.get_instance()) is not Runtime:
        return None
    return str(st.get_option("server.address") or "")


def is_loopback(address: str) -> bool:
    """Whether a server.address value lets only this machine connect ('' means every interface)."""
    import ipaddress

    if address.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def _refuse_if_exposed() -> None:
    """With no sign-in everyone is an admin: serve pages only on a loopback address."""
    address = _listening_address()
    if address is None or is_loopback(address):
        return
    st.title("rnnlab")
    st.error(f"This dashboard has no sign-in (RNNLAB_AUTH resolves to 'none': no users file entries, no "
             f"OIDC) but listens on {address or 'every interface'}, so everyone who can reach it would be "
             "an admin. Add users with `rnnlab user add NAME --role admin` (or configure OIDC), or start "
             "it on 127.0.0.1 (`--server.address 127.0.0.1`, `rnnlab app` without `--host`).")
    st.stop()


# ---- built-in users ---------------------------------------------------------------------------

def _builtin_user(settings: Settings) -> User:
    """The user signed in through the form, or show the form and stop."""
    try:
        known = users.load_users(settings.users_path)
    except ValueError as e:
        st.error(f"The users file is broken, so nobody can sign in: {e}")
        st.stop()
    name = st.session_state.get(SESSION_KEY)
    record = known.get(name) if name else None
    if record is not None and record.password_hash:
        user = User(record.name, record.role)     # re-read every run: role changes and removals apply
        _account_box(user, sign_out=_sign_out_builtin)
        return user
    st.session_state.pop(SESSION_KEY, None)
    if not any(u.password_hash for u in known.values()):
        st.title("rnnlab")
        st.error("Sign-in is required, but no users are set up yet. An administrator adds one with "
                 "`rnnlab user add NAME --role admin`.")
        st.stop()
    _login_form(settings)
    st.stop()


def _login_form(settings: Settings) -> None:
    """The sign-in form; on success remember the user in the session and rerun."""
    st.title("rnnlab")
    st.subheader("Sign in")
    with st.form("rnnlab_login"):
        name = st.text_input("User name", key="rnnlab_login_name")
        password = st.text_input("Password", type="password", key="rnnlab_login_password")
        submitted = st.form_submit_button("Sign in")
    if not submitted:
        return
    client = client_address(settings)
    try:
        wait = claim_attempt(client, name)
    except Exception as e:  # noqa: BLE001 - no throttle, no sign-in (fail closed)
        st.error(f"Sign-in is unavailable: the database that counts sign-in attempts cannot be reached ({e}).")
        return
    if wait.seconds > 0:
        st.error(f"Too many failed sign-ins: {wait.reason}; try again in {wait.seconds:.0f} s.")
        return
    record = users.verify_password(name, password, settings.users_path)
    if record is None:
        st.error("Wrong user name or password.")
        return
    clear_attempt(client, name, undo=wait.undo)
    st.session_state[SESSION_KEY] = record.name
    st.rerun()


def client_address(settings: Settings) -> str:
    """Who is signing in, for throttling (see client_from); 'unknown' outside a browser session."""
    try:
        peer = st.context.ip_address or "127.0.0.1"      # Streamlit gives None for a loopback peer
        forwarded = st.context.headers.get("X-Forwarded-For")
    except Exception:  # noqa: BLE001 - outside a browser session (tests, scripts)
        return "unknown"
    if not _is_ip(peer):
        return "unknown"                                 # e.g. Streamlit's AppTest has no real client
    return client_from(peer, forwarded if isinstance(forwarded, str) else None, settings.trusted_proxy_set)


def _is_ip(value: object) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(value)  # type: ignore[arg-type]
    except ValueError:
        return False
    return isinstance(value, str)


def client_from(peer: str, forwarded_for: str | None, trusted: set[str]) -> str:
    """The client: the TCP peer of the browser's connection. Only when that peer is a trusted proxy
    (RNNLAB_TRUSTED_PROXIES) is X-Forwarded-For believed, and then only its last address that is not
    itself a trusted proxy (a client can put anything in front). Anyone can send the header, so it
    is never read from an untrusted peer."""
    if peer not in trusted:
        return peer
    hops = [h.strip() for h in (forwarded_for or "").split(",") if h.strip()]
    for hop in reversed(hops):
        if hop not in trusted:
            return hop if _is_ip(hop) else "unknown"
    return peer


def _sign_out_builtin() -> None:
    st.session_state.pop(SESSION_KEY, None)


# ---- OIDC (st.login) --------------------------------------------------------------------------

def _oidc_user(settings: Settings) -> User:
    """The user signed in with the identity provider, or show a sign-in button and stop."""
    if not _oidc_configured():
        st.title("rnnlab")
        st.error("RNNLAB_AUTH is oidc, but the Streamlit secrets have no [auth] section, so nobody can "
                 "sign in. See docs/deploy.md.")
        st.stop()
    if not st.user.get("is_logged_in", False):
        st.title("rnnlab")
        st.subheader("Sign in")
        st.button("Sign in with your organization's account", on_click=_oidc_login, args=(settings,))
        st.stop()
    # Only a verified email names a user of the users file (a missing claim is not a verification:
    # some providers omit it and let users edit their email); otherwise the provider's subject id,
    # which can never match a built-in account name, gets the default role.
    email = st.user.get("email")
    verified = st.user.get("email_verified") is True
    name = str(email if email and verified else f"oidc:{st.user.get('sub')}")
    try:
        record = users.get_user(name, settings.users_path)
    except ValueError:
        record = None
    user = User(name, record.role if record else settings.oidc_default_role)
    _account_box(user, sign_out=st.logout)
    return user


def _oidc_login(settings: Settings) -> None:
    if settings.oidc_provider:
        st.login(settings.oidc_provider)
    else:
        st.login()


# ---- shared -----------------------------------------------------------------------------------

def _account_box(user: User, sign_out) -> None:
    """A sign-out button in the sidebar, once per script run (the app shell shows who is signed in)."""
    try:
        st.sidebar.button("Sign out", key="rnnlab_sign_out", on_click=sign_out,
                          help=f"Signed in as {user.name} ({user.role})")
    except st.errors.StreamlitAPIException:
        pass   # current_user() was called a second time in this run: the button is already there


__all__ = ["ACTIONS", "LOCAL_USER", "ROLES", "User", "auth_mode", "can", "current_user"]
