"""`nnmon check`: the quality and drift windows and their alert rules over
a stretch of history, as metric and drift would have judged it, for a CI
pipeline or a cron job.

A replay of the range, its rows cut into windows (every window closed at
the end: the range is all there is) and judged by the rules from calm; the
drift of features, y_pred and y_true read over the same range (from the
time of its first y_true on).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from rstream import ConsumerOffsetSpecification

from nnmon.processors.core.drift import Columns
from nnmon.processors.core.quality import Quality
from nnmon.processors.core.rules import Transition
from nnmon.processors.core.track import Closing
from nnmon.processors.replay.drift import read_through
from nnmon.processors.replay.history import replay
from nnmon.processors.run.config import PipelineConfig
from nnmon.processors.shell.drift_log import DriftSettings, drift_json
from nnmon.processors.shell.drift_runner import DriftReading
from nnmon.processors.shell.windows_log import (
    QualitySettings,
    alert_json,
    columns,
    describe,
    iso,
    window_json,
)
from nnmon.streams.read.merge import Record


@dataclass(frozen=True)
class DriftChecked:
    settings: DriftSettings
    closings: dict[str, list[Closing[Columns]]]  # per source
    firing: list[str]  # rules firing at the end

    @property
    def transitions(self) -> list[Transition]:
        return [t for closings in self.closings.values() for closing in closings for t in closing.transitions]

    def to_json(self) -> dict[str, Any]:
        return {"reference": self.settings.reference.source,
                "windows": [drift_json(source, c.window.start_ms, c.window.end_ms, c.figures)
                            for source, closings in self.closings.items() for c in closings],
                "alerts": [alert_json(t) for t in self.transitions], "firing": self.firing}

    def to_text(self) -> list[str]:
        lines = []
        for source, closings in self.closings.items():
            drifted: dict[str, int] = {}
            for closing in closings:
                for name, column in closing.figures.columns.items():
                    if column.drifted:
                        drifted[name] = drifted.get(name, 0) + 1
            lines.append(f"drift of {source}: {len(closings)} windows"
                         + (f"; drifted: {', '.join(f'{n} in {k}' for n, k in drifted.items())}"
                            if drifted else "; nothing drifted"))
        lines += [describe(t) for t in self.transitions]
        return lines


@dataclass(frozen=True)
class Checked:
    settings: QualitySettings
    rows: int
    closings: list[Closing[Quality]]
    firing: list[str]  # rules firing at the end
    drift: DriftChecked

    @property
    def transitions(self) -> list[Transition]:
        return [t for closing in self.closings for t in closing.transitions] + self.drift.transitions

    @property
    def fired(self) -> bool:
        return any(t.state == "firing" for t in self.transitions)

    def to_json(self) -> dict[str, Any]:
        quality = [t for closing in self.closings for t in closing.transitions]
        return {
            "rows": self.rows, "reference": self.settings.reference.to_json(),
            "windows": [window_json(c.window.start_ms, c.window.end_ms, c.figures) for c in self.closings],
            "alerts": [alert_json(t) for t in quality], "firing": self.firing, "fired": self.fired,
            "drift": self.drift.to_json(),
        }

    def to_text(self) -> str:
        head = f"{'window start':24} {'rows':>6} {'mae':>9} {'rmse':>9} {'bias':>9} {'r2':>7} {'p99':>9}"
        lines = [head]
        for closing in self.closings:
            f = closing.figures
            lines.append(f"{iso(closing.window.start_ms):24} {f.rows:>6} {f.mae:>9.3f} {f.rmse:>9.3f} "
                         f"{f.bias:>9.3f} {f.r2:>7.3f} {f.p99:>9.3f}")
        reference = self.settings.reference
        lines.append(f"reference: {reference.source}: mae {reference.figures.mae:.3f}, "
                     f"rmse {reference.figures.rmse:.3f}")
        lines += [describe(t) for closing in self.closings for t in closing.transitions]
        lines += self.drift.to_text()
        fired = sum(t.state == "firing" for t in self.transitions)
        firing = self.firing + self.drift.firing
        lines.append(f"{len(self.closings)} windows of {self.rows} rows; {fired} alerts fired"
                     + (f"; firing at the end: {', '.join(firing)}" if firing else ""))
        return "\n".join(lines) + "\n"


async def check(config: PipelineConfig, start: ConsumerOffsetSpecification, to_offset: int | None,
                settings: QualitySettings, drift: DriftSettings) -> Checked:
    result = await replay(config, start, to_offset)
    track = settings.track()
    closings = track.add(*columns(result.rows)) + track.flush()
    return Checked(settings, len(result.rows), closings, track.alerts.firing(),
                   await check_drift(config, start, to_offset, drift))


async def check_drift(config: PipelineConfig, start: ConsumerOffsetSpecification, to_offset: int | None,
                      settings: DriftSettings) -> DriftChecked:
    reading = DriftReading(config.names, settings.reference.features, settings.sources(),
                           logging.getLogger("nnmon.check"))
    tracks = {source: settings.track(source) for source in settings.sources()}
    closings: dict[str, list[Closing[Columns]]] = {source: [] for source in tracks}

    def take(records: list[Record]) -> None:
        for source, (times, values) in reading.take(records).items():
            closings[source] += tracks[source].add(times, values)

    await read_through(config, reading, start, take, to_offset)
    for source, track in tracks.items():
        closings[source] += track.flush()
    return DriftChecked(settings, closings, [key for t in tracks.values() for key in t.alerts.firing()])
