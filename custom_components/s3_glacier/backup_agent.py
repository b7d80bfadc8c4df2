"""The backup agent of an S3 bucket entry: Home Assistant's backups in a storage class.

Layout, shared with Home Assistant's built-in AWS S3 agent so that either lists the
other's backups: ``<prefix>/<suggested name>.tar`` (in the entry's backup class) and
``<prefix>/<suggested name>.metadata.json`` (the backup's ``as_dict()``, always
STANDARD, so listing never needs a restore). Our sidecars add an ``s3_glacier`` key
with the SHA-256 of the tar; ``AgentBackup.from_dict`` ignores it.

A download from GLACIER, DEEP_ARCHIVE or an Intelligent-Tiering archive tier (what
the tar's HEAD says) starts a restore, hands it to the entry's restore watcher and
fails with a message saying when to come back; once the watcher sees the copy
readable, a repair issue says the backup is ready.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
import contextlib
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
import json
import time
from typing import Any

from homeassistant.components.backup import (
    AgentBackup,
    BackupAgent,
    BackupAgentError,
    BackupNotFound,
    suggested_filename,
)
from homeassistant.components.backup.agent import BackupAgentUnreachableError
from homeassistant.core import CALLBACK_TYPE, Event, HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util
from homeassistant.util.async_iterator import AsyncIteratorReader
from homeassistant.util.hass_dict import HassKey

from . import permissions, repairs
from .archive.catalog import Catalog, CatalogError
from .archive.errors import (
    AccessDeniedError,
    ArchiveError,
    AuthError,
    BucketNotFoundError,
    CannotConnectError,
    ChecksumMismatchError,
    FileTooLargeError,
    NotFoundError,
    ObjectExistsError,
    ThrottledError,
)
from .archive.models import (
    MIB,
    S3_STORAGE_CLASSES,
    ArchivedObject,
    ArchiveStatus,
    PendingRestore,
    RestoreSource,
    RestoreState,
    RestoreTier,
    StorageClass,
    TransferOptions,
    tier_available,
    typical_restore_time,
)
from .archive.s3 import S3Target, readable_state
from .archive.stream_upload import ObjectStream, put_small, read_small, upload_stream
from .archive.transfer import CHUNK_SIZE, ProgressCallback
from .backup_retention import async_check_retention
from .const import (
    BACKUP_LIST_CACHE_SECONDS,
    BACKUP_RESTORE_DAYS,
    BACKUP_SIDECAR_MAX_BYTES,
    CONF_BACKUP_STORAGE_CLASS,
    CONF_TIER,
    DATA_BACKUP_AGENT_LISTENERS,
    DEFAULT_BACKUP_STORAGE_CLASS,
    DOMAIN,
    EVENT_RESTORE_COMPLETED,
    LOGGER,
)
from .data import Lease, S3GlacierConfigEntry
from .helpers import is_vault, parse_option, transfer_options
from .translate import translated

TAR_SUFFIX = ".tar"
SIDECAR_SUFFIX = ".metadata.json"
# Our additions to the sidecar, under a key of their own.
SIDECAR_EXTRA = DOMAIN
# Repair issue kind: a cold backup was restored and can be downloaded.
ISSUE_BACKUP_READY = "backup_ready"

# Backups go up in parts of at most 8 MiB, at most 4 in flight (the entry's part size
# and concurrency when lower): about 32 MiB of parts held, where the archive defaults
# (16 MiB x 4) held 64. Measured with bench/bench_backup_agent.py (1 GiB, local
# SeaweedFS, 2 busy shared cores, one agent per process, each run beside a run of Home
# Assistant's built-in agent, 20 MiB parts one at a time): peak RSS over start 38-44 MiB
# against the built-in's 51-65 (70 for 16 MiB x 4); speed within the noise of the
# built-in run beside it (faster in 3 of 4 pairs, 11% slower in one). 16 MiB x 2 held
# as little but was slower: a part being read takes one of the slots, so only one part
# was being sent.
BACKUP_PART_SIZE = 8 * MIB
BACKUP_PARTS_IN_FLIGHT = 4

BACKUP_LISTENERS: HassKey[list[Callable[[], None]]] = HassKey(DATA_BACKUP_AGENT_LISTENERS)

# Engine errors → the backup agent's own messages (they name the backup location).
_ERROR_KEYS: tuple[tuple[type[ArchiveError], str], ...] = (
    (AuthError, "backup_invalid_auth"),
    (FileTooLargeError, "backup_too_large"),
    (ThrottledError, "backup_throttled"),
    (ChecksumMismatchError, "backup_checksum_mismatch"),
    (ObjectExistsError, "backup_exists"),
)


# Errors about the service, the keys or the bucket, not about one sidecar.
_SERVICE_ERRORS = (
    AuthError,
    AccessDeniedError,
    BucketNotFoundError,
    CannotConnectError,
    ThrottledError,
)


@dataclass(frozen=True, slots=True)
class StoredBackup:
    """A backup found in the bucket: its metadata, its two keys and its digest."""

    backup: AgentBackup
    tar_key: str
    sidecar_key: str
    sha256: str | None


def backup_keys(prefix: str, backup: AgentBackup) -> tuple[str, str]:
    """The tar and sidecar keys of ``backup`` under ``prefix`` ('' or ending in '/')."""
    base = suggested_filename(backup).rsplit(".", 1)[0]
    return f"{prefix}{base}{TAR_SUFFIX}", f"{prefix}{base}{SIDECAR_SUFFIX}"


def backup_storage_class(entry: S3GlacierConfigEntry) -> StorageClass:
    """The class backups are stored in (option values are lower-case class names)."""
    value = str(entry.options.get(CONF_BACKUP_STORAGE_CLASS, DEFAULT_BACKUP_STORAGE_CLASS))
    return parse_option(value, S3_STORAGE_CLASSES) or StorageClass.GLACIER_IR


def _restore_tier(entry: S3GlacierConfigEntry, source: RestoreSource) -> RestoreTier:
    """The tier from the options (Standard by default), if it exists for ``source``."""
    wanted = str(entry.options.get(CONF_TIER, RestoreTier.STANDARD))
    tier = parse_option(wanted, RestoreTier) or RestoreTier.STANDARD
    return tier if tier_available(source, tier) else RestoreTier.STANDARD


def backup_transfer_options(entry: S3GlacierConfigEntry) -> TransferOptions:
    """How backups are sent: the entry's options, parts capped for memory (see above)."""
    options = transfer_options(entry.options, backup_storage_class(entry))
    return replace(
        options,
        part_size=min(options.part_size, BACKUP_PART_SIZE),
        concurrency=min(options.concurrency, BACKUP_PARTS_IN_FLIGHT),
    )


