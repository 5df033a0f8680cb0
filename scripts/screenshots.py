"""The README's pictures, from a real run: see scripts/screenshots."""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nnmon.streams.client.connection import open_consumer  # noqa: E402
from nnmon.streams.settings import BrokerSettings, StreamNames  # noqa: E402
from tests.browser import chromium  # noqa: E402
from tests.streamtools import free_port  # noqa: E402

NNMON = str(Path(sys.executable).with_name("nnmon"))


def wait_for(url: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            urllib.request.urlopen(url, timeout=5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"screenshots: {url} did not answer within {timeout_s}s") from None
            time.sleep(0.2)


async def delete_streams(names: StreamNames) -> None:
    async with open_consumer(BrokerSettings(), "nnmon-screenshots") as consumer:
        for stream in names.all() + names.derived():
            await consumer.delete_stream(stream, missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--out", type=Path, default=ROOT / "scripts" / "pictures")
    options = parser.parse_args()
    names = StreamNames(f"screenshots-{uuid.uuid4().hex[:8]}-")
    with tempfile.TemporaryDirectory(prefix="nnmon-screenshots-") as logs:
        env = {"NNMON_STREAM_PREFIX": names.prefix, "NNMON_LOGS_DIR": logs, "PATH": "/usr/bin:/bin"}
        try:
            # Spread over ~15 s in windows of 1 s (200 rows each), bmi and s5
            # shifted after a third, the truths drifting halfway: the charts
            # of windows show the alerts both drifts set off.
            subprocess.run([NNMON, "up", "--count", str(options.events), "--interval", "0.005",
                            "--every", "1", "--window", "1", "--allowed-lateness", "0.5",
                            "--covariate-drift-after", str(options.events // 3),
                            "--concept-drift-after", str(options.events // 2)], env=env, check=True)
            port = free_port()
            dashboard = subprocess.Popen([NNMON, "dashboard", "--port", str(port)], env=env)
            try:
                base = f"http://127.0.0.1:{port}/"
                wait_for(base + "api/summary")
                with chromium(1280, 2150) as browser:
                    browser.get(base)
                    body = browser.find_element(By.TAG_NAME, "body")
                    WebDriverWait(browser, 30).until(lambda _: body.get_attribute("data-loaded") == "true")
                    WebDriverWait(browser, 30).until(lambda _: body.get_attribute("data-firing"))
                    options.out.mkdir(parents=True, exist_ok=True)
                    browser.save_screenshot(str(options.out / "dashboard.png"))
            finally:
                dashboard.terminate()
                dashboard.wait(30)
            shutil.copyfile(Path(logs) / "error_distribution.png", options.out / "error_distribution.png")
        finally:
            asyncio.run(delete_streams(names))
    print(f"screenshots: wrote {options.out / 'dashboard.png'} and {options.out / 'error_distribution.png'}")


if __name__ == "__main__":
    main()
