"""The backup agent, driven the way Home Assistant drives it.

Backups are generated through the backup integration's websocket API with the
agent's ID, listed with ``backup/info``, deleted with ``backup/delete`` and fetched
through the download view; S3 is moto in process.
"""

from __future__ import annotations

import ast
import asyncio
from collections.abc import Iterator
from datetime import timedelta
import hashlib
import json
from pathlib import Path
import threading
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse
from homeassistant.components.backup import (
    DATA_MANAGER,
    DOMAIN as BACKUP_DOMAIN,
    AgentBackup,
    BackupAgentError,
    BackupNotFound,
    suggested_filename,
)
from homeassistant.components.backup.agent import BackupAgentUnreachableError
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from moto import settings as moto_settings
from moto.core.authorization import ActionAuthenticatorMixin
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator, WebSocketGenerator

import custom_components.s3_glacier
from custom_components.s3_glacier import repairs
from custom_components.s3_glacier.archive.catalog import Catalog, CatalogError
from custom_components.s3_glacier.archive.models import RestoreTier
from custom_components.s3_glacier.backup_agent import backup_transfer_options
from custom_components.s3_glacier.const import (
    CONF_ACCESS_KEY_ID,
    CONF_BACKUP_STORAGE_CLASS,
    CONF_CONCURRENCY,
    CONF_ENCRYPTION,
    CONF_ENDPOINT_URL,
    CONF_PART_SIZE_MIB,
    CONF_PREFIX,
    CONF_SECRET_ACCESS_KEY,
    CONF_STORAGE_CLASS,
    CONF_TARGET,
    CONF_TIER,
    CONF_VAULT_NAME,
    DOMAIN,
)

from .client_hooks import ClientHooks, error_response
from .conftest import BUCKET, BUCKET_DATA, REGION, MotoRestores, MotoServer
from .executor_jobs import ExecutorJobs
from .fault_proxy import FaultProxy

ENTRY_ID = "01JS3GLAC1ERTESTENTRY00001"
AGENT_ID = f"s3_glacier.{ENTRY_ID}"
LOCAL_AGENT_ID = "backup.local"


@pytest.fixture
def backup_class() -> str:
    """The backup storage class option of the entry (lower case)."""
    return "glacier_ir"


@pytest.fixture
def part_options() -> dict[str, int]:
    """The part size (and concurrency) options of the entry."""
    return {CONF_PART_SIZE_MIB: 5}


@pytest.fixture
def tier_option() -> dict[str, str]:
    """The restore tier option of the entry (none: Standard)."""
    return {}


@pytest.fixture
def mock_config_entry(
    backup_class: str, part_options: dict[str, int], tier_option: dict[str, str]
) -> MockConfigEntry:
    """The demo bucket entry, with 5 MiB parts and the backup class of the test."""
    return MockConfigEntry(
        domain="s3_glacier",
        entry_id=ENTRY_ID,
        title=f"{BUCKET}/ha",
        data=dict(BUCKET_DATA),
        options={
            CONF_STORAGE_CLASS: "GLACIER_IR",
            CONF_ENCRYPTION: "AES256",
            CONF_BACKUP_STORAGE_CLASS: backup_class,
            **part_options,
            **tier_option,
        },
        unique_id=f"{REGION}|{BUCKET}|ha",
    )


@pytest.fixture
async def backup_ready(hass: HomeAssistant, init_integration: MockConfigEntry) -> MockConfigEntry:
    """The entry loaded and Home Assistant's backup integration set up."""
    assert await async_setup_component(hass, BACKUP_DOMAIN, {BACKUP_DOMAIN: {}})
    await hass.async_block_till_done()
    return init_integration


async def _generate(
    hass: HomeAssistant,
    ws: Any,
    agent_ids: list[str],
    *,
    padding: int = 0,
    name: str = "Nightly",
) -> str:
    """Generate a backup through the websocket API; return its ID once it is done."""
    if padding:
        # Random bytes do not compress: the backup is at least this large.
        path = Path(hass.config.path("padding.bin"))
        await hass.async_add_executor_job(path.write_bytes, _random(padding))
    await ws.send_json_auto_id({"type": "backup/subscribe_events"})
    assert (await ws.receive_json())["event"] == {"manager_state": "idle"}
    assert (await ws.receive_json())["success"]
    await ws.send_json_auto_id({"type": "backup/generate", "agent_ids": agent_ids, "name": name})
    backup_id = None
    while True:
        message = await ws.receive_json()
        if message.get("type") == "result":
            assert message["success"], message
            continue
        event = message["event"]
        if event.get("manager_state") == "idle":
            break
        if event.get("stage") == "done" or event.get("state") == "completed":
            backup_id = event.get("backup_id", backup_id)
    await hass.async_block_till_done()
    await ws.send_json_auto_id({"type": "backup/info"})
    info = await ws.receive_json()
    assert info["success"]
    (generated,) = [b for b in info["result"]["backups"] if b["name"] == name]
    return str(generated["backup_id"])


