"""`up`: runs the four processors as child processes, like compose does.

Each processor is `python -m nnmon.processors <name>`, configured through the same
NNMON_* environment variables a container gets. With a `count`, `up` returns
once the CSV holds that many new rows and the PNG has been drawn from them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from nnmon.processors.run.config import PipelineConfig
from nnmon.processors.shell.drawing import ROWS_KEY
from nnmon.processors.shell.quality_setup import QualityOptions
from nnmon.processors.watch.csv_tail import RowCounter

log = logging.getLogger("nnmon.up")


def environment(config: PipelineConfig) -> dict[str, str]:
    """The NNMON_* variables that give a child process `config`."""
    broker, retention = config.broker, config.retention
    return {
        "NNMON_HOST": broker.host,
        "NNMON_PORT": str(broker.port),
        "NNMON_USER": broker.user,
        "NNMON_PASSWORD": broker.password,
        "NNMON_VHOST": broker.vhost,
        "NNMON_TLS": "true" if broker.tls else "false",
        **({"NNMON_TLS_CA_FILE": str(broker.tls_ca_file)} if broker.tls_ca_file else {}),
        "NNMON_LOAD_BALANCER": "true" if broker.load_balancer else "false",
        "NNMON_DEAD_AFTER": str(broker.dead_after_s),
        "NNMON_STREAM_PREFIX": config.names.prefix,
        "NNMON_LOGS_DIR": str(config.logs_dir),
        "NNMON_MAX_AGE": retention.max_age,
        "NNMON_MAX_BYTES": str(retention.max_bytes),
        "NNMON_SEGMENT_BYTES": str(retention.segment_bytes),
        "NNMON_LOG_FORMAT": config.log_format.value,
    }


def png_rows(path: Path) -> int:
    """How many rows the PNG was drawn from (its `nnmon:rows` text); 0 when absent."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return int(image.text.get(ROWS_KEY, 0))  # type: ignore[attr-defined]
    except (FileNotFoundError, OSError, ValueError):
        return 0


@dataclass(frozen=True)
class UpOptions:
    interval: float
    count: int | None
    seed: int
    every: float
    timeout: float | None
    dashboard_port: int | None = None  # also serve the dashboard on this port
    concept_drift_after: int | None = None
    covariate_drift_after: int | None = None
    window_arguments: tuple[str, ...] = ()  # metric's and drift's
    model: str = "linear"  # the built-in model
    model_path: Path | None = None  # a model of the user's own, instead of the built-in one
    demo: bool = True  # features and model run; else a service writes the events (nnmon.Monitor)
    data_arguments: tuple[str, ...] = ()  # features', model's and drift's: --data FILE --target COLUMN ...
    cycle: bool = False  # features starts over at the data file's end


def quality_arguments(options: QualityOptions) -> tuple[str, ...]:
    """metric's and drift's options for these quality options."""
    arguments = ["--window", str(options.window_s), "--allowed-lateness", str(options.lateness_s),
                 "--model", options.model]
    given = {"--rules": options.rules_file, "--reference-file": options.reference_file,
             "--reference-from": options.reference_from, "--reference-to": options.reference_to}
    for flag, value in given.items():
        if value is not None:
            arguments += [flag, str(value)]
    return tuple(arguments)


async def run_up(config: PipelineConfig, stop: asyncio.Event, options: UpOptions) -> int:
    """Start the processors and supervise them; returns the exit status."""
    counter = RowCounter(config.csv_path)
    target = None if options.count is None else counter.rows() + options.count
    env = {**os.environ, **environment(config)}
    arguments = {
        "features": ["--interval", str(options.interval), "--seed", str(options.seed)]
        + ([] if options.count is None else ["--count", str(options.count)])
        + ([] if options.concept_drift_after is None else
           ["--concept-drift-after", str(options.concept_drift_after)])
        + ([] if options.covariate_drift_after is None else
           ["--covariate-drift-after", str(options.covariate_drift_after)])
        + list(options.data_arguments) + (["--cycle"] if options.cycle else []),
        "model": ["--model", options.model]
        + ([] if options.model_path is None else ["--model-path", str(options.model_path)])
        + list(options.data_arguments),
        "metric": list(options.window_arguments),
        "drift": list(options.window_arguments) + list(options.data_arguments),
        "plot": ["--every", str(options.every)],
    }
    if not options.demo:
        del arguments["features"], arguments["model"]
    if options.dashboard_port is not None:
        arguments["dashboard"] = ["--port", str(options.dashboard_port)]
    children = {
        name: await asyncio.create_subprocess_exec(
            sys.executable, "-m", "nnmon.processors", name, *arguments[name], env=env
        )
        for name in arguments
    }
    log.info("started %s", ", ".join(f"{n} (pid {c.pid})" for n, c in children.items()))
    started = time.monotonic()
    status = 0
    try:
        while not stop.is_set():
            failed = [n for n, c in children.items() if c.returncode not in (None, 0)]
            if failed:
                log.error("%s exited with status %s; stopping the others", failed[0],
                          children[failed[0]].returncode)
                status = 1
                break
            if target is not None and counter.rows() >= target \
                    and png_rows(config.png_path) >= target:
                log.info("%d rows in %s and drawn in %s", target, config.csv_path, config.png_path)
                break
            if options.timeout is not None and time.monotonic() - started > options.timeout:
                log.error("timed out after %gs", options.timeout)
                status = 1
                break
            try:
                await asyncio.wait_for(stop.wait(), 0.2)
            except TimeoutError:
                pass
    finally:
        await stop_children(children)
    return status


async def stop_children(children: dict[str, asyncio.subprocess.Process], grace_s: float = 15) -> None:
    """SIGTERM every running child (they flush and store offsets), then wait."""
    for child in children.values():
        if child.returncode is None:
            child.send_signal(signal.SIGTERM)
    for name, child in children.items():
        try:
            await asyncio.wait_for(child.wait(), grace_s)
        except TimeoutError:
            log.error("%s did not stop within %gs; killing it", name, grace_s)
            child.kill()
            await child.wait()
