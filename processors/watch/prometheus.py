"""The dashboard's figures in Prometheus' exposition format, written by the
official client library from the dashboard's latest refresh (a custom
collector: the figures are read, not counted here)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector

from nnmon.processors.core.drift import CSV_FIGURES
from nnmon.processors.core.quality import FIGURES
from nnmon.processors.watch.summaries import DriftStatus, QualityStatus

if TYPE_CHECKING:
    from nnmon.processors.watch.dashboard import Dashboard


class PipelineCollector(Collector):
    def __init__(self, dashboard: Dashboard) -> None:
        self.dashboard = dashboard

    def collect(self) -> Iterator[Metric]:
        dashboard = self.dashboard
        stats, status = dashboard.stats, dashboard.status
        yield GaugeMetricFamily("nnmon_broker_up", "1 when the last look at the broker succeeded.",
                                value=int(status is not None and dashboard.broker_error is None))
        yield GaugeMetricFamily("nnmon_csv_rows", "Rows in the metric log.", value=stats.count)
        yield SummaryMetricFamily("nnmon_absolute_error", "Absolute errors of the rows in the metric log.",
                                  count_value=stats.count, sum_value=stats.total)
        yield GaugeMetricFamily(
            "nnmon_squared_error_sum", "Sum of squared errors (RMSE = sqrt(this / count)).",
            value=stats.total_squares)
        processed = CounterMetricFamily(
            "nnmon_events_processed", "Events each processor handled since it started: published "
            "(features), predicted (model), joined (metric, plot).", labels=["processor"])
        rejects = CounterMetricFamily(
            "nnmon_messages_rejected", "Messages each processor rejected since it started.",
            labels=["processor"])
        for processor, counts in dashboard.counts.items():
            processed.add_metric([processor], counts.get("processed", 0))
            if "rejected" in counts:
                rejects.add_metric([processor], counts["rejected"])
        yield processed
        yield rejects
        yield from _quality(dashboard.quality)
        yield from _drift(dashboard.drift)
        yield _firing(dashboard.quality, dashboard.drift)
        if status is None or dashboard.broker_error is not None:
            return  # no stale lag from before the broker went away
        rejected = next(s for s in status.streams if s.name == dashboard.config.names.rejected)
        yield GaugeMetricFamily("nnmon_rejected_stream_messages", "Messages in the rejected stream.",
                                value=rejected.held)
        expired = CounterMetricFamily("nnmon_join_expired", "Events expired unmatched (from the checkpoint).",
                                      labels=["processor"])
        pending = GaugeMetricFamily("nnmon_join_pending", "Events waiting for their other half.",
                                    labels=["processor"])
        for join in status.joins:
            expired.add_metric([join.processor], join.expired)
            pending.add_metric([join.processor], join.pending)
        yield expired
        yield pending
        lag = GaugeMetricFamily("nnmon_consumer_lag", "Offsets after the consumer's stored offset.",
                                labels=["processor", "stream"])
        behind = GaugeMetricFamily("nnmon_consumer_behind_seconds",
                                   "Age of the consumer's oldest unprocessed message.",
                                   labels=["processor", "stream"])
        for consumer in status.consumers:
            if consumer.lag is not None:
                lag.add_metric([consumer.processor, consumer.stream], consumer.lag)
            if consumer.behind_s is not None:
                behind.add_metric([consumer.processor, consumer.stream], consumer.behind_s)
        yield lag
        yield behind
        last = GaugeMetricFamily("nnmon_stream_last_offset", "Offset of the stream's last message.",
                                 labels=["stream"])
        for stream in status.streams:
            if stream.last is not None:
                last.add_metric([stream.name], stream.last)
        yield last


def _quality(quality: QualityStatus | None) -> Iterator[Metric]:
    """The last closed window's figures, the reference's, and each rule's state."""
    if quality is None:
        return
    window = quality.last_window
    if window is not None:
        for figure in FIGURES:
            value = window.get(figure)
            if value is not None:
                yield GaugeMetricFamily(f"nnmon_window_{figure}",
                                        f"{figure} of the last closed quality window.", value=value)
        yield GaugeMetricFamily("nnmon_window_end_seconds",
                                "End of the last closed quality window (Unix time).",
                                value=window["window_end_ms"] / 1000)
    reference = quality.summary.get("reference", {}).get("figures", {})
    for figure in ("mae", "rmse"):
        if reference.get(figure) is not None:
            yield GaugeMetricFamily(f"nnmon_reference_{figure}", f"{figure} of the reference.",
                                    value=reference[figure])
    yield CounterMetricFamily("nnmon_window_late_rows", "Rows that came after their window had closed.",
                              value=quality.summary.get("late_rows", 0))


def _drift(drift: DriftStatus | None) -> Iterator[Metric]:
    """Each column's figures in its source's last closed drift window."""
    if drift is None:
        return
    figures = {figure: GaugeMetricFamily(f"nnmon_drift_{figure}", f"{figure} of the column in the last "
                                         "closed drift window of its source.", labels=["column"])
               for figure in CSV_FIGURES}
    drifted = GaugeMetricFamily("nnmon_drift_drifted", "1 when the column drifted in the last closed "
                                "drift window (0 when not; absent when too few rows to judge).",
                                labels=["column"])
    ends = GaugeMetricFamily("nnmon_drift_window_end_seconds",
                             "End of the source's last closed drift window (Unix time).", labels=["source"])
    for source in drift.sources():
        window = drift.last_window(source)
        if window is None:
            continue
        ends.add_metric([source], window["window_end_ms"] / 1000)
        for column, values in window["columns"].items():
            for figure, family in figures.items():
                if values.get(figure) is not None:
                    family.add_metric([column], values[figure])
            if values.get("drifted") is not None:
                drifted.add_metric([column], int(values["drifted"]))
        if source == "features" and window.get("drifted_share") is not None:
            yield GaugeMetricFamily("nnmon_drift_drifted_share", "Share of the features drifted in the "
                                    "last closed drift window.", value=window["drifted_share"])
    yield from figures.values()
    yield drifted
    yield ends


def _firing(quality: QualityStatus | None, drift: DriftStatus | None) -> Metric:
    """Every rule of quality and drift, by its key (`feature_drift[bmi]`): 1 while it fires."""
    firing = GaugeMetricFamily("nnmon_alert_firing", "1 while the alert rule fires.", labels=["rule"])
    for summary in (quality, drift):
        if summary is not None:
            for rule in summary.summary.get("rules", []):
                key = rule.get("key", rule["name"])
                firing.add_metric([key], int(key in summary.firing))
    return firing


def metrics_response(dashboard: Dashboard) -> tuple[bytes, str]:
    """The body and content type of /metrics."""
    registry = CollectorRegistry()
    registry.register(PipelineCollector(dashboard))
    return generate_latest(registry), CONTENT_TYPE_LATEST
