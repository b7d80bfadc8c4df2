"""S3 Glacier Archive: archive files to S3 storage classes, restore them, show the cost."""

from __future__ import annotations

import hashlib
from pathlib import Path

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import EVENT_HOMEASSISTANT_STOP, Platform
from homeassistant.core import Event, HomeAssistant
from homeassistant.exceptions import ConfigEntryAuthFailed, ConfigEntryError, ConfigEntryNotReady
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.typing import ConfigType

from .archive.catalog import Catalog, CatalogError
from .archive.errors import (
    AccessDeniedError,
    ArchiveError,
    AuthError,
    BucketNotFoundError,
    InvalidEndpointError,
    InvalidRequestError,
    ServiceUnavailableError,
    VaultNotFoundError,
)
from .archive.vault import VaultTarget
from .backup_agent import async_setup_backup_hooks
from .const import DOMAIN, LOGGER
from .coordinator import S3GlacierCoordinator
from .data import Activity, S3GlacierConfigEntry, S3GlacierData
from .helpers import Target, apply_vault_options, connect, is_vault, unique_id_from_data
from .restore import RestoreWatcher
from .services import async_setup_services
from .translate import translated

PLATFORMS = [Platform.SENSOR]
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the actions once, for every entry."""
    async_setup_services(hass)
    return True


def catalog_path(hass: HomeAssistant, entry: S3GlacierConfigEntry) -> Path:
    """The catalog of the entry's current location, under .storage (backups include it).

    A reconfigured entry (another bucket, prefix or vault) starts a new catalog: rows of
    one location must never be reconciled against another's listing.
    """
    location = hashlib.sha256(unique_id_from_data(entry.data).encode()).hexdigest()[:12]
    return Path(hass.config.path(".storage", f"{DOMAIN}.{entry.entry_id}.{location}.sqlite3"))


def _entry_catalogs(hass: HomeAssistant, entry_id: str) -> list[Path]:
    """Every catalog file (with its WAL and shared memory) an entry has had (executor)."""
    return sorted(Path(hass.config.path(".storage")).glob(f"{DOMAIN}.{entry_id}.*"))


def _open_catalog(hass: HomeAssistant, entry: S3GlacierConfigEntry) -> Catalog:
    """Open the entry's catalog; drop a bucket's catalogs of earlier locations (executor).

    A bucket's catalog can be rebuilt by listing it; a vault's holds the only record of
    its archive IDs, so it is kept.
    """
    path = catalog_path(hass, entry)
    if not is_vault(entry.data):
        for stale in _entry_catalogs(hass, entry.entry_id):
            if not stale.name.startswith(path.name):
                stale.unlink(missing_ok=True)
    return Catalog(path)


async def async_setup_entry(hass: HomeAssistant, entry: S3GlacierConfigEntry) -> bool:
    """Connect (in the executor), open the catalog, start the coordinator and watcher."""
    try:
        target = await hass.async_add_executor_job(connect, entry.data, entry.options)
    except (AuthError, AccessDeniedError) as err:
        raise translated(ConfigEntryAuthFailed, err, "invalid_auth") from err
    except (
        BucketNotFoundError,
        VaultNotFoundError,
        ServiceUnavailableError,
        InvalidEndpointError,
        InvalidRequestError,
    ) as err:
        raise translated(ConfigEntryError, err) from err
    except ArchiveError as err:
        raise translated(ConfigEntryNotReady, err, "cannot_connect") from err

    try:
        catalog = await hass.async_add_executor_job(_open_catalog, hass, entry)
    except CatalogError as err:
        await hass.async_add_executor_job(target.close)
        raise translated(ConfigEntryError, err) from err
    activity = Activity()
    coordinator = S3GlacierCoordinator(hass, entry, target, catalog)
    restores = RestoreWatcher(hass, coordinator, activity)
    try:
        await coordinator.async_config_entry_first_refresh()
        entry.runtime_data = S3GlacierData(
            target=target,
            catalog=catalog,
            coordinator=coordinator,
            restores=restores,
            activity=activity,
        )
        await restores.async_start()
        await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    except Exception:
        restores.async_stop()
        await hass.async_add_executor_job(_close, target, catalog)
        raise
    entry.async_on_unload(restores.async_stop)
    entry.async_on_unload(entry.add_update_listener(_async_options_updated))
    entry.async_on_unload(async_setup_backup_hooks(hass, entry))

    async def _async_close_on_stop(_event: Event) -> None:
        # Home Assistant does not unload entries when it stops: close here, so the
        # WAL is folded back into the catalog file.
        restores.async_stop()
        await activity.async_wait_idle()
        await hass.async_add_executor_job(_close, target, catalog)

    entry.async_on_unload(
        hass.bus.async_listen_once(EVENT_HOMEASSISTANT_STOP, _async_close_on_stop)
    )
    return True


def _close(target: Target, catalog: Catalog) -> None:
    """Close the catalog and the client (executor)."""
    catalog.close()
    target.close()


async def _async_options_updated(hass: HomeAssistant, entry: S3GlacierConfigEntry) -> None:
    """Apply new options: prices at once, a vault's part size and threads to the next upload."""
    if entry.state is not ConfigEntryState.LOADED:
        return  # a reload (reauth, reconfigure) is under way and reads them itself
    data = entry.runtime_data
    async with data.activity.busy():
        if isinstance(data.target, VaultTarget):
            apply_vault_options(data.target, entry.options)
        await data.coordinator.async_catalog_changed()


async def async_unload_entry(hass: HomeAssistant, entry: S3GlacierConfigEntry) -> bool:
    """Unload the sensors and stop the watcher; close the catalog once nothing uses it.

    An upload still running in the executor records its object before the catalog
    closes, even though the entry is already unloaded (or reloaded: SQLite lets the
    new entry open the same file meanwhile).
    """
    if not await hass.config_entries.async_unload_platforms(entry, PLATFORMS):
        return False
    data = entry.runtime_data

    async def _close_when_idle() -> None:
        await data.activity.async_wait_idle()
        await hass.async_add_executor_job(_close, data.target, data.catalog)

    hass.async_create_background_task(_close_when_idle(), f"{DOMAIN} close {entry.title}")
    return True


async def async_remove_entry(hass: HomeAssistant, entry: S3GlacierConfigEntry) -> None:
    """Delete the entry's catalogs; a vault's are kept aside, as they hold archive IDs."""

    def _remove() -> None:
        for path in _entry_catalogs(hass, entry.entry_id):
            if is_vault(entry.data):
                kept = path.with_name(path.name.replace(f"{DOMAIN}.", f"{DOMAIN}.removed.", 1))
                path.rename(kept)
                if kept.suffix == ".sqlite3":
                    LOGGER.warning(
                        "Kept the archive IDs of vault %s in %s: Glacier can only list them"
                        " through an inventory job. Delete the file when no longer needed",
                        entry.title,
                        kept,
                    )
            else:
                path.unlink(missing_ok=True)

    await hass.async_add_executor_job(_remove)
