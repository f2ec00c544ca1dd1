"""The compose files, checked without a Docker engine: schema, files, variables and the services' wiring."""

from __future__ import annotations

import os
import re
import tomllib

import pytest
import yaml
from compose_helpers import ENV_EXAMPLE, MAIN, REPO, WORKERS, filled_env, services, validator


def test_validator_passes_on_both_compose_files(capsys):
    assert validator().main([str(MAIN), str(WORKERS)]) == 0, capsys.readouterr().err


@pytest.mark.parametrize("path", [MAIN, WORKERS], ids=["main", "workers"])
def test_every_variable_is_documented_and_no_problem_is_reported(path):
    report = validator().check_file(path, validator().read_env_file(ENV_EXAMPLE))
    assert report.problems == []
    assert set(report.variables) <= set(validator().read_env_file(ENV_EXAMPLE))


@pytest.mark.parametrize("mutate, expected", [
    (lambda d: d["services"]["redis"].update(shm_sizee="1g"), "'shm_sizee' does not match"),
    (lambda d: d["services"]["dashboard"]["depends_on"]["migrate"].update(condition="done"), "depends_on"),
    (lambda d: d["services"]["dashboard"].update(ports=[{"target": "x"}]), "ports"),
], ids=["unknown-key", "bad-condition", "bad-port"])
def test_schema_rejects_invalid_files(mutate, expected):
    doc = validator().load_compose(MAIN, filled_env())
    mutate(doc)
    errors = validator().schema_errors(doc)
    assert errors and any(expected in e for e in errors), errors


@pytest.mark.parametrize("mutate, expected", [
    (lambda s: s["dashboard"]["build"].update(dockerfile="docker/nope.Dockerfile"),
     "Dockerfile docker/nope.Dockerfile"),
    (lambda s: s["dashboard"].update(command=["streamlit", "run", "dashboard/nope.py"]), "dashboard/nope.py"),
    (lambda s: s["postgres"].update(volumes=["./docker/nope:/x"]), "./docker/nope"),
    (lambda s: s["migrate"]["depends_on"].update(cache={"condition": "service_healthy"}), "cache"),
    (lambda s: s["flower"].pop("healthcheck", None) or s["migrate"]["depends_on"].update(
        flower={"condition": "service_healthy"}), "flower has no healthcheck"),
    (lambda s: s["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"][0].pop("capabilities"),
     "capabilities"),
    (lambda s: s["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"][0].update(count=1),
     "both count and device_ids"),
    (lambda s: s["dashboard"]["build"]["args"].update(EXTRA="x"), "build arg EXTRA is passed but never declared"),
], ids=["dockerfile", "command-file", "bind-source", "unknown-dependency", "no-healthcheck", "no-capabilities",
        "count-and-ids", "undeclared-build-arg"])
def test_reference_checks_catch_broken_services(mutate, expected):
    doc = validator().load_compose(MAIN, filled_env())
    svcs = doc["services"]
    mutate(svcs)
    problems = [p for name, svc in svcs.items() for p in validator().service_problems(name, svc, svcs, REPO)]
    assert any(expected in p for p in problems), problems


def test_undocumented_variable_and_password_default_are_reported(tmp_path):
    path = tmp_path / "docker-compose.yml"
    path.write_text("services:\n  a:\n    image: x\n    environment:\n"
                    "      P: ${SOME_PASSWORD:-hunter2}\n      Q: ${NOT_DOCUMENTED}\n")
    problems = validator().check_file(path, {"SOME_PASSWORD": ""}).problems
    assert "variable NOT_DOCUMENTED is not documented in .env.example" in problems
    assert "variable SOME_PASSWORD has a default password; make it required" in problems


def test_interpolation_follows_compose_rules():
    interpolate = validator().interpolate
    env = {"A": "a", "E": ""}
    assert interpolate("${A}-${E:-d}-${E-d}-${U:-u}-$$A-${A:+yes}-${E:+no}", env) == "a-d--u-$A-yes-"
    with pytest.raises(validator().InterpolationError, match="E is missing a value: say so"):
        interpolate("${E:?say so}", env)


