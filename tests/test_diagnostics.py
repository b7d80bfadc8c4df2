"""Diagnostics: useful, and without credentials."""

from __future__ import annotations

from pathlib import Path

from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion
from syrupy.filters import props

from custom_components.s3_glacier.const import DOMAIN

from .conftest import ACCESS_KEY_ID, SECRET_ACCESS_KEY


@pytest.mark.freeze_time("2026-11-21 12:00:00+00:00")
async def test_diagnostics(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    init_integration: MockConfigEntry,
    tmp_path: Path,
    snapshot: SnapshotAssertion,
) -> None:
    """Catalog summary, last reconcile and pending restores; keys redacted."""
    hass.config.allowlist_external_dirs = {str(tmp_path.resolve())}
    (tmp_path / "a.bin").write_bytes(b"\1" * 4096)
    await hass.services.async_call(
        DOMAIN,
        "archive",
        {"path": str(tmp_path / "a.bin"), "storage_class": "GLACIER"},
        blocking=True,
    )
    await hass.services.async_call(DOMAIN, "restore", {"key": "ha/a.bin"}, blocking=True)
    result = await get_diagnostics_for_config_entry(hass, hass_client, init_integration)
    text = str(result)
    assert ACCESS_KEY_ID not in text
    assert SECRET_ACCESS_KEY not in text
    assert result["catalog"]["objects"] == 1
    assert [p["key"] for p in result["pending_restores"]] == ["ha/a.bin"]
    assert result == snapshot(exclude=props("at"))
