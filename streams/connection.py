"""Opening rstream producers and consumers from `BrokerSettings`.

Every connection carries a name (`nnmon-model`, ...) so people can tell them
apart in the management UI's Stream tab.
"""

from __future__ import annotations

import rstream

from streams.settings import BrokerSettings


class BrokerError(RuntimeError):
    """The broker could not be used; the text says what to do."""


def open_producer(settings: BrokerSettings, connection_name: str) -> rstream.Producer:
    return rstream.Producer(
        settings.host,
        settings.port,
        username=settings.user,
        password=settings.password,
        vhost=settings.vhost,
        connection_name=connection_name,
    )


def open_consumer(settings: BrokerSettings, connection_name: str) -> rstream.Consumer:
    return rstream.Consumer(
        settings.host,
        settings.port,
        username=settings.user,
        password=settings.password,
        vhost=settings.vhost,
        connection_name=connection_name,
    )


def explain(error: BaseException, settings: BrokerSettings) -> str:
    """One line saying what went wrong with the broker and what to do."""
    where = f"{settings.host}:{settings.port} (vhost {settings.vhost!r})"
    if isinstance(error, (ConnectionRefusedError, ConnectionResetError)):
        return (
            f"no RabbitMQ stream port answers at {where}: start the broker "
            "(scripts/broker) or check --host/--port"
        )
    if isinstance(error, OSError):
        return f"cannot reach RabbitMQ at {where}: {error.strerror or error}"
    if isinstance(error, rstream.ServerError):
        text = str(error) or type(error).__name__
        return f"RabbitMQ at {where} refused: {text} (check --user/--password/--vhost)"
    if isinstance(error, TimeoutError):
        return f"RabbitMQ at {where} did not answer in time"
    return f"RabbitMQ at {where}: {type(error).__name__}: {error}"
