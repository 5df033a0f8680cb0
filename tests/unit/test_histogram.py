"""Unit tests for nnmon.processors.core.histogram: the error histogram with doubling bin width."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from nnmon.processors.core.histogram import ErrorHistogram


def errors(n: int, scale: float, seed: int = 0) -> list[float]:
    """`n` non-negative errors spread over about [0, 5 * scale)."""
    return [float(x) for x in np.random.default_rng(seed).exponential(scale, n)]


def filled(values: list[float], max_bins: int = 40) -> ErrorHistogram:
    histogram = ErrorHistogram(max_bins=max_bins)
    histogram.add(values)
    return histogram


VALUE_SETS = {
    "tiny": errors(500, 1e-4),
    "unit": errors(2_000, 1.0),
    "wide": errors(2_000, 1.0) + errors(50, 1e6, seed=1),
    "zeros-and-one": [0.0] * 10 + [1.0],
}


def test_empty() -> None:
    histogram = ErrorHistogram()
    assert histogram.bins() == []
    assert histogram.count == 0
    assert math.isnan(histogram.mean)


@pytest.mark.parametrize("name", VALUE_SETS)
def test_counts_sum_to_count(name: str) -> None:
    values = VALUE_SETS[name]
    histogram = filled(values)
    assert histogram.count == len(values)
    assert sum(n for _, n in histogram.bins()) == len(values)


@pytest.mark.parametrize("name", VALUE_SETS)
def test_mean_is_the_mean_of_the_inputs(name: str) -> None:
    values = VALUE_SETS[name]
    assert filled(values).mean == pytest.approx(float(np.mean(values)), rel=1e-12)


@pytest.mark.parametrize("max_bins", [1, 2, 7, 40])
@pytest.mark.parametrize("name", VALUE_SETS)
def test_bins_never_exceed_max_bins(name: str, max_bins: int) -> None:
    histogram = ErrorHistogram(max_bins=max_bins)
    for value in VALUE_SETS[name]:
        histogram.add([value])
        assert len(histogram.bins()) <= max_bins
        assert all(0 <= index < max_bins for index in histogram.counts)


@pytest.mark.parametrize("max_bins", [3, 40])
@pytest.mark.parametrize("name", VALUE_SETS)
def test_each_value_is_in_the_bin_that_contains_it(name: str, max_bins: int) -> None:
    values = VALUE_SETS[name]
    histogram = filled(values, max_bins)
    bins = histogram.bins()
    edges = [edge for edge, _ in bins]
    assert edges == [i * histogram.width for i in range(len(bins))]
    assert max(values) < edges[-1] + histogram.width
    expected, _ = np.histogram(values, bins=[*edges, edges[-1] + histogram.width])
    assert [n for _, n in bins] == expected.tolist()


def test_width_stays_a_power_of_two_and_doubles_only_when_needed() -> None:
    histogram = filled([0.0005], max_bins=40)
    assert histogram.width == 2.0**-10  # 0.0005 / 2**-10 = 0.512: bin 0, no doubling
    histogram.add([1000.0])
    exponent = math.log2(histogram.width)
    assert exponent == int(exponent)
    assert 1000.0 < 40 * histogram.width  # it fits...
    assert 1000.0 >= 40 * histogram.width / 2  # ...and would not with half the width


@pytest.mark.parametrize("name", VALUE_SETS)
def test_adding_in_two_parts_equals_adding_at_once(name: str) -> None:
    values = VALUE_SETS[name]
    for cut in [0, 1, len(values) // 3, len(values) - 1]:
        in_parts = ErrorHistogram()
        in_parts.add(values[:cut])
        in_parts.add(values[cut:])
        assert in_parts == filled(values)


@pytest.mark.parametrize("name", VALUE_SETS)
def test_state_round_trip_through_json(name: str) -> None:
    histogram = filled(VALUE_SETS[name], max_bins=17)
    restored = ErrorHistogram.from_state(json.loads(json.dumps(histogram.to_state())))
    assert restored == histogram
    more = errors(100, 1e3, seed=2)
    histogram.add(more)
    restored.add(more)
    assert restored == histogram


def test_huge_finite_errors_widen_the_bins_instead_of_overflowing() -> None:
    histogram = ErrorHistogram()
    histogram.add([1.0, 1e300, 1.7e308])
    assert histogram.count == 3 and len(histogram.bins()) <= histogram.max_bins
    assert sum(n for _, n in histogram.bins()) == 3


@pytest.mark.parametrize("bad", [math.inf, math.nan, -1.0])
def test_errors_that_are_not_finite_and_non_negative_are_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        ErrorHistogram().add([bad])


def one_by_one(values: list[float], max_bins: int = 40) -> ErrorHistogram:
    """The histogram built the plain way: each error binned as it comes,
    the width doubled (and bins merged) whenever one falls beyond."""
    histogram = ErrorHistogram(max_bins=max_bins)
    for error in values:
        while error >= histogram.width * max_bins:
            merged: dict[int, int] = {}
            for index, n in histogram.counts.items():
                merged[index // 2] = merged.get(index // 2, 0) + n
            histogram.counts, histogram.width = merged, histogram.width * 2
        index = min(math.floor(error / histogram.width), max_bins - 1)
        histogram.counts[index] = histogram.counts.get(index, 0) + 1
        histogram.count += 1
        histogram.total += error
    return histogram


@pytest.mark.parametrize("name", VALUE_SETS)
@pytest.mark.parametrize("max_bins", [1, 7, 40])
def test_adding_an_array_equals_adding_one_by_one(name: str, max_bins: int) -> None:
    values = VALUE_SETS[name] + [1e300, 1.7e308, 5e-324]
    assert filled(values, max_bins) == one_by_one(values, max_bins)


def test_a_refused_batch_adds_nothing() -> None:
    histogram = filled([1.0, 2.0])
    with pytest.raises(ValueError, match="nan"):
        histogram.add([3.0, math.nan])
    assert histogram == filled([1.0, 2.0])
