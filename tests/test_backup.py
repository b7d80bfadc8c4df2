"""Backups copy .storage while Home Assistant runs: the catalog file holds still."""

from __future__ import annotations

from pathlib import Path

from homeassistant.components.backup.const import DATA_MANAGER
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.s3_glacier.backup import async_post_backup, async_pre_backup
from custom_components.s3_glacier.const import CONF_PREFIX, DOMAIN

from .conftest import BUCKET, BUCKET_DATA, REGION


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


async def test_a_failing_catalog_does_not_fail_the_backup(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Home Assistant's backup pre- and post-hooks complete when a catalog cannot checkpoint.

    The hooks run through the backup manager, as a real backup runs them; a second
    entry's catalog is still checkpointed.
    """
    other = MockConfigEntry(
        domain=DOMAIN,
        title=f"{BUCKET}/other",
        data={**BUCKET_DATA, CONF_PREFIX: "other"},
        unique_id=f"{REGION}|{BUCKET}|other",
    )
    other.add_to_hass(hass)
    assert await hass.config_entries.async_setup(other.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert await async_setup_component(hass, "backup", {})
    await hass.async_block_till_done()
    manager = hass.data[DATA_MANAGER]
    assert DOMAIN in manager.platforms

    # The first entry's catalog fails as a broken file would: every use raises CatalogError.
    await hass.async_add_executor_job(init_integration.runtime_data.catalog.close)
    healthy = other.runtime_data.catalog

    def autocheckpoint() -> int:
        with healthy._read() as conn:
            return int(conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0])

    await manager.async_pre_backup_actions()
    assert autocheckpoint() == 0
    await manager.async_post_backup_actions()
    assert autocheckpoint() == 1000
    assert f"Could not prepare the catalog of {BUCKET}/ha for the backup" in caplog.text
    assert f"Could not resume the catalog of {BUCKET}/ha for the backup" in caplog.text
