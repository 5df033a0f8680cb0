"""Exact sums of floats, so that windows merge exactly.

A float sum depends on the order of its terms: the same rows summed per
batch live and all at once in a replay differ in the last digits. An
`ExactSum` holds the sum without rounding, as an integer count of 2**-SCALE
(every finite float is a whole multiple of 2**-1074), so any grouping and
order of the same terms gives the same sum, and `value` rounds it once.
A batch is added with numpy: each float split into its 53-bit integer
significand and exponent, the significands summed per exponent (in halves
small enough that float64 counts them exactly), each exponent's sum shifted
into place once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

SCALE = 1074 + 53  # bits below the point: the smallest float, and room for a significand
_HALF = 26  # significands are summed as two halves of at most 27 bits


class ExactSum:
    __slots__ = ("scaled", "overflow")

    def __init__(self, scaled: int = 0, overflow: float = 0.0) -> None:
        self.scaled = scaled  # the sum of the finite terms, times 2**SCALE
        self.overflow = overflow  # the sum of the terms that are not finite (inf, -inf, nan), or 0

    def add(self, values: np.ndarray) -> None:
        add_exactly((self,), (values,))

    def merge(self, other: ExactSum) -> None:
        self.scaled += other.scaled
        self.overflow += other.overflow

    def value(self) -> float:
        """The sum, rounded once (to nearest: Python's int division is)."""
        if self.overflow:
            return self.overflow
        try:
            return self.scaled / (1 << SCALE)
        except OverflowError:  # beyond the largest float
            return math.inf if self.scaled > 0 else -math.inf

    def to_state(self) -> str:
        """As text: the integer can be far wider than JSON numbers go. Its
        trailing zero bits (a thousand of them for sums of numbers near 1)
        are written as a count: `<hex>p<bits>`."""
        if self.overflow:
            return f"overflow:{self.overflow!r}"
        zeros = (self.scaled & -self.scaled).bit_length() - 1 if self.scaled else 0
        return f"{self.scaled >> zeros:x}p{zeros}" if zeros else f"{self.scaled:x}"

    @classmethod
    def from_state(cls, state: str) -> ExactSum:
        if state.startswith("overflow:"):
            return cls(0, float(state.removeprefix("overflow:")))
        digits, _, zeros = state.partition("p")
        return cls(int(digits, 16) << int(zeros or 0))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ExactSum) and (self.scaled, self.overflow) == (other.scaled, other.overflow)

    def __repr__(self) -> str:
        return f"ExactSum({self.value()!r})"


# Below this many terms in all, Python's exact float-to-integer ratio is
# faster than numpy's fixed cost per call (measured: scripts/bench_windows.py).
_FEW = 64
_MANY = 1 << 25  # at most this many terms in one pass: each half's sum then stays below 2**53


def add_exactly(sums: Sequence[ExactSum], columns: Sequence[np.ndarray]) -> None:
    """Add each column of floats to its sum, all in one pass."""
    if sum(column.size for column in columns) < _FEW:
        for exact, column in zip(sums, columns):
            for value in column.tolist():
                _add_one(exact, value)
        return
    values = np.concatenate(columns)
    add_grouped(sums, np.repeat(np.arange(len(columns)), [column.size for column in columns]), values)


def _add_one(exact: ExactSum, value: float) -> None:
    if math.isfinite(value):
        numerator, denominator = value.as_integer_ratio()  # denominator: a power of 2
        exact.scaled += numerator << (SCALE + 1 - denominator.bit_length())
    else:
        exact.overflow += value


def add_grouped(sums: Sequence[ExactSum], which: np.ndarray, values: np.ndarray) -> None:
    """Add each value to the sum `which` names (an index into `sums`), all in one pass."""
    if values.size < _FEW:
        for index, value in zip(which.tolist(), values.tolist()):
            _add_one(sums[index], value)
        return
    if values.size > _MANY:  # keep the float halves' sums exact
        for start in range(0, values.size, _MANY):
            add_grouped(sums, which[start:start + _MANY], values[start:start + _MANY])
        return
    finite = np.isfinite(values)
    if not finite.all():
        for index in np.unique(which[~finite]).tolist():
            sums[index].overflow += float(values[~finite & (which == index)].sum())
        values, which = values[finite], which[finite]
    significand, exponent = np.frexp(values)  # values = significand * 2**exponent
    whole = (significand * 2.0 ** 53).astype(np.int64)  # exact: 53 bits
    # One key per column and exponent (exponents lie within -1073..1024).
    keys, where = np.unique(which * 4096 + (exponent + 2048), return_inverse=True)
    # Summed in halves, as floats: each half has at most 27 bits, so a sum
    # of up to 2**26 of them is exact in float64's 53.
    high = np.bincount(where, weights=(whole >> _HALF).astype(np.float64))
    low = np.bincount(where, weights=(whole & ((1 << _HALF) - 1)).astype(np.float64))
    for key, h, lo in zip(keys.tolist(), high.tolist(), low.tolist()):
        index, shift = divmod(key, 4096)
        sums[index].scaled += ((int(h) << _HALF) + int(lo)) << (shift - 2048 - 53 + SCALE)


_SPLITTER = 2.0 ** 27 + 1  # Veltkamp's: splits a float into two halves of 26 bits


def exact_square(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two arrays whose sum is each value's square exactly (Dekker's
    product: the rounded square and its rounding error)."""
    scaled = _SPLITTER * values
    high = scaled - (scaled - values)
    low = values - high
    square = values * values
    return square, ((high * high - square) + 2 * high * low) + low * low


def spread(total: ExactSum, squares: ExactSum, count: int) -> float:
    """n * sum(x^2) - sum(x)^2, divided by n (the sum of squared deviations
    from the mean), from the exact sums of `count` values and of their
    squares: computed exactly, rounded once. NaN where a sum overflowed."""
    if total.overflow or squares.overflow or count == 0:
        return math.nan
    exact = squares.scaled * count * (1 << SCALE) - total.scaled ** 2  # in units of 2**-(2 * SCALE)
    if exact <= 0:
        return 0.0
    try:
        return exact / (count << (2 * SCALE))
    except OverflowError:
        return math.inf
