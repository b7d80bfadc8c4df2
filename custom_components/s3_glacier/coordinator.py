"""The coordinator: catalog aggregates for the sensors, reachability, periodic reconcile."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
import json
from typing import TYPE_CHECKING

from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryAuthFailed
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed

from . import repairs
from .archive.catalog import Catalog, ReconcileResult
from .archive.client import GrantedActions
from .archive.errors import AccessDeniedError, ArchiveError, AuthError, BucketNotFoundError
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
from .permissions import async_clear_granted, async_report_denied
from .translate import translated

if TYPE_CHECKING:
    from .data import S3GlacierConfigEntry

# How often the endpoint is checked (one HEAD request: about $0.0004 a year at this pace
# on AWS) so that the sensors show when it cannot be reached.
CHECK_INTERVAL = timedelta(minutes=15)
# Multipart uploads older than this under the prefix were abandoned (a crash): abort
# them at each reconcile, so their parts stop being billed.
STALE_UPLOAD_AGE = timedelta(days=7)
# Repair issue raised while the periodic check finds the bucket gone.
BUCKET_NOT_FOUND = "bucket_not_found"


class S3GlacierCoordinator(DataUpdateCoordinator[ArchiveSummary]):
    """Reads the catalog in the executor; reconciles it with the bucket when due."""

    config_entry: S3GlacierConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        entry: S3GlacierConfigEntry,
        target: Target,
        catalog: Catalog,
        granted: GrantedActions | None = None,
    ) -> None:
        """Keep the engine objects; the first refresh happens at setup.

        ``granted`` is filled by the target's client (``helpers.connect``) with the IAM
        actions its requests were allowed: they clear "missing permission" issues.
        """
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
        self.granted = granted or GrantedActions()
        # Refusals of best-effort steps in the executor, reported on the event loop.
        self._denied: list[AccessDeniedError] = []

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
        except AuthError as err:
            raise translated(ConfigEntryAuthFailed, err, "invalid_auth") from err
        except AccessDeniedError as err:
            # The keys work and the catalog is intact: the sensors stay available and
            # the user is told which action the policy lacks.
            self.async_permissions_changed(err)
            reconcile_due = False
        except BucketNotFoundError as err:
            self._async_bucket_missing(err)
            raise translated(UpdateFailed, err) from err
        except ArchiveError as err:
            self.async_permissions_changed()
            raise translated(UpdateFailed, err) from err
        else:
            self.async_permissions_changed()
            repairs.async_clear(self.hass, self.config_entry, BUCKET_NOT_FOUND)
        if first and reconcile_due:
            self.config_entry.async_create_background_task(
                self.hass, self._async_background_reconcile(), f"{DOMAIN} reconcile"
            )
        return await self.hass.async_add_executor_job(self._summarize)

    async def _async_background_reconcile(self) -> None:
        try:
            await self.async_reconcile()
        except AccessDeniedError as err:
            self.async_permissions_changed(err)
        except ArchiveError as err:
            LOGGER.warning("Could not reconcile %s: %s", self.config_entry.title, err)

    async def async_reconcile(self) -> ReconcileResult:
        """Reconcile now (the refresh action) and push the new summary."""
        try:
            result = await self.hass.async_add_executor_job(self._reconcile)
        finally:
            # A refused cleanup is reported even when the listing then fails.
            self.async_permissions_changed()
        await self.async_catalog_changed()
        return result

    @callback
    def async_permissions_changed(self, *denied: AccessDeniedError) -> None:
        """Clear the issues of actions allowed since last time, raise those ``denied``.

        Also reports what best-effort steps in the executor were refused.
        """
        async_clear_granted(self.hass, self.config_entry, self.granted)
        while self._denied:  # appended from the executor: pop, never reassign
            async_report_denied(self.hass, self.config_entry, self._denied.pop(0))
        for err in denied:
            async_report_denied(self.hass, self.config_entry, err)

    @callback
    def _async_bucket_missing(self, err: BucketNotFoundError) -> None:
        bucket = self.target.bucket if isinstance(self.target, S3Target) else ""
        repairs.async_raise(self.hass, self.config_entry, BUCKET_NOT_FOUND, bucket=bucket)
        LOGGER.debug("%s: the bucket is gone (%s)", self.config_entry.title, err)

    async def async_catalog_changed(self) -> None:
        """Push a new summary right after an action changed the catalog.

        Unlike ``async_set_updated_data`` this neither marks the endpoint reachable
        (an action may just have failed to reach it) nor postpones the periodic check.
        """
        self.data = await self.hass.async_add_executor_job(self._summarize)
        self.async_permissions_changed()
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
        self._abort_stale_uploads(self.target)
        # Streamed: the catalog stages the listing page by page, not locked meanwhile.
        return self.reconcile_with(self.target.iterate(), prefix=self.target.prefix)

    def _abort_stale_uploads(self, target: S3Target) -> None:
        """Best effort: a refused or failed cleanup never stops the listing."""
        try:
            target.abort_stale_uploads(STALE_UPLOAD_AGE)
        except AccessDeniedError as err:
            self._denied.append(err)
        except Exception:  # noqa: BLE001 - anything: the listing must still run
            LOGGER.warning(
                "Could not clean up abandoned uploads of %s",
                self.config_entry.title,
                exc_info=True,
            )

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
