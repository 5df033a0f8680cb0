"""Joining y_true and y_pred events by id, with bounded pending state.

Pure: no I/O. Whichever side of an id arrives first waits in `pending` until
the other side comes. Waiting is bounded twice: in event time (`window_ms`
behind the newest event seen) and in count (`max_pending` per side). What
leaves the window unmatched is returned as `Expired` and counted, never
dropped silently. Times are milliseconds on the broker's clock (the chunk
timestamps of the records).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from nnmon.processors.core.duplicates import SeenIds, TimeKey, Verdict


class Side(str, Enum):
    TRUTH = "y_true"
    PREDICTION = "y_pred"

    @property
    def other(self) -> Side:
        return Side.PREDICTION if self is Side.TRUTH else Side.TRUTH


@dataclass(slots=True)  # not frozen: built per message (see codec.FeaturesEvent)
class Half:
    """One side of a join: a value, where it was read, and when the broker
    stored it (ms since the Unix epoch)."""

    value: float
    offset: int
    event_ms: int


@dataclass(slots=True)
class Pair:
    """An id with both sides."""

    id: str
    y_true: float
    y_pred: float
    # How much later the broker stored the prediction than the truth: how
    # far y_true runs ahead of y_pred (see RecordReader.follow).
    prediction_lag_ms: int = field(default=0, compare=False)
    prediction_ms: int = field(default=0, compare=False)  # when the broker stored the prediction

    @property
    def absolute_error(self) -> float:
        return abs(self.y_true - self.y_pred)


@dataclass(frozen=True)
class Expired:
    """An id that waited too long, or was pushed out, with no partner."""

    id: str
    side: Side
    half: Half


@dataclass
class JoinCounts:
    joined: int = 0
    expired: int = 0
    duplicates: int = 0


@dataclass(frozen=True)
class Refused:
    """An event the join does not take, and why (see `IdJoin.add`)."""

    reason: str


@dataclass
class IdJoin:
    """Joins halves by id. Feed with `add`; collect expiries with `expire`.

    An id gives at most one pair: the predictions go through the duplicate
    rule (`predictions`), so each id's prediction is taken once, and a truth
    is refused when its prediction can no longer join: taken and no longer
    waiting (it joined, or expired), or older than what the rule forgot.
    Otherwise truths may come in any order, days late: how late they come
    does not matter, only whether their prediction still waits.
    """

    predictions: SeenIds
    window_ms: int = 3_600_000
    max_pending: int = 100_000
    pending: dict[Side, dict[str, Half]] = field(
        default_factory=lambda: {Side.TRUTH: {}, Side.PREDICTION: {}}
    )
    counts: JoinCounts = field(default_factory=JoinCounts)
    newest_ms: int = 0

    def add(self, side: Side, event_id: str, half: Half) -> Pair | Refused | None:
        """The joined pair if `event_id`'s other side is waiting, None if
        this side waits now; Refused (and counted) for a repeat."""
        refusal = self._refusal(side, event_id, half.event_ms)
        if refusal is not None:
            self.counts.duplicates += 1
            return Refused(refusal)
        self.newest_ms = max(self.newest_ms, half.event_ms)
        if side is Side.PREDICTION:
            self.predictions.admit(event_id, half.event_ms)
        partner = self.pending[side.other].pop(event_id, None)
        if partner is None:
            self.pending[side][event_id] = half
            return None
        self.counts.joined += 1
        truth, prediction = (half, partner) if side is Side.TRUTH else (partner, half)
        return Pair(event_id, truth.value, prediction.value, prediction.event_ms - truth.event_ms,
                    prediction.event_ms)

    def _refusal(self, side: Side, event_id: str, broker_ms: int) -> str | None:
        if event_id in self.pending[side]:
            return f"duplicate {side.value} for id {event_id}"  # the first one stays: it may still join
        if side is Side.TRUTH and event_id in self.pending[Side.PREDICTION]:
            return None
        verdict = self.predictions.verdict(event_id, broker_ms)
        if verdict is Verdict.NEW:
            return None
        if side is Side.PREDICTION:
            return self.predictions.refusal(verdict, "y_pred", "predictions", event_id)
        return (f"duplicate y_true for id {event_id}: its prediction already joined or expired"
                if verdict is Verdict.REPEATED else
                f"y_true for id {event_id} comes after its prediction was forgotten "
                f"(older than the last {self.predictions.capacity} predictions)")

    def expire(self) -> list[Expired]:
        """Remove and return what is older than the window or over the count."""
        horizon = self.newest_ms - self.window_ms
        expired: list[Expired] = []
        for side, waiting in self.pending.items():
            # Dicts keep insertion order, which is arrival order: the oldest
            # are first, so stop at the first one still inside the bounds.
            while waiting:
                event_id = next(iter(waiting))
                half = waiting[event_id]
                if half.event_ms >= horizon and len(waiting) <= self.max_pending:
                    break
                del waiting[event_id]
                expired.append(Expired(event_id, side, half))
        self.counts.expired += len(expired)
        return expired

    def pending_count(self) -> int:
        return sum(len(waiting) for waiting in self.pending.values())

    def to_state(self) -> dict[str, Any]:
        """A JSON-ready value of the whole join, for checkpoints."""
        return {
            "newest_ms": self.newest_ms,
            "counts": vars(self.counts).copy(),
            "predictions": self.predictions.to_state(),
            "pending": {
                side.value: [[i, h.value, h.offset, h.event_ms] for i, h in waiting.items()]
                for side, waiting in self.pending.items()
            },
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], time_key: TimeKey, window_ms: int, max_pending: int) -> IdJoin:
        join = cls(SeenIds.from_state(state["predictions"], time_key), window_ms, max_pending)
        join.newest_ms = int(state["newest_ms"])
        join.counts = JoinCounts(**state["counts"])
        for side in Side:
            join.pending[side] = {
                str(i): Half(float(value), int(offset), int(event_ms))
                for i, value, offset, event_ms in state["pending"][side.value]
            }
        return join