def _random(size: int) -> bytes:
    """Deterministic incompressible bytes."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(counter.to_bytes(8, "big")).digest()
        counter += 1
    return bytes(out[:size])


async def _info(ws: Any) -> dict[str, Any]:
    await ws.send_json_auto_id({"type": "backup/info"})
    message = await ws.receive_json()
    assert message["success"], message
    result: dict[str, Any] = message["result"]
    return result


def _keys(s3: Any) -> dict[str, dict[str, Any]]:
    listing = s3.list_objects_v2(Bucket=BUCKET, Prefix="ha/")
    return {item["Key"]: item for item in listing.get("Contents", [])}


@pytest.mark.parametrize(
    ("backup_class", "padding", "expected_class"),
    [
        ("glacier_ir", 0, "GLACIER_IR"),
        ("standard_ia", 12 * 1024 * 1024, "STANDARD_IA"),
    ],
)
async def test_generate_stores_backup_in_class_with_standard_sidecar(
    hass: HomeAssistant,
    backup_ready: MockConfigEntry,
    hass_ws_client: WebSocketGenerator,
    hass_client: ClientSessionGenerator,
    s3: Any,
    padding: int,
    expected_class: str,
) -> None:
    """A generated backup lands as <prefix>/<name>.tar in its class plus a STANDARD sidecar.

    The download view returns it byte for byte as the local copy, and the sidecar
    holds the backup's metadata and the SHA-256 of the tar.
    """
    ws = await hass_ws_client(hass)
    backup_id = await _generate(hass, ws, [LOCAL_AGENT_ID, AGENT_ID], padding=padding)

    info = await _info(ws)
    (backup,) = info["backups"]
    assert set(backup["agents"]) == {LOCAL_AGENT_ID, AGENT_ID}
    assert info["agent_errors"] == {}

    objects = _keys(s3)
    tars = [key for key in objects if key.endswith(".tar")]
    sidecars = [key for key in objects if key.endswith(".metadata.json")]
    assert len(tars) == 1
    assert len(sidecars) == 1
    tar_key = tars[0]
    assert tar_key.startswith("ha/Nightly_")
    assert sidecars[0] == tar_key.removesuffix(".tar") + ".metadata.json"
    tar_head = s3.head_object(Bucket=BUCKET, Key=tar_key)
    sidecar_head = s3.head_object(Bucket=BUCKET, Key=sidecars[0])
    assert tar_head["StorageClass"] == expected_class
    assert "StorageClass" not in sidecar_head  # STANDARD
    stored = s3.get_object(Bucket=BUCKET, Key=tar_key)["Body"].read()
    sidecar = json.loads(s3.get_object(Bucket=BUCKET, Key=sidecars[0])["Body"].read())
    assert sidecar["backup_id"] == backup_id
    assert sidecar["name"] == "Nightly"
    assert sidecar["size"] == len(stored)
    assert sidecar["s3_glacier"]["sha256"] == hashlib.sha256(stored).hexdigest()
    assert len(stored) > padding

    client = await hass_client()
    local = await client.get(f"/api/backup/download/{backup_id}?agent_id={LOCAL_AGENT_ID}")
    remote = await client.get(f"/api/backup/download/{backup_id}?agent_id={AGENT_ID}")
    assert local.status == 200
    assert remote.status == 200
    local_bytes = await local.read()
    assert await remote.read() == local_bytes == stored

    # Recorded in the catalog with its digest, like any archive.
    catalog = backup_ready.runtime_data.catalog
    recorded = await hass.async_add_executor_job(catalog.get, tar_key)
    assert recorded is not None
    assert recorded.sha256 == hashlib.sha256(stored).hexdigest()
    assert str(recorded.storage_class) == expected_class


async def test_multipart_upload_uses_equal_parts(
    hass: HomeAssistant,
    backup_ready: MockConfigEntry,
    hass_ws_client: WebSocketGenerator,
    s3: Any,
) -> None:
    """A 12 MiB backup goes up in 5 MiB parts; no multipart upload is left open."""
    ws = await hass_ws_client(hass)
    await _generate(hass, ws, [AGENT_ID], padding=12 * 1024 * 1024)
    (tar_key,) = [key for key in _keys(s3) if key.endswith(".tar")]
    head = s3.head_object(Bucket=BUCKET, Key=tar_key)
    parts = -(-head["ContentLength"] // (5 * 1024 * 1024))
    assert parts == 3
    # A multipart ETag ends in the part count; every part but the last is 5 MiB.
    assert head["ETag"].strip('"').endswith(f"-{parts}")
    for number in range(1, parts):
        part = s3.head_object(Bucket=BUCKET, Key=tar_key, PartNumber=number)
        assert part["ContentLength"] == 5 * 1024 * 1024
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []


class PartsInFlight:
    """Counts the UploadPart requests under way at once on the entry's client."""

    def __init__(self, hooks: ClientHooks) -> None:
        self._lock = threading.Lock()
        self._now = 0
        self.most = 0
        self.sizes: list[int] = []
        hooks.on("before-call.s3.UploadPart", self._start)
        hooks.on("after-call.s3.UploadPart", self._end)

    def _start(self, params: dict[str, Any], **_: Any) -> None:
        with self._lock:
            self._now += 1
            self.most = max(self.most, self._now)
            self.sizes.append(len(params["body"]))

    def _end(self, **_: Any) -> None:
        with self._lock:
            self._now -= 1


@pytest.mark.parametrize("part_options", [{CONF_PART_SIZE_MIB: 16, CONF_CONCURRENCY: 8}])
async def test_backup_parts_are_capped_for_memory(
    hass: HomeAssistant, backup_ready: MockConfigEntry, s3: Any
) -> None:
    """Archives use the entry's 16 MiB x 8; a backup goes up in 8 MiB parts, at most 4
    under way at once (what holds its memory at or below the built-in agent's)."""
    data = _random(44 * 1024 * 1024)
    hooks = ClientHooks(backup_ready)
    try:
        in_flight = PartsInFlight(hooks)
        await _agent(hass).async_upload_backup(
            open_stream=_open_stream(data), backup=_agent_backup(len(data))
        )
    finally:
        hooks.remove_all()
    mib = 1024 * 1024
    assert sorted(in_flight.sizes) == [4 * mib, *[8 * mib] * 5]
    assert 1 <= in_flight.most <= 4
    (tar_key,) = [key for key in _keys(s3) if key.endswith(".tar")]
    assert s3.get_object(Bucket=BUCKET, Key=tar_key)["Body"].read() == data
    used = backup_transfer_options(backup_ready)
    assert (used.part_size, used.concurrency) == (8 * mib, 4)


async def test_agent_follows_entry_state(
    hass: HomeAssistant, backup_ready: MockConfigEntry, hass_ws_client: WebSocketGenerator
) -> None:
    """The agent, named after the entry, appears while it is loaded and goes on unload."""
    ws = await hass_ws_client(hass)
    await ws.send_json_auto_id({"type": "backup/agents/info"})
    agents = (await ws.receive_json())["result"]["agents"]
    assert {"agent_id": AGENT_ID, "name": f"{BUCKET}/ha"} in agents

    assert await hass.config_entries.async_unload(backup_ready.entry_id)
    await hass.async_block_till_done()
    await ws.send_json_auto_id({"type": "backup/agents/info"})
    agents = (await ws.receive_json())["result"]["agents"]
    assert AGENT_ID not in [agent["agent_id"] for agent in agents]


def _agent(hass: HomeAssistant) -> Any:
    """The agent as the backup manager holds it."""
    return hass.data[DATA_MANAGER].backup_agents[AGENT_ID]