@contextmanager
def agent_errors(
    name: str = "", report_denied: Callable[[AccessDeniedError], None] | None = None
) -> Iterator[None]:
    """Re-raise engine errors as translated ``BackupAgentError``s.

    An unreachable endpoint is ``BackupAgentUnreachableError``, which the backup
    manager shows as such; a key that vanished is ``BackupNotFound``, but a bucket
    that vanished is an error of its own (the backup may well be fine elsewhere).
    A refused IAM action is named in the message and handed to ``report_denied``.
    """
    try:
        yield
    except CannotConnectError as err:
        raise translated(
            BackupAgentUnreachableError, err, "backup_cannot_connect", name=name
        ) from err
    except BucketNotFoundError as err:
        raise translated(BackupAgentError, err, "backup_bucket_not_found", name=name) from err
    except NotFoundError as err:
        raise translated(BackupNotFound, err, "backup_not_found", name=name) from err
    except AccessDeniedError as err:
        if report_denied is not None:
            report_denied(err)
        raise translated(BackupAgentError, err, "backup_access_denied", name=name) from err
    except ArchiveError as err:
        key = next((k for cls, k in _ERROR_KEYS if isinstance(err, cls)), "backup_failed")
        raise translated(BackupAgentError, err, key, name=name) from err


def _agent_error(cls: type[BackupAgentError], key: str, **placeholders: str) -> BackupAgentError:
    return cls(
        translation_domain=DOMAIN, translation_key=key, translation_placeholders=placeholders
    )


