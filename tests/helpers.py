"""Small helpers the test files share: moving time, an entry's lifecycle, repair issues."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from moto.core import DEFAULT_ACCOUNT_ID
from moto.s3.models import s3_backends
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.s3_glacier.const import DOMAIN
from custom_components.s3_glacier.coordinator import CHECK_INTERVAL

from .conftest import BUCKET


async def tick(hass: HomeAssistant, freezer: FrozenDateTimeFactory, delta: timedelta) -> None:
    """Move the clock on by ``delta`` and let every timer and task it wakes finish."""
    freezer.tick(delta)
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)


async def next_check(hass: HomeAssistant, freezer: FrozenDateTimeFactory) -> None:
    """Move the clock just past the coordinator's next check and let it run."""
    await tick(hass, freezer, CHECK_INTERVAL + timedelta(seconds=1))


async def set_up(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Set an entry (already added to hass) up, as starting Home Assistant would."""
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)


async def add_and_set_up(hass: HomeAssistant, entry: MockConfigEntry) -> MockConfigEntry:
    """Add a new entry to hass and set it up; return it."""
    entry.add_to_hass(hass)
    await set_up(hass, entry)
    return entry


async def unload(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Unload an entry, as stopping Home Assistant would (its catalog is closed)."""
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert entry.state is ConfigEntryState.NOT_LOADED


def our_issues(hass: HomeAssistant) -> list[ir.IssueEntry]:
    """The repair issues the integration has raised, in the order they were raised."""
    return [i for (domain, _), i in ir.async_get(hass).issues.items() if domain == DOMAIN]


def our_issue_ids(hass: HomeAssistant) -> set[str]:
    """The ids of the repair issues the integration has raised."""
    return {key for domain, key in ir.async_get(hass).issues if domain == DOMAIN}


def moto_object(key: str) -> Any:
    """moto's in-process record of ``key`` in the test bucket (to read or age it)."""
    return s3_backends[DEFAULT_ACCOUNT_ID]["aws"].buckets[BUCKET].keys[key]


def key_lock_held_during(
    monkeypatch: pytest.MonkeyPatch, cls: type, method: str, entry: MockConfigEntry
) -> list[bool]:
    """Whether the entry's lock of the key was held at each ``cls.method(key, ...)`` call."""
    held: list[bool] = []
    real = getattr(cls, method)
    data = entry.runtime_data

    def watched(self: Any, key: str, *args: Any, **kwargs: Any) -> Any:
        held.append(data._key_locks[key][0].locked())
        return real(self, key, *args, **kwargs)

    monkeypatch.setattr(cls, method, watched)
    return held
