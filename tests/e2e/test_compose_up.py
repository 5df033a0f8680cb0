"""`docker compose up` for real: the real Docker Compose v2 CLI against podman,
with the base images' stand-ins built by scripts/container-images, in fresh
clones of this repository owned by root, by uid 1000 and by another uid.

It checks what a user would: the broker gets healthy, rows reach
./logs/metric_log.csv with the right header and unique ids, the PNG decodes,
the dashboard and /metrics answer, a client on the host reaches the broker
through 127.0.0.1, the files belong to the clone's owner, a stop and an up
carry on without a doubled row, and `down -v` leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from PIL import Image

from nnmon.processors.core.rows import HEADER
from tests.containers import ROOT, Stack, podman_engine
from tests.streamtools import NNMON, free_port


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    with podman_engine(tmp_path_factory.mktemp("podman")) as environment:
        yield environment


def stack_in_clone(folder: Path, engine: dict[str, str], owner: int) -> Stack:
    subprocess.run(["git", "clone", "-q", str(ROOT), str(folder)], check=True, timeout=60)
    if owner:
        subprocess.run(["chown", "-R", f"{owner}:{owner}", str(folder)], check=True)
    ports = {name: free_port() for name in ("management", "stream", "dashboard")}
    return Stack(folder, engine, f"nnmon-test-{uuid.uuid4().hex[:8]}", ports)


def csv_ids(stack: Stack) -> list[str]:
    path = stack.folder / "logs" / "metric_log.csv"
    try:
        return list(pd.read_csv(path)["id"])
    except (FileNotFoundError, pd.errors.EmptyDataError, KeyError):
        return []


def wait_for(what: str, condition: object, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not callable(condition) or not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        time.sleep(1)


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        body: bytes = response.read()
        return body


@pytest.mark.parametrize("owner", [0, 1000, 4242], ids=["root", "uid-1000", "uid-4242"])
def test_compose_up_runs_the_pipeline_for_the_clones_owner(
    engine: dict[str, str], tmp_path: Path, owner: int
) -> None:
    stack = stack_in_clone(tmp_path / "nnmon", engine, owner)
    logs = stack.folder / "logs"
    try:
        stack.up("--build")
        wait_for("rows in the CSV", lambda: len(csv_ids(stack)) >= 20)
        assert (logs / "metric_log.csv").read_text().startswith(HEADER)
        ids = csv_ids(stack)
        assert len(ids) == len(set(ids))
        # The files belong to the clone's owner (to nnmon, uid 1000, when it is root).
        expected_owner = owner or 1000
        assert {path.stat().st_uid for path in logs.rglob("*") if path.is_file()} == {expected_owner}
        services = {str(c["Labels"]["com.docker.compose.service"]): str(c["Id"])  # type: ignore[index]
                    for c in stack.containers()}
        assert set(services) == {"rabbitmq", "features", "model", "metric", "drift", "plot", "dashboard"}
        # No nnmon process keeps root: each container's first process is nnmon, as the owner.
        for service in services.keys() - {"rabbitmq"}:
            pid = subprocess.run(["podman", "inspect", "--format", "{{.State.Pid}}", services[service]],
                                 capture_output=True, text=True, check=True).stdout.strip()
            status = Path(f"/proc/{pid}/status").read_text()
            uids = next(line.split()[1:] for line in status.splitlines() if line.startswith("Uid:"))
            assert set(uids) == {str(expected_owner)}, (service, uids)
            assert "nnmon" in Path(f"/proc/{pid}/cmdline").read_bytes().decode()
        if owner == 0:
            check_what_a_user_watches(stack)
            check_a_stop_and_up_carry_on(stack)
    finally:
        stack.down()
    assert stack.containers() == [] and stack.volumes() == []


def check_what_a_user_watches(stack: Stack) -> None:
    png = stack.folder / "logs" / "error_distribution.png"
    wait_for("the PNG", png.exists)
    with Image.open(png) as image:
        image.load()
        assert image.format == "PNG" and image.width > 100
    def summary() -> dict[str, Any]:
        found: dict[str, Any] = json.loads(fetch(f"http://127.0.0.1:{stack.ports['dashboard']}/api/summary"))
        return found

    wait_for("the dashboard's rows", lambda: summary()["rows"] > 0, timeout=60)  # it refreshes every 2 s
    assert summary()["broker"]["reachable"]
    assert b"nnmon_csv_rows" in fetch(f"http://127.0.0.1:{stack.ports['dashboard']}/metrics")
    # A client on the host, through the published port, without editing /etc/hosts.
    status = subprocess.run(
        [NNMON, "status", "--json", "--port", str(stack.ports["stream"]), "--load-balancer",
         "--user", "nnmon", "--password", "nnmon", "--stream-prefix", "",
         "--management-url", f"http://127.0.0.1:{stack.ports['management']}",
         "--logs-dir", str(stack.folder / "logs")],
        capture_output=True, text=True, timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("NNMON_")})
    assert status.returncode == 0, status.stderr
    found = json.loads(status.stdout)
    assert {s["name"]: s["exists"] for s in found["streams"]} == dict.fromkeys(
        ("features", "y_true", "y_pred", "rejected", "quality", "alerts", "drift"), True)
    assert found["csv"]["rows"] > 0


def check_a_stop_and_up_carry_on(stack: Stack) -> None:
    stack.stop()
    before = len(csv_ids(stack))
    stack.up()
    wait_for("new rows after the restart", lambda: len(csv_ids(stack)) >= before + 20)
    ids = csv_ids(stack)
    assert len(ids) == len(set(ids)), "a row was doubled across the restart"
