"""Writers that are not nnmon: a plain AMQP 0-9-1 client (pika) and an AMQP
1.0 writer that sends its JSON as an amqp-value string, each sending no more
than the README's minimum. Their events are joined like nnmon's own, and a
message whose message_id contradicts its body is refused with that reason."""

from __future__ import annotations

import asyncio
import json
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pika
from rstream import AMQPMessage, Properties, RawMessage

from nnmon.processors.core.dataset import diabetes
from nnmon.processors.core.predictor import default_predictor
from nnmon.processors.pipeline.metric import run_metric
from nnmon.processors.pipeline.model import run_model
from nnmon.processors.run.config import PipelineConfig
from nnmon.processors.shell.joined import JoinLimits
from nnmon.processors.watch.csv_tail import RowCounter
from nnmon.streams.client.connection import open_consumer, open_producer
from nnmon.streams.client.publisher import ConfirmedPublisher
from nnmon.streams.events import codec
from tests.streamtools import AMQP_PORT, read_stream, start, wait_for_stream, wait_until

Outgoing = tuple[str, pika.BasicProperties, bytes]  # stream, properties, body


def publish_with_pika(config: PipelineConfig, messages: list[Outgoing]) -> None:
    """Publish (stream, properties, body) through the default exchange, confirmed."""
    broker = config.broker
    connection = pika.BlockingConnection(pika.ConnectionParameters(
        broker.host, AMQP_PORT, broker.vhost, pika.PlainCredentials(broker.user, broker.password)))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        for stream, properties, body in messages:
            channel.basic_publish("", stream, body, properties, mandatory=True)
    finally:
        connection.close()


async def declared(config: PipelineConfig, *streams: str) -> None:
    async with open_consumer(config.broker, "nnmon-tests") as consumer:
        for stream in streams:
            await wait_for_stream(consumer, stream, timeout=30)


def test_a_plain_amqp_091_writer_is_joined_like_nnmon(config: PipelineConfig) -> None:
    names, data, rows = config.names, diabetes(), RowCounter(config.csv_path)
    ids = ["order-1", "order-2", "order-3", "order-4"]

    def features(row: int) -> dict[str, float]:
        return dict(zip(data.feature_names, data.features[row].tolist()))

    json_type = "application/json"
    messages = []
    for row, event_id in enumerate(ids):
        stamped = {"timestamp": 1_790_000_000} if row == 0 else {}  # 0-9-1 times are seconds
        body = {"features": features(row)} if row == 2 else {"id": event_id, "features": features(row)}
        messages.append((names.features, pika.BasicProperties(message_id=event_id, content_type=json_type,
                                                              **stamped), json.dumps(body).encode()))
        truth_id = "someone-else" if row == 3 else event_id
        messages.append((names.y_true, pika.BasicProperties(message_id=truth_id, content_type=json_type),
                         json.dumps({"id": event_id, "y_true": float(data.target[row])}).encode()))

    async def scenario() -> list[codec.Rejected]:
        model = start(lambda stop: run_model(config, stop, default_predictor()))
        metric = start(lambda stop: run_metric(config, stop, JoinLimits()))
        await declared(config, names.features, names.y_true, names.y_pred)
        await asyncio.to_thread(publish_with_pika, config, messages)
        await wait_until(lambda: rows.rows() >= 3, what="3 rows")
        (_, rejected), = await read_stream(config.broker, names.rejected, 1)
        await asyncio.sleep(1)  # room for a wrong extra row
        await metric.finish()
        await model.finish()
        return [codec.decode_rejected(rejected)]

    reported = asyncio.run(scenario())
    table = pd.read_csv(config.csv_path, dtype={"id": str})
    assert list(table["id"]) == ids[:3]
    np.testing.assert_array_equal(table["y_true"], data.target[:3])
    expected = default_predictor().regressor.predict(data.features[:3])
    np.testing.assert_allclose(table["y_pred"], expected, rtol=1e-12)
    assert [(r.processor, r.source_stream, r.reason) for r in reported] == [
        ("metric", names.y_true, "message_id 'someone-else' differs from the body's id 'order-4'")]


def test_an_amqp_10_writer_with_amqp_value_bodies_is_joined_like_nnmon(config: PipelineConfig) -> None:
    names, rows = config.names, RowCounter(config.csv_path)

    def message(event_id: str, body: dict[str, object]) -> RawMessage:
        # No application properties, no creation_time: the JSON as a string value.
        properties = Properties(message_id=event_id)
        return RawMessage(bytes(AMQPMessage(value=json.dumps(body), properties=properties)))

    async def scenario() -> None:
        metric = start(lambda stop: run_metric(config, stop, JoinLimits()))
        await declared(config, names.y_true, names.y_pred)
        async with open_producer(config.broker, "nnmon-tests-amqp10-writer") as producer:
            await (await ConfirmedPublisher(producer).send_together({
                names.y_true: [message(i, {"id": i, "y_true": 10.0 * n}) for n, i in enumerate(["a", "b"])],
                names.y_pred: [message(f"p-{i}", {"features_id": i, "y_pred": 10.5 * n})
                               for n, i in enumerate(["a", "b"])],
            }))
        await wait_until(lambda: rows.rows() >= 2, what="2 rows")
        await asyncio.sleep(1)
        await metric.finish()

    asyncio.run(scenario())
    table = pd.read_csv(config.csv_path, dtype={"id": str})
    assert table.to_dict("list") == {"id": ["a", "b"], "y_true": [0.0, 10.0], "y_pred": [0.0, 10.5],
                                     "absolute_error": [0.0, 0.5]}


README = Path(__file__).resolve().parents[2] / "README.md"


def readme_snippet(after: str) -> str:
    """The first Python block of the README after the line `after`."""
    text = README.read_text()
    start = text.index("```python\n", text.index(after)) + len("```python\n")
    return text[start:text.index("```", start)]


def test_the_readmes_two_writers_run_as_written(config: PipelineConfig) -> None:
    names, rows = config.names, RowCounter(config.csv_path)
    # The stream arguments, with the test's prefix.
    prefixed = {'("", "y_true",': f'("", "{names.y_true}",',
                'send_wait("y_pred",': f'send_wait("{names.y_pred}",'}
    pika_code, amqp10_code = (readme_snippet(line) for line in ("With pika (AMQP 0-9-1):",
                                                                "With an AMQP 1.0 message over"))
    for name, stream in prefixed.items():
        pika_code, amqp10_code = pika_code.replace(name, stream), amqp10_code.replace(name, stream)
    assert names.y_true in pika_code and names.y_pred in amqp10_code

    async def scenario() -> None:
        metric = start(lambda stop: run_metric(config, stop, JoinLimits()))
        await declared(config, names.y_true, names.y_pred)
        await asyncio.to_thread(exec, pika_code, {})
        namespace: dict[str, object] = {}
        exec("async def write():\n" + textwrap.indent(amqp10_code, "    "), namespace)
        await namespace["write"]()  # type: ignore[operator]
        await wait_until(lambda: rows.rows() >= 1, what="the README's row")
        await metric.finish()

    asyncio.run(scenario())
    assert config.csv_path.read_text().splitlines()[1:] == ["order-1,151.0,148.2,2.8000000000000114"]
