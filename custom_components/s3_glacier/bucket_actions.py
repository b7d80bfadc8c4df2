"""The actions on an S3 bucket entry."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
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
    DEFAULT_DAYS,
    MAX_DAYS,
    ProgressLog,
    check_limit,
    choice,
    class_name,
    iso,
    money,
    remote_errors,
    restore_cost_fields,
)
from .archive.catalog import Catalog, CatalogError
from .archive.models import (
    S3_STORAGE_CLASSES,
    ArchivedObject,
    ArchiveStatus,
    PendingRestore,
    RestoreSource,
    RestoreState,
    RestoreTier,
    TransferOptions,
    available_tiers,
    tier_available,
    typical_restore_time,
)
from .archive.pricing import (
    PriceTable,
    early_deletion_charge,
    object_monthly_cost,
    restore_estimate,
)
from .archive.s3 import PutResult, S3Target, readable_state
from .const import (
    CONF_STORAGE_CLASS,
    DEFAULT_STORAGE_CLASS,
    EVENT_ARCHIVED,
    EVENT_DELETED,
    EVENT_RESTORE_COMPLETED,
    LOGGER,
)
from .data import S3GlacierConfigEntry
from .helpers import option_value, transfer_options
from .paths import (
    KeptSources,
    Source,
    check_in_prefix,
    collect_sources,
    invalid,
    resolve_destination,
    validate_key,
    writing,
)


def bucket_target(entry: S3GlacierConfigEntry) -> S3Target:
    """The loaded bucket entry's S3 target."""
    target = entry.runtime_data.target
    assert isinstance(target, S3Target)
    return target


def entry_transfer_options(
    entry: S3GlacierConfigEntry, storage_class: str | None
) -> TransferOptions:
    """How this entry's uploads are made: the action's class, else the options'."""
    chosen = storage_class or entry.options.get(CONF_STORAGE_CLASS, DEFAULT_STORAGE_CLASS)
    return transfer_options(
        entry.options, choice(chosen, S3_STORAGE_CLASSES, "invalid_storage_class")
    )


