"""Drawing the error histogram as a PNG, atomically.

The PNG is written atomically (`atomic.write_atomically`), so a reader never
sees half a PNG. The number of rows drawn is stored in the PNG's text metadata
(key `nnmon:rows`), so tools can tell how current it is.
"""

from __future__ import annotations

from pathlib import Path

from nnmon.processors.core.histogram import ErrorHistogram
from nnmon.processors.shell.atomic import write_atomically

ROWS_KEY = "nnmon:rows"


def draw_png(histogram: ErrorHistogram, path: Path) -> None:
    """Draw `histogram` to `path` atomically."""
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
    # Not fsynced, as before: the histogram is in plot's checkpoint, and plot
    # draws it again when it starts.
    write_atomically(path, lambda file: figure.savefig(file, format="png",
                                                       metadata={ROWS_KEY: str(histogram.count)}),
                     durable=False)


