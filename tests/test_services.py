"""The actions through Home Assistant, against moto in process."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
import hashlib
from pathlib import Path
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import SOURCE_REAUTH
from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError, Unauthorized
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    MockUser,
    async_capture_events,
    async_fire_time_changed,
)

from custom_components.s3_glacier.archive.pricing import RestoreEstimate
from custom_components.s3_glacier.const import (
    CONF_ENCRYPTION,
    CONF_KMS_KEY_ID,
    CONF_STORAGE_CLASS,
    DOMAIN,
)

from .conftest import BUCKET, MotoRestores, call_action, shown_money, write_seeded

pytestmark = pytest.mark.usefixtures("init_integration")


def _keys(s3: Any) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]


def _tree(base: Path) -> dict[str, bytes]:
    return {p.relative_to(base).as_posix(): p.read_bytes() for p in base.rglob("*") if p.is_file()}


# --- archive ---------------------------------------------------------------------------


async def test_archive_one_file(hass: HomeAssistant, allowed: Path, s3: Any) -> None:
    """A file goes to <prefix>/<name> in the default class with its SHA-256 and SSE."""
    data = write_seeded(allowed / "export.csv", 3000)
    events = async_capture_events(hass, f"{DOMAIN}_archived")
    response = await call_action(hass, "archive", path=str(allowed / "export.csv"))

    digest = hashlib.sha256(data).hexdigest()
    item = response["archived"][0]
    assert response["bytes"] == 3000
    assert response["skipped"] == []
    assert item["key"] == "ha/export.csv"
    assert item["size"] == 3000
    assert item["storage_class"] == "GLACIER_IR"
    assert item["sha256"] == digest
    # 3000 bytes bill as 128 KiB in GLACIER_IR: 131072 / 2**30 * 0.004
    assert item["monthly_cost"] == shown_money(131072 / 2**30 * 0.004)
    head = s3.head_object(Bucket=BUCKET, Key="ha/export.csv")
    assert head["StorageClass"] == "GLACIER_IR"
    assert head["Metadata"]["sha256"] == digest
    assert head["ServerSideEncryption"] == "AES256"
    assert [e.data["key"] for e in events] == ["ha/export.csv"]
    assert hass.states.get("sensor.demo_archive_ha_archived_objects").state == "1"


@pytest.mark.parametrize(
    "storage_class",
    [
        "STANDARD",
        "STANDARD_IA",
        "ONEZONE_IA",
        "INTELLIGENT_TIERING",
        "GLACIER_IR",
        "GLACIER",
        "DEEP_ARCHIVE",
    ],
)
async def test_archive_every_class(
    hass: HomeAssistant, allowed: Path, s3: Any, storage_class: str
) -> None:
    """The storage_class field reaches S3 (absent in HEAD means STANDARD)."""
    write_seeded(allowed / "a.bin", 100)
    response = await call_action(
        hass, "archive", path=str(allowed / "a.bin"), storage_class=storage_class
    )
    assert response["archived"][0]["storage_class"] == storage_class
    head = s3.head_object(Bucket=BUCKET, Key="ha/a.bin")
    assert head.get("StorageClass", "STANDARD") == storage_class


async def test_archive_directory_and_glob(hass: HomeAssistant, allowed: Path, s3: Any) -> None:
    """A directory keeps its layout; a glob keeps the layout below its fixed part."""
    write_seeded(allowed / "cam" / "a.mp4", 10)
    write_seeded(allowed / "cam" / "2026" / "b.mp4", 20)
    write_seeded(allowed / "cam" / "2026" / "c.txt", 30)
    await call_action(hass, "archive", path=str(allowed / "cam"))
    assert sorted(_keys(s3)) == ["ha/2026/b.mp4", "ha/2026/c.txt", "ha/a.mp4"]

    response = await call_action(hass, "archive", path=f"{allowed}/cam/**/*.mp4", key="ha/clips/")
    assert sorted(i["key"] for i in response["archived"]) == [
        "ha/clips/2026/b.mp4",
        "ha/clips/a.mp4",
    ]


async def test_archive_to_explicit_key(hass: HomeAssistant, allowed: Path, s3: Any) -> None:
    """For one file, key is the whole object key."""
    write_seeded(allowed / "x.db", 10)
    await call_action(hass, "archive", path=str(allowed / "x.db"), key="ha/backups/2026/x.db")
    assert _keys(s3) == ["ha/backups/2026/x.db"]


async def test_identical_is_skipped_and_different_needs_overwrite(
    hass: HomeAssistant, allowed: Path, s3: Any
) -> None:
    """Same content → skipped; new content → object_exists unless overwrite."""
    path = allowed / "f.txt"
    write_seeded(path, 500, seed=1)
    await call_action(hass, "archive", path=str(path))
    response = await call_action(hass, "archive", path=str(path))
    assert response["archived"] == []
    assert response["skipped"] == [{"path": str(path), "key": "ha/f.txt", "reason": "identical"}]

    new = write_seeded(path, 600, seed=2)
    with pytest.raises(HomeAssistantError) as err:
        await call_action(hass, "archive", path=str(path))
    assert err.value.translation_key == "object_exists"
    assert s3.head_object(Bucket=BUCKET, Key="ha/f.txt")["ContentLength"] == 500

    await call_action(hass, "archive", path=str(path), overwrite=True)
    body = s3.get_object(Bucket=BUCKET, Key="ha/f.txt")["Body"].read()
    assert body == new


async def test_delete_source_after_verified_upload(
    hass: HomeAssistant, allowed: Path, s3: Any
) -> None:
    """delete_source removes the local files once uploaded and verified."""
    write_seeded(allowed / "d" / "1.log", 10)
    write_seeded(allowed / "d" / "2.log", 10, seed=3)
    await call_action(hass, "archive", path=str(allowed / "d"), delete_source=True)
    assert sorted(_keys(s3)) == ["ha/1.log", "ha/2.log"]
    assert _tree(allowed) == {}


async def test_failed_archive_keeps_source(hass: HomeAssistant, allowed: Path, s3: Any) -> None:
    """When the upload is refused, the source stays even with delete_source."""
    path = allowed / "keep.txt"
    data = write_seeded(path, 10)
    s3.put_object(Bucket=BUCKET, Key="ha/keep.txt", Body=b"other")
    with pytest.raises(HomeAssistantError) as err:
        await call_action(hass, "archive", path=str(path), delete_source=True)
    assert err.value.translation_key == "object_exists"
    assert path.read_bytes() == data
    assert s3.get_object(Bucket=BUCKET, Key="ha/keep.txt")["Body"].read() == b"other"


@pytest.mark.parametrize(
    ("encryption", "kms_key", "expected"),
    [("none", None, None), ("aws:kms", "alias/archive", "aws:kms")],
)
async def test_encryption_option(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    allowed: Path,
    s3: Any,
    encryption: str,
    kms_key: str | None,
    expected: str | None,
) -> None:
    """The options' server-side encryption is applied to every object."""
    options = {CONF_STORAGE_CLASS: "GLACIER_IR", CONF_ENCRYPTION: encryption}
    if kms_key:
        options[CONF_KMS_KEY_ID] = kms_key
    hass.config_entries.async_update_entry(init_integration, options=options)
    write_seeded(allowed / "s.bin", 10)
    await call_action(hass, "archive", path=str(allowed / "s.bin"))
    head = s3.head_object(Bucket=BUCKET, Key="ha/s.bin")
    assert head.get("ServerSideEncryption") == expected
    if kms_key:
        assert kms_key in head["SSEKMSKeyId"]


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"path": "{allowed}/missing.txt"}, "path_not_found"),
        ({"path": "{allowed}/*.nothing"}, "no_files_match"),
        ({"path": "{allowed}/empty"}, "no_files_match"),
        ({"path": "{outside}/secret.txt"}, "no_access_to_path"),
        ({"path": "{allowed}/link.txt"}, "no_access_to_path"),
        ({"path": "{outside}"}, "no_access_to_path"),
        ({"path": "{allowed}/ok.txt", "key": ""}, "key_empty"),
        ({"path": "{allowed}/ok.txt", "key": "/abs"}, "key_absolute"),
        ({"path": "{allowed}/ok.txt", "key": "a/../b"}, "key_parent_segment"),
        ({"path": "{allowed}/ok.txt", "key": "k" * 1025}, "key_too_long"),
        ({"path": "{allowed}/ok.txt", "storage_class": "COLD"}, "invalid_storage_class"),
        ({"path": "{allowed}/ok.txt", "key": "other/ok.txt"}, "key_outside_prefix"),
        ({"path": "{outside}/missing.txt"}, "no_access_to_path"),
        ({"path": "{allowed}/ok.txt", "config_entry_id": "nope"}, "config_entry_not_found"),
    ],
)
async def test_archive_bad_input(
    hass: HomeAssistant,
    allowed: Path,
    tmp_path: Path,
    s3: Any,
    fields: dict[str, str],
    error: str,
) -> None:
    """Each bad input has its own translated error; nothing uploaded, nothing removed."""
    outside = allowed.parent / "outside"
    write_seeded(outside / "secret.txt", 10)
    write_seeded(allowed / "ok.txt", 10)
    (allowed / "empty").mkdir()
    (allowed / "link.txt").symlink_to(outside / "secret.txt")
    before = _tree(allowed.parent)
    data = {k: v.format(allowed=allowed, outside=outside) for k, v in fields.items()}
    with pytest.raises(ServiceValidationError) as err:
        await call_action(hass, "archive", delete_source=True, **data)
    assert err.value.translation_key == error
    assert _keys(s3) == []
    assert _tree(allowed.parent) == before


