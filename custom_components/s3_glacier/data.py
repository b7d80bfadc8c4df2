"""What a loaded entry keeps in ``runtime_data``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
import logging
from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant

from .archive.catalog import Catalog
from .const import MAX_PARALLEL_TRANSFERS
from .coordinator import S3GlacierCoordinator
from .helpers import Target
from .restore import RestoreWatcher

if TYPE_CHECKING:
    from .export_schedule import DailyHistoryExport

_LOGGER = logging.getLogger(__name__)

type Release = Callable[[], None]


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

    def hold(self) -> Release:
        """Count one piece of work until the returned function is called (once)."""
        self._busy += 1
        self._idle.clear()
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            self._busy -= 1
            if self._busy == 0:
                self._idle.set()

        return release

    @asynccontextmanager
    async def busy(self) -> AsyncIterator[None]:
        """Mark the block as work that must finish before the catalog closes."""
        release = self.hold()
        try:
            yield
        finally:
            release()

    async def async_wait_idle(self) -> None:
        """Return once nothing is using the catalog."""
        await self._idle.wait()


class Lease:
    """What one step of an action holds: a busy count, maybe a key lock and a transfer slot.

    Cancelling an action (a script stopped, an automation restarted) cancels the
    coroutine but not the executor job it awaits: the upload runs on and records its
    object afterwards. So the lease is given back when the step is left *and* every
    job it started has ended, whichever comes last; until then a second action on the
    key waits, and an unload keeps the catalog open.
    """

    def __init__(self, hass: HomeAssistant, releases: list[Release]) -> None:
        """Hold what ``releases`` give back (in reverse order)."""
        self._hass = hass
        self._releases = releases
        self._jobs = 0
        self._left = False

    async def run[T](self, func: Callable[..., T], *args: Any) -> T:
        """Run ``func(*args)`` in the executor; a cancelled caller does not end the lease."""
        job = self._hass.async_add_executor_job(func, *args)
        self._jobs += 1
        job.add_done_callback(self._job_ended)
        # The shield lets the caller be cancelled at once while the job runs on.
        return await asyncio.shield(job)

    def _job_ended(self, job: asyncio.Future[Any]) -> None:
        self._jobs -= 1
        # A caller that was cancelled never awaits the job's error; take it here, so
        # asyncio does not report an unretrieved future. A caller still waiting gets
        # the error through the shield as before.
        if not job.cancelled() and (err := job.exception()) is not None and self._left:
            _LOGGER.debug("A job went on after its action was cancelled and failed: %s", err)
        self._release_if_done()

    def leave(self) -> None:
        """The step is over (done, failed or cancelled); release once its jobs ended."""
        self._left = True
        self._release_if_done()

    def _release_if_done(self) -> None:
        if self._left and self._jobs == 0:
            while self._releases:
                self._releases.pop()()


@dataclass(slots=True)
class S3GlacierData:
    """The engine objects and Home Assistant helpers of one loaded config entry."""

    target: Target
    catalog: Catalog
    coordinator: S3GlacierCoordinator
    restores: RestoreWatcher
    activity: Activity
    # The daily history export of a bucket entry (None for a vault).
    history_export: DailyHistoryExport | None = None
    # Bounds the transfers of this entry that run at once; the rest queue here.
    transfers: asyncio.Semaphore = field(
        default_factory=lambda: asyncio.Semaphore(MAX_PARALLEL_TRANSFERS)
    )
    # One action at a time per key: two uploads to one key must not race. Each lock
    # is kept while anyone holds or awaits it (a count), then dropped.
    _key_locks: dict[str, tuple[asyncio.Lock, int]] = field(default_factory=dict)

    @asynccontextmanager
    async def lease(
        self, hass: HomeAssistant, key: str | None = None, *, transfer: bool = False
    ) -> AsyncIterator[Lease]:
        """Hold the busy count, the lock of ``key`` and a transfer slot for one step.

        Run the step's executor jobs with ``Lease.run``: what is held is given back when
        the block is left and those jobs have ended (see ``Lease``).
        """
        releases = [self.activity.hold()]
        try:
            if key is not None:
                releases.append(await self._lock_key(key))
            if transfer:
                await self.transfers.acquire()
                releases.append(self.transfers.release)
        except BaseException:
            # Cancelled while waiting: give back what was taken so far.
            while releases:
                releases.pop()()
            raise
        lease = Lease(hass, releases)
        try:
            yield lease
        finally:
            lease.leave()

    async def _lock_key(self, key: str) -> Release:
        """Wait for the lock of ``key``; return the function that gives it back."""
        lock, users = self._key_locks.get(key, (asyncio.Lock(), 0))
        self._key_locks[key] = (lock, users + 1)

        def drop_user() -> None:
            lock, users = self._key_locks[key]
            if users == 1:
                del self._key_locks[key]
            else:
                self._key_locks[key] = (lock, users - 1)

        try:
            await lock.acquire()
        except BaseException:
            drop_user()
            raise

        def release() -> None:
            lock.release()
            drop_user()

        return release


type S3GlacierConfigEntry = ConfigEntry[S3GlacierData]
