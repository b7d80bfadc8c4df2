"""Backups copy .storage while Home Assistant runs: the catalog file holds still."""

from __future__ import annotations

from pathlib import Path

from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.s3_glacier.backup import async_post_backup, async_pre_backup
from custom_components.s3_glacier.const import DOMAIN


async def test_catalog_file_holds_still_during_a_backup(
    hass: HomeAssistant, init_integration: MockConfigEntry, tmp_path: Path
) -> None:
    """After pre-backup the WAL is folded in and the database file no longer changes."""
    hass.config.allowlist_external_dirs = {str(tmp_path.resolve())}
    database = init_integration.runtime_data.catalog.path
    wal = database.with_name(database.name + "-wal")

    async def archive(name: str) -> None:
        (tmp_path / name).write_bytes(name.encode())
        await hass.services.async_call(
            DOMAIN, "archive", {"path": str(tmp_path / name)}, blocking=True
        )

    catalog = init_integration.runtime_data.catalog

    def autocheckpoint() -> int:
        with catalog._read() as conn:
            return int(conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0])

    await archive("before.txt")
    assert wal.stat().st_size > 0
    await async_pre_backup(hass)
    assert wal.stat().st_size == 0
    assert autocheckpoint() == 0
    copied = database.read_bytes()
    for n in range(5):
        await archive(f"during-{n}.txt")  # written to the WAL only
    assert database.read_bytes() == copied
    await async_post_backup(hass)
    assert autocheckpoint() == 1000
    await archive("after.txt")
    assert init_integration.runtime_data.catalog.get("ha/during-4.txt") is not None
