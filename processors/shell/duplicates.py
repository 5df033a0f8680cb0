"""The duplicate rule (`core.duplicates`) for nnmon's event ids, whose
UUIDv7 times `nnmon.streams.events.ids` reads."""

from __future__ import annotations

from typing import Any

from nnmon.processors.core.duplicates import SeenIds
from nnmon.streams.events import ids


def seen_ids(state: dict[str, Any] | None = None) -> SeenIds:
    """The rule with nothing seen, or as `state` (from `SeenIds.to_state`) left it."""
    return SeenIds(ids.time_key) if state is None else SeenIds.from_state(state, ids.time_key)
