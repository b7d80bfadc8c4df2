"""What a loaded entry keeps in ``runtime_data``."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from homeassistant.config_entries import ConfigEntry

from .archive.catalog import Catalog
from .const import MAX_PARALLEL_TRANSFERS
from .coordinator import S3GlacierCoordinator
from .helpers import Target
from .restore import RestoreWatcher


@dataclass(slots=True)
class S3GlacierData:
    """The engine objects and Home Assistant helpers of one loaded config entry."""

    target: Target
    catalog: Catalog
    coordinator: S3GlacierCoordinator
    restores: RestoreWatcher
    # Bounds the transfers of this entry that run at once; the rest queue here.
    transfers: asyncio.Semaphore = field(
        default_factory=lambda: asyncio.Semaphore(MAX_PARALLEL_TRANSFERS)
    )


type S3GlacierConfigEntry = ConfigEntry[S3GlacierData]
