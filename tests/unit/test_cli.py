"""The CLI's contract: its commands, options, environment variables and errors."""

from __future__ import annotations

import pytest
import typer.main
from typer.testing import CliRunner

from nnmon.processors.cli.app import app
from tests.streamtools import free_port

runner = CliRunner()


def test_every_processor_and_up_is_a_command() -> None:
    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    assert {"features", "model", "metric", "plot", "up", "replay", "status", "dashboard"} <= set(commands)


@pytest.mark.parametrize("command", ["features", "model", "metric", "plot", "up", "replay", "status"])
def test_common_options_are_read_from_the_environment(command: str) -> None:
    params = typer.main.get_command(app).commands[command].params  # type: ignore[attr-defined]
    envvars = {p.name: p.envvar for p in params}
    assert envvars["host"] == "NNMON_HOST"
    assert envvars["port"] == "NNMON_PORT"
    assert envvars["user"] == "NNMON_USER"
    assert envvars["password"] == "NNMON_PASSWORD"
    assert envvars["vhost"] == "NNMON_VHOST"
    assert envvars["stream_prefix"] == "NNMON_STREAM_PREFIX"
    assert envvars["logs_dir"] == "NNMON_LOGS_DIR"
    assert envvars["log_format"] == "NNMON_LOG_FORMAT"


def test_the_dashboard_port_is_the_page_and_the_broker_port_is_broker_port() -> None:
    params = typer.main.get_command(app).commands["dashboard"].params  # type: ignore[attr-defined]
    flags = {p.name: (p.opts, p.envvar) for p in params}
    assert flags["port"] == (["--port"], "NNMON_DASHBOARD_PORT")
    assert flags["broker_port"] == (["--broker-port"], "NNMON_PORT")


@pytest.mark.parametrize("command", ["features", "model", "metric", "plot"])
def test_an_unreachable_broker_gives_one_line_and_status_2(command: str) -> None:
    port = free_port()
    result = runner.invoke(app, [command, "--port", str(port)], env={"NNMON_HOST": "127.0.0.1"})
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and f"127.0.0.1:{port}" in lines[0], result.output


def test_a_wrong_password_is_named_without_showing_it(broker: object) -> None:
    result = runner.invoke(app, ["model", "--password", "s3cret-wrong"])
    assert result.exit_code == 2
    assert "password" in result.output and "s3cret-wrong" not in result.output


def test_a_model_file_that_is_not_a_model_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "model.joblib"
    path.write_text("not a model")
    result = runner.invoke(app, ["model", "--model-path", str(path), "--port", str(free_port())])
    assert result.exit_code == 2
    assert "--model-path" in result.output and "Traceback" not in result.output


def test_a_broker_without_the_stream_plugin_is_named() -> None:
    """In a network namespace of its own, where something answers on AMQP's
    port 5672 and nothing on the stream port 5552: what a RabbitMQ without
    its rabbitmq_stream plugin looks like from outside."""
    import shutil
    import subprocess
    import sys

    from tests.streamtools import NNMON

    unshare = shutil.which("unshare")
    assert unshare is not None, "unshare (util-linux) is missing"
    listener = ("import socket,time; s=socket.socket(); s.bind(('127.0.0.1',5672)); s.listen(); "
                "time.sleep(20)")
    # The listener's output goes nowhere, so that its pipes do not hold the test up.
    script = (f"ip link set lo up && ({sys.executable} -c \"{listener}\" >/dev/null 2>&1 &) && sleep 0.5 && "
              f"exec {NNMON} model --host 127.0.0.1 --port 5552")
    result = subprocess.run([unshare, "--net", "sh", "-c", script], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "rabbitmq_stream plugin" in lines[0], result.stderr
