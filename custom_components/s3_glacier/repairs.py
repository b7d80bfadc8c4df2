"""Repair issues: what a user must fix, shown in Settings → Repairs.

Every issue belongs to one config entry: its ID is ``<kind>_<entry_id>`` (plus a
detail, such as a key, where one entry can have several of a kind), its translation
key is ``kind`` (under ``issues`` in strings.json) and ``{title}`` is always the
entry's title. An issue is deleted as soon as its condition clears.
"""

from __future__ import annotations

import hashlib

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir

from .const import DOMAIN


def issue_id(entry: ConfigEntry, kind: str, detail: str = "") -> str:
    """The ID of an entry's issue of ``kind`` (and ``detail``, hashed: keys are long)."""
    base = f"{kind}_{entry.entry_id}"
    if not detail:
        return base
    return f"{base}_{hashlib.sha256(detail.encode()).hexdigest()[:12]}"


@callback
def async_raise(
    hass: HomeAssistant,
    entry: ConfigEntry,
    kind: str,
    *,
    detail: str = "",
    severity: ir.IssueSeverity = ir.IssueSeverity.ERROR,
    **placeholders: str,
) -> None:
    """Create (or update) the entry's issue of ``kind``."""
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id(entry, kind, detail),
        is_fixable=False,
        severity=severity,
        translation_key=kind,
        translation_placeholders={"title": entry.title, **placeholders},
    )


@callback
def async_clear(hass: HomeAssistant, entry: ConfigEntry, kind: str, detail: str = "") -> None:
    """Delete the entry's issue of ``kind`` (nothing happens when there is none)."""
    ir.async_delete_issue(hass, DOMAIN, issue_id(entry, kind, detail))


@callback
def async_clear_entry(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """Delete every issue of the entry (it was removed)."""
    registry = ir.async_get(hass)
    for domain, key in list(registry.issues):
        if domain == DOMAIN and entry.entry_id in key:
            ir.async_delete_issue(hass, DOMAIN, key)
