"""`SyncMonitor`: the `Monitor` for code without an event loop (a Flask
view, a batch job). Its monitor runs on an event loop in a thread of its
own; each call waits there for the monitor's answer (a full buffer blocks
the caller, as `block=True` says, or raises `BufferFull`)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine, Mapping
from types import TracebackType
from typing import Any, TypeVar

from nnmon.monitor import CLOSE_TIMEOUT_S, Monitor

T = TypeVar("T")


class SyncMonitor:
    """`Monitor`'s methods, synchronous; the same keyword arguments. Use as
    `with SyncMonitor(...) as monitor:`, or call `close()` at the end."""

    def __init__(self, **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="nnmon-monitor", daemon=True)
        self._calls: set[concurrent.futures.Future[Any]] = set()
        self._guard = threading.Lock()
        self._closed = False
        self._thread.start()
        try:
            self.monitor: Monitor = self._call(self._started(options))
        except BaseException:
            self._stop_loop()
            raise

    @staticmethod
    async def _started(options: dict[str, Any]) -> Monitor:
        return await Monitor(**options).start()  # made on the loop: its events belong to it

    def log_prediction(self, features: Mapping[str, Any], y_pred: float, *, id: str | None = None,
                       model_version: str | None = None) -> str:
        return self._call(self.monitor.log_prediction(features, y_pred, id=id, model_version=model_version))

    def log_truth(self, id: str, y_true: float) -> None:
        self._call(self.monitor.log_truth(id, y_true))

    def flush(self) -> None:
        self._call(self.monitor.flush())

    def close(self, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
        with self._guard:
            if self._closed:
                return
        try:
            self._call(self.monitor.close(timeout_s))
        finally:
            with self._guard:
                self._closed = True
            self._stop_loop()

    def __enter__(self) -> SyncMonitor:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        with self._guard:
            if self._closed:
                coroutine.close()
                raise RuntimeError("the monitor is closed")
            call = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
            self._calls.add(call)
        try:
            return call.result()
        finally:
            with self._guard:
                self._calls.discard(call)

    def _stop_loop(self) -> None:
        with self._guard:
            for call in self._calls:  # another thread's call, caught by the close: it fails, not hangs
                call.cancel()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
