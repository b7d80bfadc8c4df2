"""The actions on an S3 bucket entry."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from itertools import islice
from pathlib import Path
from typing import Any

from homeassistant.core import HomeAssistant, ServiceCall, ServiceResponse

from .action_helpers import (
    ATTR_DAYS,
    ATTR_DELETE_SOURCE,
    ATTR_DESTINATION,
    ATTR_KEY,
    ATTR_LIMIT,
    ATTR_OVERWRITE,
    ATTR_PATH,
    ATTR_PREFIX,
    ATTR_STORAGE_CLASS,
    ATTR_TIER,
    MAX_DAYS,
    MIB,
    ProgressLog,
    check_limit,
    choice,
    iso,
    money,
    remote_errors,
)
from .archive.catalog import Catalog, CatalogError
from .archive.models import (
    S3_STORAGE_CLASSES,
    ArchivedObject,
    PendingRestore,
    RestoreState,
    RestoreTier,
    ServerSideEncryption,
    TransferOptions,
    tier_available,
    typical_restore_time,
)
from .archive.pricing import early_deletion_charge, object_monthly_cost, restore_cost
from .archive.s3 import PutResult, S3Target
from .const import (
    CONF_CONCURRENCY,
    CONF_ENCRYPTION,
    CONF_KMS_KEY_ID,
    CONF_PART_SIZE_MIB,
    CONF_STORAGE_CLASS,
    DEFAULT_CONCURRENCY,
    DEFAULT_ENCRYPTION,
    DEFAULT_PART_SIZE_MIB,
    DEFAULT_STORAGE_CLASS,
    EVENT_ARCHIVED,
    EVENT_DELETED,
    LOGGER,
)
from .data import S3GlacierConfigEntry
from .helpers import parse_option
from .paths import (
    Source,
    check_in_prefix,
    collect_sources,
    invalid,
    resolve_destination,
    validate_key,
)


def _target(entry: S3GlacierConfigEntry) -> S3Target:
    target = entry.runtime_data.target
    assert isinstance(target, S3Target)
    return target


def _transfer_options(entry: S3GlacierConfigEntry, storage_class: str | None) -> TransferOptions:
    """How this entry's uploads are made: the action's class, else the options'."""
    options = entry.options
    chosen = storage_class or options.get(CONF_STORAGE_CLASS, DEFAULT_STORAGE_CLASS)
    encryption = options.get(CONF_ENCRYPTION, DEFAULT_ENCRYPTION)
    return TransferOptions(
        storage_class=choice(chosen, S3_STORAGE_CLASSES, "invalid_storage_class"),
        encryption=parse_option(encryption, ServerSideEncryption) or ServerSideEncryption.AES256,
        kms_key_id=options.get(CONF_KMS_KEY_ID),
        part_size=int(options.get(CONF_PART_SIZE_MIB, DEFAULT_PART_SIZE_MIB)) * MIB,
        concurrency=int(options.get(CONF_CONCURRENCY, DEFAULT_CONCURRENCY)),
    )


def _archive_one(
    target: S3Target,
    catalog: Catalog,
    source: Source,
    options: TransferOptions,
    overwrite: bool,
) -> PutResult:
    """Upload one file and record it, in one executor job (survives a cancelled call)."""
    result = target.put(
        source.path,
        source.key,
        options,
        overwrite=overwrite,
        progress=ProgressLog("Archiving", source.key, source.size),
    )
    try:
        catalog.record(result.object)
    except CatalogError:
        LOGGER.error(
            "%s is stored in the bucket but could not be recorded in the catalog;"
            " the next reconcile will pick it up",
            source.key,
        )
        raise
    return result


def _delete_one(target: S3Target, catalog: Catalog, key: str) -> None:
    """Delete the object and its catalog row in one executor job (survives a cancelled call)."""
    target.delete(key)
    catalog.remove(key)


