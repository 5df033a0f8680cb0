"""The metric log's row format: `id,y_true,y_pred,absolute_error`.

Floats are written as `repr` writes them, the shortest text that reads back
as the very same float, so the CSV holds exactly what was computed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import orjson

from nnmon.processors.core.join import Pair

HEADER = "id,y_true,y_pred,absolute_error\n"


@dataclass
class Rows:
    """Rows of the log by column: replay joins a whole history this way,
    with no object per row."""

    ids: list[str]
    y_true: list[float]
    y_pred: list[float]
    absolute_error: list[float]
    # When the broker stored each row's prediction (ms since the epoch), for
    # the rows' prediction times (not a column of the log).
    prediction_ms: list[int] = field(default_factory=list)

    @classmethod
    def of(cls, pairs: Sequence[Pair]) -> Rows:
        return cls([p.id for p in pairs], [p.y_true for p in pairs], [p.y_pred for p in pairs],
                   [p.absolute_error for p in pairs], [p.prediction_ms for p in pairs])

    @classmethod
    def joined(cls, ids: list[str], y_true: list[float], y_pred: list[float],
               prediction_ms: list[int] | None = None) -> Rows:
        """The rows of these ids and values, their errors computed at once
        (numpy's subtraction and absolute value are IEEE's, as Python's are).
        An error that overflows is infinite, as in Python, and not warned of."""
        with np.errstate(over="ignore", invalid="ignore"):
            errors = np.abs(np.subtract(y_true, y_pred))
        return cls(ids, y_true, y_pred, errors.tolist(), [] if prediction_ms is None else prediction_ms)

    def __len__(self) -> int:
        return len(self.ids)


def format_rows(rows: Rows) -> str:
    columns = [_float_texts(values) for values in (rows.y_true, rows.y_pred, rows.absolute_error)]
    return "".join([f"{event_id},{y_true},{y_pred},{error}\n"
                    for event_id, y_true, y_pred, error in zip(rows.ids, *columns)])


def _float_texts(values: list[float]) -> list[str]:
    """Each float's `repr`. orjson writes the same shortest digits, three
    times faster for a whole column (the repr of 600,000 floats was 12% of a
    replay). Its text differs only below 1e-4 (0.00001 for 1e-05, 2.5e-7 for
    2.5e-07) and for what is not finite (null): those fields take `repr`."""
    if not values:
        return []
    text = orjson.dumps(values).decode()
    texts = text[1:-1].split(",")
    if _unlike_repr(text):
        texts = [repr(v) if _unlike_repr(t) else t for t, v in zip(texts, values)]
    return texts


def _unlike_repr(text: str) -> bool:
    """Whether orjson's text (of one float, or a whole column) may hold a
    float written unlike `repr`: below 1e-4 (0.0000..., or an exponent) or
    not finite."""
    return "e-" in text or ".0000" in text or "null" in text