def _agent_backup(size: int, name: str = "Manual") -> Any:
    return AgentBackup(
        addons=[],
        backup_id=f"id-{name.lower()}",
        date="2026-11-27T09:00:00.000000+00:00",
        database_included=True,
        extra_metadata={},
        folders=[],
        homeassistant_included=True,
        homeassistant_version="2026.2.3",
        name=name,
        protected=False,
        size=size,
    )


def _open_stream(data: bytes, *, fail_at: int | None = None, hold_at: Any = None) -> Any:
    """``open_stream`` for ``data`` in 1 MiB chunks; optionally fail or wait part way."""

    async def _open() -> Any:
        async def _chunks() -> Any:
            step = 1024 * 1024
            for offset in range(0, len(data), step):
                if fail_at is not None and offset >= fail_at:
                    raise OSError("disk read failed")
                if hold_at is not None and offset >= hold_at[0]:
                    hold_at[1].set()
                    await hold_at[2].wait()
                yield data[offset : offset + step]

        return _chunks()

    return _open


async def test_upload_reports_progress_when_asked(
    hass: HomeAssistant, backup_ready: MockConfigEntry, s3: Any
) -> None:
    """Home Assistant 2026.4+ passes on_progress: it hears every part, ending at the size."""
    data = _random(12 * 1024 * 1024)
    reported: list[int] = []
    await _agent(hass).async_upload_backup(
        open_stream=_open_stream(data),
        backup=_agent_backup(len(data)),
        on_progress=lambda *, bytes_uploaded, **_: reported.append(bytes_uploaded),
    )
    await hass.async_block_till_done()
    # One report per part as it finishes (in any order), never going back.
    assert reported == sorted(reported)
    assert reported[-1] == len(data)
    steps = sorted(b - a for a, b in zip([0, *reported], reported, strict=False))
    assert steps == [2 * 1024 * 1024, 5 * 1024 * 1024, 5 * 1024 * 1024]
    (tar_key,) = [key for key in _keys(s3) if key.endswith(".tar")]
    assert s3.get_object(Bucket=BUCKET, Key=tar_key)["Body"].read() == data


async def test_failed_stream_aborts_multipart_and_records_nothing(
    hass: HomeAssistant, backup_ready: MockConfigEntry, s3: Any
) -> None:
    """A stream that fails after the first part leaves no object, part or catalog row."""
    data = _random(12 * 1024 * 1024)
    with pytest.raises(BackupAgentError) as raised:
        await _agent(hass).async_upload_backup(
            open_stream=_open_stream(data, fail_at=7 * 1024 * 1024),
            backup=_agent_backup(len(data)),
        )
    assert raised.value.translation_key == "backup_failed"
    assert raised.value.translation_placeholders == {"name": "Manual", "error": "OSError"}
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    assert _keys(s3) == {}
    catalog = backup_ready.runtime_data.catalog
    assert await hass.async_add_executor_job(catalog.objects) == []


async def test_short_stream_is_refused(
    hass: HomeAssistant, backup_ready: MockConfigEntry, s3: Any
) -> None:
    """A stream shorter than the backup's size stores nothing (checksum error)."""
    data = _random(11 * 1024 * 1024)
    with pytest.raises(BackupAgentError) as raised:
        await _agent(hass).async_upload_backup(
            open_stream=_open_stream(data), backup=_agent_backup(len(data) + 1)
        )
    assert raised.value.translation_key == "backup_checksum_mismatch"
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    assert _keys(s3) == {}


async def test_cancelled_upload_aborts_multipart(
    hass: HomeAssistant, backup_ready: MockConfigEntry, s3: Any
) -> None:
    """Cancelling mid-stream aborts the multipart upload before the task ends."""
    data = _random(12 * 1024 * 1024)
    reached, release = asyncio.Event(), asyncio.Event()
    task = hass.async_create_task(
        _agent(hass).async_upload_backup(
            open_stream=_open_stream(data, hold_at=(8 * 1024 * 1024, reached, release)),
            backup=_agent_backup(len(data)),
        )
    )
    await reached.wait()
    uploads = await hass.async_add_executor_job(
        lambda: s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
    )
    assert len(uploads) == 1  # the upload was under way
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    assert _keys(s3) == {}


async def test_upload_never_overwrites_another_writer(
    hass: HomeAssistant, backup_ready: MockConfigEntry, s3: Any
) -> None:
    """An object already at the backup's key stays as it was (conditional write)."""
    data = _random(64 * 1024)
    key = "ha/Manual_2026-11-27_09.00_00000000.tar"
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"someone else's")
    with pytest.raises(BackupAgentError) as raised:
        await _agent(hass).async_upload_backup(
            open_stream=_open_stream(data), backup=_agent_backup(len(data))
        )
    assert raised.value.translation_key == "backup_exists"
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"someone else's"
    assert list(_keys(s3)) == [key]


# -- slice 2: download, delete, errors, the built-in agent's layout ---------------------


async def _download(hass: HomeAssistant, backup_id: str) -> bytes:
    stream = await _agent(hass).async_download_backup(backup_id)
    return b"".join([chunk async for chunk in stream])


async def test_delete_removes_both_files(
    hass: HomeAssistant,
    backup_ready: MockConfigEntry,
    hass_ws_client: WebSocketGenerator,
    s3: Any,
) -> None:
    """backup/delete removes the tar and its sidecar, and their catalog rows."""
    ws = await hass_ws_client(hass)
    backup_id = await _generate(hass, ws, [AGENT_ID])
    assert len(_keys(s3)) == 2
    await ws.send_json_auto_id({"type": "backup/delete", "backup_id": backup_id})
    result = await ws.receive_json()
    assert result["success"], result
    assert result["result"] == {"agent_errors": {}}
    assert _keys(s3) == {}
    assert (await _info(ws))["backups"] == []
    catalog = backup_ready.runtime_data.catalog
    assert await hass.async_add_executor_job(catalog.objects) == []


async def test_missing_backup_is_not_found(
    hass: HomeAssistant, backup_ready: MockConfigEntry, hass_client: ClientSessionGenerator
) -> None:
    """Every verb answers BackupNotFound (translated) for an unknown backup; the view 404s."""
    agent = _agent(hass)
    for call in (
        agent.async_get_backup("missing"),
        agent.async_download_backup("missing"),
        agent.async_delete_backup("missing"),
    ):
        with pytest.raises(BackupNotFound) as raised:
            await call
        assert raised.value.translation_key == "backup_not_found"
        assert raised.value.translation_placeholders == {"name": "missing"}
    client = await hass_client()
    response = await client.get(f"/api/backup/download/missing?agent_id={AGENT_ID}")
    assert response.status == 404


