"""End to end over real HTTP: moto_server on 127.0.0.1, with a fault proxy in between."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
import hashlib
import logging
import os
from pathlib import Path
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.s3_glacier.const import (
    CONF_CONCURRENCY,
    CONF_ENCRYPTION,
    CONF_ENDPOINT_URL,
    CONF_PART_SIZE_MIB,
    CONF_STORAGE_CLASS,
    DOMAIN,
)

from .conftest import BUCKET, BUCKET_DATA, MotoServer, call_action
from .fault_proxy import FaultProxy

MIB = 1024 * 1024


@pytest.fixture
def proxy(moto_endpoint: MotoServer) -> Iterator[FaultProxy]:
    """A fault proxy in front of moto_server."""
    fault_proxy = FaultProxy(moto_endpoint.port)
    fault_proxy.start()
    yield fault_proxy
    fault_proxy.stop()


@pytest.fixture
async def http_entry(
    hass: HomeAssistant, proxy: FaultProxy, one_attempt: None, tmp_path: Path
) -> AsyncIterator[MockConfigEntry]:
    """An entry whose endpoint is moto_server behind the proxy; 5 MiB parts, 2 at a time."""
    hass.config.allowlist_external_dirs = {str(tmp_path.resolve())}
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=f"{BUCKET}/ha",
        data={**BUCKET_DATA, CONF_ENDPOINT_URL: proxy.url},
        options={
            CONF_STORAGE_CLASS: "GLACIER_IR",
            CONF_ENCRYPTION: "AES256",
            CONF_PART_SIZE_MIB: 5,
            CONF_CONCURRENCY: 2,
        },
        unique_id=f"{proxy.url}|{BUCKET}|ha",
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    yield entry
    assert await hass.config_entries.async_unload(entry.entry_id)


@pytest.fixture
def big_file(tmp_path: Path) -> tuple[Path, bytes]:
    """12 MiB of random bytes: three 5 MiB parts, the last one smaller."""
    data = os.urandom(12 * MIB)
    path = tmp_path / "src" / "big.bin"
    path.parent.mkdir()
    path.write_bytes(data)
    return path, data


async def test_multipart_round_trip(
    hass: HomeAssistant,
    http_entry: MockConfigEntry,
    moto_endpoint: MotoServer,
    big_file: tuple[Path, bytes],
    tmp_path: Path,
) -> None:
    """A file above the part size goes up in equal parts and comes back verified."""
    path, data = big_file
    parts: list[tuple[int, str | None]] = []

    def record_part(params: dict[str, Any], **_: Any) -> None:
        body = params["body"]
        size = len(body) if isinstance(body, bytes) else len(body.getvalue())
        parts.append((size, params["headers"].get("Content-MD5")))

    events = http_entry.runtime_data.target._client.meta.events
    events.register("before-call.s3.UploadPart", record_part)
    response = await call_action(hass, "archive", path=str(path))
    # Equal parts, each with the Content-MD5 an S3-compatible service checks.
    assert [size for size, _ in parts] == [5 * MIB, 5 * MIB, 2 * MIB]
    assert all(md5 for _, md5 in parts)
    item = response["archived"][0]
    assert item["etag"].endswith("-3")
    assert item["sha256"] == hashlib.sha256(data).hexdigest()
    head = moto_endpoint.client().head_object(Bucket=BUCKET, Key="ha/big.bin")
    assert head["Metadata"]["sha256"] == item["sha256"]
    assert head["ContentLength"] == len(data)

    out = tmp_path / "out"
    out.mkdir()
    response = await call_action(hass, "restore", key="ha/big.bin", destination=str(out))
    assert response["status"] == "restored"
    assert (out / "big.bin").read_bytes() == data
    assert [p.name for p in out.iterdir()] == ["big.bin"]


@pytest.mark.usefixtures("http_entry")
async def test_cut_upload_leaves_nothing_behind(
    hass: HomeAssistant,
    moto_endpoint: MotoServer,
    proxy: FaultProxy,
    big_file: tuple[Path, bytes],
) -> None:
    """Connection cut mid-multipart: translated error, upload aborted, source kept."""
    path, data = big_file
    proxy.cut_upstream = 3 * MIB
    with pytest.raises(HomeAssistantError) as err:
        await call_action(hass, "archive", path=str(path), delete_source=True)
    assert err.value.translation_key == "cannot_connect"
    assert proxy.cuts >= 1

    s3 = moto_endpoint.client()
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0
    assert path.read_bytes() == data
    assert hass.states.get("sensor.demo_archive_ha_archived_objects").state == "0"


@pytest.mark.usefixtures("http_entry")
async def test_cut_download_leaves_destination_untouched(
    hass: HomeAssistant,
    proxy: FaultProxy,
    big_file: tuple[Path, bytes],
    tmp_path: Path,
) -> None:
    """Connection cut mid-download: no file, no temporary file; a retry succeeds."""
    path, data = big_file
    await call_action(hass, "archive", path=str(path))
    out = tmp_path / "out"
    out.mkdir()

    proxy.cut_downstream = 2 * MIB
    with pytest.raises(HomeAssistantError) as err:
        await call_action(hass, "restore", key="ha/big.bin", destination=str(out))
    assert err.value.translation_key == "cannot_connect"
    assert list(out.iterdir()) == []

    proxy.cut_downstream = None
    await call_action(hass, "restore", key="ha/big.bin", destination=str(out))
    assert (out / "big.bin").read_bytes() == data


@pytest.mark.usefixtures("http_entry")
async def test_sensors_unavailable_while_endpoint_unreachable(
    hass: HomeAssistant,
    proxy: FaultProxy,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    """Unreachable → unavailable, logged once; back → available, logged once."""
    entity = "sensor.demo_archive_ha_archived_size"
    assert hass.states.get(entity).state != STATE_UNAVAILABLE
    proxy.cut_upstream = 0
    for _ in range(3):
        freezer.tick(timedelta(minutes=15, seconds=1))
        async_fire_time_changed(hass)
        await hass.async_block_till_done(wait_background_tasks=True)
        assert hass.states.get(entity).state == STATE_UNAVAILABLE
    failures = [r for r in caplog.records if "Error fetching" in r.getMessage()]
    assert len(failures) == 1

    # An action that fails to reach the endpoint does not make the sensors available.
    (tmp_path / "f.bin").write_bytes(b"f")
    with pytest.raises(HomeAssistantError) as err:
        await call_action(hass, "archive", path=str(tmp_path / "f.bin"))
    assert err.value.translation_key == "cannot_connect"
    assert hass.states.get(entity).state == STATE_UNAVAILABLE

    proxy.cut_upstream = None
    for _ in range(2):
        freezer.tick(timedelta(minutes=15, seconds=1))
        async_fire_time_changed(hass)
        await hass.async_block_till_done(wait_background_tasks=True)
        assert hass.states.get(entity).state != STATE_UNAVAILABLE
    recoveries = [r for r in caplog.records if "recovered" in r.getMessage()]
    assert [r.levelno for r in recoveries] == [logging.INFO]
    # The one failed refresh is the only record above INFO: the failed action raised a
    # translated error and logged nothing, the later refreshes did not log it again.
    assert [(r.levelno, r.getMessage()) for r in caplog.records if r.levelno > logging.INFO] == [
        (
            logging.ERROR,
            "Error fetching s3_glacier demo-archive/ha data: Could not reach the storage endpoint",
        )
    ]
