"""The catalog's life: kept where it is the only record, closed whenever the entry ends.

A vault's catalog holds the only record of its archive IDs (Glacier lists them only
through an inventory job taking hours): removing or reconfiguring the entry keeps it.
A bucket's catalog can be rebuilt by a listing: it goes with the entry or location.
The SQLite connection is closed at stop and at unload, and a setup that fails after
opening the catalog closes it again; a catalog that cannot be opened fails the setup
with a translated message, leaving nothing open.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
import logging
from pathlib import Path
from typing import Any

import boto3
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from moto import settings as moto_settings
from moto.core.authorization import ActionAuthenticatorMixin
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

import custom_components.s3_glacier as integration
from custom_components.s3_glacier import catalog_path
from custom_components.s3_glacier.archive.catalog import Catalog, CatalogError, is_database_file
from custom_components.s3_glacier.archive.models import ArchivedObject, StorageClass
from custom_components.s3_glacier.archive.s3 import S3Target
from custom_components.s3_glacier.archive.vault import VaultTarget
from custom_components.s3_glacier.const import (
    CONF_ACCESS_KEY_ID,
    CONF_BUCKET,
    CONF_PREFIX,
    CONF_REGION,
    CONF_VAULT_NAME,
    DOMAIN,
)

from .conftest import REGION, call_action, write_seeded

WHEN = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
CATALOG_ERROR = "The local catalog of archived objects could not be read or written: "


def _removed_name(path: Path) -> Path:
    return path.with_name(path.name.replace(f"{DOMAIN}.", f"{DOMAIN}.removed.", 1))


def _archive_ids(path: Path) -> list[str | None]:
    """The archive IDs a catalog file holds, read as a user's recovery would."""
    with Catalog(path) as catalog:
        return [obj.archive_id for obj in catalog.objects()]


def _entry_files(hass: HomeAssistant, entry: MockConfigEntry) -> list[str]:
    storage = Path(hass.config.path(".storage"))
    return sorted(p.name for p in storage.glob(f"{DOMAIN}.{entry.entry_id}.*"))


async def _archive(hass: HomeAssistant, allowed: Path, name: str, seed: int) -> str:
    write_seeded(allowed / name, 3000, seed=seed)
    response = await call_action(hass, "archive", path=str(allowed / name))
    archive_id = response["archived"][0]["archive_id"]
    assert archive_id
    return str(archive_id)


# --- a vault's catalog is kept -----------------------------------------------------------


async def test_removed_vault_keeps_its_archive_ids(
    hass: HomeAssistant, loaded_vault: MockConfigEntry, allowed: Path
) -> None:
    """Removing the entry renames the catalog aside; the archive ID is still in it."""
    archive_id = await _archive(hass, allowed, "photos.tar", seed=1)
    path = catalog_path(hass, loaded_vault)

    assert await hass.config_entries.async_remove(loaded_vault.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)

    assert _entry_files(hass, loaded_vault) == []
    kept = _removed_name(path)
    assert await hass.async_add_executor_job(_archive_ids, kept) == [archive_id]


async def test_vault_removed_while_an_upload_records_keeps_the_row(
    hass: HomeAssistant, loaded_vault: MockConfigEntry
) -> None:
    """An upload still running when the entry is removed records its archive ID after
    the catalog was renamed aside: the row is in the kept file once the catalog closes."""
    data = loaded_vault.runtime_data
    catalog = data.catalog
    path = catalog_path(hass, loaded_vault)
    release = data.activity.hold()  # the upload in the executor

    assert await hass.config_entries.async_remove(loaded_vault.entry_id)
    late = ArchivedObject(
        key="late-archive-id",
        size=10,
        storage_class=StorageClass.VAULT,
        last_modified=WHEN,
        archive_id="late-archive-id",
    )
    await hass.async_add_executor_job(catalog.record, late)
    release()
    await hass.async_block_till_done(wait_background_tasks=True)

    with pytest.raises(CatalogError, match="closed"):
        catalog.count()
    assert _entry_files(hass, loaded_vault) == []
    assert await hass.async_add_executor_job(_archive_ids, _removed_name(path)) == [
        "late-archive-id"
    ]