# -- blocking work (executor) ----------------------------------------------------------


def _list_backups(target: S3Target) -> dict[str, StoredBackup]:
    """Every backup under the prefix: a sidecar beside its tar (executor)."""
    prefix = target.prefix
    keys = {obj.key for obj in target.iterate(prefix, top_level=True)}
    found: dict[str, StoredBackup] = {}
    for key in sorted(keys):
        name = key[len(prefix) :]
        if "/" in name or not name.endswith(SIDECAR_SUFFIX):
            continue
        tar_key = key.removesuffix(SIDECAR_SUFFIX) + TAR_SUFFIX
        if tar_key not in keys:
            continue  # a sidecar left by an interrupted delete: nothing to restore
        stored = _read_sidecar(target, key, tar_key)
        if stored is not None:
            found[stored.backup.backup_id] = stored
    return found


def _read_sidecar(target: S3Target, key: str, tar_key: str) -> StoredBackup | None:
    """Parse one sidecar; ``None`` (and a warning) when it is not a backup's metadata."""
    try:
        content = json.loads(read_small(target, key, BACKUP_SIDECAR_MAX_BYTES))
        backup = AgentBackup.from_dict(content)
    except _SERVICE_ERRORS:
        raise  # the whole listing fails: nothing else would read either
    except NotFoundError:
        return None  # deleted since the listing
    except (ArchiveError, ValueError, KeyError, TypeError) as err:
        LOGGER.warning("Skipped %s: not readable as a backup's metadata (%s)", key, err)
        return None
    extra = content.get(SIDECAR_EXTRA)
    sha256 = extra.get("sha256") if isinstance(extra, dict) else None
    return StoredBackup(backup, tar_key, key, sha256 if isinstance(sha256, str) else None)


def _sidecar(backup: AgentBackup, obj: ArchivedObject) -> bytes:
    """The sidecar of a backup stored as ``obj``."""
    extra = {"sha256": obj.sha256, "storage_class": str(obj.storage_class), "size": obj.size}
    return json.dumps({**backup.as_dict(), SIDECAR_EXTRA: extra}).encode()


def _upload(
    target: S3Target,
    catalog: Catalog,
    reader: AsyncIteratorReader,
    backup: AgentBackup,
    options: TransferOptions,
    progress: ProgressCallback | None,
) -> ArchivedObject:
    """Stream the tar, then write its sidecar, then record both (executor).

    Without its sidecar a tar would never be listed (nor deleted by retention): a
    failed sidecar removes the tar it belongs to.
    """
    tar_key, sidecar_key = backup_keys(target.prefix, backup)
    result = upload_stream(target, reader, backup.size, tar_key, options, progress=progress)
    try:
        sidecar = put_small(
            target,
            sidecar_key,
            _sidecar(backup, result.object),
            replace(options, storage_class=StorageClass.STANDARD),
        )
    except BaseException:
        _delete_quietly(target, tar_key)
        raise
    try:
        catalog.record_many([result.object, sidecar])
    except CatalogError as err:
        # The backup is stored; the next reconcile records it.
        LOGGER.error("Backup %s is stored but not recorded in the catalog: %s", tar_key, err)
    return result.object


def _delete(target: S3Target, catalog: Catalog, stored: StoredBackup) -> None:
    """Delete the tar, then its sidecar, and forget both (executor).

    The tar goes first: should the sidecar's delete fail, what is left is a few
    bytes of STANDARD, never a backup billed in its class that nothing lists.
    """
    for key in (stored.tar_key, stored.sidecar_key):
        try:
            target.delete(key)
        except BucketNotFoundError:
            raise  # the bucket is gone, not the key: nothing was deleted
        except NotFoundError:
            pass
        try:
            catalog.remove(key)
        except CatalogError as err:
            LOGGER.warning("Could not forget %s in the catalog: %s", key, err)


