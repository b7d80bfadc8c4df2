"""translations/en.json is strings.json with its references resolved."""

from __future__ import annotations

from pathlib import Path
import subprocess
import sys

ROOT = Path(__file__).parent.parent


def test_english_translation_is_current() -> None:
    """Run `python scripts/translations.py` after editing strings.json."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "translations.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout
