"""`plot`: keeps a histogram of absolute errors and draws it as a PNG.

The histogram is updated from each batch of joined pairs (it never re-reads
the CSV) and kept in the plot's checkpoint. The PNG is drawn when there is
something new and either `every` seconds have passed since the last drawing
or the streams have gone quiet. With a start position, the histogram is first
rebuilt from the history after it (see `nnmon.processors.replay`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from rstream import ConsumerOffsetSpecification

from nnmon.processors.core.histogram import ErrorHistogram
from nnmon.processors.core.join import Pair
from nnmon.processors.replay.history import replay
from nnmon.processors.replay.rebuild import histogram_of
from nnmon.processors.run.config import PipelineConfig
from nnmon.processors.run.runtime import release_free_memory
from nnmon.processors.run.throttle import Every
from nnmon.processors.shell.drawing import draw_png
from nnmon.processors.shell.joined import JoinLimits, JoinRunner, hand_over
from nnmon.processors.shell.lock import view_lock

log = logging.getLogger("nnmon.plot")

# Drawn as soon as the streams have been quiet this long, whatever `every_s` says.
QUIET_S = 0.5


class HistogramView:
    def __init__(self, state: dict[str, Any] | None) -> None:
        self.histogram = ErrorHistogram.from_state(state) if state else ErrorHistogram()
        self.drawn_rows = -1

    def write(self, pairs: list[Pair]) -> None:
        self.histogram.add(p.absolute_error for p in pairs)

    def outgoing(self) -> dict[str, list[Any]]:
        return {}  # a picture only

    def sync(self) -> None:
        """Nothing to do: the histogram lives in the checkpoint."""

    def state(self) -> dict[str, Any]:
        return self.histogram.to_state()

    def close(self) -> None:
        """Nothing to let go of."""

    @property
    def undrawn(self) -> bool:
        return self.histogram.count != self.drawn_rows


async def run_plot(
    config: PipelineConfig,
    stop: asyncio.Event,
    limits: JoinLimits,
    every_s: float,
    rebuild_from: ConsumerOffsetSpecification | None = None,
) -> None:
    views: list[HistogramView] = []
    redraws = Every(every_s)
    quiet = Every(QUIET_S, wait_first=True)  # done at each batch that brought records

    def open_view(state: dict[str, Any] | None) -> HistogramView:
        view = HistogramView(state)
        views.append(view)
        return view

    async def draw() -> None:
        view = views[-1]
        snapshot = ErrorHistogram.from_state(view.histogram.to_state())
        # Drawing takes a tenth of a second: keep it off the event loop.
        await asyncio.to_thread(draw_png, snapshot, config.png_path)
        release_free_memory()  # matplotlib's figure
        view.drawn_rows = snapshot.count
        redraws.done()
        log.info("drew %s from %d rows", config.png_path, snapshot.count)

    async def after_batch(idle: bool) -> None:
        if not idle:
            quiet.done()
        if views and views[-1].undrawn and (redraws.passed() or quiet.passed()):
            await draw()

    with view_lock(config, "plot"):
        if rebuild_from is not None:
            result = await replay(config, rebuild_from)
            histogram = histogram_of(result.rows)
            await hand_over(config, "plot", result.hand_over(), limits, histogram.to_state())
            log.info("rebuilt the histogram from %d rows of history", histogram.count)
        # The PNG is redrawn every few seconds: reading in bursts a quarter of
        # a second apart costs plot far less CPU than following every event,
        # CPU the processors on the path to the CSV can use.
        await JoinRunner(config, "plot", open_view, limits, log, rest_s=0.25).run(stop, after_batch)
        if views and views[-1].undrawn:
            await draw()
