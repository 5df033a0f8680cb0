"""Shared fixtures. Tests marked `broker` talk to the real local RabbitMQ
(scripts/broker starts it), each under a random stream prefix so no two
tests see each other's streams or offsets."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from nnmon.processors.run.config import PipelineConfig
from nnmon.streams.client.connection import open_consumer
from nnmon.streams.settings import BrokerSettings, Retention, StreamNames

# A loaded 2-core machine generates examples slowly; that is no test failure.
settings.register_profile(
    "nnmon", deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
settings.load_profile("nnmon")


@pytest.fixture(scope="session")
def broker() -> BrokerSettings:
    """The local broker; a test that needs one fails (never skips) without it."""
    settings = BrokerSettings.from_environment()
    try:
        socket.create_connection((settings.host, settings.port), timeout=2).close()
    except OSError as error:
        pytest.fail(f"no RabbitMQ stream port at {settings.host}:{settings.port} ({error}); "
                    "run scripts/broker", pytrace=False)
    return settings


@pytest.fixture
def config(broker: BrokerSettings, tmp_path: Path) -> Iterator[PipelineConfig]:
    """A pipeline under a fresh random prefix, its logs in a temporary folder;
    its streams are deleted afterwards."""
    names = StreamNames(f"test-{uuid.uuid4().hex[:10]}-")
    config = PipelineConfig(broker, names, Retention(max_age="1h", max_bytes=500_000_000,
                                                     segment_bytes=10_000_000), tmp_path / "logs")
    yield config
    asyncio.run(delete_streams(broker, names.all() + names.derived()))


async def delete_streams(broker: BrokerSettings, streams: tuple[str, ...]) -> None:
    async with open_consumer(broker, "nnmon-tests") as consumer:
        for stream in streams:
            await consumer.delete_stream(stream, missing_ok=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "config" in getattr(item, "fixturenames", ()) or "broker" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.broker)

