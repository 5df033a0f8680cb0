"""`nnmon dashboard`: a web page that follows the pipeline as it runs.

An aiohttp server on localhost with four routes:
- `/`: the page (web/dashboard.html), which polls the JSON below;
- `/static/plotly.min.js`: the page's charting library;
- `/api/summary`: error figures from the metric log, the quality windows
  and alerts from metric's summary, the drift windows and alerts from
  drift's, lag from the broker;
- `/metrics`: the same figures for Prometheus.

The dashboard only reads: the CSV (followed like `tail -f`), the
checkpoints and the broker's offsets. It keeps serving while the broker is
away and says so on the page.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import web

from nnmon.processors.run.config import PipelineConfig
from nnmon.processors.run.runtime import UsageError
from nnmon.processors.run.throttle import Every
from nnmon.processors.shell.counts import read_counts
from nnmon.processors.watch.csv_tail import CsvTail
from nnmon.processors.watch.error_stats import ErrorStats
from nnmon.processors.watch.prometheus import metrics_response
from nnmon.processors.watch.status import Status, collect
from nnmon.processors.watch.summaries import DriftStatus, QualityStatus, read_drift, read_quality
from nnmon.streams.client.connection import EXPLAINED_ERRORS, explain

log = logging.getLogger("nnmon.dashboard")

REFRESH_S = 2.0  # the page polls this often; the CSV is read as often
STATUS_EVERY_S = 4.0  # the broker is asked this often
STATUS_TIMEOUT_S = 15.0
RATE_WINDOW_S = 10.0  # events per second: rows added over this many seconds
PROCESSORS = ("features", "model", "metric", "drift", "plot")


@dataclass
class Dashboard:
    """What the page and /metrics show, refreshed by `refresh`."""

    config: PipelineConfig
    management_url: str
    data_dir: Path | None
    stats: ErrorStats = field(default_factory=ErrorStats)
    status: Status | None = None
    broker_error: str | None = None
    counts: dict[str, dict[str, Any]] = field(default_factory=dict)  # processor -> its CountsFile
    quality: QualityStatus | None = None  # metric's windows and alerts
    drift: DriftStatus | None = None  # drift's windows and alerts
    _status_checks: Every = field(default_factory=lambda: Every(STATUS_EVERY_S))
    _row_counts: deque[tuple[float, int]] = field(default_factory=deque)

    def __post_init__(self) -> None:
        self._tail = CsvTail(self.config.csv_path)

    async def refresh(self) -> None:
        restarted, rows = self._tail.new_rows()
        if restarted:  # metric restarted from its checkpoint, or a replay replaced the log
            self.stats = ErrorStats()
            self._row_counts.clear()
        self.stats.add(rows)
        self.quality = read_quality(self.config.logs_dir)
        self.drift = read_drift(self.config.logs_dir)
        now = time.monotonic()
        self._row_counts.append((now, self.stats.count))
        while now - self._row_counts[0][0] > RATE_WINDOW_S:
            self._row_counts.popleft()
        if self._status_checks.due():
            self.counts = {p: c for p in PROCESSORS if (c := read_counts(self.config.logs_dir, p))}
            await self._refresh_status()

    async def _refresh_status(self) -> None:
        try:
            # Bounded: a broker that accepts connections but does not answer
            # must not stop the page from following the CSV.
            self.status = await asyncio.wait_for(
                collect(self.config, self.management_url, self.data_dir, self.stats.count), STATUS_TIMEOUT_S)
            if self.broker_error is not None:
                log.info("broker reachable again")
            self.broker_error = None
        except (*EXPLAINED_ERRORS, KeyError) as error:  # KeyError: rstream's clean-up after a drop
            message = explain(error, self.config.broker)
            if message != self.broker_error and self.status is not None:  # at start, run_dashboard says it
                log.warning("%s", message)
            self.broker_error = message

    def events_per_s(self) -> float | None:
        (first_at, first_rows), (last_at, last_rows) = self._row_counts[0], self._row_counts[-1]
        if last_at - first_at < REFRESH_S / 2:
            return None
        return (last_rows - first_rows) / (last_at - first_at)

    def summary(self) -> dict[str, Any]:
        """The JSON of /api/summary (see web/dashboard.html for its use)."""
        stats, status = self.stats, self.status
        recent = stats.recent()
        metric_join = None if status is None else next(
            (j for j in status.joins if j.processor == "metric"), None)
        rejected = None if status is None else next(
            (s for s in status.streams if s.name == self.config.names.rejected), None)
        return {
            "generated_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "refresh_s": REFRESH_S,
            "rows": stats.count,
            "mae": stats.mae,
            "rmse": stats.rmse,
            "rolling": {"window": stats.window,
                        "mae": recent[-1]["mae"] if recent else None,
                        "rmse": recent[-1]["rmse"] if recent else None},
            "events_per_s": self.events_per_s() if self._row_counts else None,
            "last_row_at": None if stats.last_row_ms is None else
            datetime.fromtimestamp(stats.last_row_ms / 1000, UTC).isoformat(timespec="milliseconds"),
            "histogram": stats.histogram_bins(),
            "recent": recent,
            "lag": [] if status is None else [
                {"processor": c.processor, "stream": c.stream, "stored": c.stored, "last": c.last,
                 "lag": c.lag, "behind_s": c.behind_s} for c in status.consumers],
            "pending": None if metric_join is None else metric_join.pending,
            "expired": None if metric_join is None else metric_join.expired,
            "rejected": None if rejected is None else rejected.held,
            "broker": {"reachable": self.broker_error is None and status is not None,
                       "error": self.broker_error},
            "quality": None if self.quality is None else self.quality.summary,
            "drift": None if self.drift is None else self.drift.summary,
        }


def finite_json(value: Any) -> str:
    """JSON with null for NaN and infinity (an overflowed RMSE), which
    json.dumps would write as non-JSON NaN / Infinity."""
    return json.dumps(_finite(value), allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


def make_app(dashboard: Dashboard) -> web.Application:
    page = resources.files("nnmon.processors.watch").joinpath("web/dashboard.html").read_bytes()
    # The charting library as the plotly package ships it: no CDN, the page works offline.
    plotly_js = resources.files("plotly").joinpath("package_data/plotly.min.js").read_bytes()

    async def index(_: web.Request) -> web.Response:
        return web.Response(body=page, content_type="text/html", charset="utf-8")

    async def plotly(_: web.Request) -> web.Response:
        return web.Response(body=plotly_js, content_type="application/javascript", charset="utf-8",
                            headers={"Cache-Control": "max-age=86400"})

    async def summary(_: web.Request) -> web.Response:
        return web.json_response(dashboard.summary(), dumps=finite_json)

    async def metrics(_: web.Request) -> web.Response:
        body, content_type = metrics_response(dashboard)
        return web.Response(body=body, headers={"Content-Type": content_type})

    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_get("/api/summary", summary)
    app.router.add_get("/static/plotly.min.js", plotly)
    app.router.add_get("/metrics", metrics)
    return app


async def run_dashboard(
    config: PipelineConfig, stop: asyncio.Event, host: str, port: int,
    management_url: str, data_dir: Path | None,
) -> None:
    dashboard = Dashboard(config, management_url, data_dir)
    await dashboard.refresh()
    if dashboard.status is None:  # never reached the broker: a wrong option, say so and exit
        raise UsageError(dashboard.broker_error or "the broker did not answer")
    runner = web.AppRunner(make_app(dashboard), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        log.info("dashboard on http://%s:%d/ (metrics at /metrics), following %s",
                 host, port, config.csv_path)
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), REFRESH_S)
            except TimeoutError:
                await dashboard.refresh()
    finally:
        await runner.cleanup()
