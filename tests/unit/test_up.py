"""`nnmon up`'s row counting and the environment it gives its children."""

from __future__ import annotations

from pathlib import Path

from nnmon.processors.cli.supervisor import environment
from nnmon.processors.run.config import PipelineConfig
from nnmon.processors.watch.csv_tail import RowCounter
from nnmon.streams.settings import BrokerSettings, StreamNames


def test_rows_are_counted_from_what_was_appended(tmp_path: Path) -> None:
    path = tmp_path / "metric_log.csv"
    counter = RowCounter(path)
    assert counter.rows() == 0
    path.write_text("id,y_true,y_pred,absolute_error\na,1,2,1\n")
    assert counter.rows() == 1
    with open(path, "a") as file:
        file.write("b,1,2,1\nc,1,2,1\nd,1")  # the last row is not complete yet
    assert counter.rows() == 3
    path.write_text("id,y_true,y_pred,absolute_error\n")  # cut back, as on a restart
    assert counter.rows() == 0
    path.write_text("id,y_true,y_pred,absolute_error\nb,1,2,1\n")
    assert counter.rows() == 1
    # Cut back and written again past the old length between two counts:
    path.write_text("id,y_true,y_pred,absolute_error\nc,1,2,1\nd,1,2,1\n")
    assert counter.rows() == 2


def test_children_get_every_setting_through_the_environment() -> None:
    config = PipelineConfig(BrokerSettings("h", 1234, "u", "p", "v", tls=True, tls_ca_file=Path("/ca.pem"),
                                           load_balancer=True),
                            StreamNames("x-"), logs_dir=Path("/logs"))
    env = environment(config)
    assert (env["NNMON_HOST"], env["NNMON_PORT"], env["NNMON_USER"], env["NNMON_PASSWORD"]) == \
        ("h", "1234", "u", "p")
    assert (env["NNMON_VHOST"], env["NNMON_STREAM_PREFIX"], env["NNMON_LOGS_DIR"]) == ("v", "x-", "/logs")
    assert (env["NNMON_TLS"], env["NNMON_TLS_CA_FILE"]) == ("true", "/ca.pem")
    assert env["NNMON_LOAD_BALANCER"] == "true"
