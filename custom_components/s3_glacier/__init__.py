"""S3 Glacier Archive: archive files to S3 storage classes, restore them, show the cost."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from functools import partial
import hashlib
from pathlib import Path
from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import EVENT_HOMEASSISTANT_STOP, Platform
from homeassistant.core import CALLBACK_TYPE, Event, HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryAuthFailed, ConfigEntryError, ConfigEntryNotReady
from homeassistant.helpers import config_validation as cv, issue_registry as ir
from homeassistant.helpers.typing import ConfigType
from homeassistant.util.hass_dict import HassKey

from . import repairs
from .archive.catalog import Catalog, CatalogError, is_database_file, open_catalog
from .archive.client import GrantedActions
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
from .catalog_repairs import async_raise_catalog_kept, async_report_damaged
from .const import (
    CONF_ENCRYPTION,
    CONF_ENDPOINT_URL,
    CONF_REGION,
    CONF_STORAGE_CLASS,
    CONF_TIER,
    DOMAIN,
    LOGGER,
)
from .coordinator import S3GlacierCoordinator
from .data import Activity, S3GlacierConfigEntry, S3GlacierData
from .export import remove_leftovers
from .export_schedule import DailyHistoryExport, async_remove_store
from .helpers import (
    Target,
    apply_vault_options,
    connect,
    is_vault,
    option_value,
    unique_id_from_data,
)
from .permissions import async_report_denied
from .restore import RestoreWatcher
from .services import async_setup_services
from .translate import translated

PLATFORMS = [Platform.SENSOR]

# The close of each entry's previous load, while it runs (see EntryCloser).
CLOSING: HassKey[dict[str, asyncio.Task[None]]] = HassKey(f"{DOMAIN}_closing")
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the actions once, for every entry; remove what interrupted exports left."""
    async_setup_services(hass)
    if removed := await hass.async_add_executor_job(remove_leftovers, hass.config.config_dir):
        LOGGER.info("Removed %d temporary file(s) of interrupted history exports", len(removed))
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


def _open_catalog(
    hass: HomeAssistant, entry: S3GlacierConfigEntry
) -> tuple[Catalog, bool, list[Path]]:
    """Open the entry's catalog; drop a bucket's catalogs of earlier locations (executor).

    A bucket's catalog can be rebuilt by listing it; a vault's holds the only record of
    its archive IDs, so it is kept. A damaged catalog is moved aside and replaced by
    an empty one (see ``open_catalog``); damage met later reloads the entry, which
    moves it aside then. Returns the catalog, whether it replaced a damaged one just
    now, and every damaged catalog kept beside it.
    """
    path = catalog_path(hass, entry)
    if not is_vault(entry.data):
        for stale in _entry_catalogs(hass, entry.entry_id):
            # A damaged catalog was kept for manual recovery: never drop it here.
            if not stale.name.startswith(path.name) and ".damaged-" not in stale.name:
                _drop_stale(stale)
    try:
        catalog, set_aside = open_catalog(
            path, on_damage=partial(_reload_from_thread, hass, entry.entry_id)
        )
    except OSError as err:  # SQLite's own errors arrive as CatalogError already
        raise CatalogError(f"{type(err).__name__}: {err}") from err
    damaged = sorted(filter(is_database_file, path.parent.glob(f"{path.name}.damaged-*")))
    return catalog, set_aside is not None, damaged


def _drop_stale(stale: Path) -> None:
    """Delete an earlier location's catalog file; one that will not go only costs space."""
    try:
        stale.unlink(missing_ok=True)
    except OSError as err:
        LOGGER.warning("Could not delete the outdated catalog %s: %s", stale, err)


def _reload_from_thread(hass: HomeAssistant, entry_id: str) -> None:
    """Reload the entry soon (from any thread): its damaged catalog is then set aside."""

    def _reload() -> None:
        if hass.config_entries.async_get_entry(entry_id) is not None:
            hass.config_entries.async_schedule_reload(entry_id)

    hass.loop.call_soon_threadsafe(_reload)


