"""The coordinator: catalog aggregates for the sensors, reachability, periodic reconcile."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
import json
from typing import TYPE_CHECKING

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryAuthFailed
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed

from .archive.catalog import Catalog, ReconcileResult
from .archive.errors import AccessDeniedError, ArchiveError, AuthError
from .archive.models import ArchivedObject
from .archive.pricing import PriceTable, price_table
from .archive.s3 import S3Target
from .archive.summary import (
    META_RECONCILE_RESULT,
    META_RECONCILED_AT,
    ArchiveSummary,
    summarize,
)
from .const import (
    CONF_PRICE_OVERRIDES,
    CONF_RECONCILE_HOURS,
    CONF_REGION,
    DEFAULT_RECONCILE_HOURS,
    DOMAIN,
    LOGGER,
)
from .helpers import Target, is_vault
from .translate import translated

if TYPE_CHECKING:
    from .data import S3GlacierConfigEntry

# How often the endpoint is checked (one HEAD request: about $0.0004 a year at this pace
# on AWS) so that the sensors show when it cannot be reached.
CHECK_INTERVAL = timedelta(minutes=15)
# Multipart uploads older than this under the prefix were abandoned (a crash): abort
# them at each reconcile, so their parts stop being billed.
STALE_UPLOAD_AGE = timedelta(days=7)


class S3GlacierCoordinator(DataUpdateCoordinator[ArchiveSummary]):
    """Reads the catalog in the executor; reconciles it with the bucket when due."""

    config_entry: S3GlacierConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        entry: S3GlacierConfigEntry,
        target: Target,
        catalog: Catalog,
    ) -> None:
        """Keep the engine objects; the first refresh happens at setup."""
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"{DOMAIN} {entry.title}",
            update_interval=CHECK_INTERVAL,
        )
        self.target = target
        self.catalog = catalog
        # A vault cannot be listed; its catalog is reconciled from inventory jobs.
        self.is_vault = is_vault(entry.data)

    @property
    def prices(self) -> PriceTable:
        """The price table for the entry's region, with the user's overrides."""
        return price_table(
            self.config_entry.data[CONF_REGION],
            self.config_entry.options.get(CONF_PRICE_OVERRIDES) or None,
        )

    async def _async_update_data(self) -> ArchiveSummary:
        """Check the endpoint (reconciling when due), then summarise the catalog.

        At setup only the check runs here; a due reconcile (a listing of the whole
        prefix, possibly long) then runs in the background instead of delaying setup.
        """
        first = self.data is None
        try:
            reconcile_due = await self.hass.async_add_executor_job(
                self._check_or_reconcile, not first
            )
        except (AuthError, AccessDeniedError) as err:
            raise translated(ConfigEntryAuthFailed, err, "invalid_auth") from err
        except ArchiveError as err:
            raise translated(UpdateFailed, err) from err
        if first and reconcile_due:
            self.config_entry.async_create_background_task(
                self.hass, self._async_background_reconcile(), f"{DOMAIN} reconcile"
            )
        return await self.hass.async_add_executor_job(self._summarize)

    async def _async_background_reconcile(self) -> None:
        try:
            await self.async_reconcile()
        except ArchiveError as err:
            LOGGER.warning("Could not reconcile %s: %s", self.config_entry.title, err)

    async def async_reconcile(self) -> ReconcileResult:
        """Reconcile now (the refresh action) and push the new summary."""
        result = await self.hass.async_add_executor_job(self._reconcile)
        await self.async_catalog_changed()
        return result

    async def async_catalog_changed(self) -> None:
        """Push a new summary right after an action changed the catalog.

        Unlike ``async_set_updated_data`` this neither marks the endpoint reachable
        (an action may just have failed to reach it) nor postpones the periodic check.
        """
        self.data = await self.hass.async_add_executor_job(self._summarize)
        self.async_update_listeners()

    # Everything below runs in the executor.

    def _reconcile_due(self, now: datetime) -> bool:
        stamp = self.catalog.get_meta(META_RECONCILED_AT)
        if stamp is None:
            return True
        hours = self.config_entry.options.get(CONF_RECONCILE_HOURS, DEFAULT_RECONCILE_HOURS)
        return now - datetime.fromisoformat(stamp) >= timedelta(hours=hours)

    def _check_or_reconcile(self, reconcile: bool) -> bool:
        """Reconcile if due and allowed, else just check; return whether one is due."""
        if self.is_vault:
            self.target.check()
            return False
        due = self._reconcile_due(datetime.now(UTC))
        if due and reconcile:
            self._reconcile()
            return False
        self.target.check()
        return due

    def _reconcile(self) -> ReconcileResult:
        """List the entry's prefix and bring the catalog in line with it."""
        assert isinstance(self.target, S3Target)
        self.target.abort_stale_uploads(STALE_UPLOAD_AGE)
        # List first: the catalog is locked while it reconciles, and a listing of a
        # large bucket takes many requests.
        listed = list(self.target.iterate())
        return self.reconcile_with(listed, prefix=self.target.prefix)

    def reconcile_with(
        self,
        listed: Iterable[ArchivedObject],
        prefix: str = "",
        keep_since: datetime | None = None,
    ) -> ReconcileResult:
        """Bring the catalog in line with a full listing and keep the result (executor)."""
        started = datetime.now(UTC)
        result = self.catalog.reconcile(listed, prefix=prefix, keep_since=keep_since)
        self.catalog.set_meta(META_RECONCILED_AT, started.isoformat())
        self.catalog.set_meta(
            META_RECONCILE_RESULT,
            json.dumps(
                {
                    "at": started.isoformat(),
                    "added": result.added,
                    "removed": result.removed,
                    "changed": result.changed,
                    "objects": result.objects,
                    "bytes": result.bytes,
                }
            ),
        )
        LOGGER.debug("Reconciled %s: %s", self.config_entry.title, result)
        return result

    def _summarize(self) -> ArchiveSummary:
        return summarize(self.catalog, self.prices, datetime.now(UTC))
