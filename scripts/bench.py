"""nnmon's benchmark: the pipeline's speed on the local broker, fresh streams.

Run with scripts/bench (after scripts/run's or scripts/test's set-up). Prints
a table, then one JSON object on its last line. Figures:

- e2e_events_per_s: events through features -> model -> metric -> CSV at
  --interval 0, from the first publish (the first id's time) to the last row;
- latency_ms_p50 / latency_ms_p99: at a steady --latency-rate events/s, from
  when each event was due on features' schedule to its CSV row being seen on
  disk. That counts the few ms an event waits for features' next send (see
  pace.TICK_S); the figures from the publish itself (the id's time) are
  printed too;
- replay_rows_per_s: `nnmon replay --from-offset first --no-drift` over the
  e2e run (the join, its CSV and windows); replay_with_drift_rows_per_s: the
  same replay rebuilding drift.csv too (reading the features as well);
- plot_s_1m: a histogram of 1,000,000 errors, added then drawn to a PNG;
- client_predictions_per_s: `nnmon.Monitor` in one process logging
  --client-predictions predictions (features and y_pred each) as fast as
  it can, from the first call until the broker confirmed the last;
- rss_mb: the largest resident memory (VmHWM) of any processor;
- drift_behind_s: how long after the CSV's last row drift had stored its
  offsets at the three streams' ends (it stores them every 2 s: under about
  2 s, it kept up), unless --no-drift; drift_behind_at_latency_rate_s: the same at the
  end of the latency run; drift_cpu_s: its CPU seconds in the e2e run
  (start-up included).

With --model mlp the pipeline runs the built-in network; with --onnx, a
small network (MLPRegressor 16-8, exported by skl2onnx) through
onnxruntime, as `nnmon model --model-path net.onnx` runs a user's model.

drift runs beside the others, as `nnmon up` runs it: it reads the same three
streams, on the same two cores. It also prints the CPU seconds each
processor and the broker spent in the e2e run: on a machine this small,
where the time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

from nnmon.processors.core.histogram import ErrorHistogram
from nnmon.processors.shell.drawing import draw_png
from nnmon.streams.client.connection import open_consumer
from nnmon.streams.events.ids import id_time_ms
from nnmon.streams.read.reader import last_position, stored_offset
from nnmon.streams.settings import BrokerSettings, StreamNames

NNMON = str(Path(sys.executable).with_name("nnmon"))
PROCESSORS = ("model", "metric", "plot", "drift")
# What each processor logs once it is connected and at work.
READY = {"model": r"INFO predicting ", "metric": r"INFO joining ", "plot": r"INFO joining ",
         "drift": r"INFO drift of "}
DRIFT_CATCH_UP_S = 600


class Pipeline:
    """The processors as separate processes under a fresh stream prefix."""

    def __init__(self, logs: Path, model: dict[str, str]) -> None:
        self.logs = logs
        self.env = {**os.environ, "NNMON_STREAM_PREFIX": f"bench-{uuid.uuid4().hex[:8]}-",
                    "NNMON_LOGS_DIR": str(logs), **model}
        self.processes: list[subprocess.Popen[bytes]] = []
        self.peak_rss_kb = 0
        self.cpu_s: dict[str, float] = {}

    def start(self, *arguments: str) -> subprocess.Popen[bytes]:
        log = open(self.logs / f"{arguments[0]}.log", "ab")
        process = subprocess.Popen([NNMON, *arguments], env=self.env, stdout=log, stderr=log)
        self.processes.append(process)
        return process

    def wait_ready(self, timeout: float = 120) -> None:
        """Wait until every processor started so far logs that it is at work
        (model's start-up alone, imports and fitting, takes seconds)."""
        deadline = time.monotonic() + timeout
        for process in self.processes:
            name = str(process.args[1])
            log = self.logs / f"{name}.log"
            while not re.search(READY[name], log.read_text() if log.exists() else ""):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"nnmon {name} did not start; see {log}")
                time.sleep(0.05)

    def sample_rss(self) -> None:
        for process in self.processes:
            try:
                status = Path(f"/proc/{process.pid}/status").read_text()
            except FileNotFoundError:
                continue
            found = re.search(r"VmHWM:\s+(\d+) kB", status)
            if found:
                self.peak_rss_kb = max(self.peak_rss_kb, int(found.group(1)))

    def stop(self) -> None:
        self.sample_rss()
        for process in self.processes:
            self.cpu_s[str(process.args[1])] = cpu_seconds(process.pid)
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            process.wait(timeout=60)

    def delete_streams(self) -> None:
        """Delete this run's streams: each bench run writes hundreds of MB."""
        names = StreamNames(self.env["NNMON_STREAM_PREFIX"])

        async def delete() -> None:
            async with open_consumer(BrokerSettings.from_environment(), "nnmon-bench") as consumer:
                for stream in names.all() + names.derived():
                    await consumer.delete_stream(stream, missing_ok=True)

        asyncio.run(delete())

    def run(self, *arguments: str) -> str:
        done = subprocess.run([NNMON, *arguments], env=self.env, capture_output=True, text=True,
                              timeout=3600)
        if done.returncode != 0:
            raise SystemExit(f"nnmon {' '.join(arguments)} failed: {done.stderr.strip()}")
        return done.stdout


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a live process (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def broker_pid() -> int | None:
    found = subprocess.run(["pgrep", "-f", "beam.smp"], capture_output=True, text=True).stdout.split()
    return int(found[0]) if found else None


class CsvTail:
    """Reads rows as they are appended to the metric log."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.position = 0
        self.rows = 0
        self.partial = b""

    def new_ids(self) -> list[str]:
        try:
            if os.stat(self.path).st_size == self.position:
                return []  # polled every 0.5 ms: a stat, not an open and read
            with open(self.path, "rb") as file:
                file.seek(self.position)
                data = file.read()
        except FileNotFoundError:
            return []
        self.position += len(data)
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()
        ids = [line.split(b",", 1)[0].decode() for line in lines if line and not line.startswith(b"id,")]
        self.rows += len(ids)
        return ids


def wait_for_rows(pipeline: Pipeline, tail: CsvTail, rows: int, timeout: float,
                  seen: list[tuple[str, float]] | None = None) -> float:
    """Poll the CSV until it has `rows` rows; returns when the last arrived."""
    deadline = time.monotonic() + timeout
    next_sample = 0.0
    while tail.rows < rows:
        ids = tail.new_ids()
        now = time.time()
        if seen is not None:
            seen.extend((i, now) for i in ids)
        if time.monotonic() > deadline:
            raise SystemExit(f"only {tail.rows} of {rows} rows after {timeout}s; see {pipeline.logs}")
        # VmHWM is each process's peak so far: sampling it now and then
        # misses nothing. Sampled at every poll, it cost a third of a core,
        # taken from the pipeline it measures.
        if time.monotonic() >= next_sample:
            pipeline.sample_rss()
            next_sample = time.monotonic() + 0.5
        time.sleep(0.0005 if seen is not None else 0.01)
    return time.time()


def drift_caught_up(pipeline: Pipeline, timeout: float) -> float:
    """Wait until drift has stored its offsets at the ends of the three streams it reads."""
    names = StreamNames(pipeline.env["NNMON_STREAM_PREFIX"])
    streams = (names.features, names.y_pred, names.y_true)

    async def wait() -> float:
        async with open_consumer(BrokerSettings.from_environment(), "nnmon-bench") as consumer:
            ends = {stream: await last_position(consumer, stream) for stream in streams}
            deadline = time.monotonic() + timeout
            while True:
                stored = {stream: await stored_offset(consumer, stream, names.consumer("drift"))
                          for stream in streams}
                if all(end is None or (stored[s] or -1) >= end.offset for s, end in ends.items()):
                    return time.time()
                if time.monotonic() > deadline:
                    raise SystemExit(f"drift had not caught up {timeout}s after the last row; "
                                     f"see {pipeline.logs}")
                await asyncio.sleep(0.05)

    return asyncio.run(wait())


def throughput(logs: Path, events: int, processors: tuple[str, ...],
               model: dict[str, str]) -> tuple[float, float, float | None, Pipeline]:
    """Events per second to the CSV, the seconds that took, and how long
    after its last row drift (if it runs) had caught up."""
    pipeline = Pipeline(logs, model)
    for name in processors:
        pipeline.start(name)
    pipeline.wait_ready()  # start-up (imports, fitting, connections) is not throughput
    broker = broker_pid()
    broker_began = cpu_seconds(broker) if broker else 0.0
    tail = CsvTail(logs / "metric_log.csv")
    pipeline.start("features", "--interval", "0", "--count", str(events))
    finished = wait_for_rows(pipeline, tail, events, timeout=1800)
    drift_behind = drift_caught_up(pipeline, DRIFT_CATCH_UP_S) - finished if "drift" in processors else None
    with open(logs / "metric_log.csv", "rb") as file:
        file.readline()
        first_id = file.readline().split(b",", 1)[0].decode()
    pipeline.stop()
    if broker:
        pipeline.cpu_s["broker"] = cpu_seconds(broker) - broker_began
    seconds = finished - id_time_ms(first_id) / 1000
    return events / seconds, seconds, drift_behind, pipeline


def latency(logs: Path, rate: float, seconds: float, processors: tuple[str, ...], model: dict[str, str],
            ) -> tuple[tuple[float, float], tuple[float, float], float | None]:
    """(p50, p99) from each event's due time, and from its publish; how long
    after the last row drift (if it runs) had caught up."""
    pipeline = Pipeline(logs, model)
    for name in processors:
        pipeline.start(name)
    pipeline.wait_ready()
    tail = CsvTail(logs / "metric_log.csv")
    events = int(rate * seconds)
    pipeline.start("features", "--interval", str(1 / rate), "--count", str(events))
    seen: list[tuple[str, float]] = []
    finished = wait_for_rows(pipeline, tail, events, timeout=seconds * 5 + 60, seen=seen)
    drift_behind = drift_caught_up(pipeline, DRIFT_CATCH_UP_S) - finished if "drift" in processors else None
    pipeline.stop()
    pipeline.delete_streams()
    # Ids sort in the order they were made: event n is due n / rate seconds
    # after the first, whose id's time (in whole ms, so due times err early,
    # latencies high, by under 1 ms) starts the schedule.
    made = sorted(event_id for event_id, _ in seen)
    place = {event_id: n for n, event_id in enumerate(made)}
    start = id_time_ms(made[0]) / 1000
    # Leave out the first second: the processors' caches and JIT-free warm-up.
    steady = seen[int(rate):]
    from_due = [(t - start - place[i] / rate) * 1000 for i, t in steady]
    from_publish = [(t - id_time_ms(i) / 1000) * 1000 for i, t in steady]
    return _percentiles(from_due), _percentiles(from_publish), drift_behind


def _percentiles(delays_ms: list[float]) -> tuple[float, float]:
    return float(np.percentile(delays_ms, 50)), float(np.percentile(delays_ms, 99))


def replay_speed(pipeline: Pipeline, logs: Path, events: int, drift: bool) -> float:
    out = pipeline.run("replay", "--from-offset", "first", "--out", str(logs / "replay.csv"), "--no-plot",
                       "--drift" if drift else "--no-drift")
    found = re.search(r"replayed (\d+) rows .* ([\d.]+)s$", out.strip())
    assert found, out
    rows, seconds = int(found.group(1)), float(found.group(2))
    if rows != events:
        raise SystemExit(f"replay wrote {rows} rows, not {events}")
    return rows / seconds


def onnx_network(path: Path) -> Path:
    """A small network fitted on the data set, exported to ONNX (needs the test extras: skl2onnx)."""
    import warnings

    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPRegressor

    from nnmon.processors.core.dataset import diabetes

    data = diabetes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        network = MLPRegressor(hidden_layer_sizes=(16, 8), max_iter=200, random_state=0)
        network.fit(data.features, data.target)
    width = len(data.feature_names)
    exported = convert_sklearn(network, initial_types=[("input", FloatTensorType([None, width]))])
    path.write_bytes(exported.SerializeToString())
    return path


def client_speed(predictions: int) -> float:
    """Predictions per second through `nnmon.Monitor`, confirmed."""
    from nnmon import Monitor
    from nnmon.processors.core.dataset import diabetes

    data = diabetes()
    rows = [data.row_features(row) for row in range(len(data.target))]
    names = StreamNames(f"bench-{uuid.uuid4().hex[:8]}-")

    async def log_all() -> float:
        async with Monitor(stream_prefix=names.prefix, model_version="bench") as monitor:
            began = time.perf_counter()
            for n in range(predictions):
                await monitor.log_prediction(rows[n % len(rows)], 150.0 + n % 100)
            await monitor.flush()
            return predictions / (time.perf_counter() - began)

    async def delete() -> None:
        async with open_consumer(BrokerSettings.from_environment(), "nnmon-bench") as consumer:
            for stream in names.all():
                await consumer.delete_stream(stream, missing_ok=True)

    try:
        return asyncio.run(log_all())
    finally:
        asyncio.run(delete())


def plot_time(rows: int) -> float:
    errors = np.abs(np.random.default_rng(0).normal(0, 50, rows))
    began = time.perf_counter()
    histogram = ErrorHistogram()
    histogram.add(errors.tolist())
    with tempfile.TemporaryDirectory() as folder:
        draw_png(histogram, Path(folder) / "plot.png")
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000, help="events for throughput and replay")
    parser.add_argument("--latency-rate", type=float, default=1000, help="events/s for the latency run")
    parser.add_argument("--latency-seconds", type=float, default=20, help="length of the latency run")
    parser.add_argument("--plot-rows", type=int, default=1_000_000)
    parser.add_argument("--client-predictions", type=int, default=200_000)
    parser.add_argument("--no-drift", action="store_true", help="run the pipeline without drift")
    parser.add_argument("--model", default="linear", help="the built-in model: linear or mlp")
    parser.add_argument("--onnx", action="store_true", help="model runs a small ONNX network")
    options = parser.parse_args()
    processors = tuple(p for p in PROCESSORS if not (options.no_drift and p == "drift"))

    with tempfile.TemporaryDirectory(prefix="nnmon-bench-") as folder:
        root = Path(folder)
        model = {"NNMON_MODEL": options.model}
        if options.onnx:
            model["NNMON_MODEL_PATH"] = str(onnx_network(root / "net.onnx"))
        (root / "e2e").mkdir()
        (root / "latency").mkdir()
        events_per_s, seconds, drift_behind, pipeline = throughput(
            root / "e2e", options.events, processors, model)
        replay_rows_per_s = replay_speed(pipeline, root / "e2e", options.events, drift=False)
        replay_with_drift = replay_speed(pipeline, root / "e2e", options.events, drift=True)
        pipeline.delete_streams()
        (p50, p99), (published_p50, published_p99), steady_drift_behind = latency(
            root / "latency", options.latency_rate, options.latency_seconds, processors, model)
        plot_s = plot_time(options.plot_rows)
        client_per_s = client_speed(options.client_predictions)
    figures = {
        "e2e_events_per_s": round(events_per_s),
        "latency_ms_p50": round(p50, 2),
        "latency_ms_p99": round(p99, 2),
        "replay_rows_per_s": round(replay_rows_per_s),
        "replay_with_drift_rows_per_s": round(replay_with_drift),
        "plot_s_1m": round(plot_s, 3),
        "client_predictions_per_s": round(client_per_s),
        "rss_mb": round(pipeline.peak_rss_kb / 1024, 1),
        **({} if drift_behind is None or steady_drift_behind is None else {
            "drift_behind_s": round(drift_behind, 2), "drift_cpu_s": round(pipeline.cpu_s["drift"], 1),
            "drift_behind_at_latency_rate_s": round(steady_drift_behind, 2)}),
    }
    print(f"{'figure':<20} {'value':>12}")
    for name, value in figures.items():
        print(f"{name:<20} {value:>12}")
    print(f"({options.events} events in {seconds:.1f}s; latency at {options.latency_rate:g}/s "
          f"over {options.latency_seconds:g}s; plot of {options.plot_rows} rows)")
    print(f"latency from the publish (the id's time): p50 {published_p50:.2f} ms, p99 {published_p99:.2f} ms")
    cpu = ", ".join(f"{name} {used:.1f}" for name, used in pipeline.cpu_s.items())
    print(f"CPU seconds in the e2e run: {cpu}")
    if drift_behind is not None:
        print(f"drift: {pipeline.cpu_s['drift']:.1f} CPU s for {options.events} events of each of 3 streams, "
              f"caught up {drift_behind:.2f}s after the CSV's last row")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
