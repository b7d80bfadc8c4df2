"""Write translations/en.json from strings.json, resolving [%key:component::s3_glacier::…%].

Home Assistant resolves these references only for core integrations (at build time);
a custom integration ships en.json as it is, so the references are resolved here.
Usage: python scripts/translations.py [--check]
"""

from __future__ import annotations

import json
from pathlib import Path
import re
import sys
from typing import Any

PACKAGE = Path(__file__).resolve().parent.parent / "custom_components" / "s3_glacier"
REFERENCE = re.compile(r"\[%key:component::s3_glacier::([a-z0-9_:]+)%\]")


def _lookup(strings: dict[str, Any], path: str) -> str:
    node: Any = strings
    for part in path.split("::"):
        node = node[part]
    if not isinstance(node, str):
        raise TypeError(f"reference {path} does not name a string")
    return node


def resolve(strings: dict[str, Any], node: Any = None) -> Any:
    """Return a copy of ``node`` (default: all strings) with references replaced."""
    node = strings if node is None else node
    if isinstance(node, dict):
        return {key: resolve(strings, value) for key, value in node.items()}
    if isinstance(node, str):
        return REFERENCE.sub(lambda m: resolve(strings, _lookup(strings, m[1])), node)
    return node


def main() -> int:
    """Write (or with --check, compare) translations/en.json."""
    strings = json.loads((PACKAGE / "strings.json").read_text(encoding="utf-8"))
    wanted = json.dumps(resolve(strings), indent=2, ensure_ascii=False) + "\n"
    english = PACKAGE / "translations" / "en.json"
    if "--check" in sys.argv:
        if english.read_text(encoding="utf-8") != wanted:
            print("translations/en.json is stale: run scripts/translations.py")  # noqa: T201
            return 1
        return 0
    english.parent.mkdir(exist_ok=True)
    english.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
