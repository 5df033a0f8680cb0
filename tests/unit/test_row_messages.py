"""features' messages, made from per-row templates: the events they carry."""

from __future__ import annotations

from nnmon.processors.core.dataset import diabetes
from nnmon.processors.pipeline.features import RowMessages
from nnmon.streams.events import codec
from nnmon.streams.events.ids import IdGenerator


def test_each_row_gives_its_features_and_target_under_one_new_id() -> None:
    data = diabetes()
    rows = [3, 3, 7, 441, 0]
    generator = IdGenerator()
    features, truths, last_id = RowMessages(data).make(rows, lambda _: generator.next_id())
    events = [(codec.decode(bytes(f)), codec.decode(bytes(t))) for f, t in zip(features, truths)]
    assert [f.row for f, _ in events] == rows
    for (feature, truth), row in zip(events, rows):
        assert isinstance(feature, codec.FeaturesEvent) and isinstance(truth, codec.TruthEvent)
        assert feature.id == truth.id and feature.created_ms == truth.created_ms
        assert feature.features == data.row_features(row)
        assert truth.y_true == float(data.target[row])
    ids = [f.id for f, _ in events]
    assert len(set(ids)) == len(rows) and ids == sorted(ids) and last_id == ids[-1]