async def test_vault_catalog_closing_during_the_removal_is_kept_whole(
    hass: HomeAssistant,
    loaded_vault: MockConfigEntry,
    allowed: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The removal renames the files it listed while the unloaded catalog closes in
    another thread, and SQLite deletes the WAL and shared memory as it closes: the
    removal still keeps the catalog and tells the user where it is."""
    archive_id = await _archive(hass, allowed, "photos.tar", seed=1)
    catalog = loaded_vault.runtime_data.catalog
    path = catalog_path(hass, loaded_vault)
    # Hold the entry's own close back, so the close below lands between the listing
    # and the renames every time (otherwise a race the removal only sometimes meets).
    release = loaded_vault.runtime_data.activity.hold()
    list_catalogs = integration._entry_catalogs

    def listed_then_closed(hass: HomeAssistant, entry_id: str) -> list[Path]:
        listed = list_catalogs(hass, entry_id)
        assert [p.name for p in listed] == [path.name, f"{path.name}-shm", f"{path.name}-wal"]
        catalog.close()
        return listed

    monkeypatch.setattr(integration, "_entry_catalogs", listed_then_closed)
    assert await hass.config_entries.async_remove(loaded_vault.entry_id)
    release()
    await hass.async_block_till_done(wait_background_tasks=True)

    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    kept = _removed_name(path)
    assert sorted(p.name for p in kept.parent.glob(f"{DOMAIN}.*")) == [kept.name]
    assert await hass.async_add_executor_job(_archive_ids, kept) == [archive_id]
    issues = [i for (d, _), i in ir.async_get(hass).issues.items() if d == DOMAIN]
    assert [(i.translation_key, i.translation_placeholders) for i in issues] == [
        ("catalog_kept", {"title": loaded_vault.title, "path": str(kept)})
    ]


async def test_reconfigured_vault_keeps_its_catalog(
    hass: HomeAssistant, loaded_vault: MockConfigEntry, allowed: Path
) -> None:
    """Another vault starts a new catalog; the first one's is kept, and reconfiguring
    back finds its archive again. Removing the entry then keeps both."""
    archive_id = await _archive(hass, allowed, "photos.tar", seed=1)
    first = catalog_path(hass, loaded_vault)
    boto3.client("glacier", region_name=REGION).create_vault(vaultName="other-vault")

    async def reconfigure(vault: str) -> None:
        result = await loaded_vault.start_reconfigure_flow(hass)
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"],
            {
                CONF_ACCESS_KEY_ID: loaded_vault.data[CONF_ACCESS_KEY_ID],
                CONF_REGION: REGION,
                CONF_VAULT_NAME: vault,
            },
        )
        assert result["reason"] == "reconfigure_successful"
        await hass.async_block_till_done(wait_background_tasks=True)
        assert loaded_vault.state is ConfigEntryState.LOADED

    await reconfigure("other-vault")
    second = catalog_path(hass, loaded_vault)
    assert second != first
    assert (await call_action(hass, "list"))["objects"] == []
    other_id = await _archive(hass, allowed, "music.tar", seed=2)
    assert await hass.async_add_executor_job(_archive_ids, first) == [archive_id]

    await reconfigure("demo-vault")
    listed = await call_action(hass, "list")
    assert [o["archive_id"] for o in listed["objects"]] == [archive_id]

    assert await hass.config_entries.async_remove(loaded_vault.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert _entry_files(hass, loaded_vault) == []
    assert await hass.async_add_executor_job(_archive_ids, _removed_name(first)) == [archive_id]
    assert await hass.async_add_executor_job(_archive_ids, _removed_name(second)) == [other_id]


# --- a bucket's catalog goes with its location ---------------------------------------


async def test_reconfigured_bucket_starts_a_new_catalog(
    hass: HomeAssistant, init_integration: MockConfigEntry, allowed: Path
) -> None:
    """README: a bucket's catalog can be rebuilt by a listing. Another prefix drops the
    old location's catalog; reconfiguring back rebuilds it from the bucket."""
    entry = init_integration
    write_seeded(allowed / "a.bin", 100)
    await call_action(hass, "archive", path=str(allowed / "a.bin"))
    first = catalog_path(hass, entry)

    async def reconfigure(prefix: str) -> None:
        result = await entry.start_reconfigure_flow(hass)
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"],
            {
                CONF_ACCESS_KEY_ID: entry.data[CONF_ACCESS_KEY_ID],
                CONF_REGION: REGION,
                CONF_BUCKET: entry.data[CONF_BUCKET],
                CONF_PREFIX: prefix,
            },
        )
        assert result["reason"] == "reconfigure_successful"
        await hass.async_block_till_done(wait_background_tasks=True)
        assert entry.state is ConfigEntryState.LOADED

    await reconfigure("photos")
    second = catalog_path(hass, entry)
    assert not first.exists()
    assert [name for name in _entry_files(hass, entry) if is_database_file(Path(name))] == [
        second.name
    ]
    assert (await call_action(hass, "list"))["objects"] == []

    await reconfigure("ha")
    assert not second.exists()
    assert [o["key"] for o in (await call_action(hass, "list"))["objects"]] == ["ha/a.bin"]


# --- closed at stop and unload -----------------------------------------------------------


async def _stop(hass: HomeAssistant, _entries: list[MockConfigEntry]) -> None:
    await hass.async_stop(force=True)


async def _unload(hass: HomeAssistant, entries: list[MockConfigEntry]) -> None:
    for entry in entries:
        assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


