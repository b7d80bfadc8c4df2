"""Bucket actions pinned exactly: what mutation testing found unchecked.

Each test drives Home Assistant's action against moto's S3 and pins one thing a user
relies on: every field a listing answers with, the prefix that limits it, `truncated`
only when more objects exist, the key each error names (and the value a refused
restore asks to change), the fields of a restore's response, and the key's lock while
an object is deleted.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events

from custom_components.s3_glacier import repairs
from custom_components.s3_glacier.archive.s3 import S3Target
from custom_components.s3_glacier.const import CONF_STORAGE_CLASS, DOMAIN

from .client_hooks import ClientHooks, error_response
from .conftest import call_action, write_seeded
from .helpers import key_lock_held_during, our_issue_ids

pytestmark = pytest.mark.usefixtures("init_integration")

ARCHIVED_AT = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


async def _archive(hass: HomeAssistant, allowed: Path, name: str, **options: Any) -> None:
    write_seeded(allowed / name, 100 + len(name))
    await call_action(hass, "archive", path=str(allowed / name), **options)


async def _refused(
    hass: HomeAssistant, entry: MockConfigEntry, operation: str, action: str, **data: Any
) -> HomeAssistantError:
    """Call ``action`` while the IAM policy refuses ``operation``; return its error."""
    hooks = ClientHooks(entry)
    hooks.on(f"before-call.s3.{operation}", lambda **_: error_response("AccessDenied", 403))
    try:
        with pytest.raises(HomeAssistantError) as err:
            await call_action(hass, action, **data)
    finally:
        hooks.remove_all()
    assert err.value.translation_key == "access_denied"
    return err.value


async def test_listing_answers_every_field_of_each_object(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    allowed: Path,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Key, size, class, time, and a restored copy's state and expiry (ISO 8601, UTC).

    moto lists no restore status: the answer AWS gives for a restored copy is added.
    """
    freezer.move_to(ARCHIVED_AT)
    await _archive(hass, allowed, "cold.bin", storage_class="GLACIER")
    await _archive(hass, allowed, "warm.bin", storage_class="GLACIER_IR")

    def restored_copy(parsed: dict[str, Any], **_: Any) -> None:
        for item in parsed.get("Contents", ()):
            if item["Key"] == "ha/cold.bin":
                item["RestoreStatus"] = {
                    "IsRestoreInProgress": False,
                    "RestoreExpiryDate": ARCHIVED_AT + timedelta(days=2),
                }

    hooks = ClientHooks(init_integration)
    hooks.on("after-call.s3.ListObjectsV2", restored_copy)
    try:
        listing = await call_action(hass, "list", limit=10)
    finally:
        hooks.remove_all()

    assert listing == {
        "objects": [
            {
                "key": "ha/cold.bin",
                "size": 108,
                "storage_class": "GLACIER",
                "last_modified": "2026-03-01T10:00:00+00:00",
                "restore": "restored",
                "restore_expiry": (ARCHIVED_AT + timedelta(days=2)).isoformat(),
            },
            {
                "key": "ha/warm.bin",
                "size": 108,
                "storage_class": "GLACIER_IR",
                "last_modified": "2026-03-01T10:00:00+00:00",
                "restore": "none",
                "restore_expiry": None,
            },
        ],
        "truncated": False,
    }


async def test_listing_is_limited_to_the_prefix_and_truncated_only_past_the_limit(
    hass: HomeAssistant, allowed: Path
) -> None:
    for name in ("a1.txt", "a2.txt", "b1.txt"):
        await _archive(hass, allowed, name)

    def keys(listing: dict[str, Any]) -> list[str]:
        return [item["key"] for item in listing["objects"]]

    exactly = await call_action(hass, "list", limit=3)
    assert (keys(exactly), exactly["truncated"]) == (["ha/a1.txt", "ha/a2.txt", "ha/b1.txt"], False)
    fewer = await call_action(hass, "list", limit=2)
    assert (keys(fewer), fewer["truncated"]) == (["ha/a1.txt", "ha/a2.txt"], True)
    prefixed = await call_action(hass, "list", prefix="ha/a", limit=2)
    assert (keys(prefixed), prefixed["truncated"]) == (["ha/a1.txt", "ha/a2.txt"], False)
    one = await call_action(hass, "list", prefix="ha/a", limit=1)
    assert (keys(one), one["truncated"]) == (["ha/a1.txt"], True)


