"""What people see in RabbitMQ's management UI during a run, read through the
management HTTP API the UI itself uses."""

from __future__ import annotations

import asyncio
import json
import subprocess
import urllib.request
from base64 import b64encode
from typing import Any

from nnmon.processors.run.config import PipelineConfig
from tests.streamtools import NNMON, management_url, nnmon_env, wait_until


def api(config: PipelineConfig, path: str) -> Any:
    request = urllib.request.Request(management_url(config.broker) + path)
    token = b64encode(f"{config.broker.user}:{config.broker.password}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def test_streams_connections_publishers_and_consumers_are_named(config: PipelineConfig) -> None:
    names, prefix = config.names, config.names.prefix
    pipeline = subprocess.Popen([NNMON, "up", "--interval", "0.02", "--every", "1"], env=nnmon_env(config),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wanted = {f"nnmon-{prefix}{p}" for p in ("features", "model", "metric", "plot")}

        def connections() -> set[str]:
            return {c.get("client_properties", {}).get("connection_name", "")
                    for c in api(config, "/api/stream/connections")}

        asyncio.run(wait_until(lambda: wanted <= connections(), 60, "every processor's named connection"))

        def ours(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [r for r in rows if r["queue"]["name"].startswith(prefix)]

        def references() -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
            publishers = {(p["queue"]["name"], p["reference"])
                          for p in ours(api(config, "/api/stream/publishers"))}
            consumers = {(c["queue"]["name"], c["properties"].get("name", ""))
                         for c in ours(api(config, "/api/stream/consumers"))}
            return publishers, consumers

        expected_consumers = {(names.features, names.consumer("model"))} | {
            (stream, names.consumer(processor))
            for stream in (names.y_true, names.y_pred) for processor in ("metric", "plot")}

        def named() -> bool:
            # The management API's lists are refreshed every few seconds: wait for both.
            publishers, consumers = references()
            return (expected_consumers <= consumers and (names.y_pred, names.consumer("model")) in publishers
                    and any(stream == names.features and reference.startswith(names.consumer("features"))
                            for stream, reference in publishers))

        asyncio.run(wait_until(named, 60, "named publishers and consumers"))

        queues = {q["name"]: q for q in api(config, "/api/queues") if q["name"].startswith(prefix)}
        assert set(queues) == set(names.all() + names.derived())
        for queue in queues.values():
            assert queue["type"] == "stream"
            assert queue["arguments"]["x-max-age"] == config.retention.max_age
            assert queue["arguments"]["x-max-length-bytes"] == config.retention.max_bytes
    finally:
        pipeline.terminate()
        pipeline.wait(30)
