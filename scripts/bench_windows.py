"""Micro-benchmark of the quality windows: the cost per joined row of
counting rows into windows (exact sums, the quantile sketch), per batch
size, and the sketch against ddsketch's reference implementation.

    .venv/bin/python scripts/bench_windows.py
"""

from __future__ import annotations

import time

import numpy as np

from nnmon.processors.core.quality import Quality
from nnmon.processors.core.sketch import RELATIVE_ACCURACY, QuantileSketch
from nnmon.processors.core.windows import Windows

ROWS = 200_000


def per_row_us(seconds: float, rows: int = ROWS) -> float:
    return seconds / rows * 1e6


def bench_windows(batch: int) -> float:
    rng = np.random.default_rng(0)
    y_true = rng.normal(150, 75, ROWS)
    y_pred = y_true + rng.normal(0, 50, ROWS)
    times = 1_800_000_000_000 + np.arange(ROWS, dtype=np.int64) * 5  # 200 rows/s
    windows = Windows(60_000, 30_000, Quality)
    began = time.perf_counter()
    for start in range(0, ROWS, batch):
        end = start + batch
        windows.add(times[start:end], y_true[start:end], y_pred[start:end])
        for closed in windows.close():
            closed.figures()
    return per_row_us(time.perf_counter() - began)


def bench_sketches() -> tuple[float, float | None]:
    errors = np.abs(np.random.default_rng(1).normal(0, 50, ROWS))
    began = time.perf_counter()
    ours = QuantileSketch()
    for start in range(0, ROWS, 1000):
        ours.add(errors[start:start + 1000])
    ours_us = per_row_us(time.perf_counter() - began)
    try:
        from ddsketch import DDSketch
    except ImportError:
        return ours_us, None
    began = time.perf_counter()
    theirs = DDSketch(relative_accuracy=RELATIVE_ACCURACY)
    for value in errors.tolist():
        theirs.add(value)
    theirs_us = per_row_us(time.perf_counter() - began)
    for q in (0.5, 0.9, 0.99):  # the same kind of sketch: the same bound
        ours_q, theirs_q = ours.quantile(q), theirs.get_quantile_value(q)
        assert abs(ours_q - theirs_q) <= 2 * RELATIVE_ACCURACY * ours_q
    return ours_us, theirs_us


def main() -> None:
    for batch in (1, 10, 100, 1000):
        print(f"windows, batches of {batch:>4} rows: {bench_windows(batch):7.3f} us per row")
    ours, theirs = bench_sketches()
    print(f"quantile sketch, batches of 1000: {ours:.3f} us per value")
    if theirs is not None:
        print(f"ddsketch {'':>17}one by one: {theirs:.3f} us per value ({theirs / ours:.0f}x)")
    quality = Quality.of(np.random.default_rng(2).normal(size=100_000), np.zeros(100_000))
    print(f"a window's state: {len(str(quality.to_state()))} characters")


if __name__ == "__main__":
    main()
