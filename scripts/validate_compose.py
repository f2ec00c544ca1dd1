#!/usr/bin/env python3
"""Check compose files without a Docker engine: schema, referenced files, and documented variables.

    python scripts/validate_compose.py [FILE ...] [--env-example .env.example]

For each file (default: docker-compose.yml and docker-compose.workers.yml) it
  1. interpolates ${VAR}, ${VAR:-default}, ${VAR:?error}, ... like compose does, using the values of
     .env.example with every empty required variable filled by a placeholder;
  2. validates the result against the compose-spec JSON schema vendored in docker/compose-spec.json
     (the schema docker-compose 1.29.2 ships on PyPI, Apache-2.0; see docker/README.md);
  3. checks what the schema cannot: build contexts and Dockerfiles exist, bind-mount sources and
     files named in commands exist, depends_on names real services (with healthchecks where
     service_healthy is asked for), GPU reservations are well formed, and every variable the file
     uses is documented in .env.example, with no password default anywhere.
Exits 1 and lists every problem, or prints "ok".
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "docker" / "compose-spec.json"
DEFAULT_FILES = ("docker-compose.yml", "docker-compose.workers.yml")
PLACEHOLDER = "placeholder-secret"

# $$ | $VAR | ${VAR} | ${VAR<op><arg>} with op one of :- - :? ? :+ +
_VAR = re.compile(r"\$(?:(\$)|([A-Za-z_][A-Za-z0-9_]*)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\})")
# command words that name a file of the repository: relative paths with a known suffix
_FILE_WORD = re.compile(r"^(?!-)(?![a-z]+://)[\w./-]+\.(?:py|sh|sql|toml|ya?ml|ini|cfg|json)$")


class InterpolationError(ValueError):
    """A required variable (${VAR:?message}) is unset or empty."""


@dataclass
class Variable:
    """One variable reference in a compose file."""

    name: str
    required: bool = False
    default: str | None = None


@dataclass
class Report:
    """What one compose file uses and what is wrong with it."""

    path: Path
    variables: dict[str, Variable] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of an env file (comments and blank lines skipped, no quote processing)."""
    env = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key.strip()):
            raise ValueError(f"{path}:{n}: not a KEY=VALUE line: {line!r}")
        env[key.strip()] = value.strip()
    return env


def _strings(value):
    """Every string value of a loaded document (compose interpolates values, never keys)."""
    if isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, str):
        yield value


def scan_variables(doc) -> dict[str, Variable]:
    """Every variable a loaded compose document refers to, whether it is required, its default."""
    found: dict[str, Variable] = {}
    for m in (m for s in _strings(doc) for m in _VAR.finditer(s)):
        if m.group(1):
            continue
        name = m.group(2) or m.group(3)
        op, arg = m.group(4), m.group(5)
        var = found.setdefault(name, Variable(name))
        if op in (":?", "?"):
            var.required = True
        elif op in (":-", "-"):
            var.default = arg
    return found


def interpolate(value, env: dict[str, str]):
    """Substitute variables in every string of a loaded compose document, as compose does."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def sub(m: re.Match) -> str:
        if m.group(1):
            return "$"
        name = m.group(2) or m.group(3)
        op, arg = m.group(4), m.group(5) or ""
        val = env.get(name)
        is_set, non_empty = val is not None, bool(val)
        if op == ":-":
            return val if non_empty else arg
        if op == "-":
            return val if is_set else arg
        if op in (":?", "?"):
            if (op == ":?" and not non_empty) or (op == "?" and not is_set):
                raise InterpolationError(f"required variable {name} is missing a value: {arg}")
            return val
        if op == ":+":
            return arg if non_empty else ""
        if op == "+":
            return arg if is_set else ""
        return val or ""

    return _VAR.sub(sub, value)


def load_raw(path: Path) -> dict:
    """Load a compose file with YAML anchors and merge keys resolved, not interpolated."""
    doc = yaml.safe_load(path.read_text())
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: not a mapping at the top level")
    return doc


def load_compose(path: Path, env: dict[str, str]) -> dict:
    """Load a compose file and interpolate it with env, as `docker compose config` would."""
    return interpolate(load_raw(path), env)


def schema_errors(doc: dict) -> list[str]:
    """Violations of the vendored compose-spec JSON schema, one line each."""
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft201909Validator(schema)
    out = []
    for err in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path)):
        where = "/".join(str(p) for p in err.absolute_path) or "(top)"
        out.append(f"schema: {where}: {err.message}")
    return out


def _command_words(cmd) -> list[str]:
    if cmd is None:
        return []
    return cmd.split() if isinstance(cmd, str) else [str(c) for c in cmd]


def _bind_source(volume) -> str | None:
    """The host path of a bind mount (short or long syntax), or None for a named volume."""
    if isinstance(volume, dict):
        return volume.get("source") if volume.get("type") == "bind" else None
    src = str(volume).split(":", 1)[0]
    return src if src.startswith((".", "/", "~")) else None


DOCKERFILE_INSTRUCTIONS = {"FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME",
                           "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL", "MAINTAINER"}


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, with continuation lines joined and comments dropped."""
    out, pending = [], ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        pending += " " + stripped
        if pending.endswith("\\"):
            pending = pending[:-1]
            continue
        word, _, rest = pending.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        pending = ""
    return out


