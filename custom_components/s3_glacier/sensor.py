"""Sensors: what the archive holds, what it costs, what deleting early would cost.

Readable values: sizes are MiB with two decimals and money USD with four, both
rounded *up*, so that a non-empty archive never reads "0.00" (the exact byte count
is an attribute). Storage classes show by their AWS names through translations.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_CEILING, Decimal
from typing import Any

from homeassistant.components.sensor import (
    DOMAIN as SENSOR_DOMAIN,
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import EntityCategory, UnitOfInformation, UnitOfTime
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import dt as dt_util

from .action_helpers import human_size, round_money
from .archive.models import MIB, S3_STORAGE_CLASSES, ArchivedObject, StorageClass
from .archive.summary import ArchiveSummary
from .archive.vault import parse_description
from .const import DOMAIN
from .coordinator import S3GlacierCoordinator
from .data import S3GlacierConfigEntry
from .entity import S3GlacierEntity
from .export_schedule import DailyHistoryExport

# The coordinator does all fetching; entities only read its data.
PARALLEL_UPDATES = 0

CURRENCY = "USD"
# The pending-restores attribute lists this many (the soonest ready); more would
# outgrow the recorder's attribute limit, so the attribute is not recorded either.
MAX_LISTED_RESTORES = 20
_SIZE_STEP = Decimal("0.01")


def mebibytes(size: int) -> Decimal:
    """Bytes as MiB, rounded up to the displayed two decimals (one byte reads 0.01)."""
    return (Decimal(size) / MIB).quantize(_SIZE_STEP, rounding=ROUND_CEILING)


def dollars(amount: Decimal) -> str:
    """USD as text for an attribute: ``$0.0001``, ``$1,234.5000`` (rounded up)."""
    return f"${round_money(amount):,}"


def class_key(storage_class: StorageClass) -> str:
    """The translation key of a storage class (attribute names and values)."""
    return storage_class.value.lower()


def object_name(obj: ArchivedObject) -> str:
    """An S3 key, or a vault archive's file name (its ID when the description has none)."""
    if obj.storage_class is StorageClass.VAULT and (info := parse_description(obj.description)):
        return info.name
    return obj.key


@dataclass(frozen=True, kw_only=True)
class S3GlacierSensorDescription(SensorEntityDescription):
    """A sensor computed from the archive summary."""

    value_fn: Callable[[ArchiveSummary], int | Decimal | datetime | None]
    attrs_fn: Callable[[ArchiveSummary], Mapping[str, Any] | None] = lambda _: None


def _size_attributes(summary: ArchiveSummary) -> dict[str, Any]:
    return {"bytes": summary.bytes}


def _cost_attributes(summary: ArchiveSummary) -> dict[str, Any]:
    prices = summary.prices
    # One attribute per storage class that holds objects, named after the class. Text,
    # because the frontend shows a number attribute with at most two decimals.
    by_class = {class_key(c): dollars(v) for c, v in sorted(summary.cost.by_class.items())}
    return {
        **by_class,
        "price_table_date": prices.date.isoformat(),
        "priced_region": prices.priced_region,
        "region_fallback": prices.fallback,
        "overridden_prices": sorted(str(c) for c in prices.overridden),
    }


def _pending_attributes(summary: ArchiveSummary) -> dict[str, Any]:
    soonest = sorted(summary.pending_restores, key=lambda p: (p.ready_by, p.key))
    listed = soonest[:MAX_LISTED_RESTORES]
    # One line of text per restore: the frontend shows a list of strings as a list,
    # but a list of mappings as a raw dump.
    attributes: dict[str, Any] = {
        "restores": [
            f"{p.key} ({p.tier.value}, ready by "
            f"{dt_util.as_local(p.ready_by).strftime('%Y-%m-%d %H:%M')})"
            for p in listed
        ]
    }
    if len(soonest) > len(listed):
        attributes["more_restores"] = len(soonest) - len(listed)
    return attributes


def _last_archived_attributes(summary: ArchiveSummary) -> dict[str, Any] | None:
    if (obj := summary.last_archived) is None:
        return None
    return {
        "key": object_name(obj),
        "size": human_size(obj.size),
        "storage_class": class_key(obj.storage_class),
    }


def _class_size(storage_class: StorageClass) -> Callable[[ArchiveSummary], Decimal]:
    def value(summary: ArchiveSummary) -> Decimal:
        usage = summary.usage.get(storage_class)
        return mebibytes(usage.bytes if usage else 0)

    return value


def _size_sensor(storage_class: StorageClass) -> S3GlacierSensorDescription:
    """A diagnostic sensor of the MiB in one storage class, disabled by default."""
    return S3GlacierSensorDescription(
        key=f"size_{class_key(storage_class)}",
        translation_key=f"size_{class_key(storage_class)}",
        device_class=SensorDeviceClass.DATA_SIZE,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfInformation.MEBIBYTES,
        suggested_display_precision=2,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        value_fn=_class_size(storage_class),
    )


