"""The metric log's row format: `id,y_true,y_pred,absolute_error`.

Floats are written with `repr`, the shortest text that reads back as the very
same float, so the CSV holds exactly what was computed.
"""

from __future__ import annotations

from collections.abc import Iterable

from processors.join import Pair

HEADER = "id,y_true,y_pred,absolute_error\n"


def format_rows(pairs: Iterable[Pair]) -> str:
    return "".join(
        f"{p.id},{p.y_true!r},{p.y_pred!r},{p.absolute_error!r}\n" for p in pairs
    )