# --- restore ---------------------------------------------------------------------------


async def test_restore_instant_class(
    hass: HomeAssistant, allowed: Path, restore_estimates: list[RestoreEstimate]
) -> None:
    """GLACIER_IR downloads at once, verified, to a file or into a directory."""
    data = write_seeded(allowed / "src" / "v.bin", 70_000)
    await call_action(hass, "archive", path=str(allowed / "src" / "v.bin"))
    (allowed / "out").mkdir()

    response = await call_action(hass, "restore", key="ha/v.bin", destination=str(allowed / "out"))
    assert response["status"] == "restored"
    assert response["path"] == str((allowed / "out" / "v.bin").resolve())
    assert response["size"] == 70_000
    # GLACIER_IR: $0.03/GB retrieval + one GET at $0.01 per 1,000 + egress at $0.09/GB
    assert response["cost_breakdown"] == {
        "retrieval": shown_money(70_000 / 2**30 * 0.03),
        "requests": shown_money(0.01 / 1000),
        "copy_storage": 0.0,
        "egress": shown_money(70_000 / 2**30 * 0.09),
        "egress_free_gb_per_month": 100,
    }
    # The total is the sum of the charges as shown (each rounded up), so they add up.
    assert response["estimated_cost"] == round(
        sum(v for k, v in response["cost_breakdown"].items() if k != "egress_free_gb_per_month"),
        4,
    )
    assert response["estimated_cost"] == 0.0003
    gb = Decimal(70_000) / 2**30
    assert restore_estimates == [
        RestoreEstimate(
            retrieval=gb * Decimal("0.03"),
            requests=Decimal("0.01") / 1000,
            egress=gb * Decimal("0.09"),
        )
    ]
    assert (allowed / "out" / "v.bin").read_bytes() == data

    response = await call_action(
        hass, "restore", key="ha/v.bin", destination=str(allowed / "out" / "copy.bin")
    )
    assert (allowed / "out" / "copy.bin").read_bytes() == data
    assert sorted(p.name for p in (allowed / "out").iterdir()) == ["copy.bin", "v.bin"]


