"""What Home Assistant's backup retention costs in a storage class with a minimum duration.

Home Assistant deletes automatic backups after N copies or N days. A class with a
minimum storage duration (GLACIER_IR 90 days, DEEP_ARCHIVE 180, ...) bills every
backup deleted earlier as if it had been kept that long, so a short retention in a
cold class costs more than in STANDARD. When the backups of an entry's agent would
be deleted early, a repair issue shows the monthly cost of that retention in the
entry's class and the class that would cost least.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from homeassistant.components.backup.config import ScheduleRecurrence
from homeassistant.components.backup.const import DATA_MANAGER
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir

from . import repairs
from .action_helpers import class_name
from .archive.models import GIB, S3_STORAGE_CLASSES, StorageClass
from .archive.pricing import MIN_DURATION_DAYS, PriceTable, object_monthly_cost
from .data import S3GlacierConfigEntry

ISSUE_RETENTION = "backup_retention_cost"
DAYS_PER_WEEK = 7


@dataclass(frozen=True, slots=True)
class Retention:
    """How often automatic backups are made and how long each one is kept."""

    backups_per_day: Decimal
    kept_days: Decimal


def retention_monthly_cost(
    table: PriceTable, storage_class: StorageClass, size: int, retention: Retention
) -> Decimal:
    """The monthly storage bill of a retention in ``storage_class``.

    Each backup is billed for its kept days, or for the class's minimum duration if
    that is longer (deleting earlier bills the remaining days).
    """
    billed_days = max(retention.kept_days, Decimal(MIN_DURATION_DAYS.get(storage_class, 0)))
    return retention.backups_per_day * billed_days * object_monthly_cost(table, storage_class, size)


def cheapest_class(table: PriceTable, size: int, retention: Retention) -> StorageClass:
    """The class in which this retention costs least (ties: the first in class order)."""
    return min(S3_STORAGE_CLASSES, key=lambda c: retention_monthly_cost(table, c, size, retention))


def automatic_retention(hass: HomeAssistant, agent_id: str) -> Retention | None:
    """The retention Home Assistant applies to ``agent_id``'s automatic backups.

    ``None`` when there are none (no schedule, the agent not chosen) or when they are
    kept forever. The agent's own retention overrides the global one.
    """
    manager = hass.data.get(DATA_MANAGER)
    if manager is None:
        return None
    config = manager.config.data
    if agent_id not in config.create_backup.agent_ids:
        return None
    schedule = config.schedule
    if schedule.recurrence is ScheduleRecurrence.DAILY:
        per_day = Decimal(1)
    elif schedule.recurrence is ScheduleRecurrence.CUSTOM_DAYS and schedule.days:
        per_day = Decimal(len(schedule.days)) / DAYS_PER_WEEK
    else:
        return None
    agent = config.agents.get(agent_id)
    retention = agent.retention if agent is not None and agent.retention is not None else None
    copies, days = (
        (retention.copies, retention.days)
        if retention is not None
        else (config.retention.copies, config.retention.days)
    )
    kept = [Decimal(days)] if days is not None else []
    if copies is not None:
        kept.append(Decimal(copies) / per_day)
    if not kept:
        return None
    return Retention(per_day, min(kept))


@callback
def async_check_retention(
    hass: HomeAssistant,
    entry: S3GlacierConfigEntry,
    agent_id: str,
    storage_class: StorageClass,
    size: int,
    table: PriceTable,
) -> None:
    """Raise the retention issue if backups would be deleted early; clear it otherwise."""
    retention = automatic_retention(hass, agent_id)
    minimum = MIN_DURATION_DAYS.get(storage_class, 0)
    if retention is None or retention.kept_days >= minimum:
        repairs.async_clear(hass, entry, ISSUE_RETENTION)
        return
    cheapest = cheapest_class(table, size, retention)
    repairs.async_raise(
        hass,
        entry,
        ISSUE_RETENTION,
        severity=ir.IssueSeverity.WARNING,
        storage_class=class_name(storage_class),
        minimum=str(minimum),
        kept=_number(retention.kept_days),
        size=f"{Decimal(size) / GIB:.2f}",
        cost=_usd(retention_monthly_cost(table, storage_class, size, retention)),
        cheapest=class_name(cheapest),
        cheapest_cost=_usd(retention_monthly_cost(table, cheapest, size, retention)),
    )


def _number(value: Decimal) -> str:
    """Days as a person writes them: 7, or 2.3."""
    rounded = value.quantize(Decimal("0.1"))
    return f"{rounded:f}".removesuffix(".0")


def _usd(value: Decimal) -> str:
    """Dollars with cents, or four decimals below one cent (never scientific notation)."""
    places = Decimal("0.01") if value >= Decimal("0.01") else Decimal("0.0001")
    return f"{value.quantize(places):f}"
