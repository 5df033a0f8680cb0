"""The quality settings, with a reference from wherever it was asked for:
the built-in model, a file, or a range of the streams' history (a replay of
that range cut into windows, so a rule in standard deviations has the
spread of real windows)."""

from __future__ import annotations

from nnmon.processors.core.quality import Quality
from nnmon.processors.core.reference import Reference
from nnmon.processors.run.config import PipelineConfig
from nnmon.processors.run.runtime import UsageError
from nnmon.processors.shell.quality_setup import (
    QualityOptions,
    builtin_reference,
    checked,
    file_reference,
    load_rules,
)
from nnmon.processors.shell.windows_log import QualitySettings, columns, windows_for
from nnmon.streams.read.offsets import BadOffset, parse_start


async def quality_settings(config: PipelineConfig, options: QualityOptions) -> QualitySettings:
    options.check()
    rules = load_rules(options.rules_file)  # before the reference: a bad file fails fast
    if options.reference_file is not None:
        reference = file_reference(options.reference_file)
    elif options.reference_from is not None:
        reference = await history_reference(config, options)
    else:
        reference = builtin_reference(config.checkpoint_path("builtin-reference"))
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
