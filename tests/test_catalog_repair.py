"""A damaged catalog is set aside and rebuilt; a removed vault's catalog is reported.

Against moto: the bucket's listing and the vault's inventory job are real requests.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
import json
from pathlib import Path
import random
from typing import Any

import boto3
from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.s3_glacier import catalog_path
from custom_components.s3_glacier.archive.catalog import Catalog
from custom_components.s3_glacier.archive.models import ArchivedObject, StorageClass
from custom_components.s3_glacier.archive.summary import META_RECONCILED_AT
from custom_components.s3_glacier.archive.vault import build_description
from custom_components.s3_glacier.const import (
    CONF_ACCESS_KEY_ID,
    CONF_REGION,
    CONF_SECRET_ACCESS_KEY,
    CONF_TARGET,
    CONF_VAULT_NAME,
    DOMAIN,
    META_INVENTORY_JOB,
)
from custom_components.s3_glacier.repairs import issue_id

from .conftest import ACCESS_KEY_ID, BUCKET, REGION, SECRET_ACCESS_KEY

VAULT = "demo-vault"
OBJECTS = "sensor.demo_archive_ha_archived_objects"
VAULT_OBJECTS = "sensor.demo_vault_archived_objects"
WHEN = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


@pytest.fixture
def vault_entry() -> MockConfigEntry:
    return MockConfigEntry(
        domain=DOMAIN,
        title=VAULT,
        data={
            CONF_ACCESS_KEY_ID: ACCESS_KEY_ID,
            CONF_SECRET_ACCESS_KEY: SECRET_ACCESS_KEY,
            CONF_REGION: REGION,
            CONF_VAULT_NAME: VAULT,
            CONF_TARGET: "vault",
        },
        unique_id=f"{REGION}|vault|{VAULT}",
    )


@pytest.fixture
def glacier(aws: None) -> Any:
    client = boto3.client("glacier", region_name=REGION)
    client.create_vault(vaultName=VAULT)
    return client


def _old_catalog(path: Path, keys: list[str], *, reconciled: bool = True) -> None:
    """A catalog as a running entry leaves it: rows, and a recent reconcile."""
    with Catalog(path) as catalog:
        catalog.record_many(
            ArchivedObject(
                key=key, size=100, storage_class=StorageClass.GLACIER_IR, last_modified=WHEN
            )
            for key in keys
        )
        if reconciled:
            catalog.set_meta(META_RECONCILED_AT, datetime.now(UTC).isoformat())


def _damage_pages(path: Path) -> bytes:
    """Overwrite 64 KiB in the middle of the file with noise; return the file's bytes."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2 // 4096 * 4096
    data[middle : middle + 65536] = random.Random(7).randbytes(65536)
    path.write_bytes(bytes(data))
    return bytes(data)


def _wipe_header(path: Path) -> bytes:
    data = b"\0" * 100 + path.read_bytes()[100:]
    path.write_bytes(data)
    return data


def _set_aside(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f"{path.name}.damaged-*"))


def _rebuilt_issue(hass: HomeAssistant, entry: MockConfigEntry, kind: str) -> ir.IssueEntry:
    (aside,) = _set_aside(catalog_path(hass, entry))
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id(entry, kind, aside.name))
    assert issue is not None
    return issue


