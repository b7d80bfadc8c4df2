"""The restore watcher: follows pending restores (and vault inventories) until done.

Pending restores live in the catalog, so they survive a restart: at setup every one of
them is watched again. Each is checked at a pace that fits its tier; when readable it
is downloaded (if a destination was given) and ``s3_glacier_restore_completed`` fires;
a restore that can no longer finish fires ``s3_glacier_restore_failed``.

For an S3 bucket a check is a HEAD of the object; for a Glacier vault it is the
retrieval job's state, and the download streams the job's output.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
import json
from typing import TYPE_CHECKING, Any

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.event import async_call_later

from . import repairs
from .archive.catalog import CatalogError
from .archive.errors import (
    AccessDeniedError,
    ArchiveError,
    BucketNotFoundError,
    CannotConnectError,
    JobNotFoundError,
    NotFoundError,
    NotRestoredError,
    ThrottledError,
)
from .archive.models import ArchivedObject, PendingRestore, RestoreState, RestoreTier
from .archive.s3 import S3Target, sha256_file
from .archive.vault import VaultTarget
from .const import (
    DOMAIN,
    EVENT_RESTORE_COMPLETED,
    EVENT_RESTORE_FAILED,
    EVENT_RESTORE_REQUESTED_AGAIN,
    LOGGER,
    META_INVENTORY_JOB,
)

if TYPE_CHECKING:
    from .coordinator import S3GlacierCoordinator
    from .data import Activity

# Checks are HEAD or DescribeJob requests; these paces keep them to a few dozen each.
POLL_INTERVAL: dict[RestoreTier, timedelta] = {
    RestoreTier.EXPEDITED: timedelta(minutes=1),
    RestoreTier.STANDARD: timedelta(minutes=15),
    RestoreTier.BULK: timedelta(hours=1),
}
# A check that cannot be made (network, throttling, a surprise) is retried later,
# each time twice as late (up to MAX_BACKOFF); after MAX_FAILED_CHECKS in a row the
# watcher gives up: the user is told, rather than left waiting for ever.
MAX_FAILED_CHECKS = 10
MAX_BACKOFF = timedelta(hours=6)
# Glacier refreshes a vault's inventory about once a day: archives uploaded shortly
# before an inventory job may be missing from it and must not be dropped.
INVENTORY_LAG = timedelta(days=2)
INVENTORY_TIME = timedelta(hours=5)
_INVENTORY_TIMER = "\0inventory"

# Repair issues of a restore (detail: the key); all cleared when one of the key succeeds.
ISSUE_RESTORE_FAILED = "restore_failed"
ISSUE_RESTORE_EXPIRED = "restore_expired"
ISSUE_RESTORE_CHECKS_FAILED = "restore_checks_failed"
_RESTORE_ISSUES = (ISSUE_RESTORE_FAILED, ISSUE_RESTORE_EXPIRED, ISSUE_RESTORE_CHECKS_FAILED)
# Failure reasons with an issue of their own (the rest are ISSUE_RESTORE_FAILED).
REASON_EXPIRED = "restore_expired"
REASON_CHECKS_FAILED = "checks_failed"


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What one check found.

    Still waiting; ready and to be downloaded (``download``); done (with the path
    written); failed; not checkable now (``check_failed``: retried with backoff;
    ``denied`` when the IAM policy refused the request); or
    the restored copy expired unread and a new restore was requested
    (``requested_again``).
    """

    waiting: bool = False
    download: bool = False
    path: str | None = None
    failure: str | None = None
    check_failed: bool = False
    requested_again: bool = False
    denied: AccessDeniedError | None = None


def retry_delay(tier: RestoreTier, failures: int) -> timedelta:
    """When to check again after ``failures`` failed checks in a row (doubling, capped)."""
    interval = POLL_INTERVAL[tier]
    delay: timedelta = min(interval * 2**failures, max(interval, MAX_BACKOFF))
    return delay