async def test_download_verifies_sha256(
    hass: HomeAssistant,
    backup_ready: MockConfigEntry,
    hass_ws_client: WebSocketGenerator,
    s3: Any,
) -> None:
    """Bytes that differ from the recorded SHA-256 (same size) fail the download."""
    ws = await hass_ws_client(hass)
    backup_id = await _generate(hass, ws, [AGENT_ID])
    (tar_key,) = [key for key in _keys(s3) if key.endswith(".tar")]
    good = s3.get_object(Bucket=BUCKET, Key=tar_key)["Body"].read()
    assert await _download(hass, backup_id) == good
    s3.put_object(Bucket=BUCKET, Key=tar_key, Body=bytes(len(good)))
    with pytest.raises(BackupAgentError) as raised:
        await _download(hass, backup_id)
    assert raised.value.translation_key == "backup_checksum_mismatch"
    assert raised.value.translation_placeholders == {"name": "Nightly"}


def _builtin_aws_s3_layout(s3: Any, backup: AgentBackup, data: bytes, folder: str) -> None:
    """Store a backup as Home Assistant's AWS S3 agent does (folder option of 2026.x).

    ``<folder>/<suggested name>.tar`` and ``.metadata.json`` holding ``as_dict()``,
    both in STANDARD and without any metadata of ours.
    """
    base = suggested_filename(backup).rsplit(".", 1)[0]
    base = f"{folder}/{base}" if folder else base
    s3.put_object(Bucket=BUCKET, Key=f"{base}.tar", Body=data)
    s3.put_object(Bucket=BUCKET, Key=f"{base}.metadata.json", Body=json.dumps(backup.as_dict()))


async def test_backup_of_builtin_agent_is_listed_and_downloadable(
    hass: HomeAssistant,
    backup_ready: MockConfigEntry,
    hass_ws_client: WebSocketGenerator,
    hass_client: ClientSessionGenerator,
    s3: Any,
) -> None:
    """A backup in the built-in AWS S3 layout is listed and downloads byte-identical;
    our sidecars read back with from_dict, as that agent reads them."""
    data = _random(3 * 1024 * 1024)
    theirs = _agent_backup(len(data), name="Builtin")
    _builtin_aws_s3_layout(s3, theirs, data, "ha")
    ws = await hass_ws_client(hass)
    ours_id = await _generate(hass, ws, [AGENT_ID])

    info = await _info(ws)
    listed = {b["backup_id"]: b for b in info["backups"]}
    assert set(listed) == {theirs.backup_id, ours_id}
    assert listed[theirs.backup_id]["name"] == "Builtin"
    assert AGENT_ID in listed[theirs.backup_id]["agents"]

    client = await hass_client()
    response = await client.get(f"/api/backup/download/{theirs.backup_id}?agent_id={AGENT_ID}")
    assert response.status == 200
    assert await response.read() == data

    (sidecar_key,) = [
        key for key in _keys(s3) if key.endswith(".metadata.json") and "Nightly" in key
    ]
    sidecar = json.loads(s3.get_object(Bucket=BUCKET, Key=sidecar_key)["Body"].read())
    assert AgentBackup.from_dict(sidecar).backup_id == ours_id


async def test_listing_is_cached_and_invalidated_by_our_writes(
    hass: HomeAssistant,
    backup_ready: MockConfigEntry,
    s3: Any,
    freezer: Any,
) -> None:
    """Listings are reused for five minutes; our own upload and delete refresh them."""
    agent = _agent(hass)
    assert await agent.async_list_backups() == []
    data = _random(64 * 1024)
    outside = _agent_backup(len(data), name="Outside")
    _builtin_aws_s3_layout(s3, outside, data, "ha")
    assert await agent.async_list_backups() == []  # cached

    ours = _agent_backup(len(data), name="Ours")
    await agent.async_upload_backup(open_stream=_open_stream(data), backup=ours)
    names = {b.name for b in await agent.async_list_backups()}
    assert names == {"Outside", "Ours"}

    await agent.async_delete_backup(ours.backup_id)
    assert {b.name for b in await agent.async_list_backups()} == {"Outside"}
    s3.delete_object(Bucket=BUCKET, Key=f"ha/{suggested_filename(outside)}")
    assert {b.name for b in await agent.async_list_backups()} == {"Outside"}  # cached
    freezer.tick(301)
    assert await agent.async_list_backups() == []  # the tar is gone: not a backup


def _enable_moto_auth(monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on moto checks every request's keys and IAM policies."""
    monkeypatch.setattr(moto_settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)
    monkeypatch.setattr(ActionAuthenticatorMixin, "request_count", 0)


async def test_refused_keys_are_a_translated_auth_error(
    hass: HomeAssistant, backup_ready: MockConfigEntry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keys the service no longer accepts: listing fails with the agent's auth message."""
    _enable_moto_auth(monkeypatch)  # the entry's keys belong to no IAM user
    with pytest.raises(BackupAgentError) as raised:
        await _agent(hass).async_list_backups()
    assert raised.value.translation_key == "backup_invalid_auth"
    assert str(raised.value) == (
        f"Backup {BUCKET}/ha: the service refused the access keys."
        " Re-enter them in the integration's settings"
    )


async def test_denied_listing_is_a_translated_access_error(
    hass: HomeAssistant, aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keys whose policy denies listing: the agent's access-denied message."""
    iam = boto3.client("iam", region_name=REGION)
    iam.create_user(UserName="backups")
    statements = [
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "s3:ListBucket", "Resource": "*"},
    ]
    iam.put_user_policy(
        UserName="backups",
        PolicyName="no-list",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}),
    )
    key = iam.create_access_key(UserName="backups")["AccessKey"]
    _enable_moto_auth(monkeypatch)
    entry = MockConfigEntry(
        domain="s3_glacier",
        entry_id=ENTRY_ID,
        title=f"{BUCKET}/ha",
        data={
            **BUCKET_DATA,
            CONF_ACCESS_KEY_ID: key["AccessKeyId"],
            CONF_SECRET_ACCESS_KEY: key["SecretAccessKey"],
        },
        options={CONF_STORAGE_CLASS: "GLACIER_IR", CONF_ENCRYPTION: "AES256"},
    )
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert await async_setup_component(hass, BACKUP_DOMAIN, {BACKUP_DOMAIN: {}})
    # Whatever the setup reported: the agent raises the issue itself.
    repairs.async_clear(hass, entry, "missing_permission", detail="s3:ListBucket")
    issue_id = repairs.issue_id(entry, "missing_permission", "s3:ListBucket")
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
    with pytest.raises(BackupAgentError) as raised:
        await _agent(hass).async_list_backups()
    assert raised.value.translation_key == "backup_access_denied"
    assert str(raised.value) == (
        f"Backup {BUCKET}/ha: the IAM policy of the access keys does not allow s3:ListBucket."
        " Add s3:ListBucket to the policy (the README lists the complete policy)"
    )
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_key == "missing_permission"


