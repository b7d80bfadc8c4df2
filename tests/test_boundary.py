"""The engine under archive/ must not import Home Assistant (see ARCHITECTURE.md)."""

from __future__ import annotations

import ast
from pathlib import Path
import subprocess
import sys

ENGINE = Path(__file__).parent.parent / "custom_components" / "s3_glacier" / "archive"


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_engine_files_do_not_import_homeassistant() -> None:
    """No module under archive/ names homeassistant in an import."""
    offenders = {
        str(path.relative_to(ENGINE)): sorted(
            name
            for name in _imported_modules(path)
            if name == "homeassistant" or name.startswith("homeassistant.")
        )
        for path in sorted(ENGINE.rglob("*.py"))
    }
    assert {k: v for k, v in offenders.items() if v} == {}
    assert len(offenders) >= 4  # the scan saw the engine


def test_engine_imports_without_homeassistant() -> None:
    """Importing every engine module in a fresh interpreter loads no homeassistant module."""
    modules = [f"archive.{p.stem}" for p in sorted(ENGINE.glob("*.py")) if p.stem != "__init__"]
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "leaked = sorted(m for m in sys.modules if m.split('.')[0] == 'homeassistant')\n"
        "print(leaked)\n"
        "sys.exit(1 if leaked else 0)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ENGINE.parent,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