async def archive(
    hass: HomeAssistant, entry: S3GlacierConfigEntry, call: ServiceCall
) -> ServiceResponse:
    """Upload files (a file, a directory or a glob) to the bucket."""
    data = entry.runtime_data
    target = _target(entry)
    options = _transfer_options(entry, call.data.get(ATTR_STORAGE_CLASS))
    prices = data.coordinator.prices
    archived: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    sources = await hass.async_add_executor_job(
        collect_sources, hass, call.data[ATTR_PATH], call.data.get(ATTR_KEY), target.prefix
    )
    try:
        for source in sources:
            async with data.lease(hass, source.key, transfer=True) as lease:
                with remote_errors(hass, entry, key=source.key):
                    result = await lease.run(
                        _archive_one,
                        target,
                        data.catalog,
                        source,
                        options,
                        call.data[ATTR_OVERWRITE],
                    )
                    if call.data[ATTR_DELETE_SOURCE]:
                        # put() returns only once a HEAD confirmed size and SHA-256.
                        await lease.run(source.path.unlink)
            obj = result.object
            if result.skipped:
                skipped.append({"path": str(source.path), "key": obj.key, "reason": result.reason})
                continue
            item = {
                "path": str(source.path),
                "key": obj.key,
                "size": obj.size,
                "storage_class": str(obj.storage_class),
                "sha256": obj.sha256,
                "etag": obj.etag,
                "monthly_cost": money(object_monthly_cost(prices, obj.storage_class, obj.size)),
            }
            archived.append(item)
            hass.bus.async_fire(EVENT_ARCHIVED, {"config_entry_id": entry.entry_id, **item})
    finally:
        await data.coordinator.async_catalog_changed()
    return {
        "archived": archived,
        "skipped": skipped,
        "bytes": sum(item["size"] for item in archived),
    }


async def _download_now(
    hass: HomeAssistant,
    entry: S3GlacierConfigEntry,
    obj: ArchivedObject,
    call: ServiceCall,
    path: Path,
) -> dict[str, Any]:
    data = entry.runtime_data
    target = _target(entry)
    async with data.lease(hass, obj.key, transfer=True) as lease:
        with remote_errors(hass, entry, key=obj.key):
            restored = await lease.run(
                partial(
                    target.get,
                    obj.key,
                    path,
                    overwrite=call.data[ATTR_OVERWRITE],
                    progress=ProgressLog("Restoring", obj.key, obj.size),
                )
            )
    return {"status": "restored", "path": str(path), "size": restored.size}


async def restore(
    hass: HomeAssistant, entry: S3GlacierConfigEntry, call: ServiceCall
) -> ServiceResponse:
    """Download now, or start a Glacier restore that the watcher finishes."""
    target = _target(entry)
    data = entry.runtime_data
    if ATTR_KEY not in call.data:
        raise invalid("key_required")
    key = check_in_prefix(validate_key(call.data[ATTR_KEY]), _target(entry).prefix)
    tier = choice(
        call.data.get(ATTR_TIER) or RestoreTier.STANDARD, tuple(RestoreTier), "invalid_tier"
    )
    days = call.data[ATTR_DAYS]
    if not 1 <= days <= MAX_DAYS:
        raise invalid("invalid_days", days=days, max=MAX_DAYS)
    with remote_errors(hass, entry, key=key):
        obj = await hass.async_add_executor_job(target.head, key)
    if obj is None:
        raise invalid("key_not_found", key=key)
    path = None
    if destination := call.data.get(ATTR_DESTINATION):
        path = await hass.async_add_executor_job(
            resolve_destination, hass, destination, key, call.data[ATTR_OVERWRITE]
        )
    needs_restore = obj.storage_class.needs_restore
    if needs_restore and not tier_available(obj.storage_class, tier):
        raise invalid("tier_not_available", tier=tier, storage_class=obj.storage_class)
    if not needs_restore and path is None:
        raise invalid("destination_required", key=key)

    response: dict[str, Any] = {
        "key": key,
        "path": str(path) if path else None,
        "size": obj.size,
        "ready_by": None,
        "estimated_cost": money(
            restore_cost(data.coordinator.prices, obj.storage_class, tier, obj.size, days)
        ),
    }
    if not needs_restore:
        assert path is not None  # destination_required was raised otherwise
        return response | await _download_now(hass, entry, obj, call, path)

    with remote_errors(hass, entry, key=key):
        state, _expiry = await hass.async_add_executor_job(target.restore_state, key)
        if state is RestoreState.RESTORED:
            if path is None:
                return response | {"status": "restored", "size": obj.size}
            return response | await _download_now(hass, entry, obj, call, path)
        status = "restore_in_progress"
        if state is RestoreState.NONE:
            state = await hass.async_add_executor_job(target.request_restore, key, days, tier)
            status = "restore_requested"
    now = datetime.now(UTC)
    pending = PendingRestore(
        key=key,
        tier=tier,
        days=days,
        requested_at=now,
        ready_by=now + typical_restore_time(obj.storage_class, tier),
        destination=path,
        overwrite=call.data[ATTR_OVERWRITE],
    )
    await data.restores.async_watch(pending)
    return response | {"status": status, "ready_by": pending.ready_by.isoformat()}


