"""Repair issues about catalog files: a damaged one set aside, a removed vault's kept."""

from __future__ import annotations

from datetime import UTC, datetime
import hashlib
from pathlib import Path

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir

from . import repairs
from .archive.errors import ArchiveError
from .archive.vault import VaultTarget
from .const import DOMAIN, LOGGER
from .data import S3GlacierConfigEntry


async def async_report_damaged(
    hass: HomeAssistant, entry: S3GlacierConfigEntry, damaged: list[Path], rebuilt: bool
) -> None:
    """Raise one repair issue per damaged catalog kept; rebuild a new vault catalog.

    A bucket's new catalog was never reconciled, so the coordinator reconciles it
    right after setup; a vault's is rebuilt by an inventory job, started here. The
    issues stay while their files exist (raised again at each setup), and go when
    the user deletes the files.
    """
    target = entry.runtime_data.target
    kind = "vault_catalog_rebuilt" if isinstance(target, VaultTarget) else "catalog_rebuilt"
    if rebuilt and isinstance(target, VaultTarget):
        try:
            job_id = await hass.async_add_executor_job(target.request_inventory)
        except ArchiveError as err:
            LOGGER.warning("Could not start an inventory job for %s: %s", entry.title, err)
        else:
            await entry.runtime_data.restores.async_watch_inventory(job_id)
    kept = {repairs.issue_id(entry, kind, path.name): path for path in damaged}
    registry = ir.async_get(hass)
    stale_prefix = repairs.issue_id(entry, kind) + "_"
    for domain, issue in list(registry.issues):
        if domain == DOMAIN and issue.startswith(stale_prefix) and issue not in kept:
            ir.async_delete_issue(hass, DOMAIN, issue)
    for path in kept.values():
        repairs.async_raise(
            hass,
            entry,
            kind,
            detail=path.name,
            severity=ir.IssueSeverity.WARNING,
            path=str(path),
            date=_damaged_on(path),
        )


def _damaged_on(path: Path) -> str:
    """When a damaged catalog was set aside, from its name (``…damaged-YYYYmmddTHHMMSSZ``)."""
    stamp = path.name.rsplit(".damaged-", 1)[-1][:16]
    try:
        moment = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return stamp
    return moment.strftime("%Y-%m-%d %H:%M UTC")


@callback
def async_raise_catalog_kept(
    hass: HomeAssistant, entry: S3GlacierConfigEntry, kept: list[Path]
) -> None:
    """Tell the user where a removed vault's catalog is, and why it was not deleted.

    Not tied to an entry: its ID does not contain the removed entry's ID (which
    ``repairs.async_clear_entry`` matches), and it persists across restarts, as no
    setup will raise it again. The user ignores it once the file is dealt with.
    """
    digest = hashlib.sha256(entry.entry_id.encode()).hexdigest()[:12]
    ir.async_create_issue(
        hass,
        DOMAIN,
        f"catalog_kept_{digest}",
        is_fixable=False,
        is_persistent=True,
        severity=ir.IssueSeverity.WARNING,
        translation_key="catalog_kept",
        translation_placeholders={
            "title": entry.title,
            "path": ", ".join(str(path) for path in kept),
        },
    )