async def test_restore_does_not_replace_without_overwrite(
    hass: HomeAssistant, allowed: Path
) -> None:
    """An existing destination file is kept unless overwrite is set."""
    data = write_seeded(allowed / "r.txt", 100)
    await call_action(hass, "archive", path=str(allowed / "r.txt"))
    (allowed / "r.txt").write_bytes(b"local edit")
    with pytest.raises(ServiceValidationError) as err:
        await call_action(hass, "restore", key="ha/r.txt", destination=str(allowed))
    assert err.value.translation_key == "destination_exists"
    assert (allowed / "r.txt").read_bytes() == b"local edit"

    await call_action(hass, "restore", key="ha/r.txt", destination=str(allowed), overwrite=True)
    assert (allowed / "r.txt").read_bytes() == data


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"key": "ha/none.txt"}, "key_not_found"),
        ({"key": "/ha/x.txt"}, "key_absolute"),
        ({"key": "elsewhere/x.txt"}, "key_outside_prefix"),
        ({"tier": "Fast"}, "invalid_tier"),
        ({"days": 0}, "invalid_days"),
        ({"days": 366}, "invalid_days"),
        ({"destination": "{outside}"}, "no_access_to_path"),
        ({"destination": "{allowed}/no/such/dir/x.txt"}, "destination_not_found"),
        ({"destination": None}, "destination_required"),
        ({"key": "ha/deep.txt", "tier": "Expedited"}, "tier_not_available"),
    ],
)
async def test_restore_bad_input(
    hass: HomeAssistant,
    allowed: Path,
    tmp_path: Path,
    s3: Any,
    fields: dict[str, Any],
    error: str,
) -> None:
    """Each bad input has its own translated error; nothing is written or requested."""
    outside = allowed.parent / "outside"
    outside.mkdir()
    s3.put_object(Bucket=BUCKET, Key="ha/x.txt", Body=b"x", StorageClass="GLACIER_IR")
    s3.put_object(Bucket=BUCKET, Key="ha/deep.txt", Body=b"d", StorageClass="DEEP_ARCHIVE")
    data: dict[str, Any] = {"key": "ha/x.txt", "destination": str(allowed)}
    for name, value in fields.items():
        if value is None:
            data.pop(name)
        else:
            data[name] = (
                value.format(allowed=allowed, outside=outside) if isinstance(value, str) else value
            )
    with pytest.raises(ServiceValidationError) as err:
        await call_action(hass, "restore", **data)
    assert err.value.translation_key == error
    assert _tree(allowed.parent) == {}
    assert "Restore" not in s3.head_object(Bucket=BUCKET, Key="ha/deep.txt")


