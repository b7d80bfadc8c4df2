"""Diagnostics: options, catalog summary, last reconcile, pending restores; keys redacted."""

from __future__ import annotations

from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.core import HomeAssistant

from .const import CONF_ACCESS_KEY_ID, CONF_KMS_KEY_ID, CONF_SECRET_ACCESS_KEY
from .data import S3GlacierConfigEntry

TO_REDACT = {CONF_ACCESS_KEY_ID, CONF_SECRET_ACCESS_KEY, CONF_KMS_KEY_ID}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: S3GlacierConfigEntry
) -> dict[str, Any]:
    """Return what helps to debug an entry, without credentials."""
    summary = entry.runtime_data.coordinator.data
    return {
        "data": async_redact_data(dict(entry.data), TO_REDACT),
        "options": async_redact_data(dict(entry.options), TO_REDACT),
        "catalog": {
            "objects": summary.objects,
            "bytes": summary.bytes,
            "by_storage_class": {
                str(c): {"objects": u.objects, "bytes": u.bytes}
                for c, u in sorted(summary.usage.items())
            },
            "monthly_cost": f"{summary.cost.total:f}",
            "early_deletion_exposure": f"{summary.early_deletion_exposure:f}",
            "price_table": {
                "date": summary.prices.date.isoformat(),
                "priced_region": summary.prices.priced_region,
                "fallback": summary.prices.fallback,
            },
        },
        "last_reconcile": summary.last_reconcile,
        "pending_restores": [
            {
                "key": p.key,
                "tier": str(p.tier),
                "days": p.days,
                "requested_at": p.requested_at.isoformat(),
                "ready_by": p.ready_by.isoformat(),
                "has_destination": p.destination is not None,
            }
            for p in summary.pending_restores
        ],
    }
