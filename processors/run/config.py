"""What every processor is told: where the broker is, how the streams are
named and kept, and where outputs go."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from nnmon.processors.run.runtime import LogFormat
from nnmon.streams.settings import BrokerSettings, Retention, StreamNames


@dataclass(frozen=True)
class PipelineConfig:
    broker: BrokerSettings = field(default_factory=BrokerSettings)
    names: StreamNames = field(default_factory=StreamNames)
    retention: Retention = field(default_factory=Retention)
    logs_dir: Path = Path("logs")
    log_format: LogFormat = LogFormat.TEXT

    @property
    def csv_path(self) -> Path:
        return self.logs_dir / "metric_log.csv"

    @property
    def windows_path(self) -> Path:
        return self.logs_dir / "metric_windows.csv"

    @property
    def drift_path(self) -> Path:
        return self.logs_dir / "drift.csv"

    @property
    def png_path(self) -> Path:
        return self.logs_dir / "error_distribution.png"

    def checkpoint_path(self, processor: str) -> Path:
        return self.logs_dir / ".checkpoints" / f"{processor}.json"

    def connection_name(self, processor: str) -> str:
        return f"nnmon-{self.names.prefix}{processor}"
