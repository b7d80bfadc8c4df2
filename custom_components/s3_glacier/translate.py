"""Engine errors → translated Home Assistant errors, in one place."""

from __future__ import annotations

from typing import Any

from homeassistant.exceptions import HomeAssistantError

from .archive.errors import ArchiveError
from .const import DOMAIN


def translated[E: HomeAssistantError](
    cls: type[E], err: ArchiveError, translation_key: str | None = None, **placeholders: Any
) -> E:
    """Build ``cls`` with the error's translation key and every placeholder it may use.

    ``{error}`` is the service's error code or the engine's short reason, never a
    secret; the rest come from the caller (``key``, ``path``) and the error itself.
    """
    return cls(
        translation_domain=DOMAIN,
        translation_key=translation_key or err.translation_key,
        translation_placeholders={
            "error": str(err),
            "key": "",
            **{name: str(value) for name, value in placeholders.items()},
            **err.placeholders,
        },
    )