@pytest.mark.parametrize("end", [_stop, _unload])
async def test_catalogs_are_closed(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    loaded_vault: MockConfigEntry,
    end: Callable[[HomeAssistant, list[MockConfigEntry]], Any],
) -> None:
    """Stopping Home Assistant (which unloads nothing) or unloading closes every
    entry's SQLite connection and folds the WAL back into the catalog file."""
    entries = [init_integration, loaded_vault]
    catalogs = [entry.runtime_data.catalog for entry in entries]
    for catalog in catalogs:
        assert Path(f"{catalog.path}-wal").exists()

    await end(hass, entries)

    for catalog in catalogs:
        with pytest.raises(CatalogError, match="closed"):
            catalog.count()
        assert not Path(f"{catalog.path}-wal").exists()


# --- a setup that fails leaves nothing open ----------------------------------------------


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Any]]:
    """The catalogs setup opened and the targets it closed (the real calls still run)."""
    seen: dict[str, list[Any]] = {"catalogs": [], "closed_targets": []}
    open_catalog = integration.open_catalog

    def recording_open(*args: Any, **kwargs: Any) -> Any:
        catalog, aside = open_catalog(*args, **kwargs)
        seen["catalogs"].append(catalog)
        return catalog, aside

    monkeypatch.setattr(integration, "open_catalog", recording_open)
    for cls in (S3Target, VaultTarget):
        close = cls.close

        def recording_close(self: Any, close: Callable[[Any], None] = close) -> None:
            seen["closed_targets"].append(self)
            close(self)

        monkeypatch.setattr(cls, "close", recording_close)
    return seen


type Arrange = Callable[[HomeAssistant, MockConfigEntry, pytest.MonkeyPatch], None]


def _catalog_is_a_directory(
    hass: HomeAssistant, entry: MockConfigEntry, _monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog_path(hass, entry).mkdir()


def _open_raises_os_error(
    _hass: HomeAssistant, _entry: MockConfigEntry, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(path: Path, **_: Any) -> Any:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(integration, "open_catalog", refused)


@pytest.mark.usefixtures("aws")
@pytest.mark.parametrize(
    ("arrange", "error"),
    [
        (_catalog_is_a_directory, "OperationalError: unable to open database file"),
        (_open_raises_os_error, "PermissionError: [Errno 13] Permission denied: "),
    ],
)
async def test_catalog_that_cannot_be_opened_fails_setup_cleanly(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    opened: dict[str, list[Any]],
    monkeypatch: pytest.MonkeyPatch,
    arrange: Arrange,
    error: str,
) -> None:
    """A setup error with the translated catalog message, and the client setup made
    is closed."""
    mock_config_entry.add_to_hass(hass)
    arrange(hass, mock_config_entry, monkeypatch)

    assert not await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()

    assert mock_config_entry.state is ConfigEntryState.SETUP_ERROR
    assert mock_config_entry.error_reason_translation_key == "catalog_error"
    assert mock_config_entry.reason is not None
    assert mock_config_entry.reason.startswith(CATALOG_ERROR + error)
    assert opened["catalogs"] == []
    assert len(opened["closed_targets"]) == 1


@pytest.mark.usefixtures("aws")
async def test_outdated_catalog_that_cannot_be_deleted_does_not_stop_setup(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A reconfigured bucket's old catalog is dropped at setup; one that will not go
    (here a directory with a file in it) is left with a warning, and the entry loads."""
    mock_config_entry.add_to_hass(hass)
    stale = catalog_path(hass, mock_config_entry).with_name(
        f"{DOMAIN}.{mock_config_entry.entry_id}.0123456789ab.sqlite3"
    )
    stale.mkdir()
    (stale / "x").write_bytes(b"x")

    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)

    assert mock_config_entry.state is ConfigEntryState.LOADED
    assert stale.is_dir()
    assert f"Could not delete the outdated catalog {stale}" in caplog.text


async def test_setup_failing_after_the_catalog_opened_closes_it(
    hass: HomeAssistant,
    aws: None,
    mock_config_entry: MockConfigEntry,
    opened: dict[str, list[Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The keys pass the connect check, then are refused at the first refresh: a reauth,
    and the catalog and client setup opened are closed."""
    # moto answers the first request unsigned (the connect check), then checks the
    # keys: the entry's are unknown to its IAM.
    monkeypatch.setattr(moto_settings, "INITIAL_NO_AUTH_ACTION_COUNT", 1)
    monkeypatch.setattr(ActionAuthenticatorMixin, "request_count", 0)
    mock_config_entry.add_to_hass(hass)

    assert not await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()

    assert mock_config_entry.state is ConfigEntryState.SETUP_ERROR
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [f["context"]["source"] for f in flows] == [SOURCE_REAUTH]
    [catalog] = opened["catalogs"]
    with pytest.raises(CatalogError, match="closed"):
        catalog.count()
    assert len(opened["closed_targets"]) == 1
