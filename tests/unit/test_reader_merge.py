"""The merge of two streams (`Merge`, the policy of RecordReader), without a
broker: oldest first, and y_true kept in step with the y_pred that follows it
(`follow`)."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nnmon.streams.read.merge import PARTNER_QUIET_S, Merge, Record
from nnmon.streams.read.reader import RecordReader


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def reader_with(clock: Clock, lead_ms: int | None = None) -> Merge:
    reader = Merge(clock)
    for stream in ("t", "p"):
        reader.add_stream(stream)
    if lead_ms is not None:
        reader.follow("t", "p", hold_s=5.0)
        reader.lead("t", lead_ms)
    return reader


def record(stream: str, offset: int, ms: int) -> Record:
    return Record(stream, offset, ms, b"")


def taken(reader: Merge) -> list[tuple[str, int]]:
    return [(r.stream, r.offset) for r in reader.take(1_000)[0]]


def test_without_following_records_go_out_oldest_first() -> None:
    reader = reader_with(Clock())
    for r in (record("t", 0, 10), record("t", 1, 30), record("p", 0, 20), record("p", 1, 40)):
        reader.arrive([r])
    assert taken(reader) == [("t", 0), ("p", 0), ("t", 1), ("p", 1)]


def test_a_truth_waits_until_its_prediction_can_have_arrived() -> None:
    clock = Clock()
    reader = reader_with(clock, lead_ms=100)
    reader.arrive([record("t", 0, 1_000)])
    assert taken(reader) == []  # held: no prediction 100 ms newer yet
    reader.arrive([record("p", 0, 1_050)])
    assert taken(reader) == [("p", 0)]  # a prediction of an older truth goes on
    reader.arrive([record("p", 1, 1_100)])
    assert taken(reader) == [("t", 0), ("p", 1)]  # caught up: the truth beside its prediction


def test_a_truth_whose_prediction_never_comes_goes_on_after_the_hold() -> None:
    clock = Clock()
    reader = reader_with(clock, lead_ms=100)
    reader.arrive([record("t", 0, 1_000)])
    assert taken(reader) == []
    clock.now += 5.0
    assert taken(reader) == [("t", 0)]


def test_while_catching_up_truths_are_merged_shifted_by_the_lead() -> None:
    reader = reader_with(Clock(), lead_ms=500)
    for i in range(3):  # a backlog: y_pred stored 500 ms after its y_true
        reader.arrive([record("t", i, 1_000 + 100 * i)])
        reader.arrive([record("p", i, 1_500 + 100 * i)])
    reader.arrive([record("p", 3, 1_800)])  # its truth (1,300) is not read yet: it waits
    assert taken(reader) == [("t", 0), ("p", 0), ("t", 1), ("p", 1), ("t", 2), ("p", 2)]


def test_a_prediction_waits_briefly_for_its_truth_when_the_truths_are_behind() -> None:
    clock = Clock()
    reader = reader_with(clock, lead_ms=500)
    reader.arrive([record("t", 0, 1_000)])
    reader.arrive([record("p", 0, 1_500)])
    assert taken(reader) == [("t", 0), ("p", 0)]
    reader.arrive([record("p", 1, 2_000)])  # its truth (1,500) has not been read yet
    assert taken(reader) == []
    reader.arrive([record("t", 1, 1_500)])
    assert taken(reader) == [("t", 1), ("p", 1)]
    reader.arrive([record("p", 2, 3_000)])
    assert reader.take(10)[0] == []
    clock.now += PARTNER_QUIET_S * 1.01  # the truths have gone quiet: it goes on
    assert taken(reader) == [("p", 2)]


def test_a_reader_with_only_held_records_returns_nothing_after_its_timeout() -> None:
    reader = RecordReader(lambda: None, clock=Clock())  # type: ignore[arg-type,return-value]
    reader._merge = reader_with(Clock(), lead_ms=100)

    async def batches() -> list[list[tuple[str, int]]]:
        got = []
        reader._arrive([record("t", 0, 1_000)])
        got.append(await reader.next_batch(timeout=0.05))
        reader._arrive([record("p", 0, 1_100)])  # its prediction: both go
        got.append(await reader.next_batch(timeout=0.05))
        return [[(r.stream, r.offset) for r in batch] for batch in got]

    assert asyncio.run(batches()) == [[], [("t", 0), ("p", 0)]]


chunk_times = st.lists(st.integers(0, 5_000), max_size=40).map(sorted)


@given(chunk_times, chunk_times, st.none() | st.integers(0, 1_000), st.integers(1, 50))
def test_any_arrivals_go_out_in_merge_order_and_never_early(
    truths: list[int], predictions: list[int], lead_ms: int | None, max_records: int
) -> None:
    """Whatever arrives, batches come out oldest first by the merge key
    (a truth's chunk time shifted by the lead), each stream in offset order,
    and no truth goes out before a prediction as new as its shifted time."""
    reader = reader_with(Clock(), lead_ms)
    for offset, ms in enumerate(truths):
        reader.arrive([record("t", offset, ms)])
    for offset, ms in enumerate(predictions):
        reader.arrive([record("p", offset, ms)])
    shift = lead_ms or 0
    batch = reader.take(max_records)[0]
    assert len(batch) <= max_records
    keys = [r.timestamp_ms + (shift if r.stream == "t" else 0) for r in batch]
    assert keys == sorted(keys)
    for stream in ("t", "p"):
        offsets = [r.offset for r in batch if r.stream == stream]
        assert offsets == list(range(len(offsets)))
    if lead_ms is not None:
        newest_prediction = predictions[-1] if predictions else -1
        assert all(r.timestamp_ms + lead_ms <= newest_prediction for r in batch if r.stream == "t")
    if lead_ms is None:
        assert len(batch) == min(max_records, len(truths) + len(predictions))


def test_a_run_of_truths_stops_where_the_predictions_end() -> None:
    clock = Clock()
    reader = reader_with(clock, lead_ms=500)
    reader.arrive([record("p", 0, 1_550)])
    clock.now += 0.3
    assert taken(reader) == [("p", 0)]  # its truth did not come: it went on after a moment
    reader.arrive([record("p", 1, 1_555)])
    for offset, ms in enumerate((1_000, 1_040, 1_050, 1_060)):
        reader.arrive([record("t", offset, ms)])
    # The last waits for its prediction, 1,560 or newer.
    assert taken(reader) == [("t", 0), ("t", 1), ("t", 2), ("p", 1)]


def test_a_run_of_predictions_stops_where_the_truths_end() -> None:
    clock = Clock()
    reader = reader_with(clock, lead_ms=500)
    reader.arrive([record("t", 0, 1_000)])
    reader.arrive([record("p", 0, 1_500)])
    assert taken(reader) == [("t", 0), ("p", 0)]
    for offset, ms in enumerate((1_500, 1_510, 1_600), 1):
        reader.arrive([record("p", offset, ms)])
    assert taken(reader) == [("p", 1)]  # the next ones' truths (1,010 and on) are not read yet


def test_a_truth_goes_on_once_the_predictions_have_gone_quiet() -> None:
    """The lead is a low estimate: this prediction came 50 ms after its
    truth, not 100. Its truth does not wait for a newer prediction that may
    be seconds away (the last of a burst, or a slow pace)."""
    clock = Clock()
    reader = reader_with(clock, lead_ms=100)
    reader.arrive([record("p", 0, 1_050)])
    reader.arrive([record("t", 0, 1_000)])
    assert taken(reader) == [("p", 0)]
    clock.now += PARTNER_QUIET_S * 0.75
    assert reader.take(10) == ([], pytest.approx(PARTNER_QUIET_S * 0.25))  # predictions may be on the way
    clock.now += PARTNER_QUIET_S * 0.26
    assert taken(reader) == [("t", 0)]


def test_a_record_waits_while_its_partner_has_records_queued() -> None:
    """Queued records are not quiet: a truth held behind a long queue of
    older predictions (catching up) keeps its place after the merge."""
    clock = Clock()
    reader = reader_with(clock, lead_ms=100)
    reader.arrive([record("p", 0, 900), record("p", 1, 950)])
    reader.arrive([record("t", 0, 1_000)])
    clock.now += 1.0  # nothing new for a second, but predictions are still queued
    assert reader.take(1) == ([record("p", 0, 900)], pytest.approx(4.0))  # the truth: held


def test_queued_counts_what_arrived_and_was_not_taken() -> None:
    reader = reader_with(Clock())
    reader.arrive([record("t", 0, 10), record("t", 1, 30)])
    reader.arrive([record("p", 0, 20)])
    assert reader.queued() == 3
    assert len(reader.take(2)[0]) == 2
    assert reader.queued() == 1
