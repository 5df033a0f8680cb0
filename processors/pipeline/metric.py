"""`metric`: joins y_true and y_pred by id and appends rows to the metric log."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from processors.config import PipelineConfig
from processors.csv_log import CsvLog
from processors.joined import JoinLimits, run_joined
from processors.lock import view_lock

log = logging.getLogger("nnmon.metric")


async def run_metric(config: PipelineConfig, stop: asyncio.Event, limits: JoinLimits) -> None:
    def open_view(state: dict[str, Any] | None) -> CsvLog:
        return CsvLog(config.csv_path, state)

    with view_lock(config, "metric"):
        await run_joined(config, stop, "metric", open_view, limits, log, publish_rejects=True)
