"""Two writers on one key, and a reconcile during an upload, through the actions.

Against moto in process. An upload is held mid-way by a botocore hook on the entry's
own client (in the executor thread that sends its part) while the test runs the
other action, so the interleaving is exact, without sleeps.
"""

from __future__ import annotations

from collections.abc import Callable
import hashlib
from pathlib import Path
import threading
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.s3_glacier.const import (
    CONF_ENCRYPTION,
    CONF_PART_SIZE_MIB,
    CONF_PREFIX,
    CONF_STORAGE_CLASS,
    DOMAIN,
)

from .conftest import BUCKET, BUCKET_DATA, REGION

MIB = 1024 * 1024


class HeldPart:
    """A before-call hook on UploadPart that holds the first part until released."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.release = threading.Event()

    def __call__(self, **_: Any) -> None:
        if not self.reached.is_set():
            self.reached.set()
            assert self.release.wait(30), "the test never released the upload"


def _write(path: Path, size: int, seed: int) -> bytes:
    data = (hashlib.sha256(str(seed).encode()).digest() * (size // 32 + 1))[:size]
    path.write_bytes(data)
    return data


def _hold_uploads(entry: MockConfigEntry) -> tuple[HeldPart, Callable[[], None]]:
    """Hold the entry's next multipart upload at its first part; return the undo."""
    held = HeldPart()
    events = entry.runtime_data.target._client.meta.events
    events.register("before-call.s3.UploadPart", held)
    return held, lambda: events.unregister("before-call.s3.UploadPart", held)


async def _add_entry(hass: HomeAssistant, prefix: str) -> MockConfigEntry:
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=f"{BUCKET}/{prefix}",
        data={**BUCKET_DATA, CONF_PREFIX: prefix},
        options={
            CONF_STORAGE_CLASS: "STANDARD",
            CONF_ENCRYPTION: "AES256",
            CONF_PART_SIZE_MIB: 5,
        },
        unique_id=f"{REGION}|{BUCKET}|{prefix}",
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    return entry


@pytest.fixture
def allowed(hass: HomeAssistant, tmp_path: Path) -> Path:
    base = tmp_path / "allowed"
    base.mkdir()
    hass.config.allowlist_external_dirs = {str(base.resolve())}
    return base


async def _archive(hass: HomeAssistant, entry: MockConfigEntry, **data: Any) -> Any:
    return await hass.services.async_call(
        DOMAIN,
        "archive",
        {"config_entry_id": entry.entry_id, **data},
        blocking=True,
        return_response=True,
    )


async def test_overlapping_entries_never_lose_the_first_object(
    hass: HomeAssistant, aws: None, s3: Any, allowed: Path
) -> None:
    """Entries "" and "shared/" archive to the same key; B (small) finishes first.

    A saw the key empty before B wrote it; its completion is refused ("exists"), its
    upload aborted, its file kept; B's object and B's deleted source are safe.
    """
    whole = await _add_entry(hass, "")
    shared = await _add_entry(hass, "shared")
    (allowed / "a").mkdir()
    (allowed / "b").mkdir()
    _write(allowed / "a" / "report.bin", 11 * MIB, seed=1)
    b_data = _write(allowed / "b" / "report.bin", 5000, seed=2)
    held, undo = _hold_uploads(whole)
    try:
        a_call = hass.async_create_task(
            _archive(hass, whole, path=str(allowed / "a" / "report.bin"), key="shared/report.bin")
        )
        assert await hass.async_add_executor_job(held.reached.wait, 30)
        response = await _archive(
            hass, shared, path=str(allowed / "b" / "report.bin"), delete_source=True
        )
        assert [item["key"] for item in response["archived"]] == ["shared/report.bin"]
        assert not (allowed / "b" / "report.bin").exists()
        held.release.set()
        with pytest.raises(HomeAssistantError) as err:
            await a_call
    finally:
        held.release.set()
        undo()

    assert err.value.translation_key == "object_exists"
    assert err.value.translation_placeholders["key"] == "shared/report.bin"
    assert s3.get_object(Bucket=BUCKET, Key="shared/report.bin")["Body"].read() == b_data
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    assert (allowed / "a" / "report.bin").exists()


async def test_refresh_during_an_upload_leaves_it_running(
    hass: HomeAssistant, aws: None, s3: Any, allowed: Path
) -> None:
    """A refresh (reconcile + stale-upload sweep) while a multipart archive runs.

    moto dates every upload 2010-11-10, so only the registry of uploads in flight
    keeps the sweep from aborting this one.
    """
    entry = await _add_entry(hass, "ha")
    data = _write(allowed / "big.bin", 11 * MIB, seed=3)
    held, undo = _hold_uploads(entry)
    try:
        call = hass.async_create_task(_archive(hass, entry, path=str(allowed / "big.bin")))
        assert await hass.async_add_executor_job(held.reached.wait, 30)
        await hass.services.async_call(
            DOMAIN,
            "refresh",
            {"config_entry_id": entry.entry_id},
            blocking=True,
            return_response=True,
        )
        assert len(s3.list_multipart_uploads(Bucket=BUCKET)["Uploads"]) == 1
        held.release.set()
        response = await call
    finally:
        held.release.set()
        undo()

    assert [item["key"] for item in response["archived"]] == ["ha/big.bin"]
    assert s3.get_object(Bucket=BUCKET, Key="ha/big.bin")["Body"].read() == data
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