def _delete_quietly(target: S3Target, key: str) -> None:
    try:
        target.delete(key)
    except ArchiveError as err:
        LOGGER.warning("Could not remove %s after its sidecar failed: %s", key, err)


def _backup_name(target: S3Target, tar_key: str) -> str | None:
    """The name of the backup whose tar is ``tar_key``; ``None`` if it is not one (executor)."""
    sidecar_key = tar_key.removesuffix(TAR_SUFFIX) + SIDECAR_SUFFIX
    try:
        stored = _read_sidecar(target, sidecar_key, tar_key)
    except ArchiveError:
        return None
    return stored.backup.name if stored else None


# -- the agent -------------------------------------------------------------------------


class S3GlacierBackupAgent(BackupAgent):
    """Backups of one S3 bucket entry, in the storage class of its options."""

    domain = DOMAIN

    def __init__(self, hass: HomeAssistant, entry: S3GlacierConfigEntry) -> None:
        """Serve the entry's bucket and prefix."""
        super().__init__()
        self._hass = hass
        self._entry = entry
        self.name = entry.title
        self.unique_id = entry.entry_id
        self._cache: dict[str, StoredBackup] = {}
        self._cache_until = 0.0
        self._cache_lock = asyncio.Lock()

    def _errors(self, name: str) -> contextlib.AbstractContextManager[None]:
        """``agent_errors`` for this entry: a refused IAM action raises its repair issue."""
        return agent_errors(name, partial(permissions.async_report_denied, self._hass, self._entry))

    @property
    def _target(self) -> S3Target:
        target = self._entry.runtime_data.target
        assert isinstance(target, S3Target)
        return target

    def _invalidate(self) -> None:
        self._cache_until = 0.0

    async def _async_backups(self) -> dict[str, StoredBackup]:
        """The backups in the bucket, listed at most every few minutes."""
        async with self._cache_lock:
            if time.monotonic() >= self._cache_until:
                with self._errors(self.name):
                    self._cache = await self._hass.async_add_executor_job(
                        _list_backups, self._target
                    )
                self._cache_until = time.monotonic() + BACKUP_LIST_CACHE_SECONDS
            return self._cache

    async def _async_find(self, backup_id: str) -> StoredBackup:
        if stored := (await self._async_backups()).get(backup_id):
            return stored
        raise _agent_error(BackupNotFound, "backup_not_found", name=backup_id)

    async def async_list_backups(self, **kwargs: Any) -> list[AgentBackup]:
        """List the backups (a sidecar beside its tar) under the prefix.

        The Backups page lists them after every settings change: the moment to check
        what the retention costs, at the newest backup's size.
        """
        backups = [stored.backup for stored in (await self._async_backups()).values()]
        if backups:
            newest = max(backups, key=lambda backup: backup.date)
            self._check_retention(newest.size)
        return backups

    @callback
    def _check_retention(self, size: int) -> None:
        async_check_retention(
            self._hass,
            self._entry,
            self.agent_id,
            backup_storage_class(self._entry),
            size,
            self._entry.runtime_data.coordinator.prices,
        )

    async def async_get_backup(self, backup_id: str, **kwargs: Any) -> AgentBackup:
        """Return one backup; ``BackupNotFound`` if it is not there."""
        return (await self._async_find(backup_id)).backup

    async def async_upload_backup(
        self,
        *,
        open_stream: Callable[[], Coroutine[Any, Any, AsyncIterator[bytes]]],
        backup: AgentBackup,
        **kwargs: Any,
    ) -> None:
        """Stream the backup into the bucket in its class, then its sidecar.

        ``on_progress`` (Home Assistant 2026.4 and newer) is told the bytes sent.
        Cancelling aborts the stream; the multipart upload is aborted before this
        returns, so no billed part is left.
        """
        data = self._entry.runtime_data
        progress = _progress_bridge(self._hass, kwargs.get("on_progress"))
        options = backup_transfer_options(self._entry)
        async with data.activity.busy(), data.transfers:
            reader = AsyncIteratorReader(self._hass.loop, await open_stream())
            job = self._hass.async_add_executor_job(
                _upload, self._target, data.catalog, reader, backup, options, progress
            )
            try:
                with self._errors(backup.name):
                    await asyncio.shield(job)
            except asyncio.CancelledError:
                reader.abort()
                await asyncio.wait([job])
                if not job.cancelled():
                    job.exception()  # retrieved: the abort is why it failed
                raise
            except BackupAgentError:
                raise
            except Exception as err:
                # Reading the local backup failed (the stream, not the bucket).
                raise _agent_error(
                    BackupAgentError, "backup_failed", name=backup.name, error=type(err).__name__
                ) from err
            finally:
                self._invalidate()
        self._check_retention(backup.size)
        await data.coordinator.async_catalog_changed()

    async def async_download_backup(self, backup_id: str, **kwargs: Any) -> AsyncIterator[bytes]:
        """Stream a backup, checked against its SHA-256 at the end.

        A backup in GLACIER, DEEP_ARCHIVE or an Intelligent-Tiering archive tier is
        restored first: the restore is started and followed, and this fails with a
        message saying when it is expected to be ready.
        """
        stored = await self._async_find(backup_id)
        async with self._entry.runtime_data.lease(self._hass) as lease:
            with self._errors(stored.backup.name):
                head = await lease.run(self._target.head, stored.tar_key)
                if head is None:
                    raise NotFoundError(stored.tar_key, key=stored.tar_key)
                # What the HEAD says, not the class alone: an INTELLIGENT_TIERING object
                # in an archive tier (ArchiveStatus) needs a restore like a GLACIER one.
                state, _expiry = readable_state(head)
                if state is not RestoreState.RESTORED:
                    await self._async_restore(lease, stored, head, state)
        return self._async_stream(stored)

    async def _async_stream(self, stored: StoredBackup) -> AsyncIterator[bytes]:
        """The tar's bytes; the stream holds a busy count and a transfer slot throughout.

        Taken when the stream starts and given back in its ``finally`` (a stream never
        started holds nothing): an unload meanwhile keeps the client and the catalog
        open until the last read, even one a cancelled consumer left running, has ended.
        """
        name = stored.backup.name
        async with self._entry.runtime_data.lease(self._hass, transfer=True) as lease:
            with self._errors(name):
                download = await lease.run(ObjectStream, self._target, stored.tar_key, CHUNK_SIZE)
            try:
                with self._errors(name):
                    while chunk := await lease.run(download.next_chunk):
                        yield chunk
                expected = stored.sha256 or download.stored_sha256
                if download.size != download.expected_size or (
                    expected is not None and download.sha256 != expected
                ):
                    raise _agent_error(BackupAgentError, "backup_checksum_mismatch", name=name)
            finally:
                await lease.run(download.close)
        repairs.async_clear(self._hass, self._entry, ISSUE_BACKUP_READY, stored.tar_key)

    async def _async_restore(
        self, lease: Lease, stored: StoredBackup, head: ArchivedObject, state: RestoreState
    ) -> None:
        """Start (or follow) the restore of a cold backup; raise when it is not readable yet.

        Tier, pace and ``Days`` follow the object's ``restore_source``: an
        Intelligent-Tiering archive tier has its own tiers and times, and S3 refuses
        ``Days`` there (the object moves back to the Frequent Access tier).
        """
        restores = self._entry.runtime_data.restores
        pending = restores.pending(stored.tar_key)
        if pending is None:
            source = head.restore_source
            tier = _restore_tier(self._entry, source)
            if state is RestoreState.NONE:
                days = None if isinstance(source, ArchiveStatus) else BACKUP_RESTORE_DAYS
                started = await lease.run(self._target.request_restore, stored.tar_key, days, tier)
                if started is RestoreState.RESTORED:
                    return
            now = dt_util.utcnow()
            pending = PendingRestore(
                key=stored.tar_key,
                tier=tier,
                days=BACKUP_RESTORE_DAYS,
                requested_at=now,
                ready_by=now + typical_restore_time(source, tier),
            )
            await restores.async_watch(pending)
            key = "backup_restore_started"
        else:
            key = "backup_restore_in_progress"
        raise _agent_error(
            BackupAgentError, key, name=stored.backup.name, ready_by=_local(pending.ready_by)
        )

    async def async_delete_backup(self, backup_id: str, **kwargs: Any) -> None:
        """Delete the tar and its sidecar; ``BackupNotFound`` if the backup is not there."""
        stored = await self._async_find(backup_id)
        data = self._entry.runtime_data
        try:
            # The tar's lock and a lease: a cancelled call leaves the delete running,
            # and the catalog open until it has forgotten both keys.
            async with data.lease(self._hass, stored.tar_key) as lease:
                with self._errors(stored.backup.name):
                    await lease.run(_delete, self._target, data.catalog, stored)
                if data.restores.pending(stored.tar_key):
                    await data.restores.async_forget(stored.tar_key)
        finally:
            self._invalidate()
        repairs.async_clear(self._hass, self._entry, ISSUE_BACKUP_READY, stored.tar_key)
        await data.coordinator.async_catalog_changed()


