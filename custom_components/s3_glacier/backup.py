"""Backup platform: keep the catalogs consistent while Home Assistant copies .storage.

The catalogs are SQLite databases in WAL mode under ``.storage``. Before a backup the
WAL is folded into each database file and automatic checkpoints pause, so the file
does not change while it is copied; afterwards they resume.

Each loaded S3 bucket entry is also a place to keep backups (``backup_agent.py``);
vault entries offer none.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from homeassistant.components.backup import BackupAgent
from homeassistant.core import HomeAssistant, callback

from .backup_agent import BACKUP_LISTENERS, S3GlacierBackupAgent
from .const import DOMAIN
from .data import S3GlacierConfigEntry
from .helpers import is_vault


def _loaded(hass: HomeAssistant) -> list[S3GlacierConfigEntry]:
    return hass.config_entries.async_loaded_entries(DOMAIN)


async def async_pre_backup(hass: HomeAssistant) -> None:
    """Checkpoint every catalog and pause its checkpoints."""
    for entry in _loaded(hass):
        await hass.async_add_executor_job(
            partial(entry.runtime_data.catalog.checkpoint, pause=True)
        )


async def async_post_backup(hass: HomeAssistant) -> None:
    """Resume automatic checkpoints."""
    for entry in _loaded(hass):
        await hass.async_add_executor_job(
            partial(entry.runtime_data.catalog.checkpoint, pause=False)
        )


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
