"""Damaging bytes at random, for tests that a reader never misreads."""

from __future__ import annotations

from hypothesis import strategies as st


def damage(original: bytes, data: st.DataObject) -> tuple[bytes, str]:
    """`original` with one byte changed, inserted or removed anywhere; and which."""
    damaged = bytearray(original)
    at = data.draw(st.integers(0, len(damaged) - 1))
    kind = data.draw(st.sampled_from(["change", "insert", "remove"]))
    if kind == "remove":
        del damaged[at]
    elif kind == "change":
        damaged[at] = data.draw(st.integers(0, 255))
    else:
        damaged.insert(at, data.draw(st.integers(0, 255)))
    return bytes(damaged), kind
