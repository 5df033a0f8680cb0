"""`plot`: keeps a histogram of absolute errors and draws it as a PNG.

The histogram is updated from each batch of joined pairs (it never re-reads
the CSV) and kept in the plot's checkpoint. The PNG is drawn when there is
something new and either `every` seconds have passed since the last drawing
or the streams have gone quiet, written to a temporary file and renamed, so
a reader never sees half a PNG. The number of rows drawn is stored in the
PNG's text metadata (key `nnmon:rows`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path
from typing import Any

from processors.config import PipelineConfig
from processors.histogram import ErrorHistogram
from processors.join import Pair
from processors.joined import JoinLimits, run_joined

log = logging.getLogger("nnmon.plot")

ROWS_KEY = "nnmon:rows"


class HistogramView:
    def __init__(self, state: dict[str, Any] | None) -> None:
        self.histogram = ErrorHistogram.from_state(state) if state else ErrorHistogram()
        self.drawn_rows = -1

    def write(self, pairs: list[Pair]) -> None:
        self.histogram.add(p.absolute_error for p in pairs)

    def sync(self) -> None:
        """Nothing to do: the histogram lives in the checkpoint."""

    def state(self) -> dict[str, Any]:
        return self.histogram.to_state()

    @property
    def undrawn(self) -> bool:
        return self.histogram.count != self.drawn_rows


def draw_png(histogram: ErrorHistogram, path: Path) -> None:
    """Draw `histogram` to `path` atomically (temporary file, then rename)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(8, 5), dpi=100)
    axes = figure.add_subplot()
    bins = histogram.bins()
    if bins:
        edges, counts = zip(*bins)
        axes.bar(edges, counts, width=histogram.width, align="edge",
                 color="#4c72b0", edgecolor="white")
        axes.axvline(histogram.mean, color="#c44e52", linestyle="--",
                     label=f"mean {histogram.mean:.2f}")
        axes.legend(loc="upper right")
    axes.set_title("Distribution of absolute prediction errors")
    axes.set_xlabel("absolute error |y_true - y_pred|")
    axes.set_ylabel("events")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    mean = f"{histogram.mean:.2f}" if histogram.count else "-"
    axes.text(0.02, 0.97, f"n = {histogram.count}\nmean error = {mean}",
              transform=axes.transAxes, va="top", ha="left",
              bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.8})
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    figure.savefig(temporary, format="png", metadata={ROWS_KEY: str(histogram.count)})
    os.replace(temporary, path)


async def run_plot(
    config: PipelineConfig, stop: asyncio.Event, limits: JoinLimits, every_s: float
) -> None:
    views: list[HistogramView] = []
    last_draw = 0.0
    quiet_since = time.monotonic()

    def open_view(state: dict[str, Any] | None) -> HistogramView:
        view = HistogramView(state)
        views.append(view)
        return view

    async def draw() -> None:
        nonlocal last_draw
        view = views[-1]
        snapshot = ErrorHistogram.from_state(view.histogram.to_state())
        # Drawing takes a tenth of a second: keep it off the event loop.
        await asyncio.to_thread(draw_png, snapshot, config.png_path)
        view.drawn_rows = snapshot.count
        last_draw = time.monotonic()
        log.info("drew %s from %d rows", config.png_path, snapshot.count)

    async def after_batch(idle: bool) -> None:
        nonlocal quiet_since
        now = time.monotonic()
        if not idle:
            quiet_since = now
        if views and views[-1].undrawn and (now - last_draw >= every_s or now - quiet_since >= 0.5):
            await draw()

    await run_joined(config, stop, "plot", open_view, limits, log, after_batch)
    if views and views[-1].undrawn:
        await draw()
