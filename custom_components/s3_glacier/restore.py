"""The restore watcher: follows pending Glacier restores until they are readable.

Pending restores live in the catalog, so they survive a restart: at setup every one of
them is watched again. Each is checked at a pace that fits its tier; when readable it
is downloaded (if a destination was given) and ``s3_glacier_restore_completed`` fires;
a restore that can no longer finish fires ``s3_glacier_restore_failed``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.event import async_call_later

from .archive.errors import ArchiveError, CannotConnectError, NotFoundError, ThrottledError
from .archive.models import PendingRestore, RestoreState, RestoreTier
from .const import DOMAIN, EVENT_RESTORE_COMPLETED, EVENT_RESTORE_FAILED, LOGGER

if TYPE_CHECKING:
    from .coordinator import S3GlacierCoordinator

# Checks are HEAD requests; these paces keep them to a few dozen per restore.
POLL_INTERVAL: dict[RestoreTier, timedelta] = {
    RestoreTier.EXPEDITED: timedelta(minutes=1),
    RestoreTier.STANDARD: timedelta(minutes=15),
    RestoreTier.BULK: timedelta(hours=1),
}


class RestoreWatcher:
    """Schedules checks of pending restores for one config entry."""

    def __init__(self, hass: HomeAssistant, coordinator: S3GlacierCoordinator) -> None:
        """Watch nothing yet; ``async_start`` loads the pending restores."""
        self._hass = hass
        self._coordinator = coordinator
        self._timers: dict[str, CALLBACK_TYPE] = {}

    async def async_start(self) -> None:
        """Watch every restore the catalog holds as pending (after a restart, too)."""
        pending = await self._hass.async_add_executor_job(
            self._coordinator.catalog.pending_restores
        )
        for restore in pending:
            self._schedule(restore)

    @callback
    def async_stop(self) -> None:
        """Cancel every scheduled check (the entry is unloading)."""
        for cancel in self._timers.values():
            cancel()
        self._timers.clear()

    async def async_watch(self, restore: PendingRestore) -> None:
        """Record a new pending restore durably, then watch it."""
        await self._hass.async_add_executor_job(
            self._coordinator.catalog.add_pending_restore, restore
        )
        self._schedule(restore)
        await self._coordinator.async_catalog_changed()

    async def async_forget(self, key: str) -> None:
        """Stop following ``key`` (its object was deleted) and drop it from the catalog."""
        if cancel := self._timers.pop(key, None):
            cancel()
        await self._hass.async_add_executor_job(
            self._coordinator.catalog.remove_pending_restore, key
        )

    def is_watching(self, key: str) -> bool:
        """Whether a restore of ``key`` is being followed."""
        return key in self._timers

    @callback
    def _schedule(self, restore: PendingRestore) -> None:
        if cancel := self._timers.pop(restore.key, None):
            cancel()
        delay = POLL_INTERVAL[restore.tier].total_seconds()

        @callback
        def _check(_now: datetime) -> None:
            self._timers.pop(restore.key, None)
            self._coordinator.config_entry.async_create_background_task(
                self._hass, self._async_check(restore), f"{DOMAIN} restore {restore.key}"
            )

        self._timers[restore.key] = async_call_later(self._hass, delay, _check)

    async def _async_check(self, restore: PendingRestore) -> None:
        target = self._coordinator.target
        try:
            state, _expiry = await self._hass.async_add_executor_job(
                target.restore_state, restore.key
            )
            if state is RestoreState.IN_PROGRESS:
                self._schedule(restore)
                return
            if state is RestoreState.NONE:
                await self._async_fail(restore, "restore_not_running")
                return
            path = None
            if restore.destination is not None:
                obj = await self._hass.async_add_executor_job(
                    partial(
                        target.get,
                        restore.key,
                        restore.destination,
                        overwrite=restore.overwrite,
                    )
                )
                path = str(restore.destination)
                LOGGER.debug("Restored %s to %s (%d bytes)", restore.key, path, obj.size)
        except (CannotConnectError, ThrottledError) as err:
            LOGGER.debug("Restore check of %s postponed: %s", restore.key, err)
            self._schedule(restore)
            return
        except NotFoundError:
            await self._async_fail(restore, "key_not_found")
            return
        except FileExistsError:
            await self._async_fail(restore, "destination_exists")
            return
        except (ArchiveError, OSError) as err:
            LOGGER.warning("Restore of %s failed: %s", restore.key, err)
            reason = err.translation_key if isinstance(err, ArchiveError) else "write_failed"
            await self._async_fail(restore, reason)
            return
        await self._async_finish(restore)
        self._hass.bus.async_fire(
            EVENT_RESTORE_COMPLETED,
            {
                "config_entry_id": self._coordinator.config_entry.entry_id,
                "key": restore.key,
                "path": path,
            },
        )

    async def _async_fail(self, restore: PendingRestore, reason: str) -> None:
        await self._async_finish(restore)
        self._hass.bus.async_fire(
            EVENT_RESTORE_FAILED,
            {
                "config_entry_id": self._coordinator.config_entry.entry_id,
                "key": restore.key,
                "reason": reason,
            },
        )

    async def _async_finish(self, restore: PendingRestore) -> None:
        await self._hass.async_add_executor_job(
            self._coordinator.catalog.remove_pending_restore, restore.key
        )
        await self._coordinator.async_catalog_changed()
