"""Backup platform: keep the catalogs consistent while Home Assistant copies .storage.

The catalogs are SQLite databases in WAL mode under ``.storage``. Before a backup the
WAL is folded into each database file and automatic checkpoints pause, so the file
does not change while it is copied; afterwards they resume.

A catalog that fails here must not fail the user's whole backup: the error is logged
and the backup goes on (the copy of that catalog may then be a little behind, which
the next reconcile repairs for a bucket).
"""

from __future__ import annotations

from functools import partial

from homeassistant.core import HomeAssistant

from .archive.catalog import CatalogError
from .const import DOMAIN, LOGGER
from .data import S3GlacierConfigEntry


async def _checkpoint_all(hass: HomeAssistant, *, pause: bool) -> None:
    entries: list[S3GlacierConfigEntry] = hass.config_entries.async_loaded_entries(DOMAIN)
    for entry in entries:
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