async def test_listing_reads_only_one_object_past_the_limit(
    hass: HomeAssistant, allowed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bucket of millions listed with a limit of 2 is not read to its end: the listing
    stops at the first object past the limit (which says it is truncated)."""
    for name in ("1.txt", "2.txt", "3.txt", "4.txt", "5.txt"):
        await _archive(hass, allowed, name)
    taken: list[str] = []
    real = S3Target.iterate

    def counted(self: S3Target, *args: Any, **kwargs: Any) -> Any:
        for obj in real(self, *args, **kwargs):
            taken.append(obj.key)
            yield obj

    monkeypatch.setattr(S3Target, "iterate", counted)
    listing = await call_action(hass, "list", limit=2)
    assert listing["truncated"] is True
    assert taken == ["ha/1.txt", "ha/2.txt", "ha/3.txt"]


async def test_listing_outside_the_entrys_prefix_is_refused(hass: HomeAssistant) -> None:
    with pytest.raises(ServiceValidationError) as err:
        await call_action(hass, "list", prefix="other/")
    assert err.value.translation_domain == DOMAIN
    assert err.value.translation_key == "key_outside_prefix"
    assert err.value.translation_placeholders == {"key": "other/", "prefix": "ha/"}


@pytest.mark.parametrize(("prefix", "named"), [(None, "ha/"), ("ha/a", "ha/a")])
async def test_a_refused_listing_names_what_was_listed(
    hass: HomeAssistant, init_integration: MockConfigEntry, prefix: str | None, named: str
) -> None:
    """The policy lacks s3:ListBucket: the error names the prefix (the entry's by default)."""
    fields = {"prefix": prefix} if prefix else {}
    err = await _refused(hass, init_integration, "ListObjectsV2", "list", **fields)
    assert err.translation_placeholders["key"] == named


async def test_delete_needs_a_key_and_names_a_missing_one(hass: HomeAssistant) -> None:
    with pytest.raises(ServiceValidationError) as err:
        await call_action(hass, "delete")
    assert (err.value.translation_domain, err.value.translation_key) == (DOMAIN, "key_required")

    with pytest.raises(ServiceValidationError) as err:
        await call_action(hass, "delete", key="ha/nothing-here.bin")
    assert err.value.translation_key == "key_not_found"
    assert err.value.translation_placeholders == {"key": "ha/nothing-here.bin"}


async def test_delete_holds_the_keys_lock_and_names_the_key_when_refused(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    allowed: Path,
    s3: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No other step runs on the object while it is deleted; a refusal names it."""
    await _archive(hass, allowed, "gone.bin")
    await _archive(hass, allowed, "kept.bin")
    locked_while_deleting = key_lock_held_during(monkeypatch, S3Target, "delete", init_integration)
    response = await call_action(hass, "delete", key="ha/gone.bin")
    assert response["key"] == "ha/gone.bin"
    assert locked_while_deleting == [True]

    err = await _refused(hass, init_integration, "DeleteObject", "delete", key="ha/kept.bin")
    assert err.translation_placeholders["key"] == "ha/kept.bin"
    assert s3.head_object(Bucket="demo-archive", Key="ha/kept.bin")["ContentLength"] == 108


async def test_a_readable_copy_is_downloaded_at_once_in_a_transfer_slot(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    allowed: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """GLACIER_IR needs no restore: the file comes at once, holding the key's lock and one
    of the entry's transfer slots (two large downloads never run beyond the bound)."""
    data_bytes = write_seeded(allowed / "now.bin", 2500)
    await call_action(hass, "archive", path=str(allowed / "now.bin"), storage_class="GLACIER_IR")
    (allowed / "now.bin").unlink()
    data = init_integration.runtime_data
    data.transfers = asyncio.Semaphore(1)
    held: list[tuple[bool, bool]] = []
    real = S3Target.get

    def watched(self: S3Target, key: str, *args: Any, **kwargs: Any) -> Any:
        held.append((data._key_locks[key][0].locked(), data.transfers.locked()))
        return real(self, key, *args, **kwargs)

    monkeypatch.setattr(S3Target, "get", watched)
    completed = async_capture_events(hass, f"{DOMAIN}_restore_completed")

    response = await call_action(hass, "restore", key="ha/now.bin", destination=str(allowed))

    path = str((allowed / "now.bin").resolve())
    assert sorted(response) == [
        "cost_breakdown",
        "estimated_cost",
        "key",
        "path",
        "ready_by",
        "size",
        "status",
    ]
    assert (response["key"], response["ready_by"]) == ("ha/now.bin", None)
    assert (response["status"], response["path"], response["size"]) == ("restored", path, 2500)
    assert [e.data for e in completed] == [
        {"config_entry_id": init_integration.entry_id, "key": "ha/now.bin", "path": path}
    ]
    assert held == [(True, True)]
    assert (allowed / "now.bin").read_bytes() == data_bytes
    assert not data.transfers.locked()


@pytest.mark.parametrize(("action", "named"), [("restore", "ha/now.bin"), ("refresh", "ha/")])
async def test_refused_downloads_and_refreshes_name_what_was_refused(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    allowed: Path,
    action: str,
    named: str,
) -> None:
    """The policy lacks s3:GetObject or s3:ListBucket: the error names the key or prefix."""
    write_seeded(allowed / "now.bin", 100)
    await call_action(hass, "archive", path=str(allowed / "now.bin"), storage_class="GLACIER_IR")
    (allowed / "now.bin").unlink()
    operation = "GetObject" if action == "restore" else "ListObjectsV2"
    arguments = {"key": "ha/now.bin", "destination": str(allowed)} if action == "restore" else {}
    err = await _refused(hass, init_integration, operation, action, **arguments)
    assert err.translation_placeholders["key"] == named
    assert not (allowed / "now.bin").exists()


async def test_the_options_class_is_used_when_the_action_names_none(
    hass: HomeAssistant, init_integration: MockConfigEntry, allowed: Path, s3: Any
) -> None:
    """The class chosen in the options applies to every archive that names none."""
    hass.config_entries.async_update_entry(
        init_integration, options={**init_integration.options, CONF_STORAGE_CLASS: "deep_archive"}
    )
    await hass.async_block_till_done()
    write_seeded(allowed / "cold.bin", 100)
    response = await call_action(hass, "archive", path=str(allowed / "cold.bin"))
    assert response["archived"][0]["storage_class"] == "DEEP_ARCHIVE"
    head = s3.head_object(Bucket="demo-archive", Key="ha/cold.bin")
    assert head["StorageClass"] == "DEEP_ARCHIVE"


async def test_a_skipped_file_does_not_stop_the_rest_and_each_item_names_its_file(
    hass: HomeAssistant, allowed: Path
) -> None:
    """A folder whose first file is archived already: it is skipped, the next is sent,
    and the response names the local file of each."""
    await _archive(hass, allowed, "a.bin")
    second = allowed / "b.bin"
    write_seeded(second, 200)
    response = await call_action(hass, "archive", path=str(allowed))
    first = str((allowed / "a.bin").resolve())
    assert response["skipped"] == [{"path": first, "key": "ha/a.bin", "reason": "identical"}]
    [item] = response["archived"]
    assert (item["path"], item["key"], item["size"]) == (str(second.resolve()), "ha/b.bin", 200)


async def test_a_refused_upload_names_the_key_and_keeps_the_source(
    hass: HomeAssistant, init_integration: MockConfigEntry, allowed: Path
) -> None:
    """The policy lacks s3:PutObject: the error names the object the file was going to."""
    data = write_seeded(allowed / "up.bin", 300)
    err = await _refused(
        hass,
        init_integration,
        "PutObject",
        "archive",
        path=str(allowed / "up.bin"),
        key="ha/kept/up.bin",
        delete_source=True,
    )
    assert err.translation_placeholders["key"] == "ha/kept/up.bin"
    assert (allowed / "up.bin").read_bytes() == data


@pytest.mark.parametrize(
    ("fields", "error", "placeholders"),
    [
        ({"key": None}, "key_required", {}),
        ({"days": 0}, "invalid_days", {"days": "0", "max": "365"}),
        ({"days": 366}, "invalid_days", {"days": "366", "max": "365"}),
        ({"key": "ha/none.bin"}, "key_not_found", {"key": "ha/none.bin"}),
        ({"key": "ha/now.bin", "destination": None}, "destination_required", {"key": "ha/now.bin"}),
        (
            {"tier": "expedited"},
            "tier_not_available",
            {
                "tier": "expedited",
                "storage_class": "Glacier Deep Archive",
                "allowed": "standard, bulk",
            },
        ),
    ],
)
async def test_a_refused_restore_says_what_to_fix(
    hass: HomeAssistant,
    allowed: Path,
    fields: dict[str, Any],
    error: str,
    placeholders: dict[str, str],
) -> None:
    """Each refusal of the restore action names the value to change; nothing is asked."""
    await _archive(hass, allowed, "deep.bin", storage_class="DEEP_ARCHIVE")
    await _archive(hass, allowed, "now.bin", storage_class="GLACIER_IR")
    data: dict[str, Any] = {"key": "ha/deep.bin", "destination": str(allowed / "out.bin")}
    data |= fields
    with pytest.raises(ServiceValidationError) as err:
        await call_action(hass, "restore", **{k: v for k, v in data.items() if v is not None})
    assert (err.value.translation_key, err.value.translation_placeholders) == (error, placeholders)
    assert not (allowed / "out.bin").exists()


async def test_a_restore_can_keep_its_copy_for_the_longest_days(
    hass: HomeAssistant, init_integration: MockConfigEntry, allowed: Path
) -> None:
    """365 days is the longest a restored copy is kept, and is asked for as such."""
    await _archive(hass, allowed, "deep.bin", storage_class="DEEP_ARCHIVE")
    asked: list[int] = []
    hooks = ClientHooks(init_integration)
    hooks.on(
        "provide-client-params.s3.RestoreObject",
        lambda params, **_: asked.append(params["RestoreRequest"]["Days"]),
    )
    try:
        response = await call_action(hass, "restore", key="ha/deep.bin", days=365)
    finally:
        hooks.remove_all()
    assert response["status"] == "restore_requested"
    assert asked == [365]


@pytest.mark.parametrize(
    ("operation", "permission"),
    [("HeadObject", "s3:GetObject"), ("RestoreObject", "s3:RestoreObject")],
)
async def test_a_refused_restore_names_the_key_and_the_missing_permission(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    allowed: Path,
    operation: str,
    permission: str,
) -> None:
    """The policy refuses the restore's first step (its HEAD: s3:GetObject) or the
    request itself: the error names the object, a repair issue names the permission,
    and nothing is watched."""
    await _archive(hass, allowed, "deep.bin", storage_class="DEEP_ARCHIVE")
    err = await _refused(hass, init_integration, operation, "restore", key="ha/deep.bin")
    assert err.translation_placeholders["key"] == "ha/deep.bin"
    issue = repairs.issue_id(init_integration, "missing_permission", permission)
    assert issue in our_issue_ids(hass)
    assert init_integration.runtime_data.restores.pending("ha/deep.bin") is None
