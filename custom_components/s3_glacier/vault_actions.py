"""The actions on a legacy Glacier vault entry.

A vault has no keys and cannot be listed: an archive is known by the ID the upload
returned, which the catalog keeps with the file's name (from the archive description),
size, SHA-256 and tree hash. Restores are retrieval jobs; refresh is an inventory job.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from homeassistant.core import HomeAssistant, ServiceCall, ServiceResponse

from .action_helpers import (
    ATTR_ARCHIVE_ID,
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
    DEFAULT_DAYS,
    MAX_DAYS,
    ProgressLog,
    check_limit,
    choice,
    iso,
    money,
    remote_errors,
    restore_cost_fields,
)
from .archive.catalog import Catalog, CatalogError
from .archive.models import (
    ArchivedObject,
    PendingRestore,
    RestoreTier,
    StorageClass,
    typical_restore_time,
)
from .archive.pricing import early_deletion_charge, object_monthly_cost, restore_estimate
from .archive.vault import VaultTarget, parse_description
from .const import CONF_TIER, DEFAULT_TIER, EVENT_ARCHIVED, EVENT_DELETED, LOGGER
from .data import S3GlacierConfigEntry
from .paths import KeptSources, Source, collect_sources, invalid, resolve_destination


def _target(entry: S3GlacierConfigEntry) -> VaultTarget:
    target = entry.runtime_data.target
    assert isinstance(target, VaultTarget)
    return target


def file_name(obj: ArchivedObject) -> str:
    """The archived file's name from its description, else its archive ID."""
    info = parse_description(obj.description)
    return info.name if info else obj.key


def _named(catalog: Catalog, name: str) -> list[ArchivedObject]:
    """Archives whose description names ``name`` (executor)."""
    return [obj for obj in catalog.objects() if file_name(obj) == name]


async def _resolve(
    hass: HomeAssistant, entry: S3GlacierConfigEntry, call: ServiceCall
) -> ArchivedObject:
    """The archive the call names by ``archive_id``, or by ``key`` (a file name)."""
    catalog = entry.runtime_data.catalog
    if archive_id := call.data.get(ATTR_ARCHIVE_ID):
        obj = await hass.async_add_executor_job(catalog.get, archive_id)
        if obj is None:
            raise invalid("archive_not_found", archive=archive_id)
        return obj
    if (name := call.data.get(ATTR_KEY)) is None:
        raise invalid("archive_id_required")
    matches = await hass.async_add_executor_job(_named, catalog, name)
    if not matches:
        raise invalid("archive_not_found", archive=name)
    if len(matches) > 1:
        raise invalid("archive_ambiguous", name=name, count=len(matches))
    return matches[0]


def _archive_one(target: VaultTarget, catalog: Catalog, source: Source) -> ArchivedObject:
    """Upload one file and record its archive ID, in one executor job.

    The archive ID is the only handle to the archive: if the catalog cannot take it,
    it goes to the log, so that it is not lost with the error.
    """
    obj = target.put(source.path, progress=ProgressLog("Archiving", source.path.name, source.size))
    try:
        catalog.record(obj)
    except CatalogError:
        LOGGER.error(
            "Archived %s as %s (description %r) but could not record it in the catalog",
            source.path,
            obj.key,
            obj.description,
        )
        raise
    return obj


def _delete_one(target: VaultTarget, catalog: Catalog, archive_id: str) -> None:
    """Delete the archive and its catalog row in one executor job (survives a cancelled call)."""
    target.delete(archive_id)
    catalog.remove(archive_id)


async def archive(
    hass: HomeAssistant, entry: S3GlacierConfigEntry, call: ServiceCall
) -> ServiceResponse:
    """Upload files as vault archives; their IDs go into the catalog at once."""
    if call.data.get(ATTR_STORAGE_CLASS):
        raise invalid("storage_class_not_for_vault")
    if call.data.get(ATTR_KEY) is not None:
        raise invalid("key_not_for_vault")
    data = entry.runtime_data
    target = _target(entry)
    sources = await hass.async_add_executor_job(
        collect_sources, hass, call.data[ATTR_PATH], None, ""
    )
    prices = data.coordinator.prices
    archived: list[dict[str, Any]] = []
    kept = KeptSources()
    try:
        for source in sources:
            async with data.lease(hass, transfer=True) as lease:
                with remote_errors(hass, entry, key=source.path.name):
                    obj = await lease.run(_archive_one, target, data.catalog, source)
                    if call.data[ATTR_DELETE_SOURCE]:
                        # put() returns only once the service confirmed the tree hash.
                        await lease.run(kept.delete, source.path)
            item = {
                "path": str(source.path),
                "archive_id": obj.key,
                "size": obj.size,
                "storage_class": str(StorageClass.VAULT),
                "sha256": obj.sha256,
                "tree_hash": obj.tree_hash,
                "monthly_cost": money(object_monthly_cost(prices, StorageClass.VAULT, obj.size)),
            }
            archived.append(item)
            hass.bus.async_fire(EVENT_ARCHIVED, {"config_entry_id": entry.entry_id, **item})
    finally:
        await data.coordinator.async_catalog_changed()
    kept.check()
    return {"archived": archived, "skipped": [], "bytes": sum(i["size"] for i in archived)}


