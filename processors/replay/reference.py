"""The quality and drift settings, with a reference from wherever it was
asked for: the built-in model, a file, or a range of the streams' history
(a replay of that range cut into windows, so a rule in standard deviations
has the spread of real windows)."""

from __future__ import annotations

import logging

import numpy as np

from nnmon.processors.core.drift import BINS, DriftReference
from nnmon.processors.core.quality import Quality
from nnmon.processors.core.reference import Reference
from nnmon.processors.run.config import PipelineConfig
from nnmon.processors.run.runtime import UsageError
from nnmon.processors.shell.data_file import DataFile
from nnmon.processors.shell.drift_log import SOURCES, DriftSettings
from nnmon.processors.shell.drift_runner import DriftReading
from nnmon.processors.shell.drift_setup import (
    builtin_drift_reference,
    builtin_features,
    data_drift_reference,
    drift_settings_with,
    file_drift_reference,
    reference_of,
)
from nnmon.processors.shell.quality_setup import (
    QualityOptions,
    builtin_reference,
    checked,
    file_reference,
    load_rules,
)
from nnmon.processors.shell.windows_log import QualitySettings, columns, windows_for
from nnmon.streams.read.merge import Record
from nnmon.streams.read.offsets import BadOffset, parse_start


async def quality_settings(config: PipelineConfig, options: QualityOptions) -> QualitySettings:
    options.check()
    rules = load_rules(options.rules_file)  # before the reference: a bad file fails fast
    if options.reference_file is not None:
        reference = file_reference(options.reference_file)
    elif options.reference_from is not None:
        reference = await history_reference(config, options)
    else:
        reference = builtin_reference(config.checkpoint_path("builtin-reference"), options.model)
    return QualitySettings(options.window_s, options.lateness_s, checked(rules, reference), reference)


async def history_reference(config: PipelineConfig, options: QualityOptions) -> Reference:
    from nnmon.processors.replay.history import replay

    assert options.reference_from is not None
    try:
        start = parse_start(options.reference_from)
    except BadOffset as error:
        raise UsageError(f"--reference-from: {error}") from None
    result = await replay(config, start, options.reference_to)
    rows = result.rows
    where = f"{config.names.y_true} from {options.reference_from}" + (
        "" if options.reference_to is None else f" to offset {options.reference_to}")
    if not len(rows):
        raise UsageError(f"the reference range ({where}) has no joined rows")
    windows = windows_for(options.window_s, options.lateness_s, Quality)
    windows.add(*columns(rows))
    closed = windows.flush()
    return Reference.of_windows(f"the history of {where}", [w.value for w in closed], timed=True)


async def drift_settings(config: PipelineConfig, options: QualityOptions,
                         data: DataFile | None = None) -> DriftSettings:
    """Drift's settings, with a reference from wherever it was asked for:
    a file, a range of history, the data file features publishes (`data`),
    or the built-in data set."""
    options.check()
    rules = load_rules(options.rules_file)  # before the reference: a bad file fails fast
    # The built-in reference (cached) names its features itself: no data set
    # to load, which takes importing scikit-learn (2 s of CPU at each start).
    features = builtin_features if data is None else lambda: data.dataset.feature_names
    if options.reference_file is not None:
        reference = file_drift_reference(options.reference_file, features())
    elif options.reference_from is not None:
        reference = await history_drift_reference(config, options, features())
    elif data is not None:
        reference = data_drift_reference(data)
    else:
        reference = builtin_drift_reference(config.checkpoint_path("builtin-drift-reference"), options.model)
    return drift_settings_with(options, rules, reference)


async def history_drift_reference(config: PipelineConfig, options: QualityOptions,
                                  features: tuple[str, ...]) -> DriftReference:
    """The features, predictions and truths of a range of history (from a
    point of y_true, the other streams from its time; to a y_true offset,
    the others to its time), cut in windows of prediction time."""
    from nnmon.processors.replay.drift import read_through

    assert options.reference_from is not None
    try:
        start = parse_start(options.reference_from)
    except BadOffset as error:
        raise UsageError(f"--reference-from: {error}") from None
    reading = DriftReading(config.names, features, SOURCES, logging.getLogger("nnmon.reference"))
    taken: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {source: [] for source in SOURCES}

    def collect(records: list[Record]) -> None:
        for source, batch in reading.take(records).items():
            taken[source].append(batch)

    await read_through(config, reading, start, collect, options.reference_to)
    where = f"{config.names.y_true} from {options.reference_from}" + (
        "" if options.reference_to is None else f" to offset {options.reference_to}")
    if not taken["features"]:
        raise UsageError(f"the reference range ({where}) has no features events")
    window_ms = max(1, round(options.window_s * 1000))
    values: dict[str, np.ndarray] = {}
    chunks: dict[int, dict[str, np.ndarray]] = {}
    for source, batches in taken.items():
        if not batches:
            continue
        times = np.concatenate([t for t, _ in batches])
        matrix = np.concatenate([m for _, m in batches])
        if source != "features" and times.size < 2 * BINS:
            continue  # too few truths (or predictions) yet to place bins: their drift is not measured
        names = features if source == "features" else (source,)
        starts = times - times % window_ms
        for j, name in enumerate(names):
            values[name] = matrix[:, j]
            for window in np.unique(starts).tolist():
                chunks.setdefault(window, {})[name] = matrix[starts == window, j]
    return reference_of(f"the history of {where}", values, features,
                        [chunks[window] for window in sorted(chunks)])
