"""S3 Glacier Archive: archive files to S3 storage classes, restore them, show the cost."""

from __future__ import annotations

from pathlib import Path

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryAuthFailed, ConfigEntryError, ConfigEntryNotReady
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.typing import ConfigType

from .archive.catalog import Catalog
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
from .const import DOMAIN
from .coordinator import S3GlacierCoordinator
from .data import S3GlacierConfigEntry, S3GlacierData
from .helpers import connect, is_vault
from .restore import RestoreWatcher
from .services import async_setup_services

PLATFORMS = [Platform.SENSOR]
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the actions once, for every entry."""
    async_setup_services(hass)
    return True


def catalog_path(hass: HomeAssistant, entry_id: str) -> Path:
    """The entry's catalog: under .storage so that Home Assistant backups include it."""
    return Path(hass.config.path(".storage", f"{DOMAIN}.{entry_id}.sqlite3"))


async def async_setup_entry(hass: HomeAssistant, entry: S3GlacierConfigEntry) -> bool:
    """Connect (in the executor), open the catalog, start the coordinator and watcher."""
    try:
        target = await hass.async_add_executor_job(connect, entry.data, entry.options)
    except (AuthError, AccessDeniedError) as err:
        raise ConfigEntryAuthFailed(
            translation_domain=DOMAIN, translation_key="invalid_auth"
        ) from err
    except (
        BucketNotFoundError,
        VaultNotFoundError,
        ServiceUnavailableError,
        InvalidEndpointError,
        InvalidRequestError,
    ) as err:
        raise ConfigEntryError(
            translation_domain=DOMAIN, translation_key=err.translation_key
        ) from err
    except ArchiveError as err:
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN, translation_key="cannot_connect"
        ) from err

    catalog = await hass.async_add_executor_job(Catalog, catalog_path(hass, entry.entry_id))
    coordinator = S3GlacierCoordinator(hass, entry, target, catalog)
    try:
        await coordinator.async_config_entry_first_refresh()
    except Exception:
        await hass.async_add_executor_job(catalog.close)
        raise
    restores = RestoreWatcher(hass, coordinator)
    entry.runtime_data = S3GlacierData(
        target=target, catalog=catalog, coordinator=coordinator, restores=restores
    )
    entry.async_on_unload(restores.async_stop)
    entry.async_on_unload(entry.add_update_listener(_async_options_updated))
    await restores.async_start()
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


async def _async_options_updated(hass: HomeAssistant, entry: S3GlacierConfigEntry) -> None:
    """Apply new options: prices at once; a vault's part size and threads need a reload."""
    if is_vault(entry.data):
        hass.config_entries.async_schedule_reload(entry.entry_id)
        return
    await entry.runtime_data.coordinator.async_catalog_changed()


async def async_unload_entry(hass: HomeAssistant, entry: S3GlacierConfigEntry) -> bool:
    """Unload the sensors, stop the watcher (async_on_unload) and close the catalog."""
    if not await hass.config_entries.async_unload_platforms(entry, PLATFORMS):
        return False
    await hass.async_add_executor_job(entry.runtime_data.catalog.close)
    return True


async def async_remove_entry(hass: HomeAssistant, entry: S3GlacierConfigEntry) -> None:
    """Delete the entry's catalog (and SQLite's WAL and shared-memory files)."""
    base = catalog_path(hass, entry.entry_id)

    def _remove() -> None:
        for suffix in ("", "-wal", "-shm"):
            base.with_name(base.name + suffix).unlink(missing_ok=True)

    await hass.async_add_executor_job(_remove)
