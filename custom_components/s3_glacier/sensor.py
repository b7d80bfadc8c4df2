"""Sensors: what the archive holds, what it costs, what deleting early would cost."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import EntityCategory, UnitOfInformation
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .archive.models import S3_STORAGE_CLASSES, StorageClass
from .archive.summary import ArchiveSummary
from .data import S3GlacierConfigEntry
from .entity import S3GlacierEntity

# The coordinator does all fetching; entities only read its data.
PARALLEL_UPDATES = 0

CURRENCY = "USD"


@dataclass(frozen=True, kw_only=True)
class S3GlacierSensorDescription(SensorEntityDescription):
    """A sensor computed from the archive summary."""

    value_fn: Callable[[ArchiveSummary], int | Decimal | datetime | None]
    attrs_fn: Callable[[ArchiveSummary], Mapping[str, Any] | None] = lambda _: None


def _cost_attributes(summary: ArchiveSummary) -> dict[str, Any]:
    prices = summary.prices
    return {
        "by_storage_class": {str(c): float(v) for c, v in sorted(summary.cost.by_class.items())},
        "price_table_date": prices.date.isoformat(),
        "priced_region": prices.priced_region,
        "region_fallback": prices.fallback,
        "overridden_prices": sorted(str(c) for c in prices.overridden),
    }


def _pending_attributes(summary: ArchiveSummary) -> dict[str, Any]:
    return {
        "restores": [
            {"key": p.key, "tier": str(p.tier), "ready_by": p.ready_by.isoformat()}
            for p in summary.pending_restores
        ]
    }


def _last_archived_attributes(summary: ArchiveSummary) -> dict[str, Any] | None:
    if (obj := summary.last_archived) is None:
        return None
    return {"key": obj.key, "size": obj.size, "storage_class": str(obj.storage_class)}


def _class_size(storage_class: StorageClass) -> Callable[[ArchiveSummary], int]:
    def value(summary: ArchiveSummary) -> int:
        usage = summary.usage.get(storage_class)
        return usage.bytes if usage else 0

    return value


def _size_sensor(storage_class: StorageClass) -> S3GlacierSensorDescription:
    """A diagnostic sensor of the bytes in one storage class, disabled by default."""
    return S3GlacierSensorDescription(
        key=f"size_{storage_class.lower()}",
        translation_key=f"size_{storage_class.lower()}",
        device_class=SensorDeviceClass.DATA_SIZE,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfInformation.BYTES,
        suggested_unit_of_measurement=UnitOfInformation.GIBIBYTES,
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
        native_unit_of_measurement=UnitOfInformation.BYTES,
        suggested_unit_of_measurement=UnitOfInformation.GIBIBYTES,
        suggested_display_precision=2,
        value_fn=lambda s: s.bytes,
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
        value_fn=lambda s: s.cost.total,
        attrs_fn=_cost_attributes,
    ),
    S3GlacierSensorDescription(
        key="early_deletion_exposure",
        translation_key="early_deletion_exposure",
        device_class=SensorDeviceClass.MONETARY,
        native_unit_of_measurement=CURRENCY,
        suggested_display_precision=4,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda s: s.early_deletion_exposure,
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


async def async_setup_entry(
    hass: HomeAssistant,
    entry: S3GlacierConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the sensors of one entry."""
    coordinator = entry.runtime_data.coordinator
    classes = (StorageClass.VAULT,) if coordinator.is_vault else S3_STORAGE_CLASSES
    descriptions = (*SENSORS, *(_size_sensor(storage_class) for storage_class in classes))
    async_add_entities(S3GlacierSensor(coordinator, description) for description in descriptions)


class S3GlacierSensor(S3GlacierEntity, SensorEntity):
    """A sensor of the archive summary."""

    entity_description: S3GlacierSensorDescription

    @property
    def native_value(self) -> int | Decimal | datetime | None:
        """The value, computed from the coordinator's summary."""
        return self.entity_description.value_fn(self.coordinator.data)

    @property
    def extra_state_attributes(self) -> Mapping[str, Any] | None:
        """Attributes that explain the value (breakdowns, keys, dates)."""
        return self.entity_description.attrs_fn(self.coordinator.data)
