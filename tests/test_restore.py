"""Restores through the actions and the watcher: archive tiers, asked again, repairs, slots.

S3 is moto in process. Where moto lacks a behaviour (INTELLIGENT_TIERING's archive
tiers, throttling) botocore's own event hooks on the entry's client answer the one
request in question, as botocore's Stubber does; every other request reaches moto.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import UTC, timedelta
from decimal import Decimal
from pathlib import Path
import threading
from typing import Any

from botocore.awsrequest import AWSResponse
from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
)

from custom_components.s3_glacier import repairs
from custom_components.s3_glacier.archive import s3 as s3_module
from custom_components.s3_glacier.archive.models import ArchiveStatus, RestoreState, RestoreTier
from custom_components.s3_glacier.archive.pricing import RestoreEstimate
from custom_components.s3_glacier.archive.s3 import parse_restore_header
from custom_components.s3_glacier.const import DOMAIN

from .client_hooks import ClientHooks, error_response
from .conftest import BUCKET, MotoRestores, call_action, shown_money, write_seeded
from .helpers import moto_object, our_issue_ids, tick

GB = 2**30

pytestmark = pytest.mark.usefixtures("init_integration")


@pytest.fixture
def hooks(init_integration: MockConfigEntry) -> Iterator[ClientHooks]:
    hooks = ClientHooks(init_integration)
    yield hooks
    hooks.remove_all()


class ThrottledHeads:
    """Answers the entry's HEADs with SlowDown (503) while ``on``, counting those."""

    def __init__(self, hooks: ClientHooks) -> None:
        self.on = True
        self.count = 0
        hooks.on("before-call.s3.HeadObject", self._answer)

    def _answer(self, **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        if not self.on:
            return None
        self.count += 1
        return error_response("SlowDown", 503)


class ArchiveTier:
    """S3's side of one INTELLIGENT_TIERING object in its Deep Archive Access tier.

    moto stores the object but knows no archive tiers: HEAD answers get
    ``ArchiveStatus`` (and the restore header), RestoreObject starts the restore here,
    and a GET is refused with InvalidObjectState until the test lets it finish.
    """

    def __init__(self, hooks: ClientHooks) -> None:
        self.state = "archived"
        hooks.on("after-call.s3.HeadObject", self._head)
        hooks.on("before-call.s3.RestoreObject", self._restore)
        hooks.on("before-call.s3.GetObject", self._get)

    def _head(self, parsed: dict[str, Any], **_: Any) -> None:
        if self.state != "restored":
            parsed["ArchiveStatus"] = "DEEP_ARCHIVE_ACCESS"
        if self.state == "restoring":
            parsed["Restore"] = 'ongoing-request="true"'
        elif self.state == "restored":
            parsed["Restore"] = 'ongoing-request="false"'  # back in Frequent Access

    def _restore(self, **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        if self.state != "archived":
            return error_response("RestoreAlreadyInProgress", 409)
        self.state = "restoring"
        parsed = {"ResponseMetadata": {"HTTPStatusCode": 202, "HTTPHeaders": {}}}
        return AWSResponse(f"https://{BUCKET}.s3.amazonaws.com", 202, {}, None), parsed

    def _get(self, **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        return None if self.state == "restored" else error_response("InvalidObjectState", 403)


# --- 10.3 Intelligent-Tiering archive tiers -------------------------------------------


async def test_intelligent_tiering_archive_tier_is_restored_and_watched(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    allowed: Path,
    hooks: ClientHooks,
    freezer: FrozenDateTimeFactory,
    restore_estimates: list[RestoreEstimate],
) -> None:
    """An object in Deep Archive Access: restore without Days, its tiers, its pace."""
    data = write_seeded(allowed / "it.bin", 3000)
    await call_action(
        hass, "archive", path=str(allowed / "it.bin"), storage_class="INTELLIGENT_TIERING"
    )
    (allowed / "it.bin").unlink()
    tier = ArchiveTier(hooks)
    completed = async_capture_events(hass, f"{DOMAIN}_restore_completed")

    with pytest.raises(ServiceValidationError) as err:
        await call_action(
            hass, "restore", key="ha/it.bin", destination=str(allowed), tier="Expedited"
        )
    assert err.value.translation_key == "tier_not_available"
    # The values the tier field takes, and the tier by AWS's name.
    assert err.value.translation_placeholders["allowed"] == "standard, bulk"
    assert (
        err.value.translation_placeholders["storage_class"]
        == "Intelligent-Tiering Deep Archive Access"
    )
    assert hooks.restore_requests == []

    now = freezer.time_to_freeze
    response = await call_action(
        hass, "restore", key="ha/it.bin", destination=str(allowed), tier="Bulk"
    )
    assert response["status"] == "restore_requested"
    assert hooks.restore_requests == [{"GlacierJobParameters": {"Tier": "Bulk"}}]
    # Deep Archive Access Bulk: within 48 hours.
    ready_by = now + timedelta(hours=48)
    assert response["ready_by"] == ready_by.isoformat(timespec="seconds") + "+00:00"
    # Bulk restores of the archive tiers are free: the download's GET and egress remain.
    assert response["cost_breakdown"] == {
        "retrieval": 0.0,
        "requests": shown_money(0.0004 / 1000),
        "copy_storage": 0.0,
        "egress": shown_money(3000 / GB * 0.09),
        "egress_free_gb_per_month": 100,
    }
    assert restore_estimates == [
        RestoreEstimate(
            requests=Decimal("0.0004") / 1000, egress=Decimal(3000) / GB * Decimal("0.09")
        )
    ]
    recorded = init_integration.runtime_data.catalog.get("ha/it.bin")
    assert recorded is not None
    assert recorded.archive_status is ArchiveStatus.DEEP_ARCHIVE_ACCESS
    assert hass.states.get("sensor.demo_archive_ha_pending_restores").state == "1"

    await tick(hass, freezer, timedelta(hours=1, seconds=1))
    assert completed == []
    assert not (allowed / "it.bin").exists()

    # The restore vanished at S3 (the object is in its archive tier, unread): asked for
    # once more, again without Days (S3 refuses Days for the archive tiers).
    tier.state = "archived"
    await tick(hass, freezer, timedelta(hours=1, seconds=1))
    assert hooks.restore_requests == [{"GlacierJobParameters": {"Tier": "Bulk"}}] * 2
    assert tier.state == "restoring"

    tier.state = "restored"
    await tick(hass, freezer, timedelta(hours=1, seconds=1))
    assert [(e.data["key"], e.data["path"]) for e in completed] == [
        ("ha/it.bin", str((allowed / "it.bin").resolve()))
    ]
    assert (allowed / "it.bin").read_bytes() == data
    recorded = init_integration.runtime_data.catalog.get("ha/it.bin")
    assert recorded is not None
    assert recorded.archive_status is None
    assert hass.states.get("sensor.demo_archive_ha_pending_restores").state == "0"


# --- 10.4 restore asked again ---------------------------------------------------------


@pytest.mark.freeze_time("2026-11-21 12:00:00+00:00")
async def test_restored_copy_asked_again_with_days_gets_a_new_expiry(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    allowed: Path,
    s3: Any,
    hooks: ClientHooks,
    freezer: FrozenDateTimeFactory,
    restore_estimates: list[RestoreEstimate],
) -> None:
    """S3 renews the copy to now + days; the estimate is the request and the extra days."""
    write_seeded(allowed / "g.bin", 4096)
    await call_action(hass, "archive", path=str(allowed / "g.bin"), storage_class="GLACIER")
    await call_action(hass, "restore", key="ha/g.bin", days=1)  # moto restores at once
    now = freezer.time_to_freeze

    # Without days a restored copy is only reported: nothing is asked of S3.
    response = await call_action(hass, "restore", key="ha/g.bin")
    assert response["status"] == "restored"
    assert len(hooks.restore_requests) == 1
    assert response["estimated_cost"] == 0

    response = await call_action(hass, "restore", key="ha/g.bin", days=10)
    assert response["status"] == "restored"
    assert hooks.restore_requests[-1] == {"Days": 10, "GlacierJobParameters": {"Tier": "Standard"}}
    state, expiry = parse_restore_header(s3.head_object(Bucket=BUCKET, Key="ha/g.bin")["Restore"])
    assert state is RestoreState.RESTORED
    assert expiry is not None
    assert expiry.replace(tzinfo=None) == now + timedelta(days=10)
    # The request (GLACIER Standard $0.05 per 1,000) and 9 more days of the copy.
    assert response["cost_breakdown"] == {
        "retrieval": 0.0,
        "requests": shown_money(0.05 / 1000),
        "copy_storage": shown_money(4096 / GB * 0.023 * 9 / 30),
        "egress": 0.0,
        "egress_free_gb_per_month": 100,
    }
    assert restore_estimates[-1] == RestoreEstimate(
        requests=Decimal("0.05") / 1000, copy_storage=Decimal(4096) / GB * Decimal("0.023") * 9 / 30
    )
    recorded = init_integration.runtime_data.catalog.get("ha/g.bin")
    assert recorded is not None
    assert recorded.restore_expiry == expiry

    # Fewer days than the copy has left: it is cut short to now + 5 days, not lengthened.
    response = await call_action(hass, "restore", key="ha/g.bin", days=5)
    assert restore_estimates[-1] == RestoreEstimate(requests=Decimal("0.05") / 1000)
    # Half a day left (no whole day): only reading it costs nothing more; asking for
    # 3 days bills the copy for all 3.
    await tick(hass, freezer, timedelta(days=4, hours=12))
    response = await call_action(hass, "restore", key="ha/g.bin")
    assert response["status"] == "restored"
    assert restore_estimates[-1] == RestoreEstimate()
    response = await call_action(hass, "restore", key="ha/g.bin", days=3)
    assert restore_estimates[-1] == RestoreEstimate(
        requests=Decimal("0.05") / 1000, copy_storage=Decimal(4096) / GB * Decimal("0.023") * 3 / 30
    )


async def test_a_copy_found_restored_clears_the_keys_restore_issue(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    allowed: Path,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A watched restore failed (a file in the way); asked again, the copy is readable:
    the repair issue about that restore goes."""
    write_seeded(allowed / "c.bin", 300)
    await call_action(hass, "archive", path=str(allowed / "c.bin"), storage_class="GLACIER")
    (allowed / "c.bin").unlink()
    await call_action(hass, "restore", key="ha/c.bin", destination=str(allowed), days=1)
    (allowed / "c.bin").write_bytes(b"in the way")
    await tick(hass, freezer, timedelta(minutes=16))
    issue = repairs.issue_id(init_integration, "restore_failed", "ha/c.bin")
    assert our_issue_ids(hass) == {issue}

    response = await call_action(hass, "restore", key="ha/c.bin")
    assert response["status"] == "restored"
    assert our_issue_ids(hass) == set()


async def test_a_restored_copy_is_downloaded_at_once_when_given_a_destination(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    allowed: Path,
    restores: MotoRestores,
) -> None:
    """Asked first without a destination (the catalog notes the restore running), then,
    once readable, with one: the copy is downloaded in the call, nothing more watched."""
    data = write_seeded(allowed / "d.bin", 2048)
    await call_action(hass, "archive", path=str(allowed / "d.bin"), storage_class="GLACIER")
    (allowed / "d.bin").unlink()
    restores.hold("ha/d.bin")
    await call_action(hass, "restore", key="ha/d.bin", days=1)
    recorded = init_integration.runtime_data.catalog.get("ha/d.bin")
    assert recorded is not None
    assert recorded.restore_state is RestoreState.IN_PROGRESS
    restores.finish()
    completed = async_capture_events(hass, f"{DOMAIN}_restore_completed")

    readable = await call_action(hass, "restore", key="ha/d.bin")
    assert (readable["status"], readable["size"], readable["path"]) == ("restored", 2048, None)
    response = await call_action(hass, "restore", key="ha/d.bin", destination=str(allowed))

    path = str((allowed / "d.bin").resolve())
    assert (response["status"], response["path"], response["size"]) == ("restored", path, 2048)
    assert (allowed / "d.bin").read_bytes() == data
    assert [e.data["path"] for e in completed] == [path]


@pytest.mark.parametrize("upgrade", [False, True], ids=["followed", "upgraded"])
async def test_asking_again_keeps_the_running_restores_record_or_the_new_destination(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    allowed: Path,
    freezer: FrozenDateTimeFactory,
    restores: MotoRestores,
    upgrade: bool,
) -> None:
    """A Bulk restore running for 10 hours asked for again (Bulk: followed; Standard,
    then Expedited: upgraded). Without a destination the first one's stays, with its
    overwrite; with one, it and its overwrite replace it. An upgrade keeps when the
    restore was first asked for and never promises later than the running one did."""
    write_seeded(allowed / "r.bin", 500)
    await call_action(hass, "archive", path=str(allowed / "r.bin"), storage_class="GLACIER")
    (allowed / "r.bin").unlink()
    first_dir = allowed / "first"
    first_dir.mkdir()
    restores.hold("ha/r.bin")
    started = freezer.time_to_freeze.replace(tzinfo=UTC)
    await call_action(
        hass, "restore", key="ha/r.bin", destination=str(first_dir), overwrite=True, tier="Bulk"
    )
    watcher = init_integration.runtime_data.restores
    first = watcher.pending("ha/r.bin")
    assert first is not None
    assert first.ready_by == started + timedelta(hours=12)
    freezer.tick(timedelta(hours=10))

    await call_action(hass, "restore", key="ha/r.bin", tier="Standard" if upgrade else "Bulk")
    kept = watcher.pending("ha/r.bin")
    assert kept is not None
    assert (kept.destination, kept.overwrite) == (first_dir / "r.bin", True)
    assert kept.requested_at == started
    # Standard now would be 15 hours after the start: Bulk's 12 hours still hold.
    assert kept.ready_by == first.ready_by
    assert kept.tier is (RestoreTier.STANDARD if upgrade else RestoreTier.BULK)

    await call_action(
        hass,
        "restore",
        key="ha/r.bin",
        destination=str(allowed),
        tier="Expedited" if upgrade else "Bulk",
    )
    moved = watcher.pending("ha/r.bin")
    assert moved is not None
    assert (moved.destination, moved.overwrite) == ((allowed / "r.bin").resolve(), False)
    assert moved.requested_at == started
    if upgrade:  # Expedited: five minutes from now, sooner than Bulk's promise
        assert moved.ready_by == started + timedelta(hours=10, minutes=5)


async def test_a_restore_gone_at_s3_is_asked_for_afresh(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    allowed: Path,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Followed here, but S3 no longer has the restored copy (it expired unread): asked
    again, it is a new request with its own times."""
    write_seeded(allowed / "n.bin", 500)
    await call_action(hass, "archive", path=str(allowed / "n.bin"), storage_class="GLACIER")
    await call_action(hass, "restore", key="ha/n.bin", tier="Bulk", days=1)
    assert init_integration.runtime_data.restores.pending("ha/n.bin") is not None
    freezer.tick(timedelta(minutes=30))  # no check yet: Bulk restores are checked hourly
    moto_object("ha/n.bin").set_expiry(None)
    now = freezer.time_to_freeze.replace(tzinfo=UTC)

    response = await call_action(hass, "restore", key="ha/n.bin", tier="Bulk", days=1)
    assert response["status"] == "restore_requested"
    again = init_integration.runtime_data.restores.pending("ha/n.bin")
    assert again is not None
    assert (again.requested_at, again.ready_by) == (now, now + timedelta(hours=12))


async def test_faster_tier_upgrades_a_running_restore(
    hass: HomeAssistant,
    allowed: Path,
    hooks: ClientHooks,
    freezer: FrozenDateTimeFactory,
    restores: MotoRestores,
    restore_estimates: list[RestoreEstimate],
) -> None:
    """Expedited asked while Bulk runs: sent to S3, and the watcher checks at its pace."""
    data = write_seeded(allowed / "u.bin", 2000)
    await call_action(hass, "archive", path=str(allowed / "u.bin"), storage_class="GLACIER")
    (allowed / "u.bin").unlink()
    await call_action(hass, "restore", key="ha/u.bin", destination=str(allowed), tier="Bulk")
    restores.hold("ha/u.bin")
    completed = async_capture_events(hass, f"{DOMAIN}_restore_completed")
    now = freezer.time_to_freeze

    slower = await call_action(
        hass, "restore", key="ha/u.bin", destination=str(allowed), tier="Bulk"
    )
    assert slower["status"] == "restore_in_progress"
    assert len(hooks.restore_requests) == 1

    response = await call_action(
        hass, "restore", key="ha/u.bin", destination=str(allowed), tier="Expedited"
    )
    assert response["status"] == "restore_upgraded"
    assert [r["GlacierJobParameters"]["Tier"] for r in hooks.restore_requests] == [
        "Bulk",
        "Expedited",
    ]
    # The upgrade asks for the same days as the running restore.
    assert [r["Days"] for r in hooks.restore_requests] == [1, 1]
    # Following it (Expedited, whose retrieval is billed) asks S3 nothing: only the
    # download is still to pay.
    followed = await call_action(
        hass, "restore", key="ha/u.bin", destination=str(allowed), tier="Expedited"
    )
    assert followed["status"] == "restore_in_progress"
    assert len(hooks.restore_requests) == 2
    assert restore_estimates[-1] == RestoreEstimate(
        requests=Decimal("0.0004") / 1000, egress=Decimal(2000) / GB * Decimal("0.09")
    )
    ready_by = now + timedelta(minutes=5)
    assert response["ready_by"] == ready_by.isoformat(timespec="seconds") + "+00:00"

    restores.finish()
    await tick(hass, freezer, timedelta(minutes=1, seconds=1))
    assert [e.data["key"] for e in completed] == ["ha/u.bin"]
    assert (allowed / "u.bin").read_bytes() == data


async def test_copy_expired_unread_is_requested_again_once(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    allowed: Path,
    hooks: ClientHooks,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Expired before the download: asked again with an event; the second time it fails."""
    data = write_seeded(allowed / "e.bin", 1500)
    await call_action(hass, "archive", path=str(allowed / "e.bin"), storage_class="GLACIER")
    (allowed / "e.bin").unlink()
    await call_action(hass, "restore", key="ha/e.bin", destination=str(allowed), days=2)
    again = async_capture_events(hass, f"{DOMAIN}_restore_requested_again")
    completed = async_capture_events(hass, f"{DOMAIN}_restore_completed")
    failed = async_capture_events(hass, f"{DOMAIN}_restore_failed")

    [first] = init_integration.runtime_data.catalog.pending_restores()
    moto_object("ha/e.bin").set_expiry(None)  # the copy expired while nobody looked
    await tick(hass, freezer, timedelta(minutes=16))
    now = dt_util.utcnow()
    [pending] = init_integration.runtime_data.catalog.pending_restores()
    assert pending.requested_again
    # Asked again now, expected as long after as the first request was (Standard tier).
    assert pending.requested_at == now
    assert pending.ready_by - pending.requested_at == first.ready_by - first.requested_at
    assert pending.ready_by > now
    assert [e.data for e in again] == [
        {
            "config_entry_id": init_integration.entry_id,
            "key": "ha/e.bin",
            "reason": "restore_expired",
            "ready_by": pending.ready_by.isoformat(timespec="seconds"),
        }
    ]
    assert hooks.restore_requests[-1] == {"Days": 2, "GlacierJobParameters": {"Tier": "Standard"}}
    assert failed == completed == []

    await tick(hass, freezer, timedelta(minutes=16))
    assert [e.data["key"] for e in completed] == ["ha/e.bin"]
    assert (allowed / "e.bin").read_bytes() == data

    # A second expiry of the same request fails for good, with a repair issue.
    (allowed / "e.bin").unlink()
    moto_object("ha/e.bin").set_expiry(None)
    response = await call_action(hass, "restore", key="ha/e.bin", destination=str(allowed), days=2)
    assert response["status"] == "restore_requested"
    moto_object("ha/e.bin").set_expiry(None)
    await tick(hass, freezer, timedelta(minutes=16))
    assert len(again) == 2
    moto_object("ha/e.bin").set_expiry(None)
    await tick(hass, freezer, timedelta(minutes=16))
    assert [(e.data["key"], e.data["reason"]) for e in failed] == [("ha/e.bin", "restore_expired")]
    issue = repairs.issue_id(init_integration, "restore_expired", "ha/e.bin")
    assert issue in our_issue_ids(hass)
    assert not (allowed / "e.bin").exists()

    # A restore of the key that succeeds clears it.
    await call_action(hass, "restore", key="ha/e.bin", destination=str(allowed))
    await tick(hass, freezer, timedelta(minutes=16))
    assert issue not in our_issue_ids(hass)
    assert (allowed / "e.bin").read_bytes() == data


# --- 9.2 repair issues of restores ----------------------------------------------------


async def test_failed_restore_raises_a_repair_issue(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    allowed: Path,
    s3: Any,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A restore that fails → repair issue for its key, cleared by a restore that succeeds."""
    data = write_seeded(allowed / "gone.bin", 10)
    await call_action(hass, "archive", path=str(allowed / "gone.bin"), storage_class="GLACIER")
    await call_action(hass, "restore", key="ha/gone.bin", destination=str(allowed / "back.bin"))
    s3.delete_object(Bucket=BUCKET, Key="ha/gone.bin")
    await tick(hass, freezer, timedelta(minutes=16))
    issue = repairs.issue_id(init_integration, "restore_failed", "ha/gone.bin")
    assert issue in our_issue_ids(hass)
    registered = ir.async_get(hass).async_get_issue(DOMAIN, issue)
    assert registered is not None
    assert registered.translation_placeholders == {
        "title": init_integration.title,
        "key": "ha/gone.bin",
        "checks": "10",
    }

    await call_action(hass, "archive", path=str(allowed / "gone.bin"), storage_class="GLACIER")
    await call_action(hass, "restore", key="ha/gone.bin", destination=str(allowed / "back.bin"))
    await tick(hass, freezer, timedelta(minutes=16))
    assert (allowed / "back.bin").read_bytes() == data
    assert issue not in our_issue_ids(hass)


async def test_watcher_gives_up_after_failed_checks(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    allowed: Path,
    hooks: ClientHooks,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Throttled checks back off (doubling); the tenth failure in a row ends the watch."""
    write_seeded(allowed / "t.bin", 10)
    await call_action(hass, "archive", path=str(allowed / "t.bin"), storage_class="GLACIER")
    await call_action(hass, "restore", key="ha/t.bin", tier="Expedited")
    failed = async_capture_events(hass, f"{DOMAIN}_restore_failed")
    heads = ThrottledHeads(hooks)
    await tick(hass, freezer, timedelta(minutes=1, seconds=1))
    assert heads.count == 1
    await tick(hass, freezer, timedelta(minutes=1, seconds=1))
    assert heads.count == 1  # backed off: the next check is 2 minutes later
    await tick(hass, freezer, timedelta(minutes=1))
    assert heads.count == 2
    for failures in range(2, 10):
        assert failed == []
        await tick(hass, freezer, timedelta(minutes=2**failures, seconds=1))
        assert heads.count == failures + 1
    assert [(e.data["key"], e.data["reason"]) for e in failed] == [("ha/t.bin", "checks_failed")]
    issue = repairs.issue_id(init_integration, "restore_checks_failed", "ha/t.bin")
    assert issue in our_issue_ids(hass)
    assert hass.states.get("sensor.demo_archive_ha_pending_restores").state == "0"
    await tick(hass, freezer, timedelta(hours=7))
    assert heads.count == 10


async def test_a_deleted_objects_failed_checks_do_not_count_against_its_next_restore(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    allowed: Path,
    hooks: ClientHooks,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Checks failed, the object was deleted, archived again and asked for again: its
    checks back off from the start (a minute, then two), not from where the old ones were."""
    write_seeded(allowed / "t.bin", 10)
    await call_action(hass, "archive", path=str(allowed / "t.bin"), storage_class="GLACIER")
    await call_action(hass, "restore", key="ha/t.bin", tier="Expedited")
    heads = ThrottledHeads(hooks)
    for minutes in (1, 2, 4):
        await tick(hass, freezer, timedelta(minutes=minutes, seconds=1))
    assert heads.count == 3
    heads.on = False
    await call_action(hass, "delete", key="ha/t.bin")
    await call_action(hass, "archive", path=str(allowed / "t.bin"), storage_class="GLACIER")
    await call_action(hass, "restore", key="ha/t.bin", tier="Expedited")
    heads.on = True

    await tick(hass, freezer, timedelta(minutes=1, seconds=1))
    assert heads.count == 4
    await tick(hass, freezer, timedelta(minutes=2, seconds=1))
    assert heads.count == 5


async def test_a_restore_asked_again_starts_its_failed_checks_anew(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    allowed: Path,
    hooks: ClientHooks,
    freezer: FrozenDateTimeFactory,
    restores: MotoRestores,
) -> None:
    """Nine checks of a restore failed; the user asks for it again with a destination.
    The restore followed from then on has ten checks of its own: the next failure only
    postpones it, and the copy is downloaded once S3 answers."""
    data = write_seeded(allowed / "t.bin", 10)
    await call_action(hass, "archive", path=str(allowed / "t.bin"), storage_class="GLACIER")
    restores.hold("ha/t.bin")
    await call_action(hass, "restore", key="ha/t.bin", tier="Expedited")
    failed = async_capture_events(hass, f"{DOMAIN}_restore_failed")
    heads = ThrottledHeads(hooks)
    for failures in range(9):
        await tick(hass, freezer, timedelta(minutes=2**failures, seconds=1))
    assert heads.count == 9
    heads.on = False
    response = await call_action(
        hass, "restore", key="ha/t.bin", tier="Expedited", destination=str(allowed / "back.bin")
    )
    assert response["status"] == "restore_in_progress"
    heads.on = True

    await tick(hass, freezer, timedelta(minutes=1, seconds=1))
    assert heads.count == 10
    assert failed == []
    heads.on = False
    restores.finish()
    await tick(hass, freezer, timedelta(minutes=2, seconds=1))
    assert failed == []
    assert (allowed / "back.bin").read_bytes() == data


async def test_watcher_refused_a_check_names_the_permission_and_goes_on(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    allowed: Path,
    hooks: ClientHooks,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A check refused by the IAM policy is not a failed restore: the missing action is
    named in a repair issue, the check is retried, and once allowed the restore ends."""
    write_seeded(allowed / "p.bin", 10)
    await call_action(hass, "archive", path=str(allowed / "p.bin"), storage_class="GLACIER")
    await call_action(hass, "restore", key="ha/p.bin", tier="Expedited")
    failed = async_capture_events(hass, f"{DOMAIN}_restore_failed")
    completed = async_capture_events(hass, f"{DOMAIN}_restore_completed")

    def refused(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        return error_response("AccessDenied", 403)

    hooks.on("before-call.s3.HeadObject", refused)
    await tick(hass, freezer, timedelta(minutes=1, seconds=1))
    assert failed == []
    issue = repairs.issue_id(init_integration, "missing_permission", "s3:GetObject")
    assert issue in our_issue_ids(hass)
    assert hass.states.get("sensor.demo_archive_ha_pending_restores").state == "1"

    hooks.remove_all()  # the policy was fixed
    await tick(hass, freezer, timedelta(minutes=2, seconds=1))
    assert [e.data["key"] for e in completed] == ["ha/p.bin"]
    assert failed == []
    assert hass.states.get("sensor.demo_archive_ha_pending_restores").state == "0"


# --- 10.10 restores share the transfer limit ------------------------------------------


async def test_restore_downloads_share_the_transfer_slots(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    allowed: Path,
    freezer: FrozenDateTimeFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Four restores ready at once, two transfer slots: at most two downloads at a time."""
    count = 4
    originals = {}
    for i in range(count):
        originals[i] = write_seeded(allowed / "src" / f"{i}.bin", 1000, seed=i)
        await call_action(
            hass, "archive", path=str(allowed / "src" / f"{i}.bin"), storage_class="GLACIER"
        )
        await call_action(hass, "restore", key=f"ha/{i}.bin", destination=str(allowed), tier="Bulk")

    lock = threading.Condition()
    active = most_active = checks_done = 0
    release = threading.Event()
    real_write = s3_module.write_into_place
    real_state = init_integration.runtime_data.target.restore_state

    def counted_write(*args: Any, **kwargs: Any) -> Any:
        nonlocal active, most_active, entered
        with lock:
            entered += 1
            active += 1
            most_active = max(most_active, active)
            if active > 2:
                release.set()  # a third at once: no need to hold the others any longer
            lock.notify_all()
        try:
            # Held until the test has seen every check finish, so that downloads
            # allowed to overlap do overlap. The timeout only guards against a hang.
            release.wait(30)
            return real_write(*args, **kwargs)
        finally:
            with lock:
                active -= 1

    def counted_state(key: str) -> Any:
        nonlocal checks_done
        try:
            return real_state(key)
        finally:
            with lock:
                checks_done += 1
                lock.notify_all()

    entered = queued = 0

    class CountingSlots(asyncio.Semaphore):
        """The entry's transfer slots, counting who had to queue for one."""

        async def acquire(self) -> bool:
            nonlocal queued
            if self.locked():
                with lock:
                    queued += 1
                    lock.notify_all()
            return await super().acquire()

    init_integration.runtime_data.transfers = CountingSlots(2)
    monkeypatch.setattr(s3_module, "write_into_place", counted_write)
    monkeypatch.setattr(init_integration.runtime_data.target, "restore_state", counted_state)
    completed = async_capture_events(hass, f"{DOMAIN}_restore_completed")

    def wait_for(predicate: Callable[[], bool]) -> bool:
        with lock:
            return lock.wait_for(predicate, timeout=30)

    freezer.tick(timedelta(hours=1, seconds=1))
    async_fire_time_changed(hass)
    # Every ready restore has either started its download or queued for a slot.
    assert await hass.async_add_executor_job(wait_for, lambda: entered + queued == count)
    assert checks_done == count
    release.set()
    await hass.async_block_till_done(wait_background_tasks=True)

    assert most_active == 2
    assert sorted(e.data["key"] for e in completed) == [f"ha/{i}.bin" for i in range(count)]
    for i in range(count):
        assert (allowed / f"{i}.bin").read_bytes() == originals[i]


# --- 10.6 costs the bill will show ----------------------------------------------------


@pytest.mark.freeze_time("2026-11-21 12:00:00+00:00")
async def test_monthly_cost_includes_restored_copies_until_they_expire(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    allowed: Path,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A restored copy is billed at the STANDARD rate on top, until its expiry."""
    size = 1024 * 1024
    write_seeded(allowed / "c.bin", size)
    await call_action(hass, "archive", path=str(allowed / "c.bin"), storage_class="GLACIER")
    coordinator = init_integration.runtime_data.coordinator
    archived_only = coordinator.data.cost.total

    await call_action(hass, "restore", key="ha/c.bin", days=2)  # moto restores at once
    assert coordinator.data.cost.restored_copies == 0  # restoring: no copy yet
    await tick(hass, freezer, timedelta(minutes=16))  # the watcher sees it readable
    copy = Decimal(size) * Decimal("0.023") / GB
    assert coordinator.data.cost.restored_copies == copy
    assert coordinator.data.cost.total == archived_only + copy
    assert coordinator.data.restored_copy_bytes == size

    await tick(hass, freezer, timedelta(days=2))
    await coordinator.async_refresh()
    assert coordinator.data.cost.restored_copies == 0
    assert coordinator.data.cost.total == archived_only


async def test_archive_reports_other_class_and_early_deletion(
    hass: HomeAssistant, allowed: Path, s3: Any, freezer: FrozenDateTimeFactory
) -> None:
    """Same bytes in another class: skipped with both classes, or replaced on overwrite
    with the early deletion charge the replaced object causes."""
    size = 256 * 1024
    write_seeded(allowed / "o.bin", size)
    await call_action(hass, "archive", path=str(allowed / "o.bin"), storage_class="GLACIER_IR")

    response = await call_action(
        hass, "archive", path=str(allowed / "o.bin"), storage_class="STANDARD"
    )
    assert response["archived"] == []
    assert response["skipped"] == [
        {
            "path": str(allowed / "o.bin"),
            "key": "ha/o.bin",
            "reason": "identical_other_class",
            "storage_class": "GLACIER_IR",
            "requested_storage_class": "STANDARD",
        }
    ]
    assert s3.head_object(Bucket=BUCKET, Key="ha/o.bin")["StorageClass"] == "GLACIER_IR"

    freezer.tick(timedelta(days=10))
    response = await call_action(
        hass, "archive", path=str(allowed / "o.bin"), storage_class="STANDARD", overwrite=True
    )
    [item] = response["archived"]
    assert item["storage_class"] == "STANDARD"
    # GLACIER_IR: 90 days minimum, 80 left: 256 KiB * $0.004 * 80 / 30.
    assert item["early_deletion_charge"] == shown_money(size / GB * 0.004 * 80 / 30)
    assert "StorageClass" not in s3.head_object(Bucket=BUCKET, Key="ha/o.bin")  # STANDARD