@pytest.mark.parametrize("path", [MAIN, WORKERS], ids=["main", "workers"])
def test_missing_passwords_fail_loudly(path):
    as_shipped = validator().read_env_file(ENV_EXAMPLE)
    with pytest.raises(validator().InterpolationError, match="PASSWORD"):
        validator().load_compose(path, as_shipped)


def test_env_example_documents_every_variable_with_a_comment_and_no_password():
    lines = ENV_EXAMPLE.read_text().splitlines()
    env = validator().read_env_file(ENV_EXAMPLE)
    for i, line in enumerate(lines):
        if re.match(r"[A-Z_]+=", line):
            assert lines[i - 1].startswith("#"), f"{line.split('=')[0]} has no comment above it"
    secrets = [k for k in env if "PASSWORD" in k]
    assert set(secrets) == {"POSTGRES_PASSWORD", "REDIS_PASSWORD", "RNNLAB_READONLY_PASSWORD", "FLOWER_PASSWORD"}
    assert all(env[k] == "" for k in secrets)


def test_no_password_is_written_in_the_deployment_files():
    files = [MAIN, WORKERS, ENV_EXAMPLE, *(REPO / "docker").rglob("*")]
    pattern = re.compile(r"(PASSWORD|requirepass)\w*[=:]\s*['\"]?(?!\$|\"|$)\w", re.I)
    for f in files:
        if f.is_file() and f.suffix != ".json" and "LICENSE" not in f.name:
            for line in f.read_text().splitlines():
                assert not pattern.search(line.split("#")[0]), f"{f.name}: {line}"


def test_data_services_have_volumes_healthchecks_and_passwords():
    s = services()
    pg, redis = s["postgres"], s["redis"]
    assert "pgdata:/var/lib/postgresql/data" in pg["volumes"]
    assert "pgdata" in yaml.safe_load(MAIN.read_text())["volumes"]
    assert "pg_isready" in " ".join(pg["healthcheck"]["test"])
    assert pg["environment"]["POSTGRES_PASSWORD"] == "test-postgres_password"
    assert "./docker/postgres-init:/docker-entrypoint-initdb.d:ro" in pg["volumes"]
    assert redis["command"] == ["redis-server", "--requirepass", "test-redis_password", "--appendonly", "yes"]
    assert "redis-cli ping" in " ".join(redis["healthcheck"]["test"])
    assert redis["environment"]["REDISCLI_AUTH"] == "test-redis_password"


