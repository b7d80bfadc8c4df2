"""The actions: archive, restore, delete, list and refresh.

Registered once in ``async_setup``. Input is checked here (translated
``ServiceValidationError`` before any transfer); the work runs in the executor through
the engine; engine errors become translated ``HomeAssistantError``s in one place.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from itertools import islice
from pathlib import Path
from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant, ServiceCall, ServiceResponse, SupportsResponse
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import config_validation as cv
import voluptuous as vol

from .archive.errors import AccessDeniedError, ArchiveError, AuthError
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
    DOMAIN,
    EVENT_ARCHIVED,
    LOGGER,
)
from .data import S3GlacierConfigEntry
from .paths import collect_sources, invalid, resolve_destination, validate_key

ATTR_CONFIG_ENTRY_ID = "config_entry_id"
ATTR_PATH = "path"
ATTR_KEY = "key"
ATTR_STORAGE_CLASS = "storage_class"
ATTR_OVERWRITE = "overwrite"
ATTR_DELETE_SOURCE = "delete_source"
ATTR_DESTINATION = "destination"
ATTR_TIER = "tier"
ATTR_DAYS = "days"
ATTR_PREFIX = "prefix"
ATTR_LIMIT = "limit"

MAX_DAYS = 365
MAX_LIMIT = 10_000
MIB = 1024 * 1024

_ENTRY = {vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string}
# Values are checked in the handlers, so that each bad value gets its own translated error.
ARCHIVE_SCHEMA = vol.Schema(
    {
        **_ENTRY,
        vol.Required(ATTR_PATH): cv.string,
        vol.Optional(ATTR_KEY): cv.string,
        vol.Optional(ATTR_STORAGE_CLASS): cv.string,
        vol.Optional(ATTR_OVERWRITE, default=False): cv.boolean,
        vol.Optional(ATTR_DELETE_SOURCE, default=False): cv.boolean,
    }
)
RESTORE_SCHEMA = vol.Schema(
    {
        **_ENTRY,
        vol.Required(ATTR_KEY): cv.string,
        vol.Optional(ATTR_DESTINATION): cv.string,
        vol.Optional(ATTR_OVERWRITE, default=False): cv.boolean,
        vol.Optional(ATTR_TIER, default=RestoreTier.STANDARD.value): cv.string,
        vol.Optional(ATTR_DAYS, default=1): vol.Coerce(int),
    }
)
DELETE_SCHEMA = vol.Schema({**_ENTRY, vol.Required(ATTR_KEY): cv.string})
LIST_SCHEMA = vol.Schema(
    {
        **_ENTRY,
        vol.Optional(ATTR_PREFIX): cv.string,
        vol.Optional(ATTR_LIMIT, default=1000): vol.Coerce(int),
    }
)
REFRESH_SCHEMA = vol.Schema(_ENTRY)

type Handler = Callable[
    [HomeAssistant, S3GlacierConfigEntry, ServiceCall], Awaitable[ServiceResponse]
]


def _entry_for_call(hass: HomeAssistant, call: ServiceCall) -> S3GlacierConfigEntry:
    """The loaded entry the call names, or the only loaded one."""
    entry_id = call.data.get(ATTR_CONFIG_ENTRY_ID)
    if entry_id is None:
        loaded = hass.config_entries.async_loaded_entries(DOMAIN)
        if len(loaded) != 1:
            raise invalid("config_entry_required", count=len(loaded))
        return loaded[0]
    entry = hass.config_entries.async_get_entry(entry_id)
    if entry is None or entry.domain != DOMAIN:
        raise invalid("config_entry_not_found", entry_id=entry_id)
    if entry.state is not ConfigEntryState.LOADED:
        raise invalid("config_entry_not_loaded", title=entry.title)
    return entry


@contextmanager
def remote_errors(
    hass: HomeAssistant, entry: S3GlacierConfigEntry, **placeholders: str
) -> Iterator[None]:
    """Turn engine errors into translated errors; refused keys also start reauth."""
    try:
        yield
    except ArchiveError as err:
        if isinstance(err, (AuthError, AccessDeniedError)):
            LOGGER.debug("%s refused the keys: %s", entry.title, err)
        if isinstance(err, AuthError):
            entry.async_start_reauth(hass)
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key=err.translation_key,
            translation_placeholders={"error": str(err), **placeholders, **err.placeholders},
        ) from err


def _choice[T](value: str, allowed: tuple[T, ...], problem: str) -> T:
    for choice in allowed:
        if str(choice) == value:
            return choice
    raise invalid(problem, value=value, allowed=", ".join(str(c) for c in allowed))


def _transfer_options(entry: S3GlacierConfigEntry, storage_class: str | None) -> TransferOptions:
    options = entry.options
    chosen = storage_class or options.get(CONF_STORAGE_CLASS, DEFAULT_STORAGE_CLASS)
    return TransferOptions(
        storage_class=_choice(chosen, S3_STORAGE_CLASSES, "invalid_storage_class"),
        encryption=ServerSideEncryption(options.get(CONF_ENCRYPTION, DEFAULT_ENCRYPTION)),
        kms_key_id=options.get(CONF_KMS_KEY_ID),
        part_size=int(options.get(CONF_PART_SIZE_MIB, DEFAULT_PART_SIZE_MIB)) * MIB,
        concurrency=int(options.get(CONF_CONCURRENCY, DEFAULT_CONCURRENCY)),
    )


class _ProgressLog:
    """Logs a long transfer's progress at debug level, every tenth of the way."""

    def __init__(self, verb: str, key: str, size: int) -> None:
        self._verb, self._key, self._size = verb, key, size
        self._next = 0.1

    def __call__(self, done: int) -> None:
        if self._size < 64 * MIB or done < self._next * self._size:
            return
        self._next = (done // (self._size / 10) + 1) / 10
        LOGGER.debug("%s %s: %d%%", self._verb, self._key, 100 * done // self._size)


def _money(value: Decimal) -> float:
    return float(value)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


async def _archive(
    hass: HomeAssistant, entry: S3GlacierConfigEntry, call: ServiceCall
) -> ServiceResponse:
    data = entry.runtime_data
    options = _transfer_options(entry, call.data.get(ATTR_STORAGE_CLASS))
    sources = await hass.async_add_executor_job(
        collect_sources, hass, call.data[ATTR_PATH], call.data.get(ATTR_KEY), data.target.prefix
    )
    prices = data.coordinator.prices
    archived: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    try:
        for source in sources:
            async with data.transfers:
                with remote_errors(hass, entry, key=source.key):
                    result = await hass.async_add_executor_job(
                        partial(
                            data.target.put,
                            source.path,
                            source.key,
                            options,
                            overwrite=call.data[ATTR_OVERWRITE],
                            progress=_ProgressLog("Archiving", source.key, source.size),
                        )
                    )
            obj = result.object
            await hass.async_add_executor_job(data.catalog.record, obj)
            if call.data[ATTR_DELETE_SOURCE]:
                # put() returns only once a HEAD confirmed size and SHA-256.
                await hass.async_add_executor_job(source.path.unlink)
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
                "monthly_cost": _money(object_monthly_cost(prices, obj.storage_class, obj.size)),
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
    async with data.transfers:
        with remote_errors(hass, entry, key=obj.key):
            restored = await hass.async_add_executor_job(
                partial(
                    data.target.get,
                    obj.key,
                    path,
                    overwrite=call.data[ATTR_OVERWRITE],
                    progress=_ProgressLog("Restoring", obj.key, obj.size),
                )
            )
    return {"status": "restored", "path": str(path), "size": restored.size}


async def _restore(
    hass: HomeAssistant, entry: S3GlacierConfigEntry, call: ServiceCall
) -> ServiceResponse:
    data = entry.runtime_data
    key = validate_key(call.data[ATTR_KEY])
    tier = _choice(call.data[ATTR_TIER], tuple(RestoreTier), "invalid_tier")
    days = call.data[ATTR_DAYS]
    if not 1 <= days <= MAX_DAYS:
        raise invalid("invalid_days", days=days, max=MAX_DAYS)
    with remote_errors(hass, entry, key=key):
        obj = await hass.async_add_executor_job(data.target.head, key)
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
        "path": None,
        "size": None,
        "ready_by": None,
        "estimated_cost": _money(
            restore_cost(data.coordinator.prices, obj.storage_class, tier, obj.size, days)
        ),
    }
    if not needs_restore:
        return response | await _download_now(hass, entry, obj, call, path)

    with remote_errors(hass, entry, key=key):
        state, _expiry = await hass.async_add_executor_job(data.target.restore_state, key)
        if state is RestoreState.RESTORED:
            if path is None:
                return response | {"status": "restored", "size": obj.size}
            return response | await _download_now(hass, entry, obj, call, path)
        status = "restore_in_progress"
        if state is RestoreState.NONE:
            state = await hass.async_add_executor_job(data.target.request_restore, key, days, tier)
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


async def _delete(
    hass: HomeAssistant, entry: S3GlacierConfigEntry, call: ServiceCall
) -> ServiceResponse:
    data = entry.runtime_data
    key = validate_key(call.data[ATTR_KEY])
    with remote_errors(hass, entry, key=key):
        obj = await hass.async_add_executor_job(data.target.head, key)
        if obj is None:
            raise invalid("key_not_found", key=key)
        charge = early_deletion_charge(
            data.coordinator.prices,
            obj.storage_class,
            obj.size,
            obj.last_modified,
            datetime.now(UTC),
        )
        await hass.async_add_executor_job(data.target.delete, key)
    await hass.async_add_executor_job(data.catalog.remove, key)
    await data.restores.async_forget(key)
    await data.coordinator.async_catalog_changed()
    return {"key": key, "early_deletion_charge": _money(charge)}


async def _list(
    hass: HomeAssistant, entry: S3GlacierConfigEntry, call: ServiceCall
) -> ServiceResponse:
    data = entry.runtime_data
    limit = call.data[ATTR_LIMIT]
    if not 1 <= limit <= MAX_LIMIT:
        raise invalid("invalid_limit", limit=limit, max=MAX_LIMIT)
    prefix = call.data.get(ATTR_PREFIX)

    def _page() -> tuple[list[ArchivedObject], set[str]]:
        objects = list(islice(data.target.iterate(prefix), limit + 1))
        return objects, {p.key for p in data.catalog.pending_restores()}

    with remote_errors(hass, entry, key=prefix or data.target.prefix):
        objects, pending = await hass.async_add_executor_job(_page)

    def _restore(obj: ArchivedObject) -> str:
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
                "last_modified": _iso(obj.last_modified),
                "restore": _restore(obj),
                "restore_expiry": _iso(obj.restore_expiry),
            }
            for obj in objects[:limit]
        ],
        "truncated": len(objects) > limit,
    }


