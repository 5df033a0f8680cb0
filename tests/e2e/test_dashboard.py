"""`nnmon dashboard` against a real pipeline: the JSON, /metrics, and the page
in a real headless Chromium, all checked against the CSV."""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from nnmon.processors.run.config import PipelineConfig
from tests.browser import chromium
from tests.streamtools import NNMON, free_port, nnmon_env, run_nnmon, wait_until


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return bytes(response.read())


def answers(url: str) -> bool:
    try:
        get(url)
        return True
    except OSError:
        return False


@contextmanager
def serving(command: list[str], config: PipelineConfig, port: int) -> Iterator[str]:
    """Run `command` (which serves the dashboard on `port`) until the block ends."""
    process = subprocess.Popen(command, env=nnmon_env(config), stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        asyncio.run(wait_until(lambda: answers(base + "/api/summary") or process.poll() is not None,
                               60, "the dashboard"))
        assert process.poll() is None, process.communicate()[1]
        yield base
    finally:
        process.terminate()
        process.wait(30)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_summary_metrics_and_page_match_the_csv(config: PipelineConfig, tmp_path: Path) -> None:
    assert run_nnmon(config, "up", "--count", "60", "--interval", "0", "--every", "0.5").returncode == 0
    errors = pd.read_csv(config.csv_path)["absolute_error"]
    mae, rmse = errors.mean(), math.sqrt((errors**2).mean())
    port = free_port()
    with serving([NNMON, "dashboard", "--port", str(port)], config, port) as base:
        summary = json.loads(get(base + "/api/summary"))
        assert summary["rows"] == 60
        assert summary["mae"] == pytest.approx(mae, rel=1e-12)
        assert summary["rmse"] == pytest.approx(rmse, rel=1e-12)
        assert summary["rolling"]["mae"] == pytest.approx(errors.tail(100).mean(), rel=1e-12)
        assert [p["error"] for p in summary["recent"]] == errors.tolist()
        assert sum(b["count"] for b in summary["histogram"]["bins"]) == 60
        assert summary["broker"] == {"reachable": True, "error": None}
        assert (summary["pending"], summary["expired"], summary["rejected"]) == (0, 0, 0)
        assert len(summary["lag"]) == 8 and all(entry["lag"] == 0 for entry in summary["lag"])

        metrics = samples(get(base + "/metrics").decode())
        assert metrics[("nnmon_csv_rows", ())] == 60
        assert metrics[("nnmon_absolute_error_count", ())] == 60
        assert metrics[("nnmon_absolute_error_sum", ())] == pytest.approx(errors.sum(), rel=1e-12)
        for processor in ("features", "model", "metric", "plot"):
            assert metrics[("nnmon_events_processed_total", (("processor", processor),))] == 60
        assert metrics[("nnmon_join_expired_total", (("processor", "metric"),))] == 0
        lag = {labels: v for (name, labels), v in metrics.items() if name == "nnmon_consumer_lag"}
        assert len(lag) == 8 and set(lag.values()) == {0}

        with chromium() as browser:
            browser.get(base + "/")
            body = browser.find_element(By.TAG_NAME, "body")
            WebDriverWait(browser, 30).until(lambda _: body.get_attribute("data-loaded") == "true")

            def shown(element_id: str) -> tuple[str, str]:
                element = browser.find_element(By.ID, element_id)
                return element.text, element.get_attribute("data-value") or ""

            assert shown("rows") == ("60", "60")
            assert shown("mae")[0] == f"{mae:.3f}" and float(shown("mae")[1]) == pytest.approx(mae, rel=1e-12)
            assert shown("rmse")[0] == f"{rmse:.3f}"
            assert shown("expired") == ("0", "0")
            # Drawn by plotly.js: a bar per bin, and the errors over time as three lines.
            bars = browser.find_elements(By.CSS_SELECTOR, "#histogram .barlayer .point")
            assert len(bars) == len(summary["histogram"]["bins"])
            assert len(browser.find_elements(By.CSS_SELECTOR, "#errors .scatterlayer .trace")) == 3
            assert len(browser.find_elements(By.CSS_SELECTOR, "#lag .lag-row")) == 8

            # The page follows the log by itself: 20 more events show up.
            more = run_nnmon(config, "up", "--count", "20", "--interval", "0", "--every", "0.5")
            assert more.returncode == 0
            WebDriverWait(browser, 30).until(lambda _: body.get_attribute("data-rows") == "80")
            errors = pd.read_csv(config.csv_path)["absolute_error"]
            assert len(errors) == 80 and shown("mae")[0] == f"{errors.mean():.3f}"

            screenshots = Path(os.environ.get("NNMON_SCREENSHOTS", tmp_path))
            screenshots.mkdir(parents=True, exist_ok=True)
            shot = screenshots / "dashboard.png"
            assert browser.save_screenshot(str(shot))
            assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


def test_up_serves_the_dashboard_while_it_runs(config: PipelineConfig) -> None:
    port = free_port()
    command = [NNMON, "up", "--interval", "0.05", "--dashboard", "--dashboard-port", str(port)]
    with serving(command, config, port) as base:
        asyncio.run(wait_until(lambda: json.loads(get(base + "/api/summary"))["rows"] > 0, 60, "rows"))
        assert b"nnmon_csv_rows" in get(base + "/metrics")


def test_a_dashboard_that_cannot_reach_the_broker_says_so_and_exits_2(config: PipelineConfig) -> None:
    result = run_nnmon(config, "dashboard", "--port", str(free_port()), "--broker-port", str(free_port()))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_the_page_shows_the_windows_drift_and_alerts_firing(config: PipelineConfig) -> None:
    # 1,500 events 4 ms apart in windows of 0.5 s (about 125 rows each), the
    # truths drifting after 600 and bmi and s5 shifted after 600.
    ran = run_nnmon(config, "up", "--count", "1500", "--interval", "0.004", "--every", "1", "--window", "0.5",
                    "--allowed-lateness", "0.5", "--concept-drift-after", "600",
                    "--covariate-drift-after", "600")
    assert ran.returncode == 0, ran.stderr
    windows = pd.read_csv(config.windows_path)
    drift_csv = pd.read_csv(config.drift_path)
    port = free_port()
    with serving([NNMON, "dashboard", "--port", str(port)], config, port) as base:
        summary = json.loads(get(base + "/api/summary"))
        quality, drift = summary["quality"], summary["drift"]
        # (no_rows may fire too, if a loaded machine held features back for a whole window)
        assert {"mae_above_reference", "rmse_above_reference"} <= set(quality["firing"])
        assert {"feature_drift[bmi]", "feature_drift[s5]"} <= set(drift["firing"])
        assert [w["window_start"] for w in quality["recent"]] == windows["window_start"].tolist()[-120:]
        last_features = drift["recent"]["features"][-1]
        in_csv = drift_csv[drift_csv["window_start"] == last_features["window_start"]].set_index("column")
        assert sorted(last_features["columns"]) == sorted(set(in_csv.index) - {"y_pred", "y_true"})
        assert last_features["columns"]["bmi"]["drifted"] is True
        metrics = samples(get(base + "/metrics").decode())
        assert metrics[("nnmon_alert_firing", (("rule", "mae_above_reference"),))] == 1
        assert metrics[("nnmon_alert_firing", (("rule", "no_rows"),))] == 0
        assert metrics[("nnmon_alert_firing", (("rule", "feature_drift[bmi]"),))] == 1
        assert metrics[("nnmon_window_mae", ())] == windows["mae"].iloc[-1]
        assert metrics[("nnmon_window_rows", ())] == windows["rows"].iloc[-1]
        for column in ("bmi", "age"):
            assert metrics[("nnmon_drift_psi", (("column", column),))] == in_csv.loc[column, "psi"]
            assert metrics[("nnmon_drift_ks", (("column", column),))] == in_csv.loc[column, "ks"]
        assert metrics[("nnmon_drift_drifted", (("column", "bmi"),))] == 1
        page = get(base + "/").decode()
        assert '<script src="/static/plotly.min.js">' in page and "https://" not in page  # no CDN
        assert get(base + "/static/plotly.min.js").startswith(b"/**\n* plotly.js")

        with chromium() as browser:
            browser.get(base + "/")
            body = browser.find_element(By.TAG_NAME, "body")
            WebDriverWait(browser, 30).until(lambda _: body.get_attribute("data-loaded") == "true")
            assert body.get_attribute("data-firing") == ",".join(quality["firing"] + drift["firing"])
            chart = browser.find_element(By.ID, "windows-chart")
            assert chart.get_attribute("data-windows") == str(len(quality["recent"]))
            # Drawn by plotly: MAE, RMSE, the open window, the references and the two thresholds.
            traces = browser.find_elements(By.CSS_SELECTOR, "#windows-chart .scatterlayer .trace")
            assert len(traces) == 7
            firing = browser.find_elements(By.CSS_SELECTOR, "#alerts-firing li")
            assert [li.get_attribute("data-rule") for li in firing] == quality["firing"] + drift["firing"]
            assert len(browser.find_elements(By.CSS_SELECTOR, "#alerts-history .alert-row.firing")) >= 4
            shown = {tr.get_attribute("data-figure"): tr.find_elements(By.TAG_NAME, "td")[1].text
                     for tr in browser.find_elements(By.CSS_SELECTOR, "#open-window tbody tr")}
            assert shown["rows"] == str(quality["open"][-1]["rows"])

            # The drift panel: a PSI line per column (10 features, y_pred, y_true) and the threshold.
            columns = [*last_features["columns"], "y_pred", "y_true"]
            drift_chart = browser.find_element(By.ID, "drift-chart")
            assert drift_chart.get_attribute("data-columns") == ",".join(columns)
            assert drift_chart.get_attribute("data-windows") == str(len(drift["recent"]["features"]))
            assert float(drift_chart.get_attribute("data-threshold")) == 0.2
            assert len(browser.find_elements(By.CSS_SELECTOR, "#drift-chart .scatterlayer .trace")) == 13
            rows = {tr.get_attribute("data-column"): tr
                    for tr in browser.find_elements(By.CSS_SELECTOR, "#drift-columns .drift-row")}
            assert list(rows) == columns
            for column in last_features["columns"]:  # the features' last window, as drift.csv has it
                row, drifted = rows[column], in_csv.loc[column, "drifted"]  # NaN: too few rows to judge
                assert float(row.get_attribute("data-psi")) == in_csv.loc[column, "psi"]
                assert row.get_attribute("data-drifted") == ("" if pd.isna(drifted) else str(drifted).lower())
                marked = "drifted" in row.get_attribute("class").split()
                assert marked == (not pd.isna(drifted) and bool(drifted))

    status = run_nnmon(config, "status")
    assert status.returncode == 0, status.stderr
    assert "DRIFT windows of 0.5s" in status.stdout and "drifted: " in status.stdout
    assert "feature_drift" in status.stdout.split("DRIFT ALERT FIRING")[1]
    assert run_nnmon(config, "status", "--fail-on-alert").returncode == 1
