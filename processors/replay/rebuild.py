"""Rebuilding the views (the CSV, its windows, the histogram's PNG) from a replay's result.

The views' formats and the joined processors' checkpoints are the shell's:
the CSV is written by `csv_log`, the PNG by `drawing`, and `metric` and
`plot` are handed the replay's end through `joined.hand_over`.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

from nnmon.processors.core.histogram import ErrorHistogram
from nnmon.processors.core.rows import Rows
from nnmon.processors.replay.history import ReplayResult
from nnmon.processors.run.config import PipelineConfig
from nnmon.processors.shell import joined
from nnmon.processors.shell.csv_log import CsvLog, write_csv
from nnmon.processors.shell.drawing import draw_png
from nnmon.processors.shell.joined import JoinLimits
from nnmon.processors.shell.lock import view_lock
from nnmon.processors.shell.windows_log import QualitySettings, rebuild_windows, summary_path
from nnmon.streams.client.connection import open_producer
from nnmon.streams.client.publisher import ConfirmedPublisher, Outgoing
from nnmon.streams.client.topology import declare_streams


def histogram_of(rows: Rows) -> ErrorHistogram:
    histogram = ErrorHistogram()
    histogram.add(rows.absolute_error)
    return histogram


async def publish_as_metric(config: PipelineConfig, events: dict[str, list[Outgoing]]) -> None:
    """Publish the replayed windows' events under metric's publisher name:
    the broker drops those metric published already, and keeps those of the
    windows metric had not closed (it was stopped, the streams went on)."""
    if not events:
        return
    async with open_producer(config.broker, config.connection_name("replay")) as producer:
        await declare_streams(producer, config.names.derived(), config.retention)
        publisher = ConfirmedPublisher(producer, config.names.consumer("metric"))
        await (await publisher.send_together(events))


def windows_out(out: Path) -> Path:
    """Where a replay to `out` writes its windows: beside it."""
    return out.with_name(f"{out.stem}_windows.csv")


def drift_out(out: Path) -> Path:
    """Where a replay to `out` writes its drift: beside it."""
    return out.with_name(f"{out.stem}_drift.csv")


async def rebuild_views(
    config: PipelineConfig, result: ReplayResult, out: Path | None, plot: bool, limits: JoinLimits,
    quality: QualitySettings,
) -> tuple[Path, Path | None]:
    """Write the replay's CSV, its windows (and PNG); returns the CSV's and PNG's paths.

    With `out`, the CSV goes there, the windows and the PNG beside it, and
    the live views are left alone. Without, the live views are swapped for
    the replay's, and `metric` (and `plot`) carry on from where the replay ended.
    """
    png = None
    if out is not None:
        write_csv(out, result.rows)
        rebuild_windows(windows_out(out), result.rows, quality, config.names, None)
        if plot:
            png = out.with_suffix(".png")
            draw_png(histogram_of(result.rows), png)
        return out, png
    with view_lock(config, "metric"), (view_lock(config, "plot") if plot else nullcontext()):
        # No checkpoint while the CSV is swapped: a crash in between makes
        # metric rebuild from the streams rather than trust a stale length.
        joined.forget(config, "metric")
        size = write_csv(config.csv_path, result.rows)
        windows, events = rebuild_windows(config.windows_path, result.rows, quality, config.names,
                                          summary_path(config.logs_dir))
        await publish_as_metric(config, events)  # before metric is told they are closed
        await joined.hand_over(config, "metric", result.hand_over(), limits,
                               CsvLog.state_of(size) | {"windows": windows})
        if plot:
            histogram = histogram_of(result.rows)
            draw_png(histogram, config.png_path)
            png = config.png_path
            await joined.hand_over(config, "plot", result.hand_over(), limits, histogram.to_state())
    return config.csv_path, png
