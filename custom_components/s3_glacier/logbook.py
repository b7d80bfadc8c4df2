"""How the integration's events read in the logbook (Activity).

One line per event, and the events are per file: an archive of three files shows
three lines, each naming its file, size and class, so that a file can be found again
by its name. The entry's title names the line. Home Assistant does not translate
logbook messages (core's own describe English text), so these are English too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import PurePath
from typing import Any

from homeassistant.components.logbook.const import LOGBOOK_ENTRY_MESSAGE, LOGBOOK_ENTRY_NAME
from homeassistant.components.logbook.models import LazyEventPartialState
from homeassistant.core import HomeAssistant, callback

from .action_helpers import class_name, human_size
from .archive.models import StorageClass
from .const import (
    DOMAIN,
    EVENT_ARCHIVED,
    EVENT_DELETED,
    EVENT_RESTORE_COMPLETED,
    EVENT_RESTORE_FAILED,
    EVENT_RESTORE_REQUESTED_AGAIN,
)
from .helpers import is_vault, parse_option

# Why the restore watcher gave a restore up (the ``reason`` of restore_failed).
FAILURE_REASONS: dict[str, str] = {
    "key_not_found": "the object no longer exists",
    "job_not_found": "the retrieval job expired or is unknown",
    "job_failed": "the retrieval job failed",
    "restore_not_running": "the restored copy expired or the restore was never started",
    "destination_exists": "the destination file already exists",
    "write_failed": "the file could not be written",
    "restore_expired": "the restored copy expired again before it was downloaded",
    "checks_failed": "its restore could not be checked many times in a row",
}
UNKNOWN_FAILURE = "the service reported an error (see the log)"

type Describe = Callable[[LazyEventPartialState], dict[str, str]]


def _class_name(value: object) -> str:
    """AWS's name of a storage class given as ``DEEP_ARCHIVE`` or ``deep_archive``."""
    storage_class = parse_option(str(value), StorageClass)
    return str(value) if storage_class is None else class_name(storage_class)


def _money(value: object) -> str:
    return f"${float(value):.4f}" if isinstance(value, int | float) else "an unknown amount"


@callback
def async_describe_events(
    hass: HomeAssistant, async_describe_event: Callable[[str, str, Describe], None]
) -> None:
    """Describe the archived, deleted and restore (completed, failed, asked again) events."""

    def _entry_title(data: Mapping[str, Any]) -> str:
        entry = hass.config_entries.async_get_entry(str(data.get("config_entry_id")))
        return entry.title if entry else "S3 Glacier Archive"

    def _on_vault(data: Mapping[str, Any]) -> bool:
        entry = hass.config_entries.async_get_entry(str(data.get("config_entry_id")))
        return entry is not None and is_vault(entry.data)

    def _name(data: Mapping[str, Any]) -> str:
        """The object's key; for a vault the file name, else a short archive ID."""
        key = str(data.get("key", ""))
        if not _on_vault(data):
            return key
        if path := data.get("path"):
            return PurePath(str(path)).name
        if data.get("archive_id") and key != data["archive_id"]:
            return key  # the file name the catalog knows
        return f"archive {key[:12]}…"

    def _line(data: Mapping[str, Any], message: str) -> dict[str, str]:
        return {LOGBOOK_ENTRY_NAME: _entry_title(data), LOGBOOK_ENTRY_MESSAGE: message}

    @callback
    def archived(event: LazyEventPartialState) -> dict[str, str]:
        data = event.data
        name = PurePath(str(data["path"])).name if _on_vault(data) else str(data.get("key"))
        size = human_size(int(data.get("size", 0)))
        target = _class_name(data.get("storage_class"))
        return _line(data, f"archived {name} ({size}) to {target}")

    @callback
    def deleted(event: LazyEventPartialState) -> dict[str, str]:
        data = event.data
        size = human_size(int(data.get("size", 0)))
        message = f"deleted {_name(data)} ({size}) from {_class_name(data.get('storage_class'))}"
        charge = data.get("early_deletion_charge")
        if charge:
            message += f"; early deletion charge {_money(charge)}"
        return _line(data, message)

    @callback
    def restore_completed(event: LazyEventPartialState) -> dict[str, str]:
        data = event.data
        if path := data.get("path"):
            return _line(data, f"restored {_name(data)} to {path}")
        return _line(data, f"finished restoring {_name(data)}: it can be downloaded now")

    @callback
    def restore_failed(event: LazyEventPartialState) -> dict[str, str]:
        data = event.data
        reason = FAILURE_REASONS.get(str(data.get("reason")), UNKNOWN_FAILURE)
        return _line(data, f"could not restore {_name(data)}: {reason}")

    @callback
    def restore_requested_again(event: LazyEventPartialState) -> dict[str, str]:
        data = event.data
        return _line(
            data,
            f"the restored copy of {_name(data)} expired before it was downloaded:"
            " its restore was requested again",
        )

    async_describe_event(DOMAIN, EVENT_ARCHIVED, archived)
    async_describe_event(DOMAIN, EVENT_RESTORE_REQUESTED_AGAIN, restore_requested_again)
    async_describe_event(DOMAIN, EVENT_DELETED, deleted)
    async_describe_event(DOMAIN, EVENT_RESTORE_COMPLETED, restore_completed)
    async_describe_event(DOMAIN, EVENT_RESTORE_FAILED, restore_failed)