async def async_migrate_entry(hass: HomeAssistant, entry: S3GlacierConfigEntry) -> bool:
    """Bring stored options up to the current minor version.

    1.2: selector values are lower case (hassfest's rule for translation keys):
    ``GLACIER_IR`` → ``glacier_ir``, ``aws:kms`` → ``aws_kms``, ``Expedited`` →
    ``expedited``. Actions still accept the old spellings.
    """
    if entry.version > 1:
        return False  # written by a newer version of the integration
    if entry.minor_version < 2:
        options = dict(entry.options)
        for name in (CONF_STORAGE_CLASS, CONF_ENCRYPTION, CONF_TIER):
            if isinstance(options.get(name), str):
                options[name] = option_value(options[name])
        hass.config_entries.async_update_entry(entry, options=options, minor_version=2)
        LOGGER.debug("Migrated the options of %s to version 1.2", entry.title)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: S3GlacierConfigEntry) -> bool:
    """Connect (in the executor), open the catalog, start the coordinator and watcher."""
    granted = GrantedActions()
    try:
        target, reported = await hass.async_add_executor_job(
            partial(connect, entry.data, entry.options, granted=granted)
        )
    except AuthError as err:
        raise translated(ConfigEntryAuthFailed, err, "invalid_auth") from err
    except AccessDeniedError as err:
        # Valid keys whose policy lacks the action: new keys would not help, a fixed
        # policy does, and Home Assistant retries setup by itself until it is fixed.
        async_report_denied(hass, entry, err)
        raise translated(ConfigEntryNotReady, err) from err
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
    _async_check_region(hass, entry, reported)

    try:
        catalog, rebuilt, damaged = await hass.async_add_executor_job(_open_catalog, hass, entry)
    except CatalogError as err:
        await hass.async_add_executor_job(target.close)
        raise translated(ConfigEntryError, err) from err
    activity = Activity()
    coordinator = S3GlacierCoordinator(hass, entry, target, catalog, granted)
    restores = RestoreWatcher(hass, coordinator, activity)
    history_export: DailyHistoryExport | None = None
    try:
        await coordinator.async_config_entry_first_refresh()
        entry.runtime_data = S3GlacierData(
            target=target,
            catalog=catalog,
            coordinator=coordinator,
            restores=restores,
            activity=activity,
        )
        if not is_vault(entry.data):
            history_export = DailyHistoryExport(hass, entry)
            await history_export.async_load()
            entry.runtime_data.history_export = history_export
        await async_report_damaged(hass, entry, damaged, rebuilt)
        await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
        # Last: a check it starts may already be running in the executor.
        await _async_start_after_previous_load(hass, entry, restores, history_export)
    except Exception:
        restores.async_stop()
        if history_export is not None:
            history_export.async_stop()
        await activity.async_wait_idle()
        await hass.async_add_executor_job(_close, target, catalog)
        raise
    entry.async_on_unload(restores.async_stop)
    if history_export is not None:
        entry.async_on_unload(history_export.async_stop)
    # Deliberately no update listener: the reauth and reconfigure flows reload the entry
    # (async_update_reload_and_abort) and the options flow applies its options itself
    # (async_apply_options). Home Assistant reports a listener next to a flow's reload.
    entry.async_on_unload(async_setup_backup_hooks(hass, entry))
    entry.async_on_unload(EntryCloser(hass, entry, target, catalog, activity, restores).async_close)
    return True


async def _async_start_after_previous_load(
    hass: HomeAssistant,
    entry: S3GlacierConfigEntry,
    restores: RestoreWatcher,
    history_export: DailyHistoryExport | None,
) -> None:
    """Start the restore watcher and the daily export once no earlier load of the entry runs.

    A reload does not wait for the previous load's transfers (key locks and transfer
    slots belong to each load): checking the same restore meanwhile would download it
    a second time and find the first copy in the way, and the export would upload the
    same day again. So both start when the previous load has closed, without holding
    up the setup.
    """
    previous = hass.data.get(CLOSING, {}).get(entry.entry_id)
    if previous is not None and previous.done():
        previous = None
    if history_export is not None:
        history_export.async_start(previous)
    if previous is None:
        await restores.async_start()
        return
    waiting = previous

    async def _start_after_close() -> None:
        # A close that failed was logged; the new load watches anyway.
        await asyncio.wait([waiting])
        await restores.async_start()

    entry.async_create_background_task(
        hass, _start_after_close(), f"{DOMAIN} watch restores of {entry.title}"
    )


@callback
def _async_check_region(
    hass: HomeAssistant, entry: S3GlacierConfigEntry, reported: Mapping[str, Any]
) -> None:
    """Raise a repair issue when AWS keeps the bucket in another region than stored.

    New entries store the region S3 reports; an older entry may have been created
    with a wrong one (botocore follows the redirect), which prices it wrongly.
    Reconfiguring the entry stores the right region.
    """
    if reported[CONF_REGION] != entry.data[CONF_REGION] and not entry.data.get(CONF_ENDPOINT_URL):
        repairs.async_raise(
            hass,
            entry,
            "wrong_region",
            severity=ir.IssueSeverity.WARNING,
            region=reported[CONF_REGION],
            configured=entry.data[CONF_REGION],
        )
    else:
        repairs.async_clear(hass, entry, "wrong_region")


