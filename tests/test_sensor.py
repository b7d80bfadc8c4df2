"""Sensors after archiving files of known sizes; costs equal hand-computed figures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
import json
from pathlib import Path
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.recorder import Recorder, get_instance, history
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
    snapshot_platform,
)
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)
from syrupy.assertion import SnapshotAssertion

from custom_components.s3_glacier.archive.models import PendingRestore, RestoreTier
from custom_components.s3_glacier.const import DOMAIN

from .conftest import BUCKET

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB

# Hand-computed with FACTS.md (us-east-1; GB = 2^30 bytes):
# GLACIER_IR 100 KiB bills as 128 KiB; 1 MiB as is: (131072 + 1048576) x 0.004 / 2^30
GLACIER_IR_COST = Decimal("0.00000439453125")
# DEEP_ARCHIVE 10 MiB + 32 KiB at 0.00099, plus 8 KiB at STANDARD 0.023:
#   10518528 x 0.00099 / 2^30 = 0.00000969818115234375
#   8192 x 0.023 / 2^30       = 0.00000017547607421875
DEEP_ARCHIVE_COST = Decimal("0.0000098736572265625")
# Deleting everything on the upload day: 90 days of GLACIER_IR (3 months), 180 of
# DEEP_ARCHIVE (6 months), on the class-rate bytes:
#   0.00000439453125 x 3 + 0.00000969818115234375 x 6
EXPOSURE = Decimal("0.0000713726806640625")


@pytest.fixture
async def archived(
    hass: HomeAssistant, init_integration: MockConfigEntry, tmp_path: Path
) -> MockConfigEntry:
    """Archive 100 KiB and 1 MiB to GLACIER_IR and 10 MiB to DEEP_ARCHIVE."""
    hass.config.allowlist_external_dirs = {str(tmp_path.resolve())}
    for name, size, storage_class in (
        ("small.bin", 100 * KIB, "GLACIER_IR"),
        ("one.bin", MIB, "GLACIER_IR"),
        ("ten.bin", 10 * MIB, "DEEP_ARCHIVE"),
    ):
        (tmp_path / name).write_bytes(b"\0" * size)
        await hass.services.async_call(
            DOMAIN,
            "archive",
            {"path": str(tmp_path / name), "storage_class": storage_class},
            blocking=True,
        )
    return init_integration


@pytest.mark.freeze_time("2026-11-21 12:00:00+00:00")
@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_sensor_states(
    hass: HomeAssistant,
    archived: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """Every sensor's state and attributes, right after the archive actions (no poll)."""
    await snapshot_platform(hass, entity_registry, snapshot, archived.entry_id)


@pytest.mark.freeze_time("2026-11-21 12:00:00+00:00")
async def test_cost_and_exposure_are_hand_computed(
    hass: HomeAssistant, archived: MockConfigEntry
) -> None:
    """The cost sensors equal the figures computed by hand from FACTS.md, rounded up.

    Money shows in hundredths of a cent, rounded up: a cost below that reads 0.0001.
    """
    assert Decimal("0.0001") > GLACIER_IR_COST + DEEP_ARCHIVE_COST
    cost = hass.states.get("sensor.demo_archive_ha_estimated_monthly_cost")
    assert cost.state == "0.0001"
    # Text: the frontend would show a number attribute of 0.0001 as 0.
    assert cost.attributes["glacier_ir"] == "$0.0001"
    assert cost.attributes["deep_archive"] == "$0.0001"
    assert "standard" not in cost.attributes  # only classes that hold objects
    assert cost.attributes["price_table_date"] == "2024-09-25"
    exposure = hass.states.get("sensor.demo_archive_ha_early_deletion_exposure")
    assert Decimal("0.0000713726806640625") == EXPOSURE
    assert exposure.state == "0.0001"
    size = hass.states.get("sensor.demo_archive_ha_archived_size")
    # 100 KiB + 11 MiB = 11.09765625 MiB, rounded up to the shown two decimals
    assert size.state == "11.10"
    assert size.attributes["unit_of_measurement"] == "MiB"
    assert size.attributes["bytes"] == 100 * KIB + 11 * MIB
    assert hass.states.get("sensor.demo_archive_ha_archived_objects").state == "3"
    last = hass.states.get("sensor.demo_archive_ha_last_archived")
    assert last.attributes["key"] == "ha/ten.bin"
    assert last.attributes["size"] == "10 MiB"
    assert last.attributes["storage_class"] == "deep_archive"


async def test_small_archive_never_reads_zero(
    hass: HomeAssistant, init_integration: MockConfigEntry, tmp_path: Path
) -> None:
    """One 43-byte file: its size and cost read 0.01 MiB and $0.0001, not zero."""
    hass.config.allowlist_external_dirs = {str(tmp_path.resolve())}
    (tmp_path / "tiny.txt").write_bytes(b"t" * 43)
    response = await hass.services.async_call(
        DOMAIN,
        "archive",
        {"path": str(tmp_path / "tiny.txt"), "storage_class": "DEEP_ARCHIVE"},
        blocking=True,
        return_response=True,
    )
    assert response is not None
    # (43 + 32 KiB) x 0.00099 / 2^30 + 8 KiB x 0.023 / 2^30 = 2.05e-7: printed plainly
    assert response["archived"][0]["monthly_cost"] == 0.0001
    assert "e-" not in json.dumps(response)
    size = hass.states.get("sensor.demo_archive_ha_archived_size")
    assert (size.state, size.attributes["unit_of_measurement"]) == ("0.01", "MiB")
    assert hass.states.get("sensor.demo_archive_ha_estimated_monthly_cost").state == "0.0001"
    assert hass.states.get("sensor.demo_archive_ha_last_archived").attributes["size"] == "43 B"


