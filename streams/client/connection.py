"""Opening rstream producers and consumers from `BrokerSettings`.

Every connection carries a name (`nnmon-model`, ...) so people can tell them
apart in the management UI's Stream tab.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Callable
from typing import Any

import rstream
import rstream.exceptions
from rstream.recovery import BackOffRecoveryStrategy

from nnmon.streams.client.rstream_private import Consumer, connections, cut, last_heard
from nnmon.streams.settings import BrokerSettings


class BrokerError(RuntimeError):
    """The broker could not be used; the text says what to do."""


class ConnectionLost(BrokerError):
    """An established connection to the broker went away."""


class StreamDeleted(BrokerError):
    """A stream was deleted (or moved) while a processor used it."""


class Watch:
    """Notices when the connections of a producer or consumer close.

    rstream's own recovery is switched off: a consumer resumes at the end of
    the last chunk it saw rather than at the stored offset, and a producer
    would retry unconfirmed batches on its own schedule. Instead processors
    treat a lost connection like a crash: drop everything, reconnect, resume
    from what is durable.

    A connection that goes silent is lost too: one that has heard nothing,
    not even the heartbeat the broker sends an idle connection every third
    of `BrokerSettings.dead_after_s`, for `dead_after_s` (a network that
    drops everything, a stopped broker) is cut, checked once a second. The
    kernel alone took some 15 minutes to give up on one.
    """

    def __init__(self) -> None:
        self.lost = asyncio.Event()
        self.error: BrokerError | None = None
        self.connected = False
        self._on_loss: list[Callable[[BrokerError], None]] = []
        self._guarded: list[tuple[rstream.Consumer | rstream.Producer, float]] = []
        self._watchdog: asyncio.Task[None] | None = None

    def guard(self, entity: rstream.Consumer | rstream.Producer, dead_after_s: float) -> None:
        """Take `entity`'s connections for lost once they are silent for `dead_after_s`."""
        self._guarded.append((entity, dead_after_s))
        if self._watchdog is None:
            self._watchdog = asyncio.get_running_loop().create_task(self._watch_silence())

    def close(self) -> None:
        """Stop watching for silence (the connections are closed or lost)."""
        if self._watchdog is not None:
            self._watchdog.cancel()

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    async def _watch_silence(self, period_s: float = 1.0) -> None:
        woke = time.monotonic()
        while not self.lost.is_set():
            await asyncio.sleep(period_s)
            now, slept = time.monotonic(), time.monotonic() - woke
            woke = now
            if slept > period_s + min(bound for _, bound in self._guarded) / 3:
                continue  # the event loop itself was held up: nothing was read, nothing is known
            silent = [dead_after_s for entity, dead_after_s in self._guarded for client in connections(entity)
                      if (heard := last_heard(client)) is not None and now - heard > dead_after_s]
            if silent:
                self.on_close(rstream.OnClosedErrorInfo(
                    f"nothing heard for {silent[0]:g} s: a silent network or a stopped broker", []))
                # All of them: the processor starts afresh, and closing one
                # that still looks open would wait out its requests' timeouts.
                for entity, _ in self._guarded:
                    for client in connections(entity):
                        cut(client)

    def on_close(self, info: rstream.OnClosedErrorInfo) -> None:
        if self.error is None:
            streams = ", ".join(info.streams) or "the broker"
            if info.reason == "Metadata Update":
                self.error = StreamDeleted(f"stream {streams} was deleted or moved")
            else:
                self.error = ConnectionLost(f"connection to {streams} lost ({info.reason})")
        self.lost.set()
        callbacks, self._on_loss = self._on_loss, []
        for callback in callbacks:
            callback(self.error)

    def when_lost(self, callback: Callable[[BrokerError], None]) -> None:
        """Call `callback(error)` when the connection goes (now, if it has)."""
        if self.error is not None:
            callback(self.error)
        else:
            self._on_loss.append(callback)

    def check(self) -> None:
        """Raise the error that ended the connection, if one did."""
        if self.error is not None:
            raise self.error