async def async_apply_options(hass: HomeAssistant, entry: S3GlacierConfigEntry) -> None:
    """Apply saved options to a loaded entry without a reload.

    Prices show at once; a vault's part size and threads apply to the next upload; a
    bucket's class, encryption and parts are read by each action anyway. The daily
    history export starts (from yesterday) or stops.
    """
    if entry.state is not ConfigEntryState.LOADED:
        return  # the next setup reads them
    data = entry.runtime_data
    async with data.activity.busy():
        if isinstance(data.target, VaultTarget):
            apply_vault_options(data.target, entry.options)
        await data.coordinator.async_catalog_changed()
    if data.history_export is not None:
        await data.history_export.async_options_changed()


def _close(target: Target, catalog: Catalog) -> None:
    """Close the catalog and the client (executor)."""
    catalog.close()
    target.close()


class EntryCloser:
    """Closes an entry's catalog and client exactly once: at unload or at stop.

    Home Assistant does not unload entries when it stops, so stopping closes too
    (folding the WAL back into the catalog file). The close waits until no action
    uses the catalog. Whichever comes first starts it; the other awaits the same
    task. The stop listener outlives the unload until the close is done, so a stop
    during a deferred close still waits for it, and it is only removed while it is
    still registered.
    """

    def __init__(
        self,
        hass: HomeAssistant,
        entry: S3GlacierConfigEntry,
        target: Target,
        catalog: Catalog,
        activity: Activity,
        restores: RestoreWatcher,
    ) -> None:
        """Listen for the stop; nothing is closed yet."""
        self._hass = hass
        self._entry_id = entry.entry_id
        self._title = entry.title
        self._target = target
        self._catalog = catalog
        self._activity = activity
        self._restores = restores
        self._task: asyncio.Task[None] | None = None
        self._unsub_stop: CALLBACK_TYPE | None = hass.bus.async_listen(
            EVENT_HOMEASSISTANT_STOP, self._async_on_stop
        )

    @callback
    def async_close(self) -> None:
        """Start the close, unless it has started already."""
        if self._task is None:
            # A tracked task, not a background one: stopping cancels those. Not started
            # eagerly: an eager start would reach the executor job before Home Assistant
            # tracks the task, so the job would count as a background one and a stop
            # would cancel it, leaving the catalog open.
            self._task = self._hass.async_create_task(
                self._async_close(), f"{DOMAIN} close {self._title}", eager_start=False
            )
            # A reload's watcher waits for it (see _async_start_after_previous_load).
            closing = self._hass.data.setdefault(CLOSING, {})
            closing[self._entry_id] = self._task
            self._task.add_done_callback(
                lambda task: closing.pop(self._entry_id, None)
                if closing.get(self._entry_id) is task
                else None
            )

    async def _async_on_stop(self, _event: Event) -> None:
        """Close at stop; if unloading started the close, wait for that one."""
        self.async_close()
        assert self._task is not None
        await self._task

    async def _async_close(self) -> None:
        self._restores.async_stop()
        await self._activity.async_wait_idle()
        try:
            await self._hass.async_add_executor_job(_close, self._target, self._catalog)
        finally:
            if self._unsub_stop is not None:
                self._unsub_stop()
                self._unsub_stop = None


async def async_unload_entry(hass: HomeAssistant, entry: S3GlacierConfigEntry) -> bool:
    """Unload the sensors and stop the watcher; close the catalog once nothing uses it.

    An upload still running in the executor records its object before the catalog
    closes, even though the entry is already unloaded (or reloaded: SQLite lets the
    new entry open the same file meanwhile). The close (EntryCloser, started by the
    entry's unload callbacks) is not awaited here, but a stop meanwhile waits for it.
    """
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_entry(hass: HomeAssistant, entry: S3GlacierConfigEntry) -> None:
    """Delete the entry's catalogs; a vault's are kept aside, as they hold archive IDs.

    The entry's repair issues go with it; a kept vault catalog gets one of its own,
    which outlives the entry (see ``async_raise_catalog_kept``).
    """

    def _remove() -> list[Path]:
        kept_catalogs: list[Path] = []
        for path in _entry_catalogs(hass, entry.entry_id):
            if is_vault(entry.data):
                kept = path.with_name(path.name.replace(f"{DOMAIN}.", f"{DOMAIN}.removed.", 1))
                try:
                    path.rename(kept)
                except FileNotFoundError:
                    # A WAL or shared-memory file that SQLite deleted meanwhile: the
                    # catalog closing (it was just unloaded) folded it into the file.
                    continue
                if is_database_file(kept):
                    kept_catalogs.append(kept)
                    LOGGER.warning(
                        "Kept the archive IDs of vault %s in %s: Glacier can only list them"
                        " through an inventory job. Delete the file when no longer needed",
                        entry.title,
                        kept,
                    )
            else:
                path.unlink(missing_ok=True)
        return kept_catalogs

    kept_catalogs = await hass.async_add_executor_job(_remove)
    await async_remove_store(hass, entry.entry_id)
    repairs.async_clear_entry(hass, entry)
    if kept_catalogs:
        async_raise_catalog_kept(hass, entry, kept_catalogs)
