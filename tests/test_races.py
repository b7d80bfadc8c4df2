"""Races the review found: actions on one key, unload during a transfer, superseded restores.

Each test wraps a real engine method (against in-process moto) so that a step can be
held open while another happens; none of them sleeps to make time pass.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
import hashlib
from pathlib import Path
import threading
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
)

from custom_components.s3_glacier.archive.catalog import Catalog, CatalogError
from custom_components.s3_glacier.archive.s3 import S3Target
from custom_components.s3_glacier.const import DOMAIN

from .conftest import BUCKET, MotoRestores, call_action

pytestmark = pytest.mark.usefixtures("init_integration")


@pytest.fixture
def files(hass: HomeAssistant, tmp_path: Path) -> Path:
    """An allowlisted directory."""
    base = tmp_path / "files"
    base.mkdir()
    hass.config.allowlist_external_dirs = {str(base.resolve())}
    return base


class Gate:
    """Holds the calls of one method at a point, and records how many overlapped."""

    def __init__(self, wait: float = 5) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()
        self.active = 0
        self.most_active = 0
        self._wait = wait

    def wrap(self, method: Callable[..., Any]) -> Callable[..., Any]:
        def held(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.active += 1
                self.most_active = max(self.most_active, self.active)
            self.entered.set()
            try:
                self.release.wait(self._wait)
                return method(*args, **kwargs)
            finally:
                with self._lock:
                    self.active -= 1

        return held


async def test_two_archives_to_one_key_take_turns(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    files: Path,
    s3: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two uploads to one key never overlap; the catalog matches what the bucket holds."""
    (files / "one").mkdir()
    (files / "two").mkdir()
    (files / "one" / "same.bin").write_bytes(b"1" * 1000)
    (files / "two" / "same.bin").write_bytes(b"2" * 2000)
    # Each upload waits up to 1 s for the other to start: with the per-key lock, it
    # never does.
    gate = Gate(wait=1)
    monkeypatch.setattr(S3Target, "put", gate.wrap(S3Target.put))

    results = await asyncio.gather(
        *(
            call_action(hass, "archive", path=str(files / folder / "same.bin"), overwrite=True)
            for folder in ("one", "two")
        )
    )
    assert gate.most_active == 1
    assert all(len(r["archived"]) == 1 for r in results)
    stored = s3.get_object(Bucket=BUCKET, Key="ha/same.bin")
    digest = hashlib.sha256(stored["Body"].read()).hexdigest()
    assert stored["Metadata"]["sha256"] == digest
    recorded = init_integration.runtime_data.catalog.get("ha/same.bin")
    assert recorded is not None
    assert recorded.sha256 == digest


async def test_unload_during_an_upload_keeps_its_record(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    files: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The catalog stays open until the upload has recorded its object, then closes."""
    (files / "slow.bin").write_bytes(b"s" * 5000)
    gate = Gate()
    monkeypatch.setattr(S3Target, "put", gate.wrap(S3Target.put))
    data = init_integration.runtime_data

    task = hass.async_create_task(call_action(hass, "archive", path=str(files / "slow.bin")))
    assert await hass.async_add_executor_job(gate.entered.wait, 5)
    assert await hass.config_entries.async_unload(init_integration.entry_id)
    gate.release.set()
    response = await task
    assert response["archived"][0]["key"] == "ha/slow.bin"
    await hass.async_block_till_done(wait_background_tasks=True)

    with pytest.raises(CatalogError):
        data.catalog.get("ha/slow.bin")  # closed, now that nothing uses it
    with Catalog(data.catalog.path) as reopened:
        assert reopened.get("ha/slow.bin") is not None


async def test_new_restore_request_supersedes_a_check_in_flight(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    files: Path,
    freezer: FrozenDateTimeFactory,
    restores: MotoRestores,
) -> None:
    """A request made while the watcher checks an older one wins: one download, to it."""
    (files / "r.bin").write_bytes(b"r" * 3000)
    await call_action(hass, "archive", path=str(files / "r.bin"), storage_class="GLACIER")
    (files / "r.bin").unlink()
    (files / "a").mkdir()
    (files / "b").mkdir()
    await call_action(hass, "restore", key="ha/r.bin", destination=str(files / "a"))
    restores.hold("ha/r.bin")
    completed = async_capture_events(hass, f"{DOMAIN}_restore_completed")

    target = init_integration.runtime_data.target
    gate = Gate()
    real_state = target.restore_state
    calls = 0

    def first_call_held(key: str) -> Any:
        nonlocal calls
        calls += 1
        return gate.wrap(real_state)(key) if calls == 1 else real_state(key)

    target.restore_state = first_call_held  # type: ignore[method-assign]
    freezer.tick(timedelta(minutes=16))
    async_fire_time_changed(hass)
    assert await hass.async_add_executor_job(gate.entered.wait, 5)

    response = await call_action(hass, "restore", key="ha/r.bin", destination=str(files / "b"))
    assert response["status"] == "restore_in_progress"
    gate.release.set()
    await hass.async_block_till_done(wait_background_tasks=True)

    restores.finish()
    for _ in range(2):
        freezer.tick(timedelta(minutes=16))
        async_fire_time_changed(hass)
        await hass.async_block_till_done(wait_background_tasks=True)
    assert [e.data["path"] for e in completed] == [str((files / "b" / "r.bin").resolve())]
    assert (files / "b" / "r.bin").read_bytes() == b"r" * 3000
    assert not (files / "a" / "r.bin").exists()
    assert hass.states.get("sensor.demo_archive_ha_pending_restores").state == "0"
