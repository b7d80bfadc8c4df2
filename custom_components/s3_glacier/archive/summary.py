"""What the catalog holds and costs, in one pass over its aggregates.

The coordinator's refresh is exactly ``summarize``: it reads aggregates, never rows,
so it costs the same for ten objects and a million.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
import json
from typing import Any

from .catalog import Catalog
from .models import ArchivedObject, PendingRestore, StorageClass
from .pricing import ClassUsage, CostBreakdown, PriceTable, early_deletion_exposure, monthly_cost

META_RECONCILED_AT = "last_reconcile_at"
META_RECONCILE_RESULT = "last_reconcile_result"


@dataclass(frozen=True, slots=True, kw_only=True)
class ArchiveSummary:
    """The catalog's aggregates, priced: what the sensors show."""

    usage: dict[StorageClass, ClassUsage]
    objects: int
    bytes: int
    # Restored GLACIER/DEEP_ARCHIVE copies not yet expired (billed on top, in ``cost``).
    restored_copy_bytes: int
    cost: CostBreakdown
    early_deletion_exposure: Decimal
    last_archived: ArchivedObject | None
    pending_restores: tuple[PendingRestore, ...]
    prices: PriceTable
    last_reconcile: dict[str, Any] | None


def summarize(catalog: Catalog, prices: PriceTable, now: datetime) -> ArchiveSummary:
    """Read the catalog's aggregates and price them at ``now``."""
    usage = {u.storage_class: u for u in catalog.usage(now)}
    restored = catalog.restored_copies(now)
    last = catalog.get_meta(META_RECONCILE_RESULT)
    return ArchiveSummary(
        usage=usage,
        objects=sum(u.objects for u in usage.values()),
        bytes=sum(u.bytes for u in usage.values()),
        cost=monthly_cost(prices, usage.values(), restored),
        restored_copy_bytes=sum(restored.values()),
        early_deletion_exposure=early_deletion_exposure(prices, usage.values()),
        last_archived=catalog.last_archived(),
        pending_restores=tuple(catalog.pending_restores()),
        prices=prices,
        last_reconcile=json.loads(last) if last else None,
    )
