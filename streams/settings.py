"""Where the broker is and how the streams are named and kept."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class BrokerSettings:
    """How to reach RabbitMQ's stream port."""

    host: str = "127.0.0.1"
    port: int = 5552
    user: str = "guest"
    password: str = field(default="guest", repr=False)
    vhost: str = "/"
    tls: bool = False
    tls_ca_file: Path | None = None  # None: the system's trusted CAs
    # Keep to `host` even where the broker advertises another name (a broker
    # in compose, reached from the host through a published port); rstream's
    # load-balancer mode, which on one node takes the first connection.
    load_balancer: bool = False
    # A connection that hears nothing (not even a heartbeat) for this long
    # is taken for dead, and the processor reconnects.
    dead_after_s: float = 30.0

    @classmethod
    def from_environment(cls) -> BrokerSettings:
        """From the variables the CLI reads too (NNMON_HOST and so on), for
        the tests and the benchmark; without TLS."""
        return cls(
            host=os.environ.get("NNMON_HOST", cls.host),
            port=int(os.environ.get("NNMON_PORT", cls.port)),
            user=os.environ.get("NNMON_USER", cls.user),
            password=os.environ.get("NNMON_PASSWORD", cls.password),
            vhost=os.environ.get("NNMON_VHOST", cls.vhost),
            load_balancer=os.environ.get("NNMON_LOAD_BALANCER", "").lower() in ("1", "true", "yes"),
            dead_after_s=float(os.environ.get("NNMON_DEAD_AFTER", cls.dead_after_s)),
        )


@dataclass(frozen=True)
class Retention:
    """Stream retention, passed to RabbitMQ when a stream is declared.

    The broker removes whole segments only, so the segment size must be small
    next to `max_bytes` for the byte limit to act.
    """

    max_age: str = "7D"
    max_bytes: int = 1_000_000_000
    segment_bytes: int = 50_000_000

    def arguments(self) -> dict[str, object]:
        # rstream takes the argument names without RabbitMQ's "x-" prefix and
        # silently ignores unknown keys: keep these spelled exactly.
        return {
            "max-age": self.max_age,
            "max-length-bytes": self.max_bytes,
            "stream-max-segment-size-bytes": self.segment_bytes,
        }


@dataclass(frozen=True)
class StreamNames:
    """Stream and consumer names, all under one prefix.

    The prefix lets several pipelines (and tests) share one broker without
    seeing each other's streams or stored offsets.
    """

    prefix: str = ""

    @property
    def features(self) -> str:
        return f"{self.prefix}features"

    @property
    def y_true(self) -> str:
        return f"{self.prefix}y_true"

    @property
    def y_pred(self) -> str:
        return f"{self.prefix}y_pred"

    @property
    def rejected(self) -> str:
        """Where processors put messages they cannot use, with the reason."""
        return f"{self.prefix}rejected"

    @property
    def quality(self) -> str:
        """Closed windows' quality, published by metric."""
        return f"{self.prefix}quality"

    @property
    def alerts(self) -> str:
        """Alert rules firing and resolving, published by metric and drift."""
        return f"{self.prefix}alerts"

    @property
    def drift(self) -> str:
        """Closed windows' drift, published by drift."""
        return f"{self.prefix}drift"

    def consumer(self, processor: str) -> str:
        """The server-side offset tracking name of a processor's consumer."""
        return f"{self.prefix}{processor}"

    def all(self) -> tuple[str, str, str, str]:
        return (self.features, self.y_true, self.y_pred, self.rejected)

    def derived(self) -> tuple[str, str, str]:
        """The streams of derived facts: closed windows, alerts, drift."""
        return (self.quality, self.alerts, self.drift)
