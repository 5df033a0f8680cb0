"""`metric`: joins y_true and y_pred by id and appends rows to the metric log."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from nnmon.processors.run.config import PipelineConfig
from nnmon.processors.shell.csv_log import CsvLog
from nnmon.processors.shell.joined import JoinLimits, JoinRunner
from nnmon.processors.shell.lock import view_lock

log = logging.getLogger("nnmon.metric")


async def run_metric(config: PipelineConfig, stop: asyncio.Event, limits: JoinLimits) -> None:
    def open_view(state: dict[str, Any] | None) -> CsvLog:
        return CsvLog(config.csv_path, state)

    with view_lock(config, "metric"):
        await JoinRunner(config, "metric", open_view, limits, log, publish_rejects=True).run(stop)