async def restore(
    hass: HomeAssistant, entry: S3GlacierConfigEntry, call: ServiceCall
) -> ServiceResponse:
    """Start a retrieval job; the watcher downloads its output when it is ready."""
    data = entry.runtime_data
    target = _target(entry)
    obj = await _resolve(hass, entry, call)
    tier = choice(
        call.data.get(ATTR_TIER) or entry.options.get(CONF_TIER, DEFAULT_TIER),
        tuple(RestoreTier),
        "invalid_tier",
    )
    days = call.data.get(ATTR_DAYS, DEFAULT_DAYS)
    if not 1 <= days <= MAX_DAYS:
        raise invalid("invalid_days", days=days, max=MAX_DAYS)
    path = None
    if destination := call.data.get(ATTR_DESTINATION):
        path = await hass.async_add_executor_job(
            resolve_destination, hass, destination, file_name(obj), call.data[ATTR_OVERWRITE]
        )
    response: dict[str, Any] = {
        "archive_id": obj.key,
        "key": file_name(obj),
        "path": str(path) if path else None,
        "size": obj.size,
    }
    # A job's output stays downloadable for 24 hours; days do not apply to vaults.
    estimate = restore_estimate(
        data.coordinator.prices,
        StorageClass.VAULT,
        tier,
        obj.size,
        copy_days=0,
        download=path is not None,
    )
    response |= restore_cost_fields(estimate)
    async with data.lease(hass, obj.key) as lease:
        if running := data.restores.pending(obj.key):
            # One job per archive: each is billed. The running job keeps its destination.
            return response | {
                "status": "restore_in_progress",
                "path": str(running.destination) if running.destination else None,
                "ready_by": iso(running.ready_by),
            }
        with remote_errors(hass, entry, key=obj.key):
            job_id = await lease.run(target.request_restore, obj.key, tier)
        now = datetime.now(UTC)
        restore_job = PendingRestore(
            key=obj.key,
            tier=tier,
            days=1,
            requested_at=now,
            ready_by=now + typical_restore_time(StorageClass.VAULT, tier),
            destination=path,
            overwrite=call.data[ATTR_OVERWRITE],
            job_id=job_id,
        )
        await data.restores.async_watch(restore_job)
    return response | {"status": "restore_requested", "ready_by": iso(restore_job.ready_by)}


async def delete(
    hass: HomeAssistant, entry: S3GlacierConfigEntry, call: ServiceCall
) -> ServiceResponse:
    """Delete an archive; report the charge for deleting it within 90 days."""
    data = entry.runtime_data
    obj = await _resolve(hass, entry, call)
    charge = early_deletion_charge(
        data.coordinator.prices, StorageClass.VAULT, obj.size, obj.last_modified, datetime.now(UTC)
    )
    async with data.lease(hass, obj.key) as lease:
        with remote_errors(hass, entry, key=obj.key):
            await lease.run(_delete_one, _target(entry), data.catalog, obj.key)
        await data.restores.async_forget(obj.key)
        await data.coordinator.async_catalog_changed()
    response: dict[str, Any] = {"archive_id": obj.key, "early_deletion_charge": money(charge)}
    hass.bus.async_fire(
        EVENT_DELETED,
        {
            "config_entry_id": entry.entry_id,
            **response,
            "key": file_name(obj),
            "size": obj.size,
            "storage_class": str(StorageClass.VAULT),
        },
    )
    return response


async def list_objects(
    hass: HomeAssistant, entry: S3GlacierConfigEntry, call: ServiceCall
) -> ServiceResponse:
    """List the archives the catalog knows (a vault itself cannot be listed)."""
    limit = check_limit(call.data[ATTR_LIMIT])
    prefix = call.data.get(ATTR_PREFIX) or ""

    def _matching() -> list[ArchivedObject]:
        found: list[ArchivedObject] = []
        for obj in entry.runtime_data.catalog.objects():
            if file_name(obj).startswith(prefix):
                found.append(obj)
                if len(found) > limit:
                    break
        return found

    async with entry.runtime_data.lease(hass) as lease:
        objects = await lease.run(_matching)
    return {
        "objects": [
            {
                "archive_id": obj.key,
                "name": file_name(obj),
                "description": obj.description,
                "size": obj.size,
                "storage_class": str(StorageClass.VAULT),
                "last_modified": iso(obj.last_modified),
                "sha256": obj.sha256,
            }
            for obj in objects[:limit]
        ],
        "truncated": len(objects) > limit,
    }


async def refresh(
    hass: HomeAssistant, entry: S3GlacierConfigEntry, call: ServiceCall
) -> ServiceResponse:
    """Start an inventory job; the catalog is reconciled with it when it finishes."""
    with remote_errors(hass, entry, key=_target(entry).vault_name):
        job_id = await hass.async_add_executor_job(_target(entry).request_inventory)
    ready_by = await entry.runtime_data.restores.async_watch_inventory(job_id)
    return {"status": "inventory_requested", "job_id": job_id, "ready_by": iso(ready_by)}
