"""`drift`: the distribution of every feature, of the predictions and of
the truths per window of prediction time, against a reference
(`logs/drift.csv`, the drift and alerts streams)."""

from __future__ import annotations

import asyncio
import logging

from nnmon.processors.run.config import PipelineConfig
from nnmon.processors.shell.drift_log import DriftSettings
from nnmon.processors.shell.drift_runner import DriftRunner
from nnmon.processors.shell.drift_setup import default_drift
from nnmon.processors.shell.lock import view_lock

log = logging.getLogger("nnmon.drift")


async def run_drift(config: PipelineConfig, stop: asyncio.Event,
                    settings: DriftSettings | None = None) -> None:
    """Run drift until `stop`; with the built-in reference and rules without `settings`."""
    with view_lock(config, "drift"):
        await DriftRunner(config, settings if settings is not None else default_drift(), log).run(stop)
