"""Drawing the error histogram as a PNG, atomically.

The PNG is written to a temporary file and renamed, so a reader never sees
half a PNG. The number of rows drawn is stored in the PNG's text metadata
(key `nnmon:rows`), so tools can tell how current it is.
"""

from __future__ import annotations

import os
from pathlib import Path

from nnmon.processors.core.histogram import ErrorHistogram

ROWS_KEY = "nnmon:rows"


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
    try:
        figure.savefig(temporary, format="png", metadata={ROWS_KEY: str(histogram.count)})
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)  # after a failure (disk full): no half PNG left


