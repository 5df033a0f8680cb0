"""`Monitor`: a service's predictions and truths onto nnmon's streams.

    async with Monitor(model_version="net-v3") as monitor:
        event_id = await monitor.log_prediction({"age": 0.02, ...}, 151.3)
        ...
        await monitor.log_truth(event_id, 148.0)   # minutes or days later

Events are the ones nnmon's own processors write (`features` and `y_pred`
under one id, `y_true` under the same id later), so metric, plot, the
windows, drift and replay read them unchanged. They are buffered, sent in
batches by a task of the monitor, and confirmed by the broker in the
background; the buffer is bounded (`max_buffered` events: a full one makes
`log_*` wait, or raise `BufferFull` with `block=False`), and `close`
flushes it.

Nothing is doubled. A batch the broker has not confirmed when the
connection drops is sent again, under the same publisher name and
publishing ids: the broker stores it once. A service that restarts and logs
an event again (a retry of its own) sends it with the same id, and every
nnmon processor counts the first event of an id only (the duplicate rule).
With a stable `publisher_name`, a restarted service's publishing ids go on
above what the broker stored under it; without one, each monitor gets a
name of its own.
"""

from __future__ import annotations

import asyncio
import logging
import math
import numbers
import time
from collections import deque
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from rstream import RawMessage

from nnmon.client_settings import ClientSettings, resolve
from nnmon.streams.client.connection import EXPLAINED_ERRORS, BrokerError, Watch, explain, open_producer
from nnmon.streams.client.publisher import ConfirmedPublisher, abandon
from nnmon.streams.client.reconnect import keep_running
from nnmon.streams.client.topology import declare_streams
from nnmon.streams.events import codec
from nnmon.streams.events.ids import IdGenerator
from nnmon.streams.events.templates import PredictionTemplate

log = logging.getLogger("nnmon.monitor")

IN_FLIGHT = 4  # batches awaiting their confirms at once
CLOSE_TIMEOUT_S = 30.0
STOP_GRACE_S = 5.0  # for the sender to disconnect once all is confirmed


class BufferFull(Exception):
    """`max_buffered` events wait for the broker already (with `block=False`)."""


Batch = dict[str, list[RawMessage]]


