"""`metric`: joins y_true and y_pred by id, appends rows to the metric log,
and closes quality windows (metric_windows.csv, the quality and alerts streams)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from nnmon.processors.run.config import PipelineConfig
from nnmon.processors.shell.joined import JoinLimits, JoinRunner
from nnmon.processors.shell.lock import view_lock
from nnmon.processors.shell.quality_setup import default_quality
from nnmon.processors.shell.windows_log import MetricViews, QualitySettings, open_metric_views

log = logging.getLogger("nnmon.metric")


async def run_metric(config: PipelineConfig, stop: asyncio.Event, limits: JoinLimits,
                     quality: QualitySettings | None = None) -> None:
    """Run metric until `stop`; with the default quality windows and rules without `quality`."""
    if quality is None:
        quality = default_quality()

    def open_view(state: dict[str, Any] | None) -> MetricViews:
        return open_metric_views(config.csv_path, config.windows_path, quality, config.names, state)

    with view_lock(config, "metric"):
        await JoinRunner(config, "metric", open_view, limits, log, publish_rejects=True,
                         outputs=(config.names.quality, config.names.alerts)).run(stop)
