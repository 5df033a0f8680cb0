"""The import rules of ARCHITECTURE.md hold: import-linter's contracts (in
pyproject.toml) are kept, and rstream's internals are used in one module."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

from nnmon.streams.client import rstream_private
from tests.linked_tree import linked_package

ROOT = Path(__file__).resolve().parents[2]
PRIVATE_MODULE = ROOT / "streams" / "client" / "rstream_private.py"


def test_import_contracts_are_kept(tmp_path: Path) -> None:
    # import-linter does not run the editable install's import hook either
    tree = linked_package(tmp_path)
    command = [str(Path(sys.executable).with_name("lint-imports")), "--no-cache",
               "--config", str(ROOT / "pyproject.toml")]
    done = subprocess.run(command, cwd=tree, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(tree)})
    assert done.returncode == 0, done.stdout + done.stderr
    assert " broken" in done.stdout and "0 broken" in done.stdout, done.stdout


def private_uses(source: str) -> list[tuple[int, str]]:
    """Where `source` names one of rstream's internals that nnmon uses: as an
    attribute, or imported from an rstream module."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in rstream_private.PRIVATE_NAMES:
            found.append((node.lineno, node.attr))
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and \
                node.name in rstream_private.PRIVATE_NAMES:  # an override
            found.append((node.lineno, node.name))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rstream"):
            found += [(node.lineno, alias.name) for alias in node.names
                      if alias.name in rstream_private.PRIVATE_NAMES or alias.name.startswith("_")]
    return found


def test_rstream_internals_are_used_in_one_module_only() -> None:
    used = {str(path.relative_to(ROOT)): uses
            for room in ("monitor", "streams", "processors") for path in sorted((ROOT / room).rglob("*.py"))
            if path != PRIVATE_MODULE and (uses := private_uses(path.read_text()))}
    assert used == {}


def test_the_check_finds_an_internal_where_it_is() -> None:
    # Not vacuous: the module that holds them is found to use every one.
    names = {name for _, name in private_uses(PRIVATE_MODULE.read_text())}
    assert names == rstream_private.PRIVATE_NAMES
    source = ("client._conn.read_frame = f\n"
              "from rstream.consumer import _Subscriber\n"
              "async def _on_deliver(): ...\n")
    assert sorted(private_uses(source)) == [(1, "_conn"), (1, "read_frame"), (2, "_Subscriber"),
                                            (3, "_on_deliver")]


def test_an_rstream_it_was_not_written_for_fails_at_import_with_one_clear_line() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import rstream; rstream.__version__ = '1.2.0'; "
                               "import nnmon.streams.client.rstream_private"],
        capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "ImportError: nnmon needs rstream 1.1.x" in done.stderr
    assert "found 1.2.0" in done.stderr


def test_installed_under_the_nnmon_namespace_only(tmp_path: Path) -> None:
    # From a folder other than the repository's, whose own folders would be importable.
    check = ("import importlib.util, nnmon, nnmon.streams.events.codec, nnmon.processors.cli.app; "
             "from nnmon import Monitor, SyncMonitor; "
             "print([importlib.util.find_spec(name) is None "
             "for name in ('monitor', 'streams', 'processors')])")
    done = subprocess.run([sys.executable, "-c", check], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[True, True, True]"
