"""Vault actions pinned exactly: what mutation testing found no test looking at.

The archive ID is the only handle to a vault archive: each test here pins one thing that
keeps it (the log line when the catalog cannot take it, the response, the error that names
the file) or that protects the archive (the key lock while it is deleted). All run
through Home Assistant's actions against moto's Glacier.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
import hashlib
import logging
from pathlib import Path
from typing import Any

import boto3
from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events

from custom_components.s3_glacier.archive.catalog import Catalog, CatalogError
from custom_components.s3_glacier.archive.models import ArchivedObject, StorageClass
from custom_components.s3_glacier.archive.vault import VaultTarget
from custom_components.s3_glacier.const import DOMAIN

from .client_hooks import ClientHooks, error_response
from .conftest import DEMO_VAULT, REGION, call_action
from .helpers import key_lock_held_during

pytestmark = pytest.mark.usefixtures("aws")


@pytest.fixture
def files(hass: HomeAssistant, tmp_path: Path) -> Path:
    """A directory the actions may read and write."""
    base = tmp_path / "files"
    base.mkdir()
    hass.config.allowlist_external_dirs = {str(base.resolve())}
    return base


@pytest.fixture
def puts(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """What each real VaultTarget.put returned (the archive IDs moto gave)."""
    returned: list[Any] = []
    real = VaultTarget.put

    def recording(self: VaultTarget, *args: Any, **kwargs: Any) -> Any:
        obj = real(self, *args, **kwargs)
        returned.append(obj)
        return obj

    monkeypatch.setattr(VaultTarget, "put", recording)
    return returned


async def _archive(hass: HomeAssistant, path: Path, data: bytes) -> dict[str, Any]:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    response = await call_action(hass, "archive", path=str(path))
    item: dict[str, Any] = response["archived"][0]
    return item


def _reauth_flows(hass: HomeAssistant) -> list[str]:
    return [
        flow["context"]["source"]
        for flow in hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    ]


async def test_catalog_failure_logs_the_archive_id(
    hass: HomeAssistant,
    loaded_vault: MockConfigEntry,
    files: Path,
    puts: list[Any],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An uploaded archive the catalog cannot record: its ID, file and description are logged."""

    def refuse(self: Catalog, obj: ArchivedObject) -> None:
        raise CatalogError("disk I/O error")

    monkeypatch.setattr(Catalog, "record", refuse)
    source = files / "tax-2025.pdf"
    source.write_bytes(b"t" * 500)
    with caplog.at_level(logging.ERROR), pytest.raises(HomeAssistantError) as err:
        await call_action(hass, "archive", path=str(source))
    assert err.value.translation_key == "catalog_error"
    [obj] = puts
    assert obj.description
    logged = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert (
        f"Archived {source.resolve()} as {obj.key} (description {obj.description!r})"
        " but could not record it in the catalog"
    ) in logged
    assert source.exists()  # nothing recorded, nothing deleted


