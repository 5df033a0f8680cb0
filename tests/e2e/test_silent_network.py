"""Connections that go silent, for longer than the dead-connection bound:

- a black hole on one processor's connections: every packet between it and
  the broker dropped (iptables DROP on its own established loopback port
  pairs; no FIN, no RST). The processor notices within the bound, says so in
  one line, reconnects (its new connections have new ports, outside the
  hole);
- a frozen broker (SIGSTOP, then SIGCONT): every processor notices.

Either way the CSV ends with every row exactly once."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest

from nnmon.processors.run.config import PipelineConfig
from nnmon.streams.settings import BrokerSettings
from tests.streamtools import Pipeline, run_through

EVENTS = 1500
DEAD_AFTER_S = 6.0
HOLE_S = 20.0
# The bound, plus the watchdog's period (1 s) and the time the processor
# takes to let go of its connections and log the line, on a loaded machine.
NOTICED_WITHIN_S = DEAD_AFTER_S + 5.0


def broker_pid(broker_port: int) -> int:
    """The process listening on the broker's stream port."""
    listing = subprocess.run(["ss", "-Htlnp", f"( sport = :{broker_port} )"], capture_output=True,
                             text=True, check=True).stdout
    pids = set(re.findall(r"pid=(\d+),", listing))
    assert len(pids) == 1, f"not one process listens on {broker_port}: {listing!r}"
    return int(pids.pop())


def noticed(processor: str) -> re.Pattern[str]:
    """The line a processor logs for a dead connection."""
    return re.compile(rf"nnmon\.{processor} WARNING broker unavailable \(.*nothing heard for "
                      rf"{DEAD_AFTER_S:g} s: a silent network or a stopped broker")


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
    line = noticed(victim)

    def hole(pipeline: Pipeline) -> None:
        ports = broker_ports(pipeline.processes[victim].pid, config.broker.port)
        assert ports, f"{victim} has no connection to the broker"
        black_hole(ports, config.broker.port)
        holed_at = time.monotonic()
        while not line.search(pipeline.log_text()):
            assert time.monotonic() - holed_at < NOTICED_WITHIN_S, (
                f"{victim} did not notice the black hole within {NOTICED_WITHIN_S} s")
            time.sleep(0.2)
        time.sleep(max(0.0, HOLE_S - (time.monotonic() - holed_at)))

    logs = run_through(config, hole, EVENTS, {"NNMON_DEAD_AFTER": str(DEAD_AFTER_S)})
    assert len(line.findall(logs)) == 1, "one line for one dead connection"


@pytest.fixture
def frozen_broker(broker: BrokerSettings) -> Iterator[Callable[[], None]]:
    """Stops the broker's process when called (SIGSTOP); always lets it go on afterwards."""
    stopped: list[int] = []

    def freeze() -> None:
        pid = broker_pid(broker.port)
        os.kill(pid, signal.SIGSTOP)
        stopped.append(pid)

    yield freeze
    for pid in stopped:
        os.kill(pid, signal.SIGCONT)


def test_a_frozen_broker_is_noticed_by_every_processor(
    config: PipelineConfig, frozen_broker: Callable[[], None],
) -> None:
    def freeze(pipeline: Pipeline) -> None:
        frozen_broker()
        frozen_at, waiting = time.monotonic(), {"model", "metric", "features"}
        while True:
            logs = pipeline.log_text()
            waiting = {p for p in waiting if not noticed(p).search(logs)}
            if not waiting:
                break
            assert time.monotonic() - frozen_at < NOTICED_WITHIN_S, f"{sorted(waiting)} did not notice"
            time.sleep(0.2)
        os.kill(broker_pid(config.broker.port), signal.SIGCONT)

    run_through(config, freeze, EVENTS, {"NNMON_DEAD_AFTER": str(DEAD_AFTER_S)})