async def _refresh(
    hass: HomeAssistant, entry: S3GlacierConfigEntry, call: ServiceCall
) -> ServiceResponse:
    with remote_errors(hass, entry, key=entry.runtime_data.target.prefix):
        result = await entry.runtime_data.coordinator.async_reconcile()
    return {
        "added": result.added,
        "removed": result.removed,
        "changed": result.changed,
        "objects": result.objects,
        "bytes": result.bytes,
    }


def async_setup_services(hass: HomeAssistant) -> None:
    """Register the actions (once, from async_setup)."""
    actions: tuple[tuple[str, Handler, vol.Schema, SupportsResponse], ...] = (
        ("archive", _archive, ARCHIVE_SCHEMA, SupportsResponse.OPTIONAL),
        ("restore", _restore, RESTORE_SCHEMA, SupportsResponse.OPTIONAL),
        ("delete", _delete, DELETE_SCHEMA, SupportsResponse.OPTIONAL),
        ("list", _list, LIST_SCHEMA, SupportsResponse.ONLY),
        ("refresh", _refresh, REFRESH_SCHEMA, SupportsResponse.OPTIONAL),
    )
    for name, handler, schema, supports_response in actions:

        async def _call(call: ServiceCall, handler: Handler = handler) -> ServiceResponse:
            return await handler(hass, _entry_for_call(hass, call), call)

        hass.services.async_register(
            DOMAIN, name, _call, schema=schema, supports_response=supports_response
        )