@pytest.mark.parametrize(
    ("destination", "error", "shown"),
    [
        # Refused before it is resolved: the path as the user wrote it.
        ("{outside}/x.txt", "no_access_to_path", "{outside}/x.txt"),
        ("{allowed}/no/such/dir/x.txt", "destination_not_found", "{allowed}/no/such/dir/x.txt"),
        # Refused once resolved: the file the restore would have written.
        ("{allowed}", "destination_is_directory", "{real}/x.txt"),
        ("{allowed}/kept.txt", "destination_exists", "{real}/kept.txt"),
    ],
)
async def test_restore_destination_error_names_the_path(
    hass: HomeAssistant, allowed: Path, s3: Any, destination: str, error: str, shown: str
) -> None:
    """A refused destination names the path, so the user knows which one to fix."""
    outside = allowed.parent / "outside"
    outside.mkdir()
    (allowed / "x.txt").mkdir()  # where "ha/x.txt" would land in the folder
    (allowed / "kept.txt").write_bytes(b"mine")
    s3.put_object(Bucket=BUCKET, Key="ha/x.txt", Body=b"x", StorageClass="GLACIER_IR")
    names = {"allowed": allowed, "outside": outside, "real": allowed.resolve()}

    with pytest.raises(ServiceValidationError) as err:
        await call_action(hass, "restore", key="ha/x.txt", destination=destination.format(**names))

    assert err.value.translation_key == error
    assert err.value.translation_placeholders == {"path": shown.format(**names)}
    assert (allowed / "kept.txt").read_bytes() == b"mine"


async def test_glacier_restore_is_watched_to_completion(
    hass: HomeAssistant,
    allowed: Path,
    s3: Any,
    freezer: FrozenDateTimeFactory,
    restores: MotoRestores,
    restore_estimates: list[RestoreEstimate],
) -> None:
    """Request → pending (sensor) → still running → ready → downloaded, event fired."""
    data = write_seeded(allowed / "old.tar", 5000)
    await call_action(hass, "archive", path=str(allowed / "old.tar"), storage_class="GLACIER")
    (allowed / "old.tar").unlink()
    completed = async_capture_events(hass, f"{DOMAIN}_restore_completed")

    response = await call_action(
        hass, "restore", key="ha/old.tar", destination=str(allowed), tier="Bulk", days=3
    )
    assert response["status"] == "restore_requested"
    restores.hold("ha/old.tar")
    # Where the file will be written once the restore is ready, and how big it is.
    assert response["path"] == str((allowed / "old.tar").resolve())
    assert response["size"] == 5000
    assert response["ready_by"] is not None
    # GLACIER Bulk: free retrieval; 3 days of the restored copy at the STANDARD rate,
    # the GET of the download ($0.0004 per 1,000) and its egress ($0.09/GB).
    assert response["cost_breakdown"] == {
        "retrieval": 0.0,
        "requests": shown_money(0.0004 / 1000),
        "copy_storage": shown_money(5000 / 2**30 * 0.023 * 3 / 30),
        "egress": shown_money(5000 / 2**30 * 0.09),
        "egress_free_gb_per_month": 100,
    }
    assert response["estimated_cost"] == 0.0003  # the three charges as shown
    # Each of them reads 0.0001 at this size: the figures before rounding, exactly.
    gb = Decimal(5000) / 2**30
    assert restore_estimates == [
        RestoreEstimate(
            requests=Decimal("0.0004") / 1000,
            copy_storage=gb * Decimal("0.023") * 3 / 30,
            egress=gb * Decimal("0.09"),
        )
    ]
    assert hass.states.get("sensor.demo_archive_ha_pending_restores").state == "1"

    again = await call_action(
        hass, "restore", key="ha/old.tar", destination=str(allowed), tier="Bulk"
    )
    assert again["status"] == "restore_in_progress"
    # Following the running restore sends nothing: only the download is still to pay.
    assert again["cost_breakdown"] == {
        "retrieval": 0.0,
        "requests": shown_money(0.0004 / 1000),
        "copy_storage": 0.0,
        "egress": shown_money(5000 / 2**30 * 0.09),
        "egress_free_gb_per_month": 100,
    }

    freezer.tick(timedelta(hours=1, seconds=1))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert completed == []
    assert not (allowed / "old.tar").exists()

    restores.finish()
    freezer.tick(timedelta(hours=1, seconds=1))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert [(e.data["key"], e.data["path"]) for e in completed] == [
        ("ha/old.tar", str((allowed / "old.tar").resolve()))
    ]
    assert (allowed / "old.tar").read_bytes() == data
    assert hass.states.get("sensor.demo_archive_ha_pending_restores").state == "0"


