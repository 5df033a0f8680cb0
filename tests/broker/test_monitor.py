"""The client a service uses (`from nnmon import Monitor`), against the real
broker: a script logs 1,000 predictions and, later, their truths out of
order, and metric's CSV holds exactly those 1,000 rows with the right
errors; retries and restarts double nothing; a full buffer, bad values
and an unreachable broker are refused clearly."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from nnmon import BufferFull, Monitor, SyncMonitor
from nnmon.processors.core.dataset import diabetes
from nnmon.processors.run.config import PipelineConfig
from nnmon.streams.client.connection import BrokerError
from nnmon.streams.events import codec
from tests.streamtools import NNMON, free_port, nnmon_env, read_events, stream_length, wait_until

PREDICTIONS = 1_000


def run_script(config: PipelineConfig, code: str) -> str:
    """Run `code` as a service would: its own process, configured by NNMON_* only."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=nnmon_env(config),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def metric_until(config: PipelineConfig, rows: int) -> pd.DataFrame:
    metric = subprocess.Popen([NNMON, "metric"], env=nnmon_env(config), stderr=subprocess.PIPE, text=True)
    try:
        asyncio.run(wait_until(lambda: config.csv_path.exists() and len(pd.read_csv(config.csv_path)) >= rows,
                               60, f"{rows} rows"))
    finally:
        metric.terminate()
        assert metric.wait(30) == 0, metric.stderr.read() if metric.stderr else ""
    return pd.read_csv(config.csv_path, dtype={"id": str})


def test_predictions_then_truths_out_of_order_give_exactly_one_row_each(config: PipelineConfig) -> None:
    # The service: an async model server logging what it predicts (a made-up
    # model: 3 x bmi x 1000 + 150), under its own ids.
    out = run_script(config, f"""
        import asyncio, json
        from nnmon import Monitor
        from nnmon.processors.core.dataset import diabetes

        async def serve():
            data = diabetes()
            async with Monitor(model_version="made-up-v1") as monitor:
                for n in range({PREDICTIONS}):
                    row = data.row_features(n % 442)
                    await monitor.log_prediction(row, 3 * row["bmi"] * 1000 + 150, id=f"request-{{n}}")
            print(json.dumps({{"sent": monitor.sent}}))

        asyncio.run(serve())
    """)
    assert json.loads(out) == {"sent": 2 * PREDICTIONS}
    # Another system, later: the truths, in another order, with the sync facade.
    run_script(config, f"""
        import random
        from nnmon import SyncMonitor
        from nnmon.processors.core.dataset import diabetes

        data, order = diabetes(), list(range({PREDICTIONS}))
        random.Random(7).shuffle(order)
        with SyncMonitor() as monitor:
            for n in order:
                monitor.log_truth(f"request-{{n}}", float(data.target[n % 442]))
    """)
    csv = metric_until(config, PREDICTIONS)
    assert len(csv) == PREDICTIONS and set(csv["id"]) == {f"request-{n}" for n in range(PREDICTIONS)}
    data = diabetes()
    n = csv["id"].str.removeprefix("request-").astype(int) % 442
    predicted = 3 * data.features[n, list(data.feature_names).index("bmi")] * 1000 + 150
    np.testing.assert_array_equal(csv["y_pred"], predicted)
    np.testing.assert_array_equal(csv["absolute_error"], np.abs(data.target[n] - predicted))
    predictions = asyncio.run(read_events(config.broker, config.names.y_pred, PREDICTIONS))
    assert {p.model_version for p in predictions if isinstance(p, codec.PredictionEvent)} == {"made-up-v1"}


def test_a_retry_and_a_restart_under_the_same_name_double_nothing(config: PipelineConfig) -> None:
    row = diabetes().row_features(0)
    settings = {"stream_prefix": config.names.prefix, "publisher_name": "checkout-service"}
    with SyncMonitor(**settings) as monitor:
        for n in range(10):
            monitor.log_prediction(row, 100.0 + n, id=f"order-{n}")
        monitor.log_prediction(row, 100.0, id="order-0")  # the service retried: the same event again
    # The service restarts, under the same publisher name: its new events are
    # stored (its publishing ids go on above the broker's), its retries counted once.
    with SyncMonitor(**settings) as monitor:
        monitor.log_prediction(row, 100.0 + 3, id="order-3")
        for n in range(10, 20):
            monitor.log_prediction(row, 100.0 + n, id=f"order-{n}")
        for n in range(20):
            monitor.log_truth(f"order-{n}", 150.0)
    assert asyncio.run(stream_length(config.broker, config.names.features)) == 22  # all on the stream
    csv = metric_until(config, 20)
    assert sorted(csv["id"]) == sorted(f"order-{n}" for n in range(20))
    assert dict(zip(csv["id"], csv["y_pred"])) == {f"order-{n}": 100.0 + n for n in range(20)}
    rejected = asyncio.run(stream_length(config.broker, config.names.rejected))
    assert rejected == 2  # the two repeated predictions, copied there by metric with the reason