def archive_one(
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


def _skipped_item(source: Source, result: PutResult, options: TransferOptions) -> dict[str, Any]:
    """A skipped file as the response lists it; another class names both classes."""
    item = {"path": str(source.path), "key": result.object.key, "reason": result.reason}
    if result.reason == "identical_other_class":
        item["storage_class"] = str(result.object.storage_class)
        item["requested_storage_class"] = str(options.storage_class)
    return item


def _replaced_charge(prices: PriceTable, result: PutResult) -> Decimal:
    """The early deletion charge of the object an overwrite replaced (0 past its minimum)."""
    old = result.replaced
    assert old is not None
    return early_deletion_charge(
        prices, old.storage_class, old.size, old.last_modified, datetime.now(UTC)
    )


async def archive(
    hass: HomeAssistant, entry: S3GlacierConfigEntry, call: ServiceCall
) -> ServiceResponse:
    """Upload files (a file, a directory or a glob) to the bucket."""
    data = entry.runtime_data
    target = bucket_target(entry)
    options = entry_transfer_options(entry, call.data.get(ATTR_STORAGE_CLASS))
    prices = data.coordinator.prices
    archived: list[dict[str, Any]] = []
    kept = KeptSources()
    skipped: list[dict[str, Any]] = []
    sources = await hass.async_add_executor_job(
        collect_sources, hass, call.data[ATTR_PATH], call.data.get(ATTR_KEY), target.prefix
    )
    try:
        for source in sources:
            async with data.lease(hass, source.key, transfer=True) as lease:
                with remote_errors(hass, entry, key=source.key):
                    result = await lease.run(
                        archive_one,
                        target,
                        data.catalog,
                        source,
                        options,
                        call.data[ATTR_OVERWRITE],
                    )
                    if call.data[ATTR_DELETE_SOURCE]:
                        # put() returns only once a HEAD confirmed size and SHA-256.
                        await lease.run(kept.delete, source.path)
            obj = result.object
            if result.skipped:
                skipped.append(_skipped_item(source, result, options))
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
            if result.replaced is not None:
                item["early_deletion_charge"] = money(_replaced_charge(prices, result))
            archived.append(item)
            hass.bus.async_fire(EVENT_ARCHIVED, {"config_entry_id": entry.entry_id, **item})
    finally:
        await data.coordinator.async_catalog_changed()
    kept.check()
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
    target = bucket_target(entry)
    async with data.lease(hass, obj.key, transfer=True) as lease:
        with remote_errors(hass, entry, key=obj.key), writing(path):
            restored = await lease.run(
                partial(
                    target.get,
                    obj.key,
                    path,
                    overwrite=call.data[ATTR_OVERWRITE],
                    progress=ProgressLog("Restoring", obj.key, obj.size),
                )
            )
    # The same event as a watched restore's: automations and the logbook see both.
    hass.bus.async_fire(
        EVENT_RESTORE_COMPLETED,
        {"config_entry_id": entry.entry_id, "key": obj.key, "path": str(path)},
    )
    return {"status": "restored", "path": str(path), "size": restored.size}


def _extension_days(expiry: datetime | None, days: int, now: datetime) -> int:
    """Days a restored copy lives longer when asked again for ``days`` days."""
    if expiry is None:
        return days
    return max(0, days - max(0, (expiry - now) // timedelta(days=1)))


def _faster(tier: RestoreTier, than: RestoreTier, source: RestoreSource) -> bool:
    """Whether ``tier`` restores objects of ``source`` sooner than ``than``."""
    return typical_restore_time(source, tier) < typical_restore_time(source, than)


@dataclass(frozen=True, slots=True, kw_only=True)
class _RestoreAsk:
    """One validated restore call on an object that needs a restore."""

    obj: ArchivedObject
    tier: RestoreTier
    days: int
    days_given: bool
    path: Path | None
    overwrite: bool

    @property
    def restore_days(self) -> int | None:
        """Days for RestoreObject; none for INTELLIGENT_TIERING's archive tiers."""
        return None if isinstance(self.obj.restore_source, ArchiveStatus) else self.days

    def estimate(self, prices: PriceTable, **kwargs: Any) -> dict[str, Any]:
        """The response's estimated_cost and cost_breakdown."""
        result = restore_estimate(
            prices,
            self.obj.restore_source,
            self.tier,
            self.obj.size,
            download=self.path is not None,
            **kwargs,
        )
        return restore_cost_fields(result)


async def restore(
    hass: HomeAssistant, entry: S3GlacierConfigEntry, call: ServiceCall
) -> ServiceResponse:
    """Download now, or start a Glacier restore that the watcher finishes.

    A restored copy asked for again with ``days`` gets a new expiry (now + days); a
    faster tier asked while a restore runs upgrades it.
    """
    target = bucket_target(entry)
    if ATTR_KEY not in call.data:
        raise invalid("key_required")
    key = check_in_prefix(validate_key(call.data[ATTR_KEY]), bucket_target(entry).prefix)
    tier = choice(
        call.data.get(ATTR_TIER) or RestoreTier.STANDARD, tuple(RestoreTier), "invalid_tier"
    )
    days = call.data.get(ATTR_DAYS, DEFAULT_DAYS)
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
    source = obj.restore_source
    if obj.needs_restore and not tier_available(source, tier):
        raise invalid(
            "tier_not_available",
            tier=option_value(tier),
            storage_class=class_name(source),
            allowed=", ".join(option_value(t) for t in available_tiers(source)),
        )
    ask = _RestoreAsk(
        obj=obj,
        tier=tier,
        days=days,
        days_given=ATTR_DAYS in call.data,
        path=path,
        overwrite=call.data[ATTR_OVERWRITE],
    )
    response: dict[str, Any] = {
        "key": key,
        "path": str(path) if path else None,
        "size": obj.size,
        "ready_by": None,
    }
    if obj.needs_restore:
        return response | await _restore_archived(hass, entry, call, ask)
    if path is None:
        raise invalid("destination_required", key=key)
    cost = ask.estimate(entry.runtime_data.coordinator.prices, copy_days=0)
    return response | cost | await _download_now(hass, entry, obj, call, path)


async def _restore_archived(
    hass: HomeAssistant, entry: S3GlacierConfigEntry, call: ServiceCall, ask: _RestoreAsk
) -> dict[str, Any]:
    """Renew or read a restored copy, or start, upgrade or follow a restore."""
    data = entry.runtime_data
    target = bucket_target(entry)
    prices = data.coordinator.prices
    key = ask.obj.key
    now = datetime.now(UTC)
    running = data.restores.pending(key)
    with remote_errors(hass, entry, key=key):
        state, expiry = readable_state(ask.obj)
        if state is RestoreState.RESTORED:
            again = ask.days_given and ask.restore_days is not None
            if again:
                # S3 sets the copy's expiry to now + days; only the request is billed,
                # and the copy for the days it now lives longer.
                await hass.async_add_executor_job(target.request_restore, key, ask.days, ask.tier)
                await _record_head(hass, target, data.catalog, key)
            cost = ask.estimate(
                prices,
                copy_days=_extension_days(expiry, ask.days, now) if again else 0,
                retrieve=False,
                request=again,
            )
            data.restores.async_restore_succeeded(key)
            if ask.path is None:
                return cost | {"status": "restored", "size": ask.obj.size}
            return cost | await _download_now(hass, entry, ask.obj, call, ask.path)
        status = "restore_in_progress"
        if state is RestoreState.NONE:
            await hass.async_add_executor_job(
                target.request_restore, key, ask.restore_days, ask.tier
            )
            status = "restore_requested"
            # What the HEAD showed (class, archive tier), now restoring; the watcher
            # records the copy and its expiry once readable.
            running_obj = replace(ask.obj, restore_state=RestoreState.IN_PROGRESS)
            await hass.async_add_executor_job(_record_quietly, data.catalog, running_obj)
        elif running is not None and _faster(ask.tier, running.tier, ask.obj.restore_source):
            # S3 upgrades a running restore asked again at a faster tier.
            await hass.async_add_executor_job(
                target.request_restore, key, ask.restore_days, ask.tier
            )
            status = "restore_upgraded"
    pending = _next_pending(ask, running, now, status)
    if pending is not running:
        await data.restores.async_watch(pending)
    if status == "restore_in_progress":
        # Following a restore that runs already sends no request: only the download
        # (its GET and egress) is still to pay.
        cost = ask.estimate(prices, copy_days=0, retrieve=False, request=False)
    else:
        cost = ask.estimate(prices, copy_days=ask.restore_days or 0)
    return cost | {"status": status, "ready_by": iso(pending.ready_by)}


def _next_pending(
    ask: _RestoreAsk, running: PendingRestore | None, now: datetime, status: str
) -> PendingRestore:
    """The pending record after this call.

    A restore followed as it runs (same or slower tier asked) keeps its pace; a
    destination given now replaces the old one. An upgrade takes the new tier's pace,
    never promising later than the running one did. A new request starts afresh.
    """
    if running is not None and status == "restore_in_progress":
        if ask.path is None:
            return running
        return replace(running, destination=ask.path, overwrite=ask.overwrite)
    fresh = PendingRestore(
        key=ask.obj.key,
        tier=ask.tier,
        days=ask.days,
        requested_at=now,
        ready_by=now + typical_restore_time(ask.obj.restore_source, ask.tier),
        destination=ask.path,
        overwrite=ask.overwrite,
    )
    if running is None or status != "restore_upgraded":
        return fresh
    return replace(
        fresh,
        requested_at=running.requested_at,
        ready_by=min(fresh.ready_by, running.ready_by),
        destination=running.destination if ask.path is None else ask.path,
        overwrite=running.overwrite if ask.path is None else ask.overwrite,
    )


async def _record_head(hass: HomeAssistant, target: S3Target, catalog: Catalog, key: str) -> None:
    """Record what S3 now says of ``key`` (restore state, expiry, archive tier)."""

    def _record() -> None:
        obj = target.head(key)
        if obj is not None:
            _record_quietly(catalog, obj)

    await hass.async_add_executor_job(_record)


def _record_quietly(catalog: Catalog, obj: ArchivedObject) -> None:
    """Record a restore's state in the catalog; a failure only costs sensor accuracy."""
    try:
        catalog.record(obj)
    except CatalogError as err:
        LOGGER.warning("Could not record the restore of %s: %s", obj.key, err)


async def delete(
    hass: HomeAssistant, entry: S3GlacierConfigEntry, call: ServiceCall
) -> ServiceResponse:
    """Delete an object; report the early deletion charge."""
    data = entry.runtime_data
    if ATTR_KEY not in call.data:
        raise invalid("key_required")
    key = check_in_prefix(validate_key(call.data[ATTR_KEY]), bucket_target(entry).prefix)
    target = bucket_target(entry)
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
    target = bucket_target(entry)
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
    target = bucket_target(entry)
    with remote_errors(hass, entry, key=target.prefix):
        result = await entry.runtime_data.coordinator.async_reconcile()
    return {
        "added": result.added,
        "removed": result.removed,
        "changed": result.changed,
        "objects": result.objects,
        "bytes": result.bytes,
    }
