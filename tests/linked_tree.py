"""The package as installed, as a tree of links: for the tools that do not
run the editable install's import hook (mypy, import-linter), which maps
`nnmon` to monitor/ and `nnmon.streams`, `nnmon.processors` to their own
folders."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def linked_package(folder: Path) -> Path:
    """`folder`/nnmon: monitor/'s files, and links to streams/ and processors/; `folder` returned."""
    package = folder / "nnmon"
    package.mkdir()
    for module in sorted((ROOT / "monitor").iterdir()):
        if module.suffix in (".py", ".typed"):
            (package / module.name).symlink_to(module)
    for room in ("streams", "processors"):
        (package / room).symlink_to(ROOT / room, target_is_directory=True)
    return folder
