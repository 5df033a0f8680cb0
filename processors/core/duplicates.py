"""The duplicate rule: the first event of an id counts, a repeat never does.

Applied to the events made when the model speaks (features read by `model`,
predictions read by the joins, live and in replay), in the order of their
stream, so that every reader of a stream agrees on which events count.

Memory is bounded. The rule remembers the ids of the last `capacity` events
it admitted, exactly, in blocks of BLOCK ids. Of a block it forgets, it keeps
one value: the newest id time in it (`forgotten_up_to`). An id carrying a
time (a UUIDv7, see `nnmon.streams.events.ids.time_key`) that is not after
that point was either admitted before or comes later than `capacity` newer
ids did: it is refused as `TOO_OLD`, so a repeat is refused at any distance.
Ids without a time (other writers may use any id the codec allows, which
never holds the line break the blocks are kept in) are recognised within the
last `capacity` ids only. The price of refusing by time is lateness: an id
older than what was forgotten is refused even if it is new (a writer whose
clock is behind the others' by more than `capacity` events' worth of time).

Forgetting whole blocks of a fixed count makes the rule depend only on the
sequence admitted: a stream read live in batches of any size, or replayed,
gives the same verdicts. Pure: the id format comes in as `TimeKey`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

BLOCK = 1024
CAPACITY = 100 * BLOCK

# The start of an id that holds its time, as text that sorts as the time
# does, given when the broker stored the event (ms); None for an id without
# a time. Being the id's start, it is compared without being computed where
# the id's start alone already settles the comparison.
TimeKey = Callable[[str, int], str | None]


class Verdict(Enum):
    NEW = "new"
    REPEATED = "repeated"  # admitted before, and remembered
    TOO_OLD = "too old"  # older than what was forgotten: a repeat, or later than `capacity` newer ids


@dataclass(frozen=True)
class _Block:
    ids: str  # the block's ids, one per line: cheap to checkpoint
    newest: str  # the newest time key among them; "" if none has one


@dataclass
class SeenIds:
    time_key: TimeKey
    capacity: int = CAPACITY
    forgotten_up_to: str = ""  # time key; "" while nothing was forgotten
    _blocks: deque[_Block] = field(default_factory=deque)  # full blocks, oldest first
    _open: list[str] = field(default_factory=list)  # the block being filled
    _open_broker_ms: int = 0  # the newest broker time among them
    _ids: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        if self.capacity < BLOCK:
            raise ValueError(f"the duplicate rule remembers at least {BLOCK} ids")

    def verdict(self, event_id: str, broker_ms: int) -> Verdict:
        if event_id in self._ids:
            return Verdict.REPEATED
        if self.forgotten_up_to and event_id[:len(self.forgotten_up_to)] <= self.forgotten_up_to:
            key = self.time_key(event_id, broker_ms)
            if key is not None and key <= self.forgotten_up_to:
                return Verdict.TOO_OLD
        return Verdict.NEW

    def admit(self, event_id: str, broker_ms: int) -> None:
        """Remember `event_id` (whose verdict was NEW) as seen."""
        self._ids.add(event_id)
        self._open.append(event_id)
        self._open_broker_ms = max(self._open_broker_ms, broker_ms)
        if len(self._open) == BLOCK:
            self._close_block()

    def _close_block(self) -> None:
        self._blocks.append(_Block("\n".join(self._open), self._newest_key()))
        self._open, self._open_broker_ms = [], 0
        if len(self._blocks) * BLOCK > self.capacity:
            self._forget(self._blocks.popleft())

    def _newest_key(self) -> str:
        """The newest time key of the open block: that of its greatest id
        with a time (keys sort as the ids' starts do)."""
        greatest = max(self._open)  # nearly always the one (C speed); else look further
        key = self.time_key(greatest, self._open_broker_ms)
        if key is not None:
            return key
        for event_id in sorted(self._open, reverse=True):
            key = self.time_key(event_id, self._open_broker_ms)
            if key is not None:
                return key
        return ""

    def refusal(self, verdict: Verdict, kind: str, remembered: str, event_id: str) -> str:
        """Why an event of `kind` whose verdict is not NEW is refused
        (`remembered`: what the rule holds, in the plural)."""
        if verdict is Verdict.REPEATED:
            return f"duplicate {kind} for id {event_id}"
        return (f"{kind} for id {event_id} is older than the last {self.capacity} {remembered} "
                "remembered: a repeat, or too late to tell")

    def first_time(self, event_id: str, broker_ms: int) -> bool:
        """Admit `event_id` if it is new; whether it was."""
        if self.verdict(event_id, broker_ms) is not Verdict.NEW:
            return False
        self.admit(event_id, broker_ms)
        return True

    def first_times(self, event_ids: list[str], broker_ms: int) -> list[bool]:
        """`first_time` for each id in turn; at C speed where all are new (the
        common case: a replay's chunks). Taken up to the next block's end at a
        time: forgetting a block moves `forgotten_up_to`."""
        verdicts: list[bool] = []
        rest = event_ids
        while rest:
            room = BLOCK - len(self._open)
            piece, rest = rest[:room], rest[room:]
            forgotten = self.forgotten_up_to
            if (len(set(piece)) == len(piece) and self._ids.isdisjoint(piece)
                    and (not forgotten or min(piece)[:len(forgotten)] > forgotten)):
                # All new, and none can be TOO_OLD: the least starts after what was forgotten.
                self._ids.update(piece)
                self._open.extend(piece)
                self._open_broker_ms = max(self._open_broker_ms, broker_ms)
                if len(self._open) == BLOCK:
                    self._close_block()
                verdicts.extend([True] * len(piece))
            else:
                verdicts.extend([self.first_time(event_id, broker_ms) for event_id in piece])
        return verdicts

    def __len__(self) -> int:
        return len(self._ids)

    def _forget(self, block: _Block) -> None:
        self._ids.difference_update(block.ids.split("\n"))
        self.forgotten_up_to = max(self.forgotten_up_to, block.newest)

    def to_state(self) -> dict[str, Any]:
        """A JSON-ready value: the full blocks' text is shared, not copied,
        so taking a state is cheap enough to do per batch."""
        return {
            "forgotten_up_to": self.forgotten_up_to,
            "blocks": [[block.ids, block.newest] for block in self._blocks],
            "open": list(self._open),
            "open_broker_ms": self._open_broker_ms,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], time_key: TimeKey, capacity: int = CAPACITY) -> SeenIds:
        seen = cls(time_key, capacity, str(state["forgotten_up_to"]))
        for ids, newest in state["blocks"]:
            seen._blocks.append(_Block(str(ids), str(newest)))
            seen._ids.update(seen._blocks[-1].ids.split("\n"))
        seen._open = [str(i) for i in state["open"]]
        seen._open_broker_ms = int(state["open_broker_ms"])
        seen._ids.update(seen._open)
        while len(seen._blocks) * BLOCK > capacity:  # restored with a smaller capacity
            seen._forget(seen._blocks.popleft())
        return seen