def test_a_full_buffer_raises_or_waits_as_asked(config: PipelineConfig) -> None:
    row = diabetes().row_features(1)

    async def scenario() -> None:
        async with Monitor(stream_prefix=config.names.prefix, max_buffered=4, block=False) as monitor:
            await monitor.log_prediction(row, 1.0)
            await monitor.log_prediction(row, 2.0)  # 4 events: full, nothing has been sent yet
            with pytest.raises(BufferFull, match="4 events wait"):
                await monitor.log_prediction(row, 3.0)
            await monitor.flush()
            await monitor.log_prediction(row, 3.0)  # room again once confirmed
        async with Monitor(stream_prefix=config.names.prefix, max_buffered=4) as monitor:
            for n in range(50):  # blocks until there is room, never more than 4 buffered
                await monitor.log_prediction(row, float(n))
                assert monitor.buffered <= 4
        assert monitor.sent == 100

    asyncio.run(scenario())
    assert asyncio.run(stream_length(config.broker, config.names.y_pred)) == 53


def test_bad_values_are_refused_before_anything_is_sent(config: PipelineConfig) -> None:
    row = diabetes().row_features(2)
    with SyncMonitor(stream_prefix=config.names.prefix) as monitor:
        with pytest.raises(ValueError, match="y_pred nan is not a finite number"):
            monitor.log_prediction(row, float("nan"))
        with pytest.raises(ValueError, match="feature bmi 'high' is not a number"):
            monitor.log_prediction(row | {"bmi": "high"}, 1.0)
        with pytest.raises(ValueError, match="id 'a b' is not 1-128 characters"):
            monitor.log_prediction(row, 1.0, id="a b")
        with pytest.raises(ValueError, match="y_true inf"):
            monitor.log_truth("x", float("inf"))
        monitor.log_prediction(row, 1.0, id="the-good-one")
    events = asyncio.run(read_events(config.broker, config.names.features, 1))
    assert [e.id for e in events] == ["the-good-one"]
    assert asyncio.run(stream_length(config.broker, config.names.features)) == 1


def test_an_unreachable_broker_is_one_clear_error(config: PipelineConfig) -> None:
    port = free_port()
    with pytest.raises(BrokerError, match=f"127.0.0.1:{port}"):
        SyncMonitor(port=port, stream_prefix=config.names.prefix)
    with pytest.raises(TypeError, match="unknown settings: colour"):
        Monitor(colour="red")


def test_up_without_the_model_watches_what_a_service_logs(config: PipelineConfig) -> None:
    up = subprocess.Popen([NNMON, "up", "--no-model", "--count", "200", "--every", "1", "--timeout", "90"],
                          env=nnmon_env(config), stderr=subprocess.PIPE, text=True)
    try:
        data = diabetes()
        with SyncMonitor(stream_prefix=config.names.prefix) as monitor:
            ids = [monitor.log_prediction(data.row_features(n), 150.0) for n in range(200)]
            for n, event_id in enumerate(ids):
                monitor.log_truth(event_id, float(data.target[n]))
        assert up.wait(120) == 0
    finally:
        up.kill()
    log = up.stderr.read() if up.stderr else ""
    started = next(line for line in log.splitlines() if " started " in line)
    assert "metric" in started and "drift" in started and "features" not in started and "model" not in started
    csv = pd.read_csv(config.csv_path, dtype={"id": str})
    assert sorted(csv["id"]) == sorted(ids)
    errors = csv.set_index("id").loc[ids, "absolute_error"]
    np.testing.assert_array_equal(errors, np.abs(data.target[:200] - 150))


def test_a_sender_that_fails_fails_the_callers_instead_of_hanging(config: PipelineConfig) -> None:
    row = diabetes().row_features(3)

    def broken() -> None:
        raise ValueError("a fault in the sender")

    async def scenario() -> None:
        monitor = await Monitor(stream_prefix=config.names.prefix).start()
        monitor._take = broken  # type: ignore[method-assign]  # the fault, injected
        await monitor.log_prediction(row, 1.0)
        with pytest.raises(RuntimeError, match="2 events were not confirmed") as failed:
            await asyncio.wait_for(monitor.flush(), 20)  # a hang fails the wait_for instead
        assert "a fault in the sender" in repr(failed.value.__cause__)
        with pytest.raises(RuntimeError, match="the monitor is closed"):
            await monitor.log_prediction(row, 2.0)
        with pytest.raises(RuntimeError, match="were not confirmed"):
            await asyncio.wait_for(monitor.close(), 20)

    asyncio.run(scenario())