def test_startup_order():
    s = services()
    assert s["migrate"]["command"] == ["rnnlab", "db", "upgrade"]
    assert s["migrate"]["restart"] == "no"
    assert s["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in ("dashboard", "worker-gpu", "worker-cpu"):
        assert s[name]["depends_on"] == {
            "redis": {"condition": "service_healthy"},
            "postgres": {"condition": "service_healthy"},
            "migrate": {"condition": "service_completed_successfully"},
        }, name
    assert s["flower"]["depends_on"] == {"redis": {"condition": "service_healthy"}}


def test_app_services_reach_postgres_and_redis_with_passwords():
    s = services()
    for name in ("migrate", "dashboard", "worker-gpu", "worker-cpu"):
        env = s[name]["environment"]
        assert env["RNNLAB_DATABASE_URL"] == (
            "postgresql+psycopg://rnnlab:test-postgres_password@postgres:5432/rnnlab"), name
        assert env["RNNLAB_BROKER_URL"] == "redis://:test-redis_password@redis:6379/0", name
    assert s["dashboard"]["environment"]["RNNLAB_READONLY_DATABASE_URL"] == (
        "postgresql+psycopg://rnnlab_readonly:test-rnnlab_readonly_password@postgres:5432/rnnlab")


def test_dashboard_service():
    d = services()["dashboard"]
    assert d["ports"] == ["8501:8501"]
    assert d["command"][:3] == ["streamlit", "run", "dashboard/app.py"]
    assert "--server.port=8501" in d["command"]
    assert not any("Xsrf" in c or "CORS" in c for c in d["command"]), "keep XSRF/CORS protection on"
    assert d["environment"]["RNNLAB_AUTH"] == "users"
    assert d["environment"]["RNNLAB_USERS_FILE"] == "/config/users.yaml"
    assert "config:/config" in d["volumes"]
    assert d["build"]["dockerfile"] == "docker/dashboard.Dockerfile" and d["build"]["args"]["EXTRAS"] == "dashboard"


def test_gpu_worker_reserves_one_pinned_gpu_with_shared_memory():
    w = services()["worker-gpu"]
    assert w["deploy"]["resources"]["reservations"]["devices"] == [
        {"driver": "nvidia", "device_ids": ["0"], "capabilities": ["gpu"]}]
    assert w["environment"]["CUDA_VISIBLE_DEVICES"] == "0"
    assert w["command"] == ["rnnlab", "worker", "--queues", "gpu", "--gpu", "0", "--slots", "1",
                            "--name", "gpu0@main"]
    assert services(RNNLAB_GPU_SLOTS="4")["worker-gpu"]["command"][5:8] == ["0", "--slots", "4"]
    assert w["shm_size"] == "8gb"
    assert w["hostname"] == "main-gpu0"
    assert "/whl/cu" in w["build"]["args"]["TORCH_INDEX_URL"]
    on3 = services(RNNLAB_GPU="3", RNNLAB_NODE_NAME="lab")["worker-gpu"]
    assert on3["deploy"]["resources"]["reservations"]["devices"][0]["device_ids"] == ["3"]
    assert (on3["hostname"], on3["command"][-1]) == ("lab-gpu3", "gpu3@lab")


def test_cpu_worker_uses_the_cpu_torch_index():
    w = services()["worker-cpu"]
    assert w["build"]["args"]["TORCH_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"
    assert w["command"] == ["rnnlab", "worker", "--queues", "cpu", "--slots", "2", "--name", "cpu@main"]
    assert w["environment"]["CUDA_VISIBLE_DEVICES"] == ""
    assert "deploy" not in w and w["shm_size"] == "8gb" and w["hostname"] == "main-cpu"


def test_flower_is_behind_basic_auth_on_5555():
    f = services()["flower"]
    assert f["ports"] == ["5555:5555"]
    assert f["command"][:2] == ["celery", "flower"] and "--port=5555" in f["command"]
    assert f["environment"]["FLOWER_BASIC_AUTH"] == "admin:test-flower_password"
    assert f["environment"]["CELERY_BROKER_URL"] == "redis://:test-redis_password@redis:6379/0"


def test_workers_file_only_runs_workers_that_join_the_main_host():
    s = services(WORKERS, RNNLAB_MAIN_HOST="10.0.0.5", RNNLAB_NODE_NAME="box2")
    assert set(s) == {"worker-gpu0", "worker-gpu1", "worker-gpu2", "worker-gpu3", "worker-cpu"}
    gpus = [n for n in s if n.startswith("worker-gpu")]
    ids = [s[n]["deploy"]["resources"]["reservations"]["devices"][0]["device_ids"] for n in gpus]
    assert ids == [["0"], ["1"], ["2"], ["3"]]
    assert [s[n]["hostname"] for n in gpus] == ["box2-gpu0", "box2-gpu1", "box2-gpu2", "box2-gpu3"]
    assert [s[n]["command"][-1] for n in gpus] == ["gpu0@box2", "gpu1@box2", "gpu2@box2", "gpu3@box2"]
    assert all(s[n]["command"][:8] == ["rnnlab", "worker", "--queues", "gpu", "--gpu", "0", "--slots", "1"]
               for n in gpus)
    assert s["worker-cpu"]["command"][-1] == "cpu@box2"
    for svc in s.values():
        env = svc["environment"]
        assert env["RNNLAB_DATABASE_URL"] == "postgresql+psycopg://rnnlab:test-postgres_password@10.0.0.5:5432/rnnlab"
        assert env["RNNLAB_BROKER_URL"] == "redis://:test-redis_password@10.0.0.5:6379/0"
        assert svc["shm_size"] == "8gb"
    assert "profiles" not in s["worker-gpu0"]
    assert s["worker-gpu1"]["profiles"] == ["gpu1", "gpu2", "gpu3"] and s["worker-gpu3"]["profiles"] == ["gpu3"]


@pytest.mark.parametrize("missing", ["RNNLAB_MAIN_HOST", "RNNLAB_NODE_NAME"])
def test_workers_file_requires_main_host_and_node_name(missing):
    env = filled_env(RNNLAB_MAIN_HOST="10.0.0.5", RNNLAB_NODE_NAME="box2")
    env[missing] = ""
    with pytest.raises(validator().InterpolationError, match=missing):
        validator().load_compose(WORKERS, env)


def test_dashboard_image_installs_its_extra_without_torch():
    text = (REPO / "docker" / "dashboard.Dockerfile").read_text()
    assert "ARG EXTRAS=dashboard" in text
    assert 'pip install "/app[${EXTRAS}]"' in text
    assert "torch must not be in this image" in text
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for extra in ("dashboard", "flower"):
        reqs = project["dependencies"] + project["optional-dependencies"][extra]
        assert not [r for r in reqs if r.lower().startswith("torch")], extra


def test_worker_image_installs_torch_from_the_chosen_index_then_its_extra():
    text = (REPO / "docker" / "worker.Dockerfile").read_text()
    torch_at = text.index('pip install --index-url "${TORCH_INDEX_URL}" "torch')
    assert torch_at < text.index('pip install "/app[worker]"')
    assert "ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cu" in text


def test_images_keep_secrets_and_local_state_out():
    ignored = (REPO / ".dockerignore").read_text().split()
    for entry in (".env", ".venv", ".git", ".streamlit/secrets.toml", "*.db", "users.yaml"):
        assert entry in ignored


def test_postgres_init_script_is_executable_and_takes_its_password_from_the_environment():
    script = REPO / "docker" / "postgres-init" / "10-readonly-role.sh"
    assert os.access(script, os.X_OK)
    text = script.read_text()
    assert '"${RNNLAB_READONLY_PASSWORD:?' in text
    for stmt in ("SET default_transaction_read_only = on", "SET statement_timeout",
                 "GRANT SELECT ON ALL TABLES", "ALTER DEFAULT PRIVILEGES"):
        assert stmt in text


def test_dockerfile_checks(tmp_path):
    (tmp_path / "app").mkdir()
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("# comment\nARG BASE=python:3.12-slim\nFROM ${BASE}\nARG EXTRAS\n"
                          "COPY app /app\nCOPY missing.txt \\\n     /x\nRUNN echo hi\n")
    problems = validator().dockerfile_problems(dockerfile, tmp_path, {"EXTRAS", "TYPO"})
    assert problems == ["Dockerfile: COPY source missing.txt is not in the build context",
                        "Dockerfile: unknown instruction RUNN",
                        "Dockerfile: build arg TYPO is passed but never declared with ARG"]
    dockerfile.write_text("RUN echo hi\nFROM x\n")
    assert validator().dockerfile_problems(dockerfile, tmp_path, set()) == [
        "Dockerfile: the first instruction after ARGs must be FROM, not RUN"]


def _closure(requirements: list[str]) -> set[str]:
    """Names of every installed distribution that requirements pull in, transitively (markers applied)."""
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    seen: set[str] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name in seen:
            continue
        seen.add(name)
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            continue
        for raw in dist.requires or []:
            sub = Requirement(raw)
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in (req.extras or {""})):
                todo.append(sub)
    return seen


@pytest.mark.parametrize("extra", ["dashboard", "flower"])
def test_slim_images_pull_in_no_torch_even_transitively(extra):
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    names = _closure(project["dependencies"] + project["optional-dependencies"][extra])
    assert ("streamlit" if extra == "dashboard" else "flower") in names
    assert "torch" in _closure(project["optional-dependencies"]["worker"])     # the check can see torch
    assert not {n for n in names if n == "torch" or n.startswith("nvidia-")}, sorted(names)