async def test_archive_response_and_event_are_exact(
    hass: HomeAssistant,
    loaded_vault: MockConfigEntry,
    files: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every field of an archive's response and event; the upload holds a transfer slot."""
    transfers = loaded_vault.runtime_data.transfers
    free_during_put: list[int] = []
    real = VaultTarget.put

    def watched(self: VaultTarget, *args: Any, **kwargs: Any) -> Any:
        free_during_put.append(transfers._value)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(VaultTarget, "put", watched)
    free = transfers._value
    data = b"v" * 1000
    (files / "notes.txt").write_bytes(data)
    events = async_capture_events(hass, f"{DOMAIN}_archived")
    response = await call_action(hass, "archive", path=str(files / "notes.txt"))
    [item] = response["archived"]
    digest = hashlib.sha256(data).hexdigest()
    assert item == {
        "path": str((files / "notes.txt").resolve()),
        "archive_id": item["archive_id"],
        "size": 1000,
        "storage_class": "VAULT",
        "sha256": digest,
        "tree_hash": digest,  # one MiB or less: the tree hash is the SHA-256
        # $0.0036 per GB-month for the file and Glacier's 32 KiB per archive: under a
        # hundredth of a cent, shown as one.
        "monthly_cost": 0.0001,
    }
    assert response == {"archived": [item], "skipped": [], "bytes": 1000}
    assert [e.data for e in events] == [{"config_entry_id": loaded_vault.entry_id, **item}]
    assert free_during_put == [free - 1]
    assert transfers._value == free


async def test_archive_of_a_deep_path_is_not_limited_by_a_key_prefix(
    hass: HomeAssistant, loaded_vault: MockConfigEntry, files: Path
) -> None:
    """A vault has no key prefix: a file whose relative path is 1,022 bytes archives.

    (An object key may have 1,024 bytes: any prefix would push this one past it.)
    """
    folder = files / "d"
    deep = folder / ("a" * 250) / ("b" * 250) / ("c" * 250) / ("e" * 250) / ("f" * 14 + ".txt")
    assert len(deep.relative_to(folder).as_posix()) == 1022
    deep.parent.mkdir(parents=True)
    deep.write_bytes(b"deep")
    response = await call_action(hass, "archive", path=str(folder))
    assert [i["path"] for i in response["archived"]] == [str(deep.resolve())]


@pytest.mark.parametrize(
    ("action", "operation"),
    [
        ("archive", "UploadArchive"),
        ("restore", "InitiateJob"),
        ("delete", "DeleteArchive"),
        ("refresh", "InitiateJob"),
    ],
)
async def test_refused_keys_name_what_failed_and_ask_for_new_keys(
    hass: HomeAssistant,
    loaded_vault: MockConfigEntry,
    files: Path,
    action: str,
    operation: str,
) -> None:
    """Keys the service refuses: the error names the file, archive or vault; reauth starts."""
    item = await _archive(hass, files / "kept.bin", b"k" * 100)
    names = {
        "archive": "kept.bin",
        "restore": item["archive_id"],
        "delete": item["archive_id"],
        "refresh": DEMO_VAULT,
    }
    fields = {
        "archive": {"path": str(files / "kept.bin")},
        "restore": {"archive_id": item["archive_id"]},
        "delete": {"archive_id": item["archive_id"]},
        "refresh": {},
    }
    hooks = ClientHooks(loaded_vault)
    hooks.on(
        f"before-call.glacier.{operation}",
        lambda **_: error_response("UnrecognizedClientException", 403),
    )
    try:
        with pytest.raises(HomeAssistantError) as err:
            await call_action(hass, action, **fields[action])
    finally:
        hooks.remove_all()
    assert err.value.translation_key == "invalid_auth"
    assert err.value.translation_placeholders is not None
    assert err.value.translation_placeholders["key"] == names[action]
    await hass.async_block_till_done()
    assert _reauth_flows(hass) == ["reauth"]


@pytest.mark.parametrize(
    ("fields", "placeholders"),
    [
        ({"archive_id": "no-such-id"}, {"archive": "no-such-id"}),
        ({"key": "missing.bin"}, {"archive": "missing.bin"}),
        ({"key": "same.txt"}, {"name": "same.txt", "count": "2"}),
    ],
)
async def test_unknown_or_ambiguous_archives_are_named(
    hass: HomeAssistant,
    loaded_vault: MockConfigEntry,
    files: Path,
    fields: dict[str, str],
    placeholders: dict[str, str],
) -> None:
    """The error says which archive it could not find, or how many share the name."""
    await _archive(hass, files / "a" / "same.txt", b"first")
    await _archive(hass, files / "b" / "same.txt", b"second")
    for action in ("restore", "delete"):
        with pytest.raises(ServiceValidationError) as err:
            await call_action(hass, action, **fields)
        assert err.value.translation_placeholders == placeholders


async def test_delete_forgets_the_pending_restore_and_holds_the_archive_lock(
    hass: HomeAssistant,
    loaded_vault: MockConfigEntry,
    files: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Deleting an archive being restored drops its job; no other step runs on it meanwhile."""
    item = await _archive(hass, files / "old.bin", b"o" * 100)
    archive_id = item["archive_id"]
    await call_action(hass, "restore", archive_id=archive_id, destination=str(files / "out"))
    data = loaded_vault.runtime_data
    assert data.restores.pending(archive_id) is not None
    locked_while_deleting = key_lock_held_during(monkeypatch, VaultTarget, "delete", loaded_vault)
    await call_action(hass, "delete", archive_id=archive_id)
    assert locked_while_deleting == [True]
    assert data.restores.pending(archive_id) is None
    sensor = hass.states.get("sensor.demo_vault_pending_restores")
    assert sensor is not None
    assert sensor.state == "0"


async def test_two_restores_of_one_archive_start_one_job(
    hass: HomeAssistant,
    loaded_vault: MockConfigEntry,
    files: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each retrieval job is billed: two calls at once start one, under the archive's lock."""
    item = await _archive(hass, files / "twice.bin", b"t" * 100)
    archive_id = item["archive_id"]
    data = loaded_vault.runtime_data
    locked_while_requesting = key_lock_held_during(
        monkeypatch, VaultTarget, "request_restore", loaded_vault
    )
    first, second = await asyncio.gather(
        call_action(hass, "restore", archive_id=archive_id),
        call_action(hass, "restore", archive_id=archive_id),
    )
    assert locked_while_requesting == [True]
    assert sorted([first["status"], second["status"]]) == [
        "restore_in_progress",
        "restore_requested",
    ]
    assert [r.key for r in data.catalog.pending_restores()] == [archive_id]


async def test_list_is_exact_prefixed_and_truncated_only_past_the_limit(
    hass: HomeAssistant, loaded_vault: MockConfigEntry, files: Path
) -> None:
    """Each listed field; the prefix filters names; truncated means more than the limit."""
    for name in ("a1.txt", "a2.txt", "b1.txt"):
        await _archive(hass, files / name, name.encode())
    everything = await call_action(hass, "list", limit=3)
    assert everything["truncated"] is False
    assert len(everything["objects"]) == 3
    by_name = {o["name"]: o for o in everything["objects"]}
    b1 = by_name["b1.txt"]
    obj = loaded_vault.runtime_data.catalog.get(b1["archive_id"])
    assert obj is not None
    assert b1 == {
        "archive_id": obj.key,
        "name": "b1.txt",
        "description": obj.description,
        "size": 6,
        "storage_class": "VAULT",
        "last_modified": obj.last_modified.isoformat(timespec="seconds"),
        "sha256": hashlib.sha256(b"b1.txt").hexdigest(),
    }
    assert obj.description
    two = await call_action(hass, "list", limit=2)
    assert two["truncated"] is True
    assert len(two["objects"]) == 2
    prefixed = await call_action(hass, "list", prefix="a", limit=2)
    assert prefixed["truncated"] is False
    assert sorted(o["name"] for o in prefixed["objects"]) == ["a1.txt", "a2.txt"]


async def test_an_archive_without_our_description_is_named_by_its_id(
    hass: HomeAssistant, loaded_vault: MockConfigEntry
) -> None:
    """An archive another tool uploaded with free text: listed and found by its archive ID."""
    glacier = boto3.client("glacier", region_name=REGION)
    archive_id = glacier.upload_archive(
        vaultName=DEMO_VAULT, archiveDescription="my holiday photos", body=b"x" * 10
    )["archiveId"]
    foreign = ArchivedObject(
        key=archive_id,
        size=10,
        storage_class=StorageClass.VAULT,
        last_modified=datetime(2026, 1, 2, tzinfo=UTC),
        archive_id=archive_id,
        description="my holiday photos",
    )
    await hass.async_add_executor_job(loaded_vault.runtime_data.catalog.record, foreign)
    listed = await call_action(hass, "list")
    assert [(o["archive_id"], o["name"]) for o in listed["objects"]] == [(archive_id, archive_id)]
    response = await call_action(hass, "restore", key=archive_id)
    assert response["archive_id"] == archive_id


async def test_refresh_says_when_the_inventory_is_due(
    hass: HomeAssistant, loaded_vault: MockConfigEntry, freezer: FrozenDateTimeFactory
) -> None:
    """An inventory job is due five hours after it is requested."""
    freezer.move_to("2026-03-01T10:00:00+00:00")
    response = await call_action(hass, "refresh")
    assert response == {
        "status": "inventory_requested",
        "job_id": response["job_id"],
        "ready_by": "2026-03-01T15:00:00+00:00",
    }
    assert response["job_id"]


async def test_restore_response_and_job_are_exact(
    hass: HomeAssistant,
    loaded_vault: MockConfigEntry,
    files: Path,
    freezer: FrozenDateTimeFactory,
) -> None:
    """The entry's tier (Standard: five hours) reaches Glacier; the job keeps the call's fields."""
    item = await _archive(hass, files / "r.bin", b"r" * 100)
    archive_id = item["archive_id"]
    hooks = ClientHooks(loaded_vault)
    tiers: list[str] = []
    hooks.on(
        "provide-client-params.glacier.InitiateJob",
        lambda params, **_: tiers.append(params["jobParameters"].get("Tier")),
    )
    freezer.move_to("2026-03-01T10:00:00+00:00")
    try:
        response = await call_action(hass, "restore", archive_id=archive_id, overwrite=True)
        again = await call_action(hass, "restore", key="r.bin")
    finally:
        hooks.remove_all()
    assert tiers == ["Standard"]
    assert response["status"] == "restore_requested"
    assert (response["archive_id"], response["key"]) == (archive_id, "r.bin")
    assert response["path"] is None
    assert response["cost_breakdown"]["egress"] == 0  # no destination: nothing downloaded
    assert response["ready_by"] == "2026-03-01T15:00:00+00:00"
    # The running job answers the second call: still no destination, same time.
    assert again["status"] == "restore_in_progress"
    assert again["path"] is None
    assert again["ready_by"] == "2026-03-01T15:00:00+00:00"
    pending = loaded_vault.runtime_data.restores.pending(archive_id)
    assert pending is not None
    assert (pending.days, pending.overwrite) == (1, True)


@pytest.mark.parametrize(("days", "accepted"), [(0, False), (1, True), (365, True), (366, False)])
async def test_restore_days_are_checked(
    hass: HomeAssistant, loaded_vault: MockConfigEntry, files: Path, days: int, accepted: bool
) -> None:
    """Days (which vaults do not use) must still lie in 1..365, as for buckets."""
    await _archive(hass, files / "d.bin", b"d" * 10)
    if accepted:
        response = await call_action(hass, "restore", key="d.bin", days=days)
        assert response["status"] == "restore_requested"
        return
    with pytest.raises(ServiceValidationError) as err:
        await call_action(hass, "restore", key="d.bin", days=days)
    assert err.value.translation_key == "invalid_days"
    assert err.value.translation_placeholders == {"days": str(days), "max": "365"}


@pytest.mark.parametrize("overwrite", [False, True])
async def test_restore_over_an_existing_file_follows_overwrite(
    hass: HomeAssistant, loaded_vault: MockConfigEntry, files: Path, overwrite: bool
) -> None:
    """A destination that holds a file is refused unless the call says overwrite."""
    await _archive(hass, files / "o.bin", b"o" * 10)
    (files / "o.bin").write_bytes(b"the user's newer copy")
    if not overwrite:
        with pytest.raises(ServiceValidationError) as err:
            await call_action(hass, "restore", key="o.bin", destination=str(files))
        assert err.value.translation_key == "destination_exists"
        assert loaded_vault.runtime_data.catalog.pending_restores() == []
        return
    response = await call_action(
        hass, "restore", key="o.bin", destination=str(files), overwrite=True
    )
    assert response["status"] == "restore_requested"
    assert response["path"] == str((files / "o.bin").resolve())
    assert (files / "o.bin").read_bytes() == b"the user's newer copy"  # until the download
