"""Base entity: one service device per config entry, named after the entry."""

from __future__ import annotations

from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.entity import EntityDescription
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import CONF_ENDPOINT_URL, DOMAIN
from .coordinator import S3GlacierCoordinator


class S3GlacierEntity(CoordinatorEntity[S3GlacierCoordinator]):
    """An entity of one archive (bucket and prefix)."""

    _attr_has_entity_name = True

    def __init__(self, coordinator: S3GlacierCoordinator, description: EntityDescription) -> None:
        """Attach the entity to the entry's device."""
        super().__init__(coordinator)
        entry = coordinator.config_entry
        self.entity_description = description
        self._attr_unique_id = f"{entry.entry_id}_{description.key}"
        on_aws = not entry.data.get(CONF_ENDPOINT_URL)
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, entry.entry_id)},
            name=entry.title,
            entry_type=DeviceEntryType.SERVICE,
            manufacturer="Amazon Web Services" if on_aws else None,
            model="Glacier vault" if coordinator.is_vault else "S3 bucket",
        )