@pytest.mark.parametrize("damage", [_damage_pages, _wipe_header])
async def test_damaged_bucket_catalog_is_rebuilt_from_the_listing(
    hass: HomeAssistant,
    s3: Any,
    mock_config_entry: MockConfigEntry,
    damage: Callable[[Path], bytes],
) -> None:
    """The entry loads, the sensors show the listing, the user learns where the file is."""
    s3.put_object(Bucket=BUCKET, Key="ha/a.bin", Body=b"a" * 1000, StorageClass="GLACIER")
    s3.put_object(Bucket=BUCKET, Key="ha/b.bin", Body=b"b" * 2000, StorageClass="GLACIER_IR")
    mock_config_entry.add_to_hass(hass)
    path = catalog_path(hass, mock_config_entry)
    _old_catalog(path, [f"ha/old-{i:05d}" for i in range(3000)])
    damaged = damage(path)

    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    # The rebuild is the reconcile that setup starts in the background.
    await hass.async_block_till_done(wait_background_tasks=True)

    assert mock_config_entry.state is ConfigEntryState.LOADED
    assert hass.states.get(OBJECTS).state == "2"
    catalog = mock_config_entry.runtime_data.catalog
    assert [o.key for o in catalog.objects()] == ["ha/a.bin", "ha/b.bin"]
    (aside,) = _set_aside(path)
    assert aside.read_bytes() == damaged
    issue = _rebuilt_issue(hass, mock_config_entry, "catalog_rebuilt")
    assert issue.severity is ir.IssueSeverity.WARNING
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["path"] == str(aside)
    assert issue.translation_placeholders["title"] == mock_config_entry.title

    # The issue stays while the file does, and goes once the user deletes it.
    assert await hass.config_entries.async_reload(mock_config_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert _rebuilt_issue(hass, mock_config_entry, "catalog_rebuilt") == issue
    aside.unlink()
    assert await hass.config_entries.async_reload(mock_config_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert not [i for (d, i) in ir.async_get(hass).issues if d == DOMAIN]


async def test_damaged_vault_catalog_starts_an_inventory(
    hass: HomeAssistant,
    glacier: Any,
    vault_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A vault cannot be listed: an inventory job rebuilds its catalog, the old file is kept."""
    archive_id = glacier.upload_archive(
        vaultName=VAULT,
        archiveDescription=build_description("photos.tar", None, WHEN),
        body=b"p" * 300,
    )["archiveId"]
    vault_entry.add_to_hass(hass)
    path = catalog_path(hass, vault_entry)
    _old_catalog(path, [f"archive-{i:05d}" for i in range(3000)])
    damaged = _wipe_header(path)

    assert await hass.config_entries.async_setup(vault_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)

    assert vault_entry.state is ConfigEntryState.LOADED
    (aside,) = _set_aside(path)
    assert aside.read_bytes() == damaged
    issue = _rebuilt_issue(hass, vault_entry, "vault_catalog_rebuilt")
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["path"] == str(aside)
    catalog = vault_entry.runtime_data.catalog
    job = json.loads(catalog.get_meta(META_INVENTORY_JOB) or "{}")
    described = glacier.describe_job(vaultName=VAULT, jobId=job["job_id"])
    assert described["Action"] == "InventoryRetrieval"
    assert hass.states.get(VAULT_OBJECTS).state == "0"

    freezer.tick(timedelta(minutes=16))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert [o.key for o in catalog.objects()] == [archive_id]
    assert hass.states.get(VAULT_OBJECTS).state == "1"


async def test_damage_met_while_loaded_reloads_and_rebuilds(
    hass: HomeAssistant, s3: Any, mock_config_entry: MockConfigEntry
) -> None:
    """A query that meets damage fails; the entry then reloads and rebuilds the catalog.

    The catalog is larger than SQLite's page cache, so the refresh reads the damaged
    pages from the file rather than from memory.
    """
    s3.put_object(Bucket=BUCKET, Key="ha/a.bin", Body=b"a" * 1000)
    mock_config_entry.add_to_hass(hass)
    path = catalog_path(hass, mock_config_entry)
    _old_catalog(path, [f"ha/old-{i:06d}" for i in range(40_000)])
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert hass.states.get(OBJECTS).state == "40000"
    damaged = _damage_pages(path)

    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(DOMAIN, "refresh", {}, blocking=True, return_response=True)
    assert err.value.translation_key == "catalog_error"
    await hass.async_block_till_done(wait_background_tasks=True)

    assert mock_config_entry.state is ConfigEntryState.LOADED
    assert hass.states.get(OBJECTS).state == "1"
    (aside,) = _set_aside(path)
    assert aside.read_bytes() == damaged
    _rebuilt_issue(hass, mock_config_entry, "catalog_rebuilt")


async def test_removed_vault_keeps_its_catalog_with_a_repair_issue(
    hass: HomeAssistant, glacier: Any, vault_entry: MockConfigEntry
) -> None:
    """The kept file is reported by an issue that outlives the entry and restarts."""
    vault_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(vault_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    path = catalog_path(hass, vault_entry)

    assert await hass.config_entries.async_remove(vault_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)

    kept = path.with_name(path.name.replace(f"{DOMAIN}.", f"{DOMAIN}.removed.", 1))
    assert kept.is_file()
    issues = [i for (d, i) in ir.async_get(hass).issues if d == DOMAIN]
    assert len(issues) == 1
    assert vault_entry.entry_id not in issues[0]
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issues[0])
    assert issue is not None
    assert issue.translation_key == "catalog_kept"
    assert issue.severity is ir.IssueSeverity.WARNING
    assert issue.is_persistent
    assert not issue.is_fixable
    assert issue.translation_placeholders == {"title": VAULT, "path": str(kept)}


@pytest.mark.usefixtures("aws")
async def test_damaged_catalog_of_an_earlier_location_is_kept(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> None:
    """A reconfigured bucket entry drops its old catalogs, but never a damaged one kept
    for manual recovery (its repair issue told the user it was kept)."""
    mock_config_entry.add_to_hass(hass)
    storage = catalog_path(hass, mock_config_entry).parent
    old = storage / f"{DOMAIN}.{mock_config_entry.entry_id}.0123456789ab.sqlite3"
    _old_catalog(old, ["ha/a.bin"])
    damaged = old.with_name(f"{old.name}.damaged-20261101T000000Z")
    old.rename(damaged)
    stale = storage / f"{DOMAIN}.{mock_config_entry.entry_id}.ba9876543210.sqlite3"
    _old_catalog(stale, ["ha/b.bin"])

    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()

    assert damaged.exists()
    assert not stale.exists()
