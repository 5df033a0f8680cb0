"""Log lines for machines: `--log-format json` gives one JSON object per line,
errors included."""

from __future__ import annotations

import json

from nnmon.processors.run.config import PipelineConfig
from tests.streamtools import free_port, run_nnmon


def json_lines(text: str) -> list[dict[str, str]]:
    return [json.loads(line) for line in text.splitlines()]


def test_every_log_line_is_a_json_object(config: PipelineConfig) -> None:
    result = run_nnmon(config, "features", "--count", "3", "--interval", "0", "--log-format", "json")
    assert result.returncode == 0, result.stderr
    lines = json_lines(result.stderr)
    assert lines and all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    assert lines[-1]["message"] == "stopped after publishing 3 events"
    assert lines[-1]["level"] == "INFO" and lines[-1]["logger"] == "nnmon.features"


def test_an_error_is_one_json_line_too(config: PipelineConfig) -> None:
    result = run_nnmon(config, "model", "--port", str(free_port()), "--log-format", "json")
    assert result.returncode == 2
    [line] = json_lines(result.stderr)
    assert line["level"] == "ERROR" and "no RabbitMQ stream port answers" in line["message"]
