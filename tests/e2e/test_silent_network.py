"""A black hole on one processor's connections: every packet between it and
the broker dropped (iptables DROP on its own established loopback port
pairs; no FIN, no RST), for longer than the dead-connection bound. The
processor notices within the bound, says so in one line, reconnects (its new
connections have new ports, outside the hole) and the CSV ends with every
row exactly once."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest

from nnmon.processors.run.config import PipelineConfig
from tests.streamtools import Pipeline, stream_length

EVENTS = 1500
DEAD_AFTER_S = 6.0
HOLE_S = 20.0
# The bound, plus the watchdog's period and the time the log line takes.
NOTICED_WITHIN_S = DEAD_AFTER_S + 3.0


def broker_ports(pid: int, broker_port: int) -> list[int]:
    """The local ports of `pid`'s established connections to the broker."""
    listing = subprocess.run(["ss", "-Htnp", "state", "established", f"( dport = :{broker_port} )"],
                             capture_output=True, text=True, check=True).stdout
    return [int(line.split()[2].rsplit(":", 1)[1]) for line in listing.splitlines()
            if f"pid={pid}," in line]


def iptables(*rule: str) -> None:
    command = shutil.which("iptables")
    assert command is not None, "iptables is needed for the black hole (scripts/container-images installs it)"
    subprocess.run([command, "-w", *rule], check=True, capture_output=True, timeout=30)


@pytest.fixture
def black_hole() -> Iterator[Callable[[list[int], int], None]]:
    """Drops every packet of the given local ports to and from the broker
    port when called; always removes its rules afterwards."""
    rules: list[list[str]] = []

    def drop(ports: list[int], broker_port: int) -> None:
        for port in ports:
            for source, destination in ((broker_port, port), (port, broker_port)):
                rule = ["INPUT", "-i", "lo", "-p", "tcp", "--sport", str(source), "--dport", str(destination),
                        "-j", "DROP"]
                iptables("-I", *rule)
                rules.append(rule)

    yield drop
    for rule in rules:
        iptables("-D", *rule)


@pytest.mark.parametrize("victim", ["metric", "model"])
def test_a_black_hole_is_noticed_within_the_bound_and_nothing_is_lost_or_doubled(
    config: PipelineConfig, black_hole: Callable[[list[int], int], None], victim: str,
) -> None:
    config.logs_dir.mkdir(parents=True)
    pipeline = Pipeline(config)
    pipeline.env["NNMON_DEAD_AFTER"] = str(DEAD_AFTER_S)
    log_path = config.logs_dir.parent / "processes.log"
    try:
        pipeline.start("model")
        pipeline.start("metric")
        pipeline.start("features", "--interval", "0.01", "--count", str(EVENTS))
        deadline = time.monotonic() + 60
        while pipeline.rows() < 200:
            assert time.monotonic() < deadline, "the pipeline never got going"
            time.sleep(0.1)
        ports = broker_ports(pipeline.processes[victim].pid, config.broker.port)
        assert ports, f"{victim} has no connection to the broker"
        black_hole(ports, config.broker.port)
        holed_at = time.monotonic()
        noticed = re.compile(rf"nnmon\.{victim} WARNING broker unavailable \(.*nothing heard for "
                             rf"{DEAD_AFTER_S:g} s: a silent network or a stopped broker")
        while not noticed.search(log_path.read_text()):
            assert time.monotonic() - holed_at < NOTICED_WITHIN_S, (
                f"{victim} did not notice the black hole within {NOTICED_WITHIN_S} s")
            time.sleep(0.2)
        time.sleep(max(0.0, HOLE_S - (time.monotonic() - holed_at)))
        deadline = time.monotonic() + 120
        while pipeline.rows() < EVENTS:
            assert time.monotonic() < deadline, f"stuck at {pipeline.rows()} of {EVENTS} rows"
            assert all(p.poll() is None for n, p in pipeline.processes.items() if n != "features")
            time.sleep(0.2)
        time.sleep(2)  # room for a wrong extra row to show up
        assert pipeline.processes["features"].wait(timeout=60) == 0
    finally:
        pipeline.stop()

    logs = log_path.read_text()
    assert len(noticed.findall(logs)) == 1, "one line for one dead connection"
    assert "Traceback" not in logs
    ids = [line.split(",")[0] for line in config.csv_path.read_text().splitlines()[1:]]
    assert len(ids) == len(set(ids)) == EVENTS
    assert asyncio.run(stream_length(config.broker, config.names.y_pred)) == EVENTS