class Monitor:
    """Publishes predictions and truths; `start` (or `async with`) first,
    `close` at the end. Settings as the CLI's (`host`, `port`, `user`,
    `password`, `password_file`, `vhost`, `tls`, `tls_ca_file`,
    `load_balancer`, `stream_prefix`, `dead_after_s`), each falling back to
    its `NNMON_*` variable."""

    def __init__(self, *, model_version: str = codec.UNKNOWN_MODEL, publisher_name: str | None = None,
                 max_buffered: int = 100_000, block: bool = True, batch_size: int = 1_000,
                 **settings: Any) -> None:
        if max_buffered < 2 or batch_size < 1:
            raise ValueError("max_buffered must be at least 2 (a prediction is two events), batch_size 1")
        self.settings: ClientSettings = resolve(**settings)
        self._ids = IdGenerator()
        names = self.settings.names
        self.publisher_name = publisher_name or f"{names.consumer('monitor')}-{self._ids.next_id()}"
        self.model_version = model_version
        self._templates: dict[str, PredictionTemplate] = {}
        self._max_buffered, self._block, self._batch_size = max_buffered, block, batch_size
        self._pending: deque[tuple[str, RawMessage]] = deque()  # not yet sent
        self._unconfirmed: deque[Batch] = deque()  # sent, in order; sent again after a reconnection
        self._buffered = 0  # events pending or unconfirmed
        self._room = asyncio.Condition()
        self._work = asyncio.Event()
        self._connected = asyncio.Event()
        self._closing = asyncio.Event()
        self._sender: asyncio.Task[None] | None = None
        self.sent = 0  # events the broker confirmed

    # --- lifecycle ---------------------------------------------------------

    async def start(self) -> Monitor:
        """Connect and declare the streams. BrokerError, in one line saying
        what to do, if the first connection fails (a wrong host or password):
        later losses of the broker are waited out and sent again."""
        if self._sender is None:
            self._sender = asyncio.create_task(keep_running(self._send_all, self._closing, log))
            # Whoever waits for room or for confirms learns that the sender ended.
            self._sender.add_done_callback(lambda _: asyncio.ensure_future(self._notify()))
        connected = asyncio.create_task(self._connected.wait())
        await asyncio.wait({connected, self._sender}, return_when=asyncio.FIRST_COMPLETED)
        connected.cancel()
        if self._sender.done():
            error = _error_of(self._sender)
            if isinstance(error, EXPLAINED_ERRORS):
                raise BrokerError(explain(error, self.settings.broker)) from None
            raise RuntimeError("the monitor stopped before it connected") from error
        return self

    async def close(self, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
        """Send what is buffered, wait for the broker's confirms, disconnect.
        TimeoutError if the broker has not confirmed it all in `timeout_s`
        (what it did not confirm then is not known to be stored)."""
        sender = self._sender
        if sender is None:
            return
        self._work.set()
        try:
            await asyncio.wait_for(self._drained(), timeout_s)
        finally:
            # Nothing is logged after this (log_* refuses), and nothing is
            # pending: the sender returns, unless it is stuck with a broker
            # that is gone, in which case it is given up on.
            self._closing.set()
            self._work.set()
            try:
                await asyncio.wait_for(asyncio.shield(sender), STOP_GRACE_S)
            except TimeoutError:
                sender.cancel()
            except Exception:  # its error: reported by _drained, or moot once all is confirmed
                pass
            await asyncio.gather(sender, return_exceptions=True)
        if self._buffered:
            raise RuntimeError(f"{self._buffered} events logged were not confirmed by the broker")

    async def __aenter__(self) -> Monitor:
        return await self.start()

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        await self.close()

    # --- logging events ----------------------------------------------------

    async def log_prediction(self, features: Mapping[str, Any], y_pred: float, *, id: str | None = None,
                             model_version: str | None = None) -> str:
        """Publish `features` and the prediction made from them under one id
        (`id`, or a new UUIDv7); the id, for the truth later. ValueError for
        a feature or prediction that is not a finite number, or a bad id."""
        event_id = self._ids.next_id() if id is None else _checked_id(id)
        values = _checked_features(features)
        predicted = _finite(y_pred, "y_pred")
        version = self.model_version if model_version is None else model_version
        template = self._templates.get(version)
        if template is None:
            template = self._templates[version] = PredictionTemplate(version)
        now_ms = time.time_ns() // 1_000_000
        names = self.settings.names
        await self._put([(names.features, codec.encode(codec.FeaturesEvent(event_id, codec.NOT_A_ROW, values,
                                                                           now_ms))),
                         (names.y_pred, template.encode(self._ids.next_id(), event_id, predicted, now_ms))])
        return event_id

    async def log_truth(self, id: str, y_true: float) -> None:
        """Publish the truth of the prediction logged under `id`."""
        event = codec.TruthEvent(_checked_id(id), _finite(y_true, "y_true"), time.time_ns() // 1_000_000)
        await self._put([(self.settings.names.y_true, codec.encode(event))])

    @property
    def buffered(self) -> int:
        """Events logged and not yet confirmed by the broker."""
        return self._buffered

    async def flush(self) -> None:
        """Wait until every event logged so far is confirmed by the broker."""
        self._work.set()
        await self._drained()

    # --- the buffer --------------------------------------------------------

    async def _put(self, events: list[tuple[str, RawMessage]]) -> None:
        sender = self._sender
        if sender is None:
            raise RuntimeError("start the monitor first (await monitor.start(), or async with)")
        if sender.done() or self._closing.is_set():
            raise RuntimeError("the monitor is closed") from _error_of(sender)
        if self._buffered + len(events) > self._max_buffered:
            if not self._block:
                raise BufferFull(f"{self._buffered} events wait for the broker (max_buffered "
                                 f"{self._max_buffered})")
            async with self._room:
                await self._room.wait_for(lambda: self._buffered + len(events) <= self._max_buffered
                                          or sender.done())
            if sender.done():
                raise RuntimeError("the monitor stopped") from _error_of(sender)
        self._pending.extend(events)
        self._buffered += len(events)
        # The sender runs when the caller next waits: what it logged until
        # then goes in one batch.
        self._work.set()

    async def _notify(self) -> None:
        async with self._room:
            self._room.notify_all()

    async def _drained(self) -> None:
        async with self._room:
            await self._room.wait_for(lambda: self._buffered == 0 or (self._sender is not None
                                                                      and self._sender.done()))
        if self._buffered and self._sender is not None and self._sender.done():
            raise RuntimeError(f"{self._buffered} events were not confirmed") from _error_of(self._sender)

    # --- the sender (run by keep_running: again after each reconnection) ---

    async def _send_all(self, watch: Watch) -> None:
        settings, names = self.settings, self.settings.names
        async with open_producer(settings.broker, f"nnmon-monitor-{self.publisher_name}", watch) as producer:
            await declare_streams(producer, (names.features, names.y_pred, names.y_true), settings.retention)
            watch.connected = True
            publisher = ConfirmedPublisher(producer, self.publisher_name, watch)
            in_flight: deque[asyncio.Future[None]] = deque()
            # After a reconnection, what was not confirmed goes again first
            # (its publishing ids kept: the broker stores each message once).
            for batch in self._unconfirmed:
                in_flight.append(await publisher.send_together(batch))
            self._connected.set()
            try:
                while True:
                    watch.check()
                    if len(in_flight) >= IN_FLIGHT or (in_flight and not self._pending):
                        await self._settle(in_flight)
                        continue
                    if not self._pending:
                        if self._closing.is_set():
                            return
                        self._work.clear()
                        await self._work.wait()
                        continue
                    batch = self._take()
                    self._unconfirmed.append(batch)
                    in_flight.append(await publisher.send_together(batch))
            finally:
                await abandon(in_flight)

    def _take(self) -> Batch:
        """Up to `batch_size` pending events, per stream in the order logged."""
        batch: Batch = {}
        for _ in range(min(self._batch_size, len(self._pending))):
            stream, message = self._pending.popleft()
            batch.setdefault(stream, []).append(message)
        return batch

    async def _settle(self, in_flight: deque[asyncio.Future[None]]) -> None:
        await in_flight[0]
        in_flight.popleft()
        confirmed = sum(len(messages) for messages in self._unconfirmed.popleft().values())
        self.sent += confirmed
        async with self._room:
            self._buffered -= confirmed
            self._room.notify_all()


def _error_of(task: asyncio.Task[None]) -> BaseException | None:
    return None if not task.done() or task.cancelled() else task.exception()


def _checked_id(event_id: str) -> str:
    if not isinstance(event_id, str) or not codec.ID_PATTERN.fullmatch(event_id):
        raise ValueError(f"id {event_id!r} is not 1-128 characters of [A-Za-z0-9._:-]")
    return event_id


def _finite(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{what} {value!r} is not a number")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{what} {value!r} is not a finite number")
    return number


def _checked_features(features: Mapping[str, Any]) -> dict[str, float]:
    if not isinstance(features, Mapping) or not features:
        raise ValueError("features must be a non-empty mapping of names to numbers")
    values = {}
    for name, value in features.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"feature name {name!r} is not a non-empty string")
        values[name] = _finite(value, f"feature {name}")
    return values