async def test_pending_restores_attribute_is_capped_and_not_recorded(
    recorder_mock: Recorder,
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
) -> None:
    """130 pending restores: the attribute lists the 20 soonest, counts the rest, unrecorded."""
    catalog = init_integration.runtime_data.catalog
    now = datetime(2026, 11, 21, 12, 0, 0, 123456, tzinfo=UTC)
    restores = [
        PendingRestore(
            key=f"ha/{n:03}.bin",
            tier=RestoreTier.BULK,
            days=1,
            requested_at=now,
            # Written in reverse so that the order must come from ready_by.
            ready_by=now + timedelta(minutes=130 - n),
        )
        for n in range(130)
    ]
    for restore in restores:
        await hass.async_add_executor_job(catalog.add_pending_restore, restore)
    await init_integration.runtime_data.coordinator.async_catalog_changed()

    state = hass.states.get("sensor.demo_archive_ha_pending_restores")
    assert state.state == "130"
    assert "unit_of_measurement" not in state.attributes
    listed = state.attributes["restores"]
    assert len(listed) == 20
    # Local time (the test instance's time zone is US/Pacific), to the minute.
    assert hass.config.time_zone == "US/Pacific"
    assert listed[0] == "ha/129.bin (Bulk, ready by 2026-11-21 04:01)"
    assert [r.split(" ")[0] for r in listed] == [f"ha/{n:03}.bin" for n in range(129, 109, -1)]
    assert state.attributes["more_restores"] == 110

    await async_wait_recording_done(hass)
    recorded = await get_instance(hass).async_add_executor_job(
        partial(
            history.get_significant_states,
            hass,
            now - timedelta(hours=1),
            entity_ids=[state.entity_id],
            significant_changes_only=False,
        )
    )
    last = recorded[state.entity_id][-1]
    assert last.state == "130"
    assert "restores" not in last.attributes
    assert "more_restores" not in last.attributes
    assert last.attributes["friendly_name"] == state.attributes["friendly_name"]


async def test_exposure_falls_with_time(
    hass: HomeAssistant, archived: MockConfigEntry, freezer: FrozenDateTimeFactory
) -> None:
    """Past 90 days only DEEP_ARCHIVE is exposed; the coordinator's poll recomputes it."""
    freezer.tick(timedelta(days=120))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    exposure = hass.states.get("sensor.demo_archive_ha_early_deletion_exposure").state
    # 60 of 180 days left: 2 months of the DEEP_ARCHIVE class-rate bytes, rounded up
    assert Decimal("0.00000969818115234375") * 2 < Decimal("0.0001")
    assert exposure == "0.0001"


async def test_other_region_falls_back_to_us_east_1(
    hass: HomeAssistant, aws: None, mock_config_entry: MockConfigEntry
) -> None:
    """A region without a price table is priced as us-east-1, and says so."""
    mock_config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        mock_config_entry, data={**mock_config_entry.data, "region": "sa-east-1"}
    )
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    attributes = hass.states.get("sensor.demo_archive_ha_estimated_monthly_cost").attributes
    assert attributes["priced_region"] == "us-east-1"
    assert attributes["region_fallback"] is True


async def test_setup_reconciles_an_empty_catalog(
    hass: HomeAssistant, aws: None, s3: Any, mock_config_entry: MockConfigEntry
) -> None:
    """Objects already in the bucket show up after setup, in the background."""
    s3.put_object(Bucket=BUCKET, Key="ha/old.bin", Body=b"x" * 2000, StorageClass="GLACIER")
    s3.put_object(Bucket=BUCKET, Key="other/skip.bin", Body=b"x")
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert hass.states.get("sensor.demo_archive_ha_archived_objects").state == "1"
    assert hass.states.get("sensor.demo_archive_ha_size_in_glacier_flexible_retrieval") is None


async def test_daily_reconcile(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    s3: Any,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A reconcile runs once the interval (24 h by default) has passed."""
    s3.put_object(Bucket=BUCKET, Key="ha/late.bin", Body=b"x")
    freezer.tick(timedelta(hours=1))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert hass.states.get("sensor.demo_archive_ha_archived_objects").state == "0"
    freezer.tick(timedelta(hours=23, minutes=1))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert hass.states.get("sensor.demo_archive_ha_archived_objects").state == "1"


async def test_sizes_registered_in_gib_now_show_mib(
    hass: HomeAssistant,
    aws: None,
    mock_config_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
) -> None:
    """A size sensor registered when GiB was suggested shows MiB; a unit the user chose stays."""
    mock_config_entry.add_to_hass(hass)
    entity_ids = {}
    for key in ("archived_size", "size_glacier_ir"):
        entity = entity_registry.async_get_or_create(
            "sensor",
            DOMAIN,
            f"{mock_config_entry.entry_id}_{key}",
            config_entry=mock_config_entry,
            suggested_object_id=f"demo_archive_ha_{key}",
        )
        entity_registry.async_update_entity_options(
            entity.entity_id, "sensor.private", {"suggested_unit_of_measurement": "GiB"}
        )
        entity_ids[key] = entity.entity_id
    entity_registry.async_update_entity_options(
        entity_ids["size_glacier_ir"], "sensor", {"unit_of_measurement": "GiB"}
    )
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)

    size = hass.states.get(entity_ids["archived_size"])
    assert size.attributes["unit_of_measurement"] == "MiB"
    chosen = entity_registry.async_get(entity_ids["size_glacier_ir"])
    assert chosen.options["sensor"]["unit_of_measurement"] == "GiB"
    assert chosen.options["sensor.private"]["suggested_unit_of_measurement"] == "GiB"
