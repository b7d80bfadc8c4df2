"""Backup platform: keep the catalogs consistent while Home Assistant copies .storage.

The catalogs are SQLite databases in WAL mode under ``.storage``. Before a backup the
WAL is folded into each database file and automatic checkpoints pause, so the file
does not change while it is copied; afterwards they resume.

A catalog that fails here must not fail the user's whole backup: the error is logged
and the backup goes on (the copy of that catalog may then be a little behind, which
the next reconcile repairs for a bucket).

Each loaded S3 bucket entry is also a place to keep backups (``backup_agent.py``);
vault entries offer none.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from homeassistant.components.backup import BackupAgent
from homeassistant.core import HomeAssistant, callback

from .archive.catalog import CatalogError
from .backup_agent import BACKUP_LISTENERS, S3GlacierBackupAgent
from .const import DOMAIN, LOGGER
from .data import S3GlacierConfigEntry
from .helpers import is_vault


def _loaded(hass: HomeAssistant) -> list[S3GlacierConfigEntry]:
    return hass.config_entries.async_loaded_entries(DOMAIN)


async def _checkpoint_all(hass: HomeAssistant, *, pause: bool) -> None:
    for entry in _loaded(hass):
        catalog = entry.runtime_data.catalog
        try:
            await hass.async_add_executor_job(partial(catalog.checkpoint, pause=pause))
        except CatalogError as err:
            LOGGER.warning(
                "Could not %s the catalog of %s for the backup; the backup goes on: %s",
                "prepare" if pause else "resume",
                entry.title,
                err,
            )


async def async_pre_backup(hass: HomeAssistant) -> None:
    """Checkpoint every catalog and pause its checkpoints."""
    await _checkpoint_all(hass, pause=True)


async def async_post_backup(hass: HomeAssistant) -> None:
    """Resume automatic checkpoints."""
    await _checkpoint_all(hass, pause=False)


async def async_get_backup_agents(hass: HomeAssistant, **kwargs: Any) -> list[BackupAgent]:
    """One agent per loaded S3 bucket entry."""
    return [
        S3GlacierBackupAgent(hass, entry) for entry in _loaded(hass) if not is_vault(entry.data)
    ]


@callback
def async_register_backup_agents_listener(
    hass: HomeAssistant, *, listener: Callable[[], None], **kwargs: Any
) -> Callable[[], None]:
    """Call ``listener`` whenever an entry loads or unloads; return what unregisters it."""
    listeners = hass.data.setdefault(BACKUP_LISTENERS, [])
    listeners.append(listener)

    @callback
    def _remove() -> None:
        listeners.remove(listener)
        if not listeners:
            hass.data.pop(BACKUP_LISTENERS, None)

    return _remove