SENSORS: tuple[S3GlacierSensorDescription, ...] = (
    S3GlacierSensorDescription(
        key="archived_size",
        translation_key="archived_size",
        device_class=SensorDeviceClass.DATA_SIZE,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfInformation.MEBIBYTES,
        suggested_display_precision=2,
        value_fn=lambda s: mebibytes(s.bytes),
        attrs_fn=_size_attributes,
    ),
    S3GlacierSensorDescription(
        key="archived_objects",
        translation_key="archived_objects",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda s: s.objects,
    ),
    S3GlacierSensorDescription(
        key="monthly_cost",
        translation_key="monthly_cost",
        device_class=SensorDeviceClass.MONETARY,
        native_unit_of_measurement=CURRENCY,
        suggested_display_precision=4,
        value_fn=lambda s: round_money(s.cost.total),
        attrs_fn=_cost_attributes,
    ),
    S3GlacierSensorDescription(
        key="early_deletion_exposure",
        translation_key="early_deletion_exposure",
        device_class=SensorDeviceClass.MONETARY,
        native_unit_of_measurement=CURRENCY,
        suggested_display_precision=4,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda s: round_money(s.early_deletion_exposure),
    ),
    S3GlacierSensorDescription(
        key="pending_restores",
        translation_key="pending_restores",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda s: len(s.pending_restores),
        attrs_fn=_pending_attributes,
    ),
    S3GlacierSensorDescription(
        key="last_archived",
        translation_key="last_archived",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=lambda s: s.last_archived.last_modified if s.last_archived else None,
        attrs_fn=_last_archived_attributes,
    ),
)


@callback
def _forget_gibibytes(hass: HomeAssistant, entry: S3GlacierConfigEntry) -> None:
    """Let size sensors registered when GiB was suggested show MiB.

    Home Assistant stores the suggested unit when an entity is first registered; a
    unit the user chose is kept.
    """
    registry = er.async_get(hass)
    for entity in er.async_entries_for_config_entry(registry, entry.entry_id):
        private: Mapping[str, Any] = entity.options.get(f"{SENSOR_DOMAIN}.private") or {}
        chosen_by_user: Mapping[str, Any] = entity.options.get(SENSOR_DOMAIN) or {}
        chosen = chosen_by_user.get("unit_of_measurement")
        if (
            entity.platform == DOMAIN
            and chosen is None
            and private.get("suggested_unit_of_measurement") == UnitOfInformation.GIBIBYTES
        ):
            registry.async_update_entity_options(
                entity.entity_id,
                f"{SENSOR_DOMAIN}.private",
                {"suggested_unit_of_measurement": UnitOfInformation.MEBIBYTES},
            )


async def async_setup_entry(
    hass: HomeAssistant,
    entry: S3GlacierConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the sensors of one entry."""
    _forget_gibibytes(hass, entry)
    coordinator = entry.runtime_data.coordinator
    classes = (StorageClass.VAULT,) if coordinator.is_vault else S3_STORAGE_CLASSES
    descriptions = (*SENSORS, *(_size_sensor(storage_class) for storage_class in classes))
    async_add_entities(S3GlacierSensor(coordinator, description) for description in descriptions)
    if (history_export := entry.runtime_data.history_export) is not None:
        async_add_entities([HistoryExportSensor(coordinator, history_export)])


class S3GlacierSensor(S3GlacierEntity, SensorEntity):
    """A sensor of the archive summary."""

    entity_description: S3GlacierSensorDescription
    # Lists that change with every restore: shown, not kept in the history.
    _unrecorded_attributes = frozenset({"restores", "more_restores"})

    @property
    def native_value(self) -> int | Decimal | datetime | None:
        """The value, computed from the coordinator's summary."""
        return self.entity_description.value_fn(self.coordinator.data)

    @property
    def extra_state_attributes(self) -> Mapping[str, Any] | None:
        """Attributes that explain the value (breakdowns, keys, dates)."""
        return self.entity_description.attrs_fn(self.coordinator.data)


HISTORY_EXPORT_SENSOR = SensorEntityDescription(
    key="history_days_waiting",
    translation_key="history_days_waiting",
    # A unit lets the frontend draw the backlog as a graph instead of a timeline.
    native_unit_of_measurement=UnitOfTime.DAYS,
    # No state class: long-term statistics of a backlog would only grow the database.
    entity_category=EntityCategory.DIAGNOSTIC,
)


class HistoryExportSensor(S3GlacierEntity, SensorEntity):
    """Days the daily history export has still to export, and the last one it did.

    Counts down while a catch-up runs; unknown while the export is switched off (the
    entity stays available: nothing is wrong).
    """

    def __init__(self, coordinator: S3GlacierCoordinator, schedule: DailyHistoryExport) -> None:
        """Show the progress of ``schedule``."""
        super().__init__(coordinator, HISTORY_EXPORT_SENSOR)
        self._schedule = schedule

    async def async_added_to_hass(self) -> None:
        """Follow the schedule's progress as well as the coordinator."""
        await super().async_added_to_hass()
        self.async_on_remove(self._schedule.async_add_listener(self.async_write_ha_state))

    @property
    def native_value(self) -> int | None:
        """Complete days not exported yet (None while switched off)."""
        return self._schedule.days_waiting

    @property
    def extra_state_attributes(self) -> Mapping[str, Any]:
        """The last day exported (a local date)."""
        last = self._schedule.last_exported
        return {"last_exported_day": last.isoformat() if last else None}
