"""The code passes its linter (ruff) and type checker (mypy --strict)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.linked_tree import linked_package

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def test_ruff_finds_nothing() -> None:
    rooms = ["monitor", "streams", "processors", "tests", "scripts"]
    done = subprocess.run([str(BIN / "ruff"), "check", *rooms], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_strict_finds_nothing(tmp_path: Path) -> None:
    linked_package(tmp_path)  # mypy does not run the editable install's import hook
    done = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
                           "--cache-dir", str(ROOT / ".mypy_cache"), "-p", "nnmon"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Success: no issues found in" in done.stdout
