"""Drift from frozen bins against the exact measures on the raw samples
(scipy's wasserstein_distance and ks_2samp) and against a PSI computed here
with numpy on the same bins."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import ks_2samp, wasserstein_distance

from nnmon.processors.core.drift import BINS, PSI_FLOOR, Binned, Bins, compare

samples = st.tuples(st.integers(0, 2**32 - 1), st.integers(100, 3000), st.integers(20, 2000),
                    st.floats(-2, 2), st.floats(0.5, 2))


def draw(seed: int, reference_size: int, current_size: int, shift: float, scale: float,
         ) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(0, 1, reference_size), rng.normal(shift, scale, current_size)


@settings(max_examples=150, deadline=None)
@given(samples)
def test_binned_measures_bound_and_approach_the_exact_ones(drawn: tuple[int, int, int, float, float]) -> None:
    reference, current = draw(*drawn)
    bins = Bins.of_reference(reference)
    ref, cur = Binned.of(bins, reference), Binned.of(bins, current)
    drift = compare(bins, ref, cur)
    exact_ks = ks_2samp(reference, current).statistic
    exact_w = wasserstein_distance(reference, current) / reference.std()
    # KS at the bin edges: never above the exact D, and below it by at most
    # what one bin holds of either sample.
    largest_bin = max((ref.counts / ref.counts.sum()).max(), (cur.counts / cur.counts.sum()).max())
    assert drift.ks <= exact_ks + 1e-12
    assert exact_ks - drift.ks <= largest_bin + 1e-12
    # Wasserstein bin by bin: never above the exact distance, and close to it
    # for a window of a few hundred rows against a reference of a thousand
    # or more (measured on normal samples: up to 0.0097 over 300 of them).
    assert drift.wasserstein <= exact_w + 1e-9
    if reference.size >= 1000 and current.size >= 200:
        assert exact_w - drift.wasserstein <= 0.03


@settings(max_examples=100, deadline=None)
@given(samples)
def test_psi_is_the_floored_sum_over_the_frozen_bins(drawn: tuple[int, int, int, float, float]) -> None:
    reference, current = draw(*drawn)
    bins = Bins.of_reference(reference)
    edges = np.concatenate(([-np.inf], bins.edges, [np.inf]))
    # numpy's histogram counts [a, b); the bins hold (a, b]: mirror both.
    p = np.histogram(-reference, bins=-edges[::-1])[0][::-1] / reference.size
    q = np.histogram(-current, bins=-edges[::-1])[0][::-1] / current.size
    p, q = np.maximum(p, PSI_FLOOR), np.maximum(q, PSI_FLOOR)
    expected = np.sum((q - p) * np.log(q / p))
    assert compare(bins, Binned.of(bins, reference), Binned.of(bins, current)).psi == pytest.approx(
        expected, rel=1e-12, abs=1e-15)


def test_the_same_sample_has_no_drift_and_a_shift_has() -> None:
    reference, _ = draw(1, 2000, 10, 0, 1)
    bins = Bins.of_reference(reference)
    same = compare(bins, Binned.of(bins, reference), Binned.of(bins, reference))
    assert same.psi == 0 and same.ks == 0 and same.wasserstein == pytest.approx(0, abs=1e-12)
    shifted = compare(bins, Binned.of(bins, reference), Binned.of(bins, reference + reference.std()))
    assert shifted.psi > 0.2 and shifted.wasserstein == pytest.approx(1.0, rel=0.02)


def test_bins_are_frozen_quantiles_and_windows_merge() -> None:
    reference, current = draw(2, 1000, 500, 0.5, 1)
    bins = Bins.of_reference(reference)
    assert bins.edges.size == BINS - 1 and np.all(np.diff(bins.edges) > 0)
    assert Bins.from_state(bins.to_state()).edges.tolist() == bins.edges.tolist()
    counts = Binned.of(bins, reference).counts
    assert counts.sum() == 1000 and counts.max() - counts.min() <= 1  # quantile bins: equal shares
    merged = Binned.of(bins, current[:200])
    merged.merge(Binned.of(bins, current[200:]))
    whole = Binned.of(bins, current)
    assert merged.counts.tolist() == whole.counts.tolist()
    assert (merged.low, merged.high) == (whole.low, whole.high)
    assert np.allclose(merged.sums, whole.sums, rtol=1e-12)


def test_a_reference_that_cannot_place_the_bins_is_refused() -> None:
    with pytest.raises(ValueError, match="too few"):
        Bins.of_reference(np.arange(10.0))
    with pytest.raises(ValueError, match="finite"):
        Bins.of_reference(np.array([1.0, np.nan] * 30))
