"""Streams as RabbitMQ sees them, through the management HTTP API."""

from __future__ import annotations

import asyncio
import base64
import json
import urllib.parse
import urllib.request
from typing import Any

from nnmon.processors.pipeline.features import run_features
from nnmon.processors.run.config import PipelineConfig
from tests.streamtools import management_url


def management(path: str, config: PipelineConfig) -> Any:
    credentials = f"{config.broker.user}:{config.broker.password}".encode()
    request = urllib.request.Request(
        management_url(config.broker) + "/api" + path,
        headers={"Authorization": "Basic " + base64.b64encode(credentials).decode()}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def test_streams_are_declared_as_streams_with_their_retention(config: PipelineConfig) -> None:
    asyncio.run(run_features(config, asyncio.Event(), interval=0, count=3, seed=0))
    vhost = urllib.parse.quote(config.broker.vhost, safe="")
    for stream in (config.names.features, config.names.y_true):
        queue = management(f"/queues/{vhost}/{urllib.parse.quote(stream)}", config)
        assert queue["type"] == "stream"
        assert queue["arguments"] == {
            "x-queue-type": "stream",
            "x-max-age": config.retention.max_age,
            "x-max-length-bytes": config.retention.max_bytes,
            "x-stream-max-segment-size-bytes": config.retention.segment_bytes,
        }