def dockerfile_problems(path: Path, context: Path, build_args: set[str]) -> list[str]:
    """Unknown instructions, no FROM first, COPY/ADD sources missing from the context, build args
    passed by compose that the Dockerfile never declares."""
    out, declared = [], set()
    steps = dockerfile_instructions(path)
    first = next((w for w, _ in steps if w != "ARG"), None)
    if first != "FROM":
        out.append(f"{path.name}: the first instruction after ARGs must be FROM, not {first}")
    for word, rest in steps:
        if word not in DOCKERFILE_INSTRUCTIONS:
            out.append(f"{path.name}: unknown instruction {word}")
        elif word == "ARG":
            declared.add(rest.split("=", 1)[0].strip())
        elif word in ("COPY", "ADD") and "--from" not in rest:
            parts = [p for p in (json.loads(rest) if rest.startswith("[") else rest.split()) if not p.startswith("--")]
            for src in parts[:-1]:
                if not any(ch in src for ch in "*?$") and not (context / src).exists():
                    out.append(f"{path.name}: {word} source {src} is not in the build context")
    out += [f"{path.name}: build arg {a} is passed but never declared with ARG" for a in sorted(build_args - declared)]
    return out


def _build_problems(name: str, svc: dict, base: Path) -> list[str]:
    """The build context and Dockerfile of a service exist, and the Dockerfile is sound; or it has an image."""
    build = svc.get("build")
    if isinstance(build, str):
        build = {"context": build}
    if not build:
        return [] if "image" in svc else [f"{name}: has neither image nor build"]
    context = (base / build.get("context", ".")).resolve()
    if not context.is_dir():
        return [f"{name}: build context {build.get('context')} does not exist"]
    dockerfile = context / build.get("dockerfile", "Dockerfile")
    if not dockerfile.is_file():
        return [f"{name}: Dockerfile {build.get('dockerfile', 'Dockerfile')} does not exist"]
    args = build.get("args") or {}
    names = set(args) if isinstance(args, dict) else {a.split("=", 1)[0] for a in args}
    return [f"{name}: {p}" for p in dockerfile_problems(dockerfile, context, names)]


def _path_problems(name: str, svc: dict, base: Path) -> list[str]:
    """Relative files named by the command or entrypoint, and bind-mount sources, exist."""
    out = []
    for word in _command_words(svc.get("command")) + _command_words(svc.get("entrypoint")):
        if _FILE_WORD.match(word) and not word.startswith("/") and not (base / word).exists():
            out.append(f"{name}: command names {word}, which does not exist")
    for vol in svc.get("volumes", []):
        src = _bind_source(vol)
        if src and not src.startswith(("/", "~")) and not (base / src).exists():
            out.append(f"{name}: bind-mount source {src} does not exist")
    return out


def _depends_problems(name: str, svc: dict, services: dict) -> list[str]:
    """depends_on names services, and each condition can be met by the service it waits for."""
    out = []
    depends = svc.get("depends_on", {})
    for dep in depends:
        if dep not in services:
            out.append(f"{name}: depends_on {dep}, which is not a service")
            continue
        cond = depends[dep].get("condition") if isinstance(depends, dict) else "service_started"
        if cond == "service_healthy" and not services[dep].get("healthcheck"):
            out.append(f"{name}: waits for {dep} to be healthy, but {dep} has no healthcheck")
        if cond == "service_completed_successfully" and services[dep].get("restart", "no") != "no":
            out.append(f"{name}: waits for {dep} to complete, but {dep} restarts")
    return out


def _device_problems(name: str, svc: dict) -> list[str]:
    """Each reserved device has capabilities, and not both count and device_ids."""
    out = []
    devices = svc.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", [])
    for dev in devices:
        if not dev.get("capabilities"):
            out.append(f"{name}: a reserved device needs capabilities (e.g. [gpu])")
        if "count" in dev and "device_ids" in dev:
            out.append(f"{name}: a reserved device cannot have both count and device_ids")
    return out


def service_problems(name: str, svc: dict, services: dict, base: Path) -> list[str]:
    """Problems of one service that the schema does not catch."""
    return (_build_problems(name, svc, base) + _path_problems(name, svc, base)
            + _depends_problems(name, svc, services) + _device_problems(name, svc))


def check_file(path: Path, documented: dict[str, str]) -> Report:
    """All problems of one compose file, given the variables documented in .env.example."""
    report = Report(path)
    try:
        report.variables = scan_variables(load_raw(path))
    except (yaml.YAMLError, ValueError) as e:
        report.problems.append(f"cannot load: {e}")
        return report
    for var in report.variables.values():
        if var.name not in documented:
            report.problems.append(f"variable {var.name} is not documented in .env.example")
        if "PASSWORD" in var.name and (var.default or documented.get(var.name)):
            report.problems.append(f"variable {var.name} has a default password; make it required")
    env = {k: (v or PLACEHOLDER) for k, v in documented.items()}
    try:
        doc = load_compose(path, env)
    except (InterpolationError, yaml.YAMLError, ValueError) as e:
        report.problems.append(f"cannot load: {e}")
        return report
    report.problems += schema_errors(doc)
    services = doc.get("services") or {}
    if not isinstance(services, dict) or not services:
        report.problems.append("no services")
        return report
    for name, svc in services.items():
        if isinstance(svc, dict):
            report.problems += service_problems(name, svc, services, path.parent)
    return report


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--env-example", type=Path, default=ROOT / ".env.example")
    args = ap.parse_args(argv)
    files = args.files or [ROOT / f for f in DEFAULT_FILES]
    documented = read_env_file(args.env_example)
    failed = False
    for f in files:
        report = check_file(f, documented)
        for p in report.problems:
            print(f"{f}: {p}", file=sys.stderr)
        failed |= bool(report.problems)
        if not report.problems:
            print(f"{f}: ok ({len(report.variables)} variables, all documented)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
