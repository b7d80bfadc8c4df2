"""Every action of the integration is for administrators only.

The actions read and write local files, delete archives and make billed requests. The
test walks the actions Home Assistant has registered for the domain, so an action
added later without the check fails it (or fails for lack of a call below, which
then has to be written).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from homeassistant.auth.models import User
from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import Unauthorized
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events

from custom_components.s3_glacier.const import DOMAIN

from .conftest import BUCKET, write_seeded

pytestmark = pytest.mark.usefixtures("init_integration")


def _calls(allowed: Path) -> dict[str, dict[str, Any]]:
    """For each action, a call that would change something if it were allowed."""
    return {
        "archive": {
            "path": str(allowed / "source.bin"),
            "key": "ha/kept.bin",
            "overwrite": True,
            "delete_source": True,
        },
        "restore": {
            "key": "ha/kept.bin",
            "destination": str(allowed / "restored"),
            "overwrite": True,
        },
        "delete": {"key": "ha/kept.bin"},
        "list": {},
        "refresh": {},
        "export_history": {"key": "ha/history"},
    }


class World:
    """What an action could change: the bucket, the allowed files, the catalog, requests."""

    def __init__(self, hass: HomeAssistant, entry: MockConfigEntry, s3: Any, allowed: Path):
        self._hass = hass
        self._entry = entry
        self._s3 = s3
        self._allowed = allowed
        self.requests: list[str] = []
        entry.runtime_data.target._client.meta.events.register(
            "before-call.s3.*", lambda model, **_: self.requests.append(model.name)
        )

    async def snapshot(self) -> tuple[Any, ...]:
        listed = self._s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])
        files = {
            str(path.relative_to(self._allowed)): path.read_bytes()
            for path in sorted(self._allowed.rglob("*"))
            if path.is_file()
        }
        catalog = self._entry.runtime_data.catalog
        rows = await self._hass.async_add_executor_job(catalog.objects)
        return (
            sorted((o["Key"], o["ETag"], o.get("StorageClass")) for o in listed),
            files,
            rows,
            tuple(self.requests),
        )


async def _call(hass: HomeAssistant, action: str, data: dict[str, Any], user: User) -> Any:
    return await hass.services.async_call(
        DOMAIN,
        action,
        data,
        blocking=True,
        return_response=True,
        context=Context(user_id=user.id),
    )


async def test_every_action_refuses_a_non_admin_user(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    hass_admin_user: User,
    hass_read_only_user: User,
    allowed: Path,
    s3: Any,
) -> None:
    """Unauthorized, and nothing done: no object written or deleted, no file written or
    deleted, no catalog row, no request, no event."""
    calls = _calls(allowed)
    write_seeded(allowed / "source.bin", 2000, seed=1)
    # An administrator archives the file: the calls below are ones that would work.
    await _call(hass, "archive", {**calls["archive"], "delete_source": False}, hass_admin_user)
    write_seeded(allowed / "source.bin", 3000, seed=2)  # a new version to archive
    world = World(hass, init_integration, s3, allowed)
    before = await world.snapshot()
    assert len(before[0]) == 1
    assert len(before[2]) == 1
    events = async_capture_events(hass, "*")

    actions = sorted(hass.services.async_services_for_domain(DOMAIN))
    assert actions  # the integration registered its actions
    for action in actions:
        assert action in calls, f"add a call of the new action {action!r} to _calls"
        with pytest.raises(Unauthorized):
            await _call(hass, action, calls[action], hass_read_only_user)
        await hass.async_block_till_done(wait_background_tasks=True)
        assert await world.snapshot() == before, action
    assert [e.event_type for e in events if e.event_type.startswith(DOMAIN)] == []

    # The same calls by an administrator do change things (the test can fail).
    await _call(hass, "archive", calls["archive"], hass_admin_user)
    assert not (allowed / "source.bin").exists()
    await _call(hass, "delete", calls["delete"], hass_admin_user)
    assert s3.list_objects_v2(Bucket=BUCKET).get("Contents", []) == []
