"""A full disk, and options that name something that is not there: one clear
line, status 2, nothing half-written left behind."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path

import joblib
import pytest
from sklearn.linear_model import LinearRegression

from nnmon.processors.pipeline.features import run_features
from nnmon.processors.run.config import PipelineConfig
from tests.streamtools import NNMON, Pipeline, run_nnmon


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 96 KiB file system: room for a few hundred rows."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def test_a_full_disk_stops_metric_with_one_line_and_no_partial_row(
    config: PipelineConfig, tiny_disk: Path
) -> None:
    logs = tiny_disk / "logs"
    on_tiny_disk = PipelineConfig(config.broker, config.names, config.retention, logs)
    asyncio.run(run_features(on_tiny_disk, asyncio.Event(), interval=0, count=3000, seed=0))
    pipeline = Pipeline(on_tiny_disk)  # its processes.log: a few lines, beside logs/
    pipeline.start("model")
    metric = subprocess.run([NNMON, "metric"], env=pipeline.env, capture_output=True, text=True, timeout=120)
    pipeline.stop()
    assert metric.returncode == 2
    lines = metric.stderr.strip().splitlines()
    assert lines[-1].startswith("nnmon: error: cannot use") and "No space left on device" in lines[-1]
    assert "Traceback" not in metric.stderr
    text = (logs / "metric_log.csv").read_text()
    assert text.endswith("\n") and all(len(row.split(",")) == 4 for row in text.splitlines())
    assert not [p for p in logs.rglob("*.tmp")], "a temporary file was left behind"


def test_a_logs_dir_that_is_a_file_is_named(config: PipelineConfig, tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    done = run_nnmon(config, "metric", "--logs-dir", str(not_a_dir))
    assert done.returncode == 2 and str(not_a_dir) in done.stderr and "logs-dir" in done.stderr


def test_a_vhost_that_does_not_exist_is_named(config: PipelineConfig) -> None:
    done = run_nnmon(config, "model", "--vhost", "no-such-vhost")
    assert done.returncode == 2 and "vhost" in done.stderr and "Traceback" not in done.stderr


def test_a_model_expecting_other_features_is_refused(config: PipelineConfig, tmp_path: Path) -> None:
    path = tmp_path / "five.joblib"
    joblib.dump(LinearRegression().fit([[0, 1, 2, 3, 4], [1, 2, 3, 4, 6]], [0, 1]), path)
    done = run_nnmon(config, "model", "--model-path", str(path))
    assert done.returncode == 2
    assert "expects 5 features" in done.stderr and "Traceback" not in done.stderr


def test_the_password_file_is_used_and_never_shown(config: PipelineConfig, tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("n0t-the-password\n")
    done = run_nnmon(config, "model", "--password-file", str(secret))
    assert done.returncode == 2 and "login" in done.stderr and "n0t-the-password" not in done.stderr