async def delete(
    hass: HomeAssistant, entry: S3GlacierConfigEntry, call: ServiceCall
) -> ServiceResponse:
    """Delete an object; report the early deletion charge."""
    data = entry.runtime_data
    if ATTR_KEY not in call.data:
        raise invalid("key_required")
    key = check_in_prefix(validate_key(call.data[ATTR_KEY]), _target(entry).prefix)
    target = _target(entry)
    async with data.lease(hass, key) as lease:
        with remote_errors(hass, entry, key=key):
            obj = await lease.run(target.head, key)
            if obj is None:
                raise invalid("key_not_found", key=key)
            charge = early_deletion_charge(
                data.coordinator.prices,
                obj.storage_class,
                obj.size,
                obj.last_modified,
                datetime.now(UTC),
            )
            await lease.run(_delete_one, target, data.catalog, key)
        await data.restores.async_forget(key)
        await data.coordinator.async_catalog_changed()
    response: dict[str, Any] = {"key": key, "early_deletion_charge": money(charge)}
    hass.bus.async_fire(
        EVENT_DELETED,
        {
            "config_entry_id": entry.entry_id,
            **response,
            "size": obj.size,
            "storage_class": str(obj.storage_class),
        },
    )
    return response


async def list_objects(
    hass: HomeAssistant, entry: S3GlacierConfigEntry, call: ServiceCall
) -> ServiceResponse:
    """List objects under a prefix with their class and restore state."""
    target = _target(entry)
    data = entry.runtime_data
    limit = check_limit(call.data[ATTR_LIMIT])
    prefix = call.data.get(ATTR_PREFIX)
    if prefix is not None:
        check_in_prefix(prefix, target.prefix)

    def _page() -> tuple[list[ArchivedObject], set[str]]:
        objects = list(islice(target.iterate(prefix), limit + 1))
        return objects, {p.key for p in data.catalog.pending_restores()}

    async with data.lease(hass) as lease:
        with remote_errors(hass, entry, key=prefix or target.prefix):
            objects, pending = await lease.run(_page)

    def _restore_state(obj: ArchivedObject) -> str:
        # Not every service reports restore status in listings; ours we know.
        if obj.restore_state is RestoreState.NONE and obj.key in pending:
            return str(RestoreState.IN_PROGRESS)
        return str(obj.restore_state)

    return {
        "objects": [
            {
                "key": obj.key,
                "size": obj.size,
                "storage_class": str(obj.storage_class),
                "last_modified": iso(obj.last_modified),
                "restore": _restore_state(obj),
                "restore_expiry": iso(obj.restore_expiry),
            }
            for obj in objects[:limit]
        ],
        "truncated": len(objects) > limit,
    }


async def refresh(
    hass: HomeAssistant, entry: S3GlacierConfigEntry, call: ServiceCall
) -> ServiceResponse:
    """Reconcile the catalog with the bucket now."""
    target = _target(entry)
    with remote_errors(hass, entry, key=target.prefix):
        result = await entry.runtime_data.coordinator.async_reconcile()
    return {
        "added": result.added,
        "removed": result.removed,
        "changed": result.changed,
        "objects": result.objects,
        "bytes": result.bytes,
    }
