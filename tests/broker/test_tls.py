"""TLS to the stream port, against the local broker's self-signed certificate
(scripts/broker makes it and enables the TLS listener on 5551)."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from nnmon.processors.run.config import PipelineConfig
from tests.streamtools import run_nnmon

CA_FILE = Path(os.environ.get("NNMON_TEST_TLS_CA_FILE", "/etc/rabbitmq/nnmon-tls/ca.pem"))
TLS_PORT = os.environ.get("NNMON_TEST_TLS_PORT", "5551")


def test_the_pipeline_runs_over_tls(config: PipelineConfig) -> None:
    assert CA_FILE.is_file(), f"{CA_FILE} is missing: run scripts/broker"
    done = run_nnmon(config, "up", "--count", "20", "--interval", "0", "--timeout", "90",
                 "--port", TLS_PORT, "--tls-ca-file", str(CA_FILE))
    assert done.returncode == 0, done.stderr
    assert len(pd.read_csv(config.csv_path)) == 20


def test_a_certificate_nobody_vouched_for_is_refused(config: PipelineConfig) -> None:
    done = run_nnmon(config, "model", "--tls", "--port", TLS_PORT)  # the system's CAs only
    assert done.returncode == 2
    assert "TLS" in done.stderr and "certificate" in done.stderr and "Traceback" not in done.stderr


def test_tls_against_the_plain_port_says_so(config: PipelineConfig) -> None:
    done = run_nnmon(config, "model", "--tls-ca-file", str(CA_FILE), "--port", str(config.broker.port))
    assert done.returncode == 2 and "TLS port" in done.stderr
