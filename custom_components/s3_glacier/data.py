"""What a loaded entry keeps in ``runtime_data``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from homeassistant.config_entries import ConfigEntry

from .archive.catalog import Catalog
from .const import MAX_PARALLEL_TRANSFERS
from .coordinator import S3GlacierCoordinator
from .helpers import Target
from .restore import RestoreWatcher


class Activity:
    """Counts work in progress that still needs the catalog (actions, restore checks).

    Unloading must not close the catalog under an upload that is about to record its
    object: the catalog is closed once this says idle.
    """

    def __init__(self) -> None:
        """Start idle."""
        self._busy = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @asynccontextmanager
    async def busy(self) -> AsyncIterator[None]:
        """Mark the block as work that must finish before the catalog closes."""
        self._busy += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._busy -= 1
            if self._busy == 0:
                self._idle.set()

    async def async_wait_idle(self) -> None:
        """Return once nothing is using the catalog."""
        await self._idle.wait()


@dataclass(slots=True)
class S3GlacierData:
    """The engine objects and Home Assistant helpers of one loaded config entry."""

    target: Target
    catalog: Catalog
    coordinator: S3GlacierCoordinator
    restores: RestoreWatcher
    activity: Activity
    # Bounds the transfers of this entry that run at once; the rest queue here.
    transfers: asyncio.Semaphore = field(
        default_factory=lambda: asyncio.Semaphore(MAX_PARALLEL_TRANSFERS)
    )
    # One action at a time per key: two uploads to one key must not race. Each lock
    # is kept while anyone holds or awaits it (a count), then dropped.
    _key_locks: dict[str, tuple[asyncio.Lock, int]] = field(default_factory=dict)

    @asynccontextmanager
    async def key_lock(self, key: str) -> AsyncIterator[None]:
        """Hold the lock of ``key`` (object key or archive ID) for one step of an action."""
        lock, users = self._key_locks.get(key, (asyncio.Lock(), 0))
        self._key_locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._key_locks[key]
            if users == 1:
                del self._key_locks[key]
            else:
                self._key_locks[key] = (lock, users - 1)


type S3GlacierConfigEntry = ConfigEntry[S3GlacierData]
