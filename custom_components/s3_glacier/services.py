"""The actions: archive, restore, delete, list and refresh.

Registered once in ``async_setup``. Each call finds its config entry here and goes to
the bucket or the vault variant (bucket_actions.py, vault_actions.py). Field values are
checked in the handlers, so that each bad value gets its own translated
``ServiceValidationError`` before anything is transferred.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant, ServiceCall, ServiceResponse, SupportsResponse
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.service import async_register_admin_service
import voluptuous as vol

from . import bucket_actions, export, vault_actions
from .action_helpers import (
    ATTR_ARCHIVE_ID,
    ATTR_CONFIG_ENTRY_ID,
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
    raise_translated,
)
from .archive.errors import ArchiveError
from .const import DOMAIN
from .data import S3GlacierConfigEntry
from .helpers import is_vault
from .paths import invalid

_ENTRY: dict[vol.Marker, object] = {vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string}
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
        vol.Optional(ATTR_KEY): cv.string,
        vol.Optional(ATTR_ARCHIVE_ID): cv.string,
        vol.Optional(ATTR_DESTINATION): cv.string,
        vol.Optional(ATTR_OVERWRITE, default=False): cv.boolean,
        vol.Optional(ATTR_TIER): cv.string,
        # No default: a restore of a restored copy only renews it when days are given.
        vol.Optional(ATTR_DAYS): vol.Coerce(int),
    }
)
DELETE_SCHEMA = vol.Schema(
    {
        **_ENTRY,
        vol.Optional(ATTR_KEY): cv.string,
        vol.Optional(ATTR_ARCHIVE_ID): cv.string,
    }
)
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

# action: (schema, response, handler for a bucket, handler for a vault)
ACTIONS: dict[str, tuple[vol.Schema, SupportsResponse, Handler, Handler]] = {
    "archive": (
        ARCHIVE_SCHEMA,
        SupportsResponse.OPTIONAL,
        bucket_actions.archive,
        vault_actions.archive,
    ),
    "restore": (
        RESTORE_SCHEMA,
        SupportsResponse.OPTIONAL,
        bucket_actions.restore,
        vault_actions.restore,
    ),
    "delete": (
        DELETE_SCHEMA,
        SupportsResponse.OPTIONAL,
        bucket_actions.delete,
        vault_actions.delete,
    ),
    "list": (
        LIST_SCHEMA,
        SupportsResponse.ONLY,
        bucket_actions.list_objects,
        vault_actions.list_objects,
    ),
    "refresh": (
        REFRESH_SCHEMA,
        SupportsResponse.OPTIONAL,
        bucket_actions.refresh,
        vault_actions.refresh,
    ),
    "export_history": (
        export.EXPORT_HISTORY_SCHEMA,
        SupportsResponse.OPTIONAL,
        export.export_history,
        export.export_history_vault,
    ),
}


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


def async_setup_services(hass: HomeAssistant) -> None:
    """Register the actions (once, from async_setup)."""
    for name, (schema, supports_response, on_bucket, on_vault) in ACTIONS.items():

        async def _call(
            call: ServiceCall, on_bucket: Handler = on_bucket, on_vault: Handler = on_vault
        ) -> ServiceResponse:
            entry = _entry_for_call(hass, call)
            handler = on_vault if is_vault(entry.data) else on_bucket
            try:
                async with entry.runtime_data.activity.busy():
                    return await handler(hass, entry, call)
            except (ArchiveError, OSError) as err:
                # Anything the handler did not name a key for (the catalog, a file).
                raise_translated(hass, entry, err)

        # Administrators only: archive, restore and delete read and write local files
        # and delete archives; list and refresh are billed requests (a refresh lists
        # the whole prefix, or starts a vault inventory job).
        async_register_admin_service(
            hass, DOMAIN, name, _call, schema=schema, supports_response=supports_response
        )