def _local(moment: datetime) -> str:
    """A time as the user reads it: local time zone, to the minute."""
    return dt_util.as_local(moment).strftime("%Y-%m-%d %H:%M")


def _progress_bridge(
    hass: HomeAssistant, on_progress: Callable[..., None] | None
) -> ProgressCallback | None:
    """Hand the bytes sent (from upload threads) to Home Assistant's callback, on the loop."""
    if on_progress is None:
        return None

    def report(done: int, /) -> None:
        hass.loop.call_soon_threadsafe(partial(on_progress, bytes_uploaded=done))

    return report


# -- lifecycle -------------------------------------------------------------------------


@callback
def async_notify_backup_listeners(hass: HomeAssistant) -> None:
    """Tell the backup manager that the set of agents changed."""
    for listener in list(hass.data.get(BACKUP_LISTENERS, ())):
        listener()


@callback
def async_setup_backup_hooks(hass: HomeAssistant, entry: S3GlacierConfigEntry) -> CALLBACK_TYPE:
    """Follow the entry's life for the backup agent; return what undoes it.

    The agents list follows the entry's state (it only holds loaded bucket
    entries), and a finished restore of a backup's tar raises a "ready" issue.
    """
    undo = [entry.async_on_state_change(partial(async_notify_backup_listeners, hass))]
    if not is_vault(entry.data):

        @callback
        def _for_entry(event_data: Any) -> bool:
            return bool(
                event_data.get("config_entry_id") == entry.entry_id
                and str(event_data.get("key", "")).endswith(TAR_SUFFIX)
            )

        async def _async_ready(event: Event[Any]) -> None:
            tar_key = str(event.data["key"])
            target = entry.runtime_data.target
            assert isinstance(target, S3Target)
            name = await hass.async_add_executor_job(_backup_name, target, tar_key)
            if name is not None:
                repairs.async_raise(
                    hass,
                    entry,
                    ISSUE_BACKUP_READY,
                    detail=tar_key,
                    severity=ir.IssueSeverity.WARNING,
                    name=name,
                    days=str(BACKUP_RESTORE_DAYS),
                )

        undo.append(
            hass.bus.async_listen(EVENT_RESTORE_COMPLETED, _async_ready, event_filter=_for_entry)
        )

    @callback
    def _undo() -> None:
        for remove in undo:
            remove()

    return _undo