@pytest.fixture
def fault_proxy(moto_endpoint: MotoServer) -> Iterator[FaultProxy]:
    """A fault proxy in front of moto_server."""
    proxy = FaultProxy(moto_endpoint.port)
    proxy.start()
    yield proxy
    proxy.stop()


async def test_throttled_and_unreachable_are_translated(
    hass: HomeAssistant, fault_proxy: FaultProxy, one_attempt: None
) -> None:
    """503 SlowDown is the throttled message; a refused connection is "unreachable"."""
    entry = MockConfigEntry(
        domain="s3_glacier",
        entry_id=ENTRY_ID,
        title=f"{BUCKET}/ha",
        data={**BUCKET_DATA, CONF_ENDPOINT_URL: fault_proxy.url},
        options={CONF_STORAGE_CLASS: "GLACIER_IR", CONF_ENCRYPTION: "AES256"},
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert await async_setup_component(hass, BACKUP_DOMAIN, {BACKUP_DOMAIN: {}})
    agent = _agent(hass)

    fault_proxy.throttle(100)
    with pytest.raises(BackupAgentError) as raised:
        await agent.async_list_backups()
    assert raised.value.translation_key == "backup_throttled"

    fault_proxy.throttle(0)
    fault_proxy.set_listening(False)
    with pytest.raises(BackupAgentUnreachableError) as unreachable:
        await agent.async_list_backups()
    assert unreachable.value.translation_key == "backup_cannot_connect"
    fault_proxy.set_listening(True)
    assert await agent.async_list_backups() == []
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)


# -- slice 3: cold classes --------------------------------------------------------------


@pytest.mark.parametrize(
    ("backup_class", "stored_class", "hours"),
    [("glacier", "GLACIER", 5), ("deep_archive", "DEEP_ARCHIVE", 12)],
)
async def test_cold_backup_download_restores_then_streams(
    hass: HomeAssistant,
    backup_ready: MockConfigEntry,
    hass_ws_client: WebSocketGenerator,
    hass_client: ClientSessionGenerator,
    s3: Any,
    restores: MotoRestores,
    freezer: Any,
    stored_class: str,
    hours: int,
) -> None:
    """A cold backup: the first download starts a Standard restore and says when it
    is ready; a second one says it is still running; once S3 has restored it, a
    repair issue announces it and the download streams the restored copy."""
    ws = await hass_ws_client(hass)
    backup_id = await _generate(hass, ws, [LOCAL_AGENT_ID, AGENT_ID])
    (tar_key,) = [key for key in _keys(s3) if key.endswith(".tar")]
    assert s3.head_object(Bucket=BUCKET, Key=tar_key)["StorageClass"] == stored_class

    requested = dt_util.utcnow()
    with pytest.raises(BackupAgentError) as raised:
        await _download(hass, backup_id)
    ready_by = dt_util.as_local(requested + timedelta(hours=hours)).strftime("%Y-%m-%d %H:%M")
    assert raised.value.translation_key == "backup_restore_started"
    assert raised.value.translation_placeholders == {"name": "Nightly", "ready_by": ready_by}
    assert f"should be ready by {ready_by}" in str(raised.value)
    pending = backup_ready.runtime_data.restores.pending(tar_key)
    assert pending is not None
    assert pending.destination is None
    assert pending.tier is RestoreTier.STANDARD
    restores.hold(tar_key)  # moto finishes restores at once; S3 takes hours
    assert 'ongoing-request="true"' in s3.head_object(Bucket=BUCKET, Key=tar_key)["Restore"]

    with pytest.raises(BackupAgentError) as again:
        await _download(hass, backup_id)
    assert again.value.translation_key == "backup_restore_in_progress"
    assert again.value.translation_placeholders == {"name": "Nightly", "ready_by": ready_by}

    issues = ir.async_get(hass)
    issue_id = repairs.issue_id(backup_ready, "backup_ready", tar_key)
    assert issues.async_get_issue(DOMAIN, issue_id) is None
    restores.finish()
    freezer.tick(timedelta(minutes=15))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    issue = issues.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_key == "backup_ready"
    assert issue.translation_placeholders == {
        "title": f"{BUCKET}/ha",
        "name": "Nightly",
        "days": "3",
    }
    assert backup_ready.runtime_data.restores.pending(tar_key) is None

    client = await hass_client()
    local = await client.get(f"/api/backup/download/{backup_id}?agent_id={LOCAL_AGENT_ID}")
    remote = await client.get(f"/api/backup/download/{backup_id}?agent_id={AGENT_ID}")
    assert remote.status == 200
    assert await remote.read() == await local.read()
    assert issues.async_get_issue(DOMAIN, issue_id) is None  # downloaded: done