async def test_pending_restore_survives_reload(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    allowed: Path,
    freezer: FrozenDateTimeFactory,
    restores: MotoRestores,
) -> None:
    """A pending restore is in the catalog: after a reload it is followed to the end."""
    data = write_seeded(allowed / "deep.bin", 2048)
    await call_action(hass, "archive", path=str(allowed / "deep.bin"), storage_class="DEEP_ARCHIVE")
    (allowed / "deep.bin").unlink()
    await call_action(hass, "restore", key="ha/deep.bin", destination=str(allowed))
    restores.hold("ha/deep.bin")

    assert await hass.config_entries.async_reload(init_integration.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert hass.states.get("sensor.demo_archive_ha_pending_restores").state == "1"

    completed = async_capture_events(hass, f"{DOMAIN}_restore_completed")
    freezer.tick(timedelta(minutes=16))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert completed == []

    restores.finish()
    freezer.tick(timedelta(minutes=16))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert [e.data["key"] for e in completed] == ["ha/deep.bin"]
    assert (allowed / "deep.bin").read_bytes() == data


async def test_restore_of_deleted_object_fails_with_event(
    hass: HomeAssistant, allowed: Path, s3: Any, freezer: FrozenDateTimeFactory
) -> None:
    """An object deleted elsewhere while restoring → s3_glacier_restore_failed."""
    write_seeded(allowed / "gone.bin", 10)
    await call_action(hass, "archive", path=str(allowed / "gone.bin"), storage_class="GLACIER")
    await call_action(hass, "restore", key="ha/gone.bin", destination=str(allowed / "back.bin"))
    failed = async_capture_events(hass, f"{DOMAIN}_restore_failed")
    s3.delete_object(Bucket=BUCKET, Key="ha/gone.bin")
    freezer.tick(timedelta(minutes=16))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert [(e.data["key"], e.data["reason"]) for e in failed] == [("ha/gone.bin", "key_not_found")]
    assert not (allowed / "back.bin").exists()


async def test_restore_without_destination(
    hass: HomeAssistant, allowed: Path, freezer: FrozenDateTimeFactory
) -> None:
    """Without a destination a Glacier restore only makes the object readable."""
    write_seeded(allowed / "n.bin", 10)
    await call_action(hass, "archive", path=str(allowed / "n.bin"), storage_class="GLACIER")
    response = await call_action(hass, "restore", key="ha/n.bin", tier="Expedited")
    assert response["status"] == "restore_requested"
    completed = async_capture_events(hass, f"{DOMAIN}_restore_completed")
    freezer.tick(timedelta(minutes=2))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert [(e.data["key"], e.data["path"]) for e in completed] == [("ha/n.bin", None)]
    response = await call_action(hass, "restore", key="ha/n.bin")
    assert response["status"] == "restored"


# --- delete, list, refresh -------------------------------------------------------------


async def test_delete_reports_early_deletion_charge(
    hass: HomeAssistant, allowed: Path, s3: Any
) -> None:
    """Deleting a fresh DEEP_ARCHIVE object charges (almost) the whole 180 days."""
    write_seeded(allowed / "big.bin", 1024 * 1024)
    await call_action(hass, "archive", path=str(allowed / "big.bin"), storage_class="DEEP_ARCHIVE")
    response = await call_action(hass, "delete", key="ha/big.bin")
    assert response["key"] == "ha/big.bin"
    # (1 MiB + 32 KiB) at $0.00099/GB-month for 180 days (6 months), +8 KiB at STANDARD
    expected = (1024 * 1024 + 32 * 1024) / 2**30 * 0.00099 * 6
    assert response["early_deletion_charge"] == shown_money(expected)
    assert _keys(s3) == []
    assert hass.states.get("sensor.demo_archive_ha_archived_objects").state == "0"

    with pytest.raises(ServiceValidationError) as err:
        await call_action(hass, "delete", key="ha/big.bin")
    assert err.value.translation_key == "key_not_found"


async def test_list(hass: HomeAssistant, allowed: Path, s3: Any) -> None:
    """List shows size, class and restore state; limit truncates."""
    for name in ("a", "b", "c"):
        write_seeded(allowed / name, 5)
        await call_action(hass, "archive", path=str(allowed / name), storage_class="GLACIER")
    # moto ignores OptionalObjectAttributes, so only the restores this entry follows
    # show; on AWS the listing's RestoreStatus shows the others too.
    await call_action(hass, "restore", key="ha/b", tier="Bulk")
    response = await call_action(hass, "list")
    assert response["truncated"] is False
    objects = {o["key"]: o for o in response["objects"]}
    assert set(objects) == {"ha/a", "ha/b", "ha/c"}
    assert objects["ha/a"]["storage_class"] == "GLACIER"
    assert objects["ha/a"]["size"] == 5
    assert objects["ha/a"]["restore"] == "none"
    assert objects["ha/b"]["restore"] == "in_progress"

    response = await call_action(hass, "list", limit=2)
    assert response["truncated"] is True
    assert len(response["objects"]) == 2

    with pytest.raises(ServiceValidationError) as err:
        await call_action(hass, "list", limit=0)
    assert err.value.translation_key == "invalid_limit"


async def test_refresh_reconciles(hass: HomeAssistant, allowed: Path, s3: Any) -> None:
    """Objects added and deleted behind our back are picked up by refresh."""
    write_seeded(allowed / "mine.bin", 10)
    await call_action(hass, "archive", path=str(allowed / "mine.bin"))
    s3.put_object(Bucket=BUCKET, Key="ha/theirs.bin", Body=b"12345", StorageClass="GLACIER")
    s3.put_object(Bucket=BUCKET, Key="elsewhere.bin", Body=b"1")
    s3.delete_object(Bucket=BUCKET, Key="ha/mine.bin")
    response = await call_action(hass, "refresh")
    assert response == {"added": 1, "removed": 1, "changed": 0, "objects": 1, "bytes": 5}
    size = hass.states.get("sensor.demo_archive_ha_archived_size").state
    assert size == "0.01"  # MiB, rounded up: 5 bytes


async def test_refused_keys_in_action_start_reauth(
    hass: HomeAssistant, allowed: Path, moto_auth: dict[str, str]
) -> None:
    """Keys refused during an action → translated error and a reauth flow."""
    write_seeded(allowed / "k.bin", 10)
    with pytest.raises(HomeAssistantError) as err:
        await call_action(hass, "archive", path=str(allowed / "k.bin"))
    assert err.value.translation_key == "invalid_auth"
    await hass.async_block_till_done(wait_background_tasks=True)
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [f["context"]["source"] for f in flows] == [SOURCE_REAUTH]
    assert (allowed / "k.bin").exists()


async def test_entry_must_be_named_when_several(
    hass: HomeAssistant, allowed: Path, s3: Any
) -> None:
    """With two loaded entries, an action without config_entry_id is refused."""
    s3.create_bucket(Bucket="second")
    second = MockConfigEntry(
        domain=DOMAIN,
        title="second",
        data={**hass.config_entries.async_entries(DOMAIN)[0].data, "bucket": "second"},
        unique_id="us-east-1|second|ha",
    )
    second.add_to_hass(hass)
    assert await hass.config_entries.async_setup(second.entry_id)
    write_seeded(allowed / "t.bin", 10)
    with pytest.raises(ServiceValidationError) as err:
        await call_action(hass, "archive", path=str(allowed / "t.bin"))
    assert err.value.translation_key == "config_entry_required"
    await call_action(hass, "archive", path=str(allowed / "t.bin"), config_entry_id=second.entry_id)
    assert s3.list_objects_v2(Bucket="second")["KeyCount"] == 1
    assert (allowed / "t.bin").exists()


async def test_reconcile_aborts_abandoned_uploads(
    hass: HomeAssistant, init_integration: MockConfigEntry, s3: Any
) -> None:
    """A multipart upload left by a crash is aborted once a day old; a fresh one stays.

    moto reports every upload as started on 2010-11-10, so a hook on the entry's client
    gives the fresh one its real start time.
    """
    old = s3.create_multipart_upload(Bucket=BUCKET, Key="ha/crashed.bin")["UploadId"]
    s3.create_multipart_upload(Bucket=BUCKET, Key="other/not-ours.bin")
    fresh = s3.create_multipart_upload(Bucket=BUCKET, Key="ha/running.bin")["UploadId"]

    def started_now(parsed: dict[str, Any], **_: Any) -> None:
        for upload in parsed.get("Uploads", []):
            if upload["UploadId"] == fresh:
                upload["Initiated"] = datetime.now(UTC)

    events = init_integration.runtime_data.target._client.meta.events
    events.register("after-call.s3.ListMultipartUploads", started_now)
    await call_action(hass, "refresh")
    uploads = {u["UploadId"] for u in s3.list_multipart_uploads(Bucket=BUCKET)["Uploads"]}
    assert old not in uploads
    assert fresh in uploads
    assert len(uploads) == 2  # the one outside the prefix is not ours to abort


# --- who may call, and which spellings -------------------------------------------------


@pytest.mark.parametrize(
    ("action", "data"),
    [
        ("archive", {"path": "/tmp/x"}),
        ("restore", {"key": "ha/x"}),
        ("delete", {"key": "ha/x"}),
        ("list", {}),
        ("refresh", {}),
    ],
)
async def test_actions_are_for_administrators(
    hass: HomeAssistant, hass_read_only_user: MockUser, s3: Any, action: str, data: dict[str, Any]
) -> None:
    """A non-admin user is refused every action, list and refresh (billed requests) too."""
    listed = 0

    def count(**_: Any) -> None:
        nonlocal listed
        listed += 1

    entry = hass.config_entries.async_entries(DOMAIN)[0]
    entry.runtime_data.target._client.meta.events.register("before-call.s3.*", count)
    with pytest.raises(Unauthorized):
        await hass.services.async_call(
            DOMAIN,
            action,
            data,
            blocking=True,
            return_response=action == "list",
            context=Context(user_id=hass_read_only_user.id),
        )
    assert listed == 0


@pytest.mark.parametrize(
    ("storage_class", "tier"),
    [("glacier", "expedited"), ("GLACIER", "Expedited"), ("deep_archive", "bulk")],
)
async def test_old_and_new_spellings_are_accepted(
    hass: HomeAssistant, allowed: Path, s3: Any, storage_class: str, tier: str
) -> None:
    """Automations written with AWS's names keep working next to the option values."""
    write_seeded(allowed / "v.bin", 10)
    response = await call_action(
        hass, "archive", path=str(allowed / "v.bin"), storage_class=storage_class
    )
    assert response["archived"][0]["storage_class"] == storage_class.upper()
    assert s3.head_object(Bucket=BUCKET, Key="ha/v.bin")["StorageClass"] == storage_class.upper()
    response = await call_action(hass, "restore", key="ha/v.bin", tier=tier)
    assert response["status"] in ("restore_requested", "restored")


async def test_unknown_spelling_lists_the_option_values(hass: HomeAssistant, allowed: Path) -> None:
    """A wrong class is refused with the values the UI offers."""
    write_seeded(allowed / "v.bin", 10)
    with pytest.raises(ServiceValidationError) as err:
        await call_action(hass, "archive", path=str(allowed / "v.bin"), storage_class="cold")
    assert err.value.translation_placeholders == {
        "value": "cold",
        "allowed": "standard, standard_ia, onezone_ia, intelligent_tiering, glacier_ir,"
        " glacier, deep_archive",
    }