class RestoreWatcher:
    """Schedules checks of pending restores (and an inventory job) for one entry."""

    def __init__(
        self, hass: HomeAssistant, coordinator: S3GlacierCoordinator, activity: Activity
    ) -> None:
        """Watch nothing yet; ``async_start`` loads what the catalog holds."""
        self._hass = hass
        self._coordinator = coordinator
        self._activity = activity
        self._timers: dict[str, CALLBACK_TYPE] = {}
        # The newest request per key: a check of an older one must not undo it.
        self._current: dict[str, PendingRestore] = {}
        # Failed checks in a row, per key (kept in memory: a restart starts afresh).
        self._failures: dict[str, int] = {}

    async def async_start(self) -> None:
        """Watch every pending restore and inventory job in the catalog (after a restart)."""
        catalog = self._coordinator.catalog
        pending = await self._hass.async_add_executor_job(catalog.pending_restores)
        # Checked at once, not at the tier's pace: what finished while Home Assistant
        # was off is downloaded before its restored copy (or job output) can expire.
        for restore in pending:
            self._current[restore.key] = restore
            self._schedule(restore, timedelta(0))
        if await self._hass.async_add_executor_job(catalog.get_meta, META_INVENTORY_JOB):
            self._schedule_inventory(timedelta(0))

    @callback
    def async_stop(self) -> None:
        """Cancel every scheduled check (the entry is unloading)."""
        for cancel in self._timers.values():
            cancel()
        self._timers.clear()

    async def async_watch(self, restore: PendingRestore) -> None:
        """Record a new pending restore durably, then watch it (at its tier's pace)."""
        await self._hass.async_add_executor_job(
            self._coordinator.catalog.add_pending_restore, restore
        )
        self._current[restore.key] = restore
        self._failures.pop(restore.key, None)
        self._schedule(restore)
        await self._coordinator.async_catalog_changed()

    async def async_forget(self, key: str) -> None:
        """Stop following ``key`` (its object was deleted) and drop it from the catalog."""
        if cancel := self._timers.pop(key, None):
            cancel()
        self._current.pop(key, None)
        self._failures.pop(key, None)
        self._clear_issues(key)
        await self._hass.async_add_executor_job(
            self._coordinator.catalog.remove_pending_restore, key
        )

    def pending(self, key: str) -> PendingRestore | None:
        """The restore of ``key`` being followed (waiting or being checked), if any."""
        return self._current.get(key)

    @callback
    def async_restore_succeeded(self, key: str) -> None:
        """A restore of ``key`` made it readable (here or in an action): clear its issues."""
        self._clear_issues(key)

    async def async_watch_inventory(self, job_id: str) -> datetime:
        """Record a vault inventory job durably and watch it; return when it should end."""
        requested = datetime.now(UTC)
        record = json.dumps({"job_id": job_id, "requested_at": requested.isoformat()})
        await self._hass.async_add_executor_job(
            self._coordinator.catalog.set_meta, META_INVENTORY_JOB, record
        )
        self._schedule_inventory()
        return requested + INVENTORY_TIME

    # -- scheduling ------------------------------------------------------------------

    @callback
    def _later(
        self, name: str, delay: timedelta, job: Callable[[], Coroutine[Any, Any, None]]
    ) -> None:
        if cancel := self._timers.pop(name, None):
            cancel()

        @callback
        def _run(_now: datetime) -> None:
            self._timers.pop(name, None)
            self._coordinator.config_entry.async_create_background_task(
                self._hass, job(), f"{DOMAIN} check {name}"
            )

        if delay <= timedelta(0):
            _run(datetime.now(UTC))
            return
        self._timers[name] = async_call_later(self._hass, delay.total_seconds(), _run)

    @callback
    def _schedule(self, restore: PendingRestore, delay: timedelta | None = None) -> None:
        delay = POLL_INTERVAL[restore.tier] if delay is None else delay
        self._later(restore.key, delay, lambda: self._async_check(restore))

    @callback
    def _schedule_inventory(self, delay: timedelta = POLL_INTERVAL[RestoreTier.STANDARD]) -> None:
        self._later(_INVENTORY_TIMER, delay, self._async_check_inventory)

    # -- restores --------------------------------------------------------------------

    async def _async_check(self, restore: PendingRestore) -> None:
        async with self._activity.busy():
            outcome = await self._hass.async_add_executor_job(self._advance, restore)
            if outcome.download and self._current.get(restore.key) is restore:
                # A download is leased like an action's: it takes one of the entry's
                # transfer slots (many restores ready at once do not start many large
                # downloads at once) and the key, and if the check is cancelled (an
                # unload) the catalog and client stay open until the file is written.
                data = self._coordinator.config_entry.runtime_data
                async with data.lease(self._hass, restore.key, transfer=True) as lease:
                    outcome = await lease.run(self._download, restore)
            if outcome.denied is not None:
                self._coordinator.async_permissions_changed(outcome.denied)
            if self._current.get(restore.key) is not restore:
                return  # superseded by a newer request while checking: that one goes on
            if outcome.check_failed:
                failures = self._failures.get(restore.key, 0) + 1
                self._failures[restore.key] = failures
                if failures < MAX_FAILED_CHECKS:
                    self._schedule(restore, retry_delay(restore.tier, failures))
                    return
                LOGGER.warning(
                    "Gave up checking the restore of %s after %d failed checks in a row",
                    restore.key,
                    failures,
                )
                outcome = _Outcome(failure=REASON_CHECKS_FAILED)
            self._failures.pop(restore.key, None)
            if outcome.requested_again:
                await self._async_requested_again(restore)
                return
            if outcome.waiting:
                self._schedule(restore)
                return
            del self._current[restore.key]
            await self._hass.async_add_executor_job(
                self._coordinator.catalog.remove_pending_restore, restore.key
            )
            await self._async_report(restore, outcome)

    async def _async_requested_again(self, restore: PendingRestore) -> None:
        """The copy expired unread and a new restore was requested: follow that one."""
        now = datetime.now(UTC)
        # The same tier as the first request, so the same typical time.
        ready_by = now + (restore.ready_by - restore.requested_at)
        again = replace(restore, requested_at=now, ready_by=ready_by, requested_again=True)
        await self.async_watch(again)
        LOGGER.info("The restored copy of %s expired before it was read: asked again", again.key)
        self._hass.bus.async_fire(
            EVENT_RESTORE_REQUESTED_AGAIN,
            {
                "config_entry_id": self._coordinator.config_entry.entry_id,
                "key": again.key,
                "reason": REASON_EXPIRED,
                "ready_by": again.ready_by.isoformat(timespec="seconds"),
            },
        )

    async def _async_report(self, restore: PendingRestore, outcome: _Outcome) -> None:
        await self._coordinator.async_catalog_changed()
        entry = self._coordinator.config_entry
        if outcome.failure is not None:
            self._raise_issue(restore, outcome.failure)
            self._hass.bus.async_fire(
                EVENT_RESTORE_FAILED,
                {"config_entry_id": entry.entry_id, "key": restore.key, "reason": outcome.failure},
            )
            return
        self._clear_issues(restore.key)
        self._hass.bus.async_fire(
            EVENT_RESTORE_COMPLETED,
            {"config_entry_id": entry.entry_id, "key": restore.key, "path": outcome.path},
        )

    @callback
    def _raise_issue(self, restore: PendingRestore, reason: str) -> None:
        entry = self._coordinator.config_entry
        if reason == REASON_EXPIRED:
            kind = ISSUE_RESTORE_EXPIRED
        elif reason == REASON_CHECKS_FAILED:
            kind = ISSUE_RESTORE_CHECKS_FAILED
        else:
            kind = ISSUE_RESTORE_FAILED
        repairs.async_raise(
            self._hass,
            entry,
            kind,
            detail=restore.key,
            key=restore.key,
            checks=str(MAX_FAILED_CHECKS),
        )

    @callback
    def _clear_issues(self, key: str) -> None:
        entry = self._coordinator.config_entry
        for kind in _RESTORE_ISSUES:
            repairs.async_clear(self._hass, entry, kind, key)

    def _advance(self, restore: PendingRestore) -> _Outcome:
        """Check one restore; say whether it is ready to download (executor)."""
        return self._guarded(restore, self._advance_vault if restore.job_id else self._advance_s3)

    def _download(self, restore: PendingRestore) -> _Outcome:
        """Download a ready restore to its destination (executor, in a transfer slot)."""
        return self._guarded(restore, self._download_vault if restore.job_id else self._download_s3)

    def _guarded(
        self, restore: PendingRestore, step: Callable[[PendingRestore], _Outcome]
    ) -> _Outcome:
        """Run one step, turning what it raises into an outcome."""
        try:
            return step(restore)
        except (CannotConnectError, ThrottledError) as err:
            LOGGER.debug("Check of the restore of %s postponed: %s", restore.key, err)
            return _Outcome(check_failed=True)
        except AccessDeniedError as err:
            # Allowed to log in, not to do this: a fixed policy lets the restore finish,
            # so keep checking (with backoff) and name the missing action.
            return _Outcome(check_failed=True, denied=err)
        except BucketNotFoundError:
            # The coordinator raises the bucket's repair issue; it may come back.
            return _Outcome(check_failed=True)
        except NotRestoredError:
            return _Outcome(waiting=True)  # expired meanwhile: the next check asks again
        except JobNotFoundError:
            return _Outcome(failure="job_not_found")
        except NotFoundError:
            return _Outcome(failure="key_not_found")
        except FileExistsError:
            return _Outcome(failure="destination_exists")
        except ArchiveError as err:
            LOGGER.warning("Restore of %s failed: %s", restore.key, err)
            return _Outcome(failure=err.translation_key)
        except OSError as err:
            LOGGER.warning("Restore of %s could not be written: %s", restore.key, err)
            return _Outcome(failure="write_failed")
        except Exception:  # noqa: BLE001 - the watcher must outlive surprises; retry later
            LOGGER.exception("Unexpected error while checking the restore of %s", restore.key)
            return _Outcome(check_failed=True)

    def _advance_s3(self, restore: PendingRestore) -> _Outcome:
        target = self._coordinator.target
        assert isinstance(target, S3Target)
        state, _expiry = target.restore_state(restore.key)
        if state is RestoreState.IN_PROGRESS:
            return _Outcome(waiting=True)
        archived = target.head(restore.key)
        if archived is None:
            return _Outcome(failure="key_not_found")
        if state is RestoreState.NONE:
            # The copy expired unread (Home Assistant was off while it was readable):
            # ask once more rather than fail; a second expiry fails for good.
            if restore.requested_again:
                return _Outcome(failure=REASON_EXPIRED)
            days = None if archived.archive_status else restore.days
            target.request_restore(restore.key, days, restore.tier)
            return _Outcome(requested_again=True)
        self._record(archived)
        if restore.destination is None:
            return _Outcome()
        if _already_restored(restore, archived.sha256):
            return _Outcome(path=str(restore.destination))
        return _Outcome(download=True)

    def _record(self, archived: ArchivedObject) -> None:
        """Note the restored copy (and its expiry) in the catalog: the cost includes it."""
        try:
            self._coordinator.catalog.record(archived)
        except CatalogError as err:
            LOGGER.warning("Could not record the restore of %s: %s", archived.key, err)

    def _download_s3(self, restore: PendingRestore) -> _Outcome:
        target = self._coordinator.target
        assert isinstance(target, S3Target)
        assert restore.destination is not None
        target.get(restore.key, restore.destination, overwrite=restore.overwrite)
        return _Outcome(path=str(restore.destination))

    def _advance_vault(self, restore: PendingRestore) -> _Outcome:
        target = self._coordinator.target
        assert isinstance(target, VaultTarget)
        assert restore.job_id is not None
        state, message = target.job_state(restore.job_id)
        if state is RestoreState.IN_PROGRESS:
            return _Outcome(waiting=True)
        if state is RestoreState.NONE:
            LOGGER.warning("Retrieval job for %s failed: %s", restore.key, message)
            return _Outcome(failure="job_failed")
        if restore.destination is None:
            return _Outcome()
        archived = self._coordinator.catalog.get(restore.key)
        if archived is None:
            return _Outcome(failure="key_not_found")
        if _already_restored(restore, archived.sha256):
            return _Outcome(path=str(restore.destination))
        return _Outcome(download=True)

    def _download_vault(self, restore: PendingRestore) -> _Outcome:
        target = self._coordinator.target
        assert isinstance(target, VaultTarget)
        assert restore.job_id is not None
        assert restore.destination is not None
        archived = self._coordinator.catalog.get(restore.key)
        if archived is None:
            return _Outcome(failure="key_not_found")
        target.get(
            restore.job_id,
            restore.destination,
            size=archived.size,
            tree_hash=archived.tree_hash,
            sha256=archived.sha256,
            overwrite=restore.overwrite,
        )
        return _Outcome(path=str(restore.destination))

    # -- vault inventory -------------------------------------------------------------

    async def _async_check_inventory(self) -> None:
        async with self._activity.busy():
            await self._async_check_inventory_now()

    async def _async_check_inventory_now(self) -> None:
        try:
            done = await self._hass.async_add_executor_job(self._advance_inventory)
        except (CannotConnectError, ThrottledError, OSError) as err:
            LOGGER.debug("Inventory check postponed: %s", err)
            done = False
        except ArchiveError as err:
            LOGGER.warning("Inventory of %s failed: %s", self._coordinator.config_entry.title, err)
            await self._hass.async_add_executor_job(
                self._coordinator.catalog.set_meta, META_INVENTORY_JOB, ""
            )
            return
        if not done:
            self._schedule_inventory()
            return
        await self._coordinator.async_catalog_changed()

    def _advance_inventory(self) -> bool:
        """Reconcile the catalog with a finished inventory job (executor)."""
        target = self._coordinator.target
        catalog = self._coordinator.catalog
        assert isinstance(target, VaultTarget)
        record = json.loads(catalog.get_meta(META_INVENTORY_JOB) or "null")
        if not record:
            return True
        state, message = target.job_state(record["job_id"])
        if state is RestoreState.IN_PROGRESS:
            return False
        if state is RestoreState.NONE:
            raise ArchiveError(message or "inventory job failed")
        cutoff = datetime.fromisoformat(record["requested_at"]) - INVENTORY_LAG
        self._coordinator.reconcile_with(target.inventory(record["job_id"]), keep_since=cutoff)
        catalog.set_meta(META_INVENTORY_JOB, "")
        return True


def _already_restored(restore: PendingRestore, sha256: str | None) -> bool:
    """Whether the destination already holds the object (a check cut short by a reload).

    Only with ``overwrite`` off: an existing file with other content is then a failure.
    """
    destination = restore.destination
    if restore.overwrite or destination is None or sha256 is None or not destination.is_file():
        return False
    return sha256_file(destination)[0] == sha256