class TarInArchiveTier:
    """S3's side of a backup's tar in an INTELLIGENT_TIERING archive tier.

    moto stores the tar but knows no archive tiers: for the tar only (its sidecar stays
    readable, as on S3) HEAD answers get ``ArchiveStatus`` and the restore header,
    RestoreObject starts the restore here, and GET is refused with InvalidObjectState
    until the test lets the restore finish. Every other request reaches moto.
    """

    def __init__(self, hooks: ClientHooks, status: str) -> None:
        self.status = status
        self.state = "archived"
        hooks.on("before-parameter-build.s3", self._note_key)
        hooks.on("after-call.s3.HeadObject", self._head)
        hooks.on("before-call.s3.RestoreObject", self._restore)
        hooks.on("before-call.s3.GetObject", self._get)

    @staticmethod
    def _note_key(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["test_key"] = params.get("Key", "")

    @staticmethod
    def _is_tar(context: dict[str, Any]) -> bool:
        return str(context.get("test_key", "")).endswith(".tar")

    def _head(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if not self._is_tar(context):
            return
        if self.state != "restored":
            parsed["ArchiveStatus"] = self.status
        if self.state == "restoring":
            parsed["Restore"] = 'ongoing-request="true"'
        elif self.state == "restored":
            parsed["Restore"] = 'ongoing-request="false"'  # back in Frequent Access

    def _restore(self, context: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        assert self._is_tar(context)
        if self.state != "archived":
            return error_response("RestoreAlreadyInProgress", 409)
        self.state = "restoring"
        parsed = {"ResponseMetadata": {"HTTPStatusCode": 202, "HTTPHeaders": {}}}
        return AWSResponse(f"https://{BUCKET}.s3.amazonaws.com", 202, {}, None), parsed

    def _get(self, context: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        if self._is_tar(context) and self.state != "restored":
            return error_response("InvalidObjectState", 403)
        return None


@pytest.mark.parametrize(
    ("backup_class", "tier_option", "status", "tier", "pace"),
    [
        # No Expedited for Deep Archive Access: the option falls back to Standard.
        (
            "intelligent_tiering",
            {CONF_TIER: "expedited"},
            "DEEP_ARCHIVE_ACCESS",
            "Standard",
            timedelta(hours=12),
        ),
        (
            "intelligent_tiering",
            {CONF_TIER: "expedited"},
            "ARCHIVE_ACCESS",
            "Expedited",
            timedelta(minutes=5),
        ),
    ],
)
async def test_intelligent_tiering_archive_tier_backup_restores_without_days(
    hass: HomeAssistant,
    backup_ready: MockConfigEntry,
    hass_ws_client: WebSocketGenerator,
    hass_client: ClientSessionGenerator,
    s3: Any,
    freezer: Any,
    status: str,
    tier: str,
    pace: timedelta,
) -> None:
    """A backup whose tar sits in an Intelligent-Tiering archive tier: its HEAD's
    ArchiveStatus makes it cold; the restore asks no Days (S3 refuses them there) at a
    tier that archive tier offers, and says when it is ready at that tier's pace; once
    restored, the ready issue appears and the download streams."""
    ws = await hass_ws_client(hass)
    backup_id = await _generate(hass, ws, [LOCAL_AGENT_ID, AGENT_ID])
    (tar_key,) = [key for key in _keys(s3) if key.endswith(".tar")]
    assert s3.head_object(Bucket=BUCKET, Key=tar_key)["StorageClass"] == "INTELLIGENT_TIERING"
    hooks = ClientHooks(backup_ready)
    try:
        archive = TarInArchiveTier(hooks, status)
        requested = dt_util.utcnow()
        with pytest.raises(BackupAgentError) as raised:
            await _download(hass, backup_id)
        ready_by = dt_util.as_local(requested + pace).strftime("%Y-%m-%d %H:%M")
        assert raised.value.translation_key == "backup_restore_started"
        assert raised.value.translation_placeholders == {"name": "Nightly", "ready_by": ready_by}
        assert hooks.restore_requests == [{"GlacierJobParameters": {"Tier": tier}}]
        pending = backup_ready.runtime_data.restores.pending(tar_key)
        assert pending is not None
        assert pending.tier == tier

        with pytest.raises(BackupAgentError) as again:
            await _download(hass, backup_id)
        assert again.value.translation_key == "backup_restore_in_progress"
        assert len(hooks.restore_requests) == 1

        issue_id = repairs.issue_id(backup_ready, "backup_ready", tar_key)
        archive.state = "restored"
        freezer.tick(timedelta(minutes=15))
        async_fire_time_changed(hass)
        await hass.async_block_till_done(wait_background_tasks=True)
        assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None
        assert backup_ready.runtime_data.restores.pending(tar_key) is None

        client = await hass_client()
        local = await client.get(f"/api/backup/download/{backup_id}?agent_id={LOCAL_AGENT_ID}")
        remote = await client.get(f"/api/backup/download/{backup_id}?agent_id={AGENT_ID}")
        assert remote.status == 200
        assert await remote.read() == await local.read()
    finally:
        hooks.remove_all()


# -- slice 4: what the retention costs --------------------------------------------------


async def _configure_automatic(ws: Any, retention: dict[str, int | None]) -> None:
    await ws.send_json_auto_id(
        {
            "type": "backup/config/update",
            "create_backup": {"agent_ids": [AGENT_ID]},
            "retention": retention,
            "schedule": {"recurrence": "daily"},
        }
    )
    result = await ws.receive_json()
    assert result["success"], result


@pytest.mark.parametrize("retention", [{"copies": None, "days": 7}, {"copies": 7, "days": None}])
async def test_short_retention_in_cold_class_raises_cost_issue(
    hass: HomeAssistant,
    backup_ready: MockConfigEntry,
    hass_ws_client: WebSocketGenerator,
    s3: Any,
    retention: dict[str, int | None],
) -> None:
    """Daily backups kept 7 days in Glacier Instant Retrieval (90-day minimum): the
    issue shows that retention's monthly cost there and that STANDARD costs less."""
    ws = await hass_ws_client(hass)
    await _configure_automatic(ws, retention)
    data = _random(64 * 1024)
    backup = _agent_backup(1024**3, name="Daily")  # the size its metadata announces
    base = f"ha/{suggested_filename(backup).rsplit('.', 1)[0]}"
    s3.put_object(Bucket=BUCKET, Key=f"{base}.tar", Body=data)
    s3.put_object(Bucket=BUCKET, Key=f"{base}.metadata.json", Body=json.dumps(backup.as_dict()))

    issues = ir.async_get(hass)
    issue_id = repairs.issue_id(backup_ready, "backup_retention_cost")
    assert [b.name for b in await _agent(hass).async_list_backups()] == ["Daily"]
    issue = issues.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.severity is ir.IssueSeverity.WARNING
    # 1 backup a day, each billed 90 days at 0.004 $/GB-month: 0.36 $; kept 7 days
    # in STANDARD at 0.023: 0.161 $ (Deep Archive, 180 days at 0.00099: 0.178 $).
    assert issue.translation_placeholders == {
        "title": f"{BUCKET}/ha",
        "storage_class": "Glacier Instant Retrieval",
        "minimum": "90",
        "kept": "7",
        "size": "1.00",
        "cost": "0.36",
        "cheapest": "Standard",
        "cheapest_cost": "0.16",
    }

    await _configure_automatic(ws, {"copies": None, "days": 90})
    await _agent(hass).async_list_backups()
    assert issues.async_get_issue(DOMAIN, issue_id) is None


async def test_generated_backup_checks_retention(
    hass: HomeAssistant,
    backup_ready: MockConfigEntry,
    hass_ws_client: WebSocketGenerator,
) -> None:
    """An upload checks the retention too (no listing needed); with no automatic
    backups there is no issue."""
    ws = await hass_ws_client(hass)
    issues = ir.async_get(hass)
    issue_id = repairs.issue_id(backup_ready, "backup_retention_cost")
    await _generate(hass, ws, [AGENT_ID])
    assert issues.async_get_issue(DOMAIN, issue_id) is None  # no schedule yet
    await _configure_automatic(ws, {"copies": 3, "days": None})
    data = _random(64 * 1024)
    await _agent(hass).async_upload_backup(
        open_stream=_open_stream(data), backup=_agent_backup(len(data))
    )
    issue = issues.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_placeholders["kept"] == "3"
    assert issue.translation_placeholders["cheapest"] == "Standard"


async def test_vault_entry_offers_no_agent(
    hass: HomeAssistant, aws: None, hass_ws_client: WebSocketGenerator
) -> None:
    """Only bucket entries are backup locations: a loaded vault entry adds no agent."""
    boto3.client("glacier", region_name=REGION).create_vault(vaultName="old-vault")
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="old-vault",
        data={**BUCKET_DATA, CONF_TARGET: "vault", CONF_VAULT_NAME: "old-vault"},
        options={CONF_PART_SIZE_MIB: 8, CONF_CONCURRENCY: 4},
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert await async_setup_component(hass, BACKUP_DOMAIN, {BACKUP_DOMAIN: {}})
    ws = await hass_ws_client(hass)
    await ws.send_json_auto_id({"type": "backup/agents/info"})
    agents = (await ws.receive_json())["result"]["agents"]
    assert [agent["agent_id"] for agent in agents] == [LOCAL_AGENT_ID]
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)


async def test_builtin_aws_s3_agent_and_ours_list_each_other(
    hass: HomeAssistant, moto_endpoint: MotoServer
) -> None:
    """Home Assistant's own AWS S3 agent (2026.2: bucket root) and ours, on one bucket
    over HTTP: each lists the other's backup, and ours downloads the built-in's."""
    aio_session = pytest.importorskip("aiobotocore.session")
    builtin_backup = pytest.importorskip("homeassistant.components.aws_s3.backup")
    entry = MockConfigEntry(
        domain=DOMAIN,
        entry_id=ENTRY_ID,
        title=BUCKET,
        data={**BUCKET_DATA, CONF_PREFIX: "", CONF_ENDPOINT_URL: moto_endpoint.url},
        options={CONF_STORAGE_CLASS: "GLACIER_IR", CONF_ENCRYPTION: "AES256"},
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert await async_setup_component(hass, BACKUP_DOMAIN, {BACKUP_DOMAIN: {}})
    ours = _agent(hass)

    async with aio_session.get_session().create_client(
        "s3",
        endpoint_url=moto_endpoint.url,
        region_name=REGION,
        aws_access_key_id=BUCKET_DATA[CONF_ACCESS_KEY_ID],
        aws_secret_access_key=BUCKET_DATA[CONF_SECRET_ACCESS_KEY],
    ) as client:
        builtin_entry = MockConfigEntry(domain="aws_s3", title="builtin", data={"bucket": BUCKET})
        builtin_entry.runtime_data = client
        builtin = builtin_backup.S3BackupAgent(hass, builtin_entry)
        their_data = _random(3 * 1024 * 1024)
        theirs = _agent_backup(len(their_data), name="Builtin")
        await builtin.async_upload_backup(open_stream=_open_stream(their_data), backup=theirs)
        our_data = _random(2 * 1024 * 1024)[::-1]
        mine = _agent_backup(len(our_data), name="Ours")
        await ours.async_upload_backup(open_stream=_open_stream(our_data), backup=mine)

        assert {b.name for b in await ours.async_list_backups()} == {"Builtin", "Ours"}
        assert {b.name for b in await builtin.async_list_backups()} == {"Builtin", "Ours"}
        assert await _download(hass, theirs.backup_id) == their_data
        stream = await builtin.async_download_backup(mine.backup_id)
        assert b"".join([chunk async for chunk in stream]) == our_data
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)


def test_backup_imports_outside_the_platform_are_declared() -> None:
    """Modules that import a component without being its platform file name it in the
    manifest's (after_)dependencies, as core's google_drive and sftp_storage do for
    ``backup``: Home Assistant then sets that component up before this one."""
    package = Path(custom_components.s3_glacier.__file__).parent
    manifest = json.loads((package / "manifest.json").read_text())
    declared = {*manifest.get("dependencies", []), *manifest.get("after_dependencies", [])}
    undeclared: set[tuple[str, str]] = set()
    for module in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                parts = name.split(".")
                if parts[:2] != ["homeassistant", "components"] or len(parts) < 3:
                    continue
                if parts[2] != module.stem and parts[2] not in declared:
                    undeclared.add((module.name, parts[2]))
    assert sorted(undeclared) == []


# -- review fixes: tier option, cancellation, errors -------------------------------------


@pytest.mark.parametrize("backup_class", ["glacier"])
async def test_backup_restore_tier_comes_from_the_bucket_options(
    hass: HomeAssistant,
    backup_ready: MockConfigEntry,
    hass_ws_client: WebSocketGenerator,
    s3: Any,
) -> None:
    """The bucket's options offer a retrieval tier: set to Bulk in the options flow, a
    cold backup's download restores with Bulk (Standard is only the default)."""
    flow = await hass.config_entries.options.async_init(backup_ready.entry_id)
    options = {**backup_ready.options, CONF_STORAGE_CLASS: "glacier_ir", CONF_TIER: "bulk"}
    options[CONF_ENCRYPTION] = "aes256"
    result = await hass.config_entries.options.async_configure(flow["flow_id"], options)
    assert result["type"] == "create_entry"
    assert backup_ready.options[CONF_TIER] == "bulk"

    ws = await hass_ws_client(hass)
    backup_id = await _generate(hass, ws, [AGENT_ID])
    (tar_key,) = [key for key in _keys(s3) if key.endswith(".tar")]
    hooks = ClientHooks(backup_ready)
    try:
        with pytest.raises(BackupAgentError) as raised:
            await _download(hass, backup_id)
        assert raised.value.translation_key == "backup_restore_started"
        assert hooks.restore_requests == [{"Days": 3, "GlacierJobParameters": {"Tier": "Bulk"}}]
    finally:
        hooks.remove_all()
    pending = backup_ready.runtime_data.restores.pending(tar_key)
    assert pending is not None
    assert pending.tier is RestoreTier.BULK


async def test_unload_waits_for_a_backup_download(
    hass: HomeAssistant,
    backup_ready: MockConfigEntry,
    hass_ws_client: WebSocketGenerator,
    s3: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A download being streamed holds the entry like an action: an unload meanwhile
    keeps the catalog and client open until the stream has ended, then closes them."""
    ws = await hass_ws_client(hass)
    backup_id = await _generate(hass, ws, [AGENT_ID])
    (tar_key,) = [key for key in _keys(s3) if key.endswith(".tar")]
    stored = s3.get_object(Bucket=BUCKET, Key=tar_key)["Body"].read()
    data = backup_ready.runtime_data
    jobs = ExecutorJobs(hass, monkeypatch)

    stream = await _agent(hass).async_download_backup(backup_id)
    received = [await anext(stream)]  # the stream has started; the consumer pauses
    mark = jobs.mark()
    assert await hass.config_entries.async_unload(backup_ready.entry_id)
    await jobs.settle(mark)  # whatever the unload does before the stream ends, it has done
    assert data.catalog.get(tar_key) is not None  # still open
    received += [chunk async for chunk in stream]  # the client still reads
    assert b"".join(received) == stored
    await hass.async_block_till_done(wait_background_tasks=True)
    with pytest.raises(CatalogError):
        data.catalog.get(tar_key)  # closed, now that the stream has ended


async def test_cancelled_delete_runs_on_and_keeps_the_catalog_open(
    hass: HomeAssistant,
    backup_ready: MockConfigEntry,
    hass_ws_client: WebSocketGenerator,
    s3: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A delete whose caller is cancelled mid-request runs on in the executor; an unload
    meanwhile waits for it, so it still forgets both keys in the catalog."""
    ws = await hass_ws_client(hass)
    backup_id = await _generate(hass, ws, [AGENT_ID])
    data = backup_ready.runtime_data
    jobs = ExecutorJobs(hass, monkeypatch)
    entered, release = threading.Event(), threading.Event()
    real_delete = data.target.delete

    def held_delete(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        assert release.wait(30), "the test never released the delete"
        return real_delete(*args, **kwargs)

    monkeypatch.setattr(data.target, "delete", held_delete)
    task = hass.async_create_task(_agent(hass).async_delete_backup(backup_id))
    assert await hass.async_add_executor_job(entered.wait, 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    mark = jobs.mark()
    unload = hass.async_create_task(hass.config_entries.async_unload(backup_ready.entry_id))
    await jobs.settle(mark)
    try:
        assert len(data.catalog.objects()) == 2  # still open: the delete has not ended
    finally:
        release.set()
    assert await unload
    await hass.async_block_till_done(wait_background_tasks=True)
    assert _keys(s3) == {}
    with Catalog(data.catalog.path) as reopened:
        assert reopened.objects() == []  # both rows forgotten before the close


async def test_missing_bucket_is_its_own_error_not_a_missing_backup(
    hass: HomeAssistant,
    backup_ready: MockConfigEntry,
    hass_ws_client: WebSocketGenerator,
    s3: Any,
) -> None:
    """The bucket deleted under the entry: listing and deleting a backup say the bucket
    is gone (a BackupAgentError), never that the backup is not in the bucket."""
    ws = await hass_ws_client(hass)
    backup_id = await _generate(hass, ws, [AGENT_ID])
    agent = _agent(hass)
    await agent.async_get_backup(backup_id)  # listed (and cached)
    for key in _keys(s3):
        s3.delete_object(Bucket=BUCKET, Key=key)
    s3.delete_bucket(Bucket=BUCKET)

    with pytest.raises(BackupAgentError) as deleted:
        await agent.async_delete_backup(backup_id)
    with pytest.raises(BackupAgentError) as listed:
        await agent.async_list_backups()  # the delete emptied the cache
    for raised in (deleted, listed):
        assert type(raised.value) is BackupAgentError
        assert raised.value.translation_key == "backup_bucket_not_found"
    assert str(listed.value) == (
        f"Backup {BUCKET}/ha: the bucket no longer exists at this endpoint and region"
    )


async def test_too_large_backup_has_its_own_message(
    hass: HomeAssistant, backup_ready: MockConfigEntry, s3: Any
) -> None:
    """A backup larger than a stream upload can hold fails with the agent's own message
    and its limit, not the engine's English reason; nothing is sent."""
    with pytest.raises(BackupAgentError) as raised:
        await _agent(hass).async_upload_backup(
            open_stream=_open_stream(b"x"), backup=_agent_backup(2 * 1024**4)
        )
    assert raised.value.translation_key == "backup_too_large"
    assert raised.value.translation_placeholders is not None
    assert raised.value.translation_placeholders["limit"] == "1 TiB"
    assert str(raised.value) == (
        "Backup Manual is larger than the 1 TiB this agent can store as one object"
    )
    assert _keys(s3) == {}


async def test_listing_backups_reads_only_the_prefix_level(
    hass: HomeAssistant, backup_ready: MockConfigEntry, s3: Any
) -> None:
    """Backups sit at the prefix's top level: listing them does not list every archived
    object below it (a LIST request per 1,000 keys, each time the cache expires)."""
    for n in range(1001):
        s3.put_object(Bucket=BUCKET, Key=f"ha/photos/{n:04}.jpg", Body=b"p")
    data = _random(64 * 1024)
    outside = _agent_backup(len(data), name="Outside")
    _builtin_aws_s3_layout(s3, outside, data, "ha")
    listings: list[dict[str, Any]] = []
    events = backup_ready.runtime_data.target._client.meta.events
    record = lambda params, **_: listings.append(dict(params))  # noqa: E731
    events.register("provide-client-params.s3.ListObjectsV2", record)
    try:
        backups = await _agent(hass).async_list_backups()
    finally:
        events.unregister("provide-client-params.s3.ListObjectsV2", record)
    assert [b.name for b in backups] == ["Outside"]
    assert len(listings) == 1  # one page: the 1,001 photos are not listed
    assert listings[0]["Delimiter"] == "/"
