"""Backup platform: keep the catalogs consistent while Home Assistant copies .storage.

The catalogs are SQLite databases in WAL mode under ``.storage``. Before a backup the
WAL is folded into each database file and automatic checkpoints pause, so the file
does not change while it is copied; afterwards they resume.
"""

from __future__ import annotations

from functools import partial

from homeassistant.core import HomeAssistant

from .const import DOMAIN
from .data import S3GlacierConfigEntry


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
