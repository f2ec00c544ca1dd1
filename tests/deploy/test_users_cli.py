"""Built-in users: the users file (rnnlab.users) and `rnnlab user add|list|remove` (cli.users)."""

from __future__ import annotations

import stat

import bcrypt
import pytest
import yaml
from typer.testing import CliRunner

from cli.users import users_app
from rnnlab import users


@pytest.fixture
def users_file(tmp_path, monkeypatch):
    path = tmp_path / "conf" / "users.yaml"
    monkeypatch.setenv("RNNLAB_USERS_FILE", str(path))
    return path


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(users_app, list(args), input=input)


def test_add_prompts_twice_and_stores_only_a_bcrypt_hash(users_file):
    result = run("add", "alice", "--role", "member", input="correct horse\ncorrect horse\n")
    assert result.exit_code == 0, result.output
    assert f"added alice (member, password) in {users_file}" in result.output
    text = users_file.read_text()
    assert "correct horse" not in text
    entry = yaml.safe_load(text)["users"]["alice"]
    assert entry["role"] == "member"
    assert entry["password_hash"].startswith("$2b$12$")
    assert bcrypt.checkpw(b"correct horse", entry["password_hash"].encode())
    assert stat.S_IMODE(users_file.stat().st_mode) == 0o600


def test_add_refuses_mismatched_confirmation(users_file):
    result = run("add", "alice", input="correct horse\nother horse\ncorrect horse\ncorrect horse\n")
    assert result.exit_code == 0 and "do not match" in result.output.lower()


def test_list_shows_names_roles_and_login_kind_but_no_hashes(users_file):
    run("add", "alice", "--role", "admin", "--password-stdin", input="secret-pass\n")
    run("add", "bob@example.com", "--role", "viewer", "--no-password")
    result = run("list")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].split() == ["NAME", "ROLE", "LOGIN"]
    assert lines[1].split() == ["alice", "admin", "password"]
    assert lines[2].split() == ["bob@example.com", "viewer", "oidc"]
    assert "$2b$" not in result.output


def test_list_of_no_file_says_so(users_file):
    result = run("list")
    assert result.exit_code == 0 and f"no users in {users_file}" in result.output


def test_add_existing_needs_update(users_file):
    run("add", "alice", "--password-stdin", input="secret-pass\n")
    again = run("add", "alice", "--password-stdin", input="other-pass\n")
    assert again.exit_code == 2 and "already exists" in again.output      # bad input, as in every command
    updated = run("add", "alice", "--role", "admin", "--update", "--password-stdin", input="other-pass\n")
    assert updated.exit_code == 0, updated.output
    assert users.verify_password("alice", "other-pass", users_file).role == "admin"
    assert users.verify_password("alice", "secret-pass", users_file) is None


@pytest.mark.parametrize("args, message", [
    (["add", "alice", "--role", "owner", "--no-password"],
     "role 'owner' is not allowed; choose one of: viewer, member, admin"),
    (["add", "al ice", "--no-password"], "user name 'al ice' is not allowed"),
    (["add", "-x", "--no-password"], "No such option"),
    (["remove", "nobody"], "no user 'nobody'"),
], ids=["role", "name-space", "name-dash", "remove-missing"])
def test_errors_name_the_value_and_what_is_allowed(users_file, args, message):
    result = run(*args)
    assert result.exit_code == 2
    assert message in result.output


@pytest.mark.parametrize("password, message", [
    ("short", "at least 8 characters"), ("é" * 40, "at most 72 bytes"),
])
def test_password_length_is_checked(users_file, password, message):
    result = run("add", "alice", "--password-stdin", input=password + "\n")
    assert result.exit_code == 2 and message in result.output
    assert not users_file.exists() or "alice" not in users_file.read_text()


def test_remove(users_file):
    run("add", "alice", "--password-stdin", input="secret-pass\n")
    run("add", "bob", "--password-stdin", input="secret-pass\n")
    result = run("remove", "alice")
    assert result.exit_code == 0 and "removed alice" in result.output
    assert set(users.load_users(users_file)) == {"bob"}


def test_verify_password(users_file):
    users.add_user("alice", "member", "secret-pass", path=users_file)
    users.add_user("carol@example.com", "admin", None, path=users_file)
    assert users.verify_password("alice", "secret-pass", users_file) == users.get_user("alice", users_file)
    assert users.verify_password("alice", "Secret-pass", users_file) is None
    assert users.verify_password("nobody", "secret-pass", users_file) is None
    assert users.verify_password("carol@example.com", "", users_file) is None      # OIDC-only entry
    assert users.verify_password("alice", "x" * 100, users_file) is None           # too long: never matches


def test_malformed_file_is_an_error_that_names_the_problem(users_file):
    users_file.parent.mkdir(parents=True)
    users_file.write_text("users:\n  alice: {role: wizard}\n")
    with pytest.raises(ValueError, match="role 'wizard' is not allowed"):
        users.load_users(users_file)
    result = run("list")
    assert result.exit_code == 1 and "wizard" in result.output


def test_default_path_follows_rnnlab_home(tmp_path, monkeypatch):
    monkeypatch.delenv("RNNLAB_USERS_FILE", raising=False)
    monkeypatch.setenv("RNNLAB_HOME", str(tmp_path))
    assert users.default_path() == tmp_path / "users.yaml"


def test_cli_mounts_users_app():
    """cli.main mounts users_app as `rnnlab user`."""
    from cli.main import app

    result = CliRunner().invoke(app, ["user", "--help"])
    assert result.exit_code == 0 and "add" in result.output and "remove" in result.output


@pytest.mark.parametrize("args", [["list"], ["add", "bob", "--role", "viewer", "--no-password"]])
def test_a_users_file_that_is_not_yaml_is_named_not_a_traceback(tmp_path, args):
    path = tmp_path / "users.yaml"
    path.write_text("users: [unclosed\n")
    res = CliRunner().invoke(users_app, [*args, "--file", str(path)])
    assert res.exit_code == 1 and not isinstance(res.exception, yaml.YAMLError), res.output
    assert "not valid YAML" in res.output and str(path) in res.output
    assert path.read_text() == "users: [unclosed\n"   # nothing written over it