def ssl_context(settings: BrokerSettings) -> ssl.SSLContext | None:
    """TLS with certificate and host name checks, or None for plain TCP."""
    if not settings.tls:
        return None
    return ssl.create_default_context(cafile=settings.tls_ca_file)


def open_producer(
    settings: BrokerSettings, connection_name: str, watch: Watch | None = None
) -> rstream.Producer:
    producer = rstream.Producer(settings.host, settings.port, **_options(settings, connection_name, watch))
    if watch is not None:
        watch.guard(producer, settings.dead_after_s)
    return producer


def open_consumer(
    settings: BrokerSettings, connection_name: str, watch: Watch | None = None
) -> Consumer:
    consumer = Consumer(settings.host, settings.port, **_options(settings, connection_name, watch))
    if watch is not None:
        watch.guard(consumer, settings.dead_after_s)
    return consumer


def _options(settings: BrokerSettings, connection_name: str, watch: Watch | None) -> dict[str, Any]:
    """What producers and consumers share: login, TLS, name, load-balancer
    mode, heartbeats, and no recovery of rstream's own (see `Watch`)."""
    return {
        # What the client asks for; the broker's (60 s by default) wins if it is lower.
        "heartbeat": max(1, int(settings.dead_after_s / 3)),
        "username": settings.user,
        "password": settings.password,
        "vhost": settings.vhost,
        "ssl_context": ssl_context(settings),
        "connection_name": connection_name,
        "on_close_handler": None if watch is None else watch.on_close,
        "recovery_strategy": BackOffRecoveryStrategy(False),
        "load_balancer_mode": settings.load_balancer,
    }


AMQP_PORT = 5672
STREAM_PORT = 5552


def _answers(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False


# What `explain` turns into one line: the errors of using a broker.
EXPLAINED_ERRORS = (BrokerError, OSError, TimeoutError, rstream.ServerError, rstream.exceptions.ClientError)


def explain(error: BaseException, settings: BrokerSettings) -> str:
    """One line saying what went wrong with the broker and what to do."""
    where = f"{settings.host}:{settings.port} (vhost {settings.vhost!r})"
    if isinstance(error, (ConnectionLost, StreamDeleted)):
        return f"RabbitMQ at {where}: {error}"
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"TLS to {where} failed: {error.verify_message} (check --tls-ca-file and --host)"
    cut_off = settings.tls and isinstance(error, ConnectionResetError)
    if isinstance(error, ssl.SSLError) or cut_off:
        reason = getattr(error, "reason", None) or "the handshake was cut off"
        return f"TLS to {where} failed: {reason} (is --port the broker's TLS port, e.g. 5551?)"
    if isinstance(error, OSError) and error.filename is not None:
        return f"cannot use {error.filename}: {error.strerror or error} (check --logs-dir and its disk)"
    if isinstance(error, (ConnectionRefusedError, ConnectionResetError)):
        refused_on_default_port = isinstance(error, ConnectionRefusedError) and settings.port == STREAM_PORT
        if refused_on_default_port and _answers(settings.host, AMQP_PORT):
            return (
                f"RabbitMQ at {settings.host} answers AMQP on {AMQP_PORT} but nothing listens on "
                f"{settings.host}:{STREAM_PORT}: enable its rabbitmq_stream plugin (scripts/broker does)"
            )
        return (
            f"no RabbitMQ stream port answers at {where}: start the broker "
            "(scripts/broker) or check --host/--port"
        )
    if isinstance(error, OSError):
        return f"cannot reach RabbitMQ at {where}: {error.strerror or error}"
    if isinstance(error, rstream.ServerError):
        text = str(error) or type(error).__name__
        if "Authentication" in type(error).__name__ or "SASL" in type(error).__name__:
            return f"RabbitMQ at {where} refused the login: {text} (check --user and --password)"
        if "VirtualHost" in type(error).__name__:
            return f"RabbitMQ at {where} refused the vhost: {text} (check --vhost)"
        return f"RabbitMQ at {where} refused: {text}"
    if isinstance(error, TimeoutError):
        return f"RabbitMQ at {where} did not answer in time"
    return f"RabbitMQ at {where}: {type(error).__name__}: {error}"
