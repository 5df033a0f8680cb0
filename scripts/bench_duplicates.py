"""The duplicate rule's cost at a million ids: memory, time per id, and its
checkpoint, with the rule as `model` and the joins use it.

Run: .venv/bin/python scripts/bench_duplicates.py [--ids N]. Prints a table,
then one JSON object on its last line.
"""

from __future__ import annotations

import argparse
import json
import time
import tracemalloc

from nnmon.processors.core.duplicates import Verdict
from nnmon.processors.shell.duplicates import seen_ids
from nnmon.streams.events.ids import IdGenerator

CHUNK = 500  # ids per chunk, as a replay reads them


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ids", type=int, default=1_000_000)
    count = parser.parse_args().ids
    made = IdGenerator()
    ids = [made.next_id() for _ in range(count)]
    broker_ms = time.time_ns() // 1_000_000 + 1000

    seen = seen_ids()
    started = time.perf_counter()
    for event_id in ids:  # as the live join and model do: one at a time
        seen.first_time(event_id, broker_ms)
    one_by_one_s = time.perf_counter() - started

    # Memory, with ids made as they are read (each string the rule's own).
    fresh, traced = IdGenerator(), seen_ids()
    tracemalloc.start()
    for _ in range(count):
        traced.first_time(fresh.next_id(), broker_ms)
    memory_mb = tracemalloc.get_traced_memory()[0] / 1e6
    tracemalloc.stop()

    at_once = seen_ids()
    started = time.perf_counter()
    for start in range(0, count, CHUNK):
        at_once.first_times(ids[start:start + CHUNK], broker_ms)
    at_once_s = time.perf_counter() - started

    started = time.perf_counter()
    state = json.dumps(seen.to_state())
    encode_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    seen_ids(json.loads(state))
    restore_ms = (time.perf_counter() - started) * 1000
    assert seen.verdict(ids[0], broker_ms) is Verdict.TOO_OLD, "a repeat a million ids later"

    figures = {
        "ids": count, "remembered": len(seen), "memory_mb": round(memory_mb, 1),
        "us_per_id": round(one_by_one_s / count * 1e6, 2),
        "us_per_id_in_chunks": round(at_once_s / count * 1e6, 2),
        "checkpoint_mb": round(len(state) / 1e6, 1), "checkpoint_encode_ms": round(encode_ms, 1),
        "checkpoint_restore_ms": round(restore_ms, 1),
    }
    for name, value in figures.items():
        print(f"{name:<24}{value:>10}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
