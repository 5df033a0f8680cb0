"""`nnmon check`: the quality windows and alert rules over a stretch of
history, as metric would have judged it, for a CI pipeline or a cron job.

A replay of the range, its rows cut into windows (every window closed at
the end: the range is all there is) and judged by the rules from calm.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rstream import ConsumerOffsetSpecification

from nnmon.processors.core.quality import Quality
from nnmon.processors.core.rules import Transition
from nnmon.processors.core.track import Closing
from nnmon.processors.replay.history import replay
from nnmon.processors.run.config import PipelineConfig
from nnmon.processors.shell.windows_log import (
    QualitySettings,
    alert_json,
    columns,
    describe,
    iso,
    window_json,
)


@dataclass(frozen=True)
class Checked:
    settings: QualitySettings
    rows: int
    closings: list[Closing[Quality]]
    firing: list[str]  # rules firing at the end

    @property
    def transitions(self) -> list[Transition]:
        return [t for closing in self.closings for t in closing.transitions]

    @property
    def fired(self) -> bool:
        return any(t.state == "firing" for t in self.transitions)

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows, "reference": self.settings.reference.to_json(),
            "windows": [window_json(c.window.start_ms, c.window.end_ms, c.figures) for c in self.closings],
            "alerts": [alert_json(t) for t in self.transitions], "firing": self.firing, "fired": self.fired,
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
        lines += [describe(t) for t in self.transitions]
        fired = sum(t.state == "firing" for t in self.transitions)
        lines.append(f"{len(self.closings)} windows of {self.rows} rows; {fired} alerts fired"
                     + (f"; firing at the end: {', '.join(self.firing)}" if self.firing else ""))
        return "\n".join(lines) + "\n"


async def check(config: PipelineConfig, start: ConsumerOffsetSpecification, to_offset: int | None,
                settings: QualitySettings) -> Checked:
    result = await replay(config, start, to_offset)
    track = settings.track()
    closings = track.add(*columns(result.rows)) + track.flush()
    return Checked(settings, len(result.rows), closings, track.alerts.firing())
