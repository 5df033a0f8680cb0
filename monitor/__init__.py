"""nnmon: a real-time monitor of a model's predictions on RabbitMQ Streams.

For a service whose model predicts, the client: `from nnmon import Monitor`
(async) or `SyncMonitor` (for code without an event loop). It publishes the
features and the prediction of each id, and later its truth, in the event
format of nnmon's own processors, so everything downstream (metric, plot,
the windows, drift, replay) works unchanged.

Imported lazily: `nnmon.processors` and `nnmon.streams` live under this
package, and a processor's start should not pay for the client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nnmon.monitor import BufferFull, Monitor
    from nnmon.sync_monitor import SyncMonitor

__all__ = ["BufferFull", "Monitor", "SyncMonitor"]


def __getattr__(name: str) -> Any:
    if name in ("Monitor", "BufferFull"):
        from nnmon import monitor

        return getattr(monitor, name)
    if name == "SyncMonitor":
        from nnmon.sync_monitor import SyncMonitor

        return SyncMonitor
    raise AttributeError(f"module 'nnmon' has no attribute {name!r}")
