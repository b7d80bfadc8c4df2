"""The export_history action, with the harness's recorder (SQLite) against moto in process.

States are written at known times with ``freezer``; what the bucket holds is read
back, decompressed and compared row by row.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from botocore.exceptions import EndpointConnectionError
from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.recorder import Recorder
from homeassistant.components.recorder.models import StatisticMeanType
from homeassistant.components.recorder.statistics import async_import_statistics
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)

from custom_components.s3_glacier.archive.s3 import S3Target
from custom_components.s3_glacier.const import DOMAIN

from .conftest import BUCKET
from .history_rows import HEADER, bucket_keys, export_rows, record_state

pytestmark = pytest.mark.usefixtures("recorder_mock")

STATES_KEY = "ha/history/states/2030/01/15.csv.gz"
STATISTICS_KEY = "ha/history/statistics/2030/01/15.csv.gz"


@pytest.fixture
def recorder_config() -> dict[str, Any]:
    """The recorder excludes one entity, as a user's configuration may."""
    return {"exclude": {"entities": ["sensor.secret"]}}


def _local(day: int, hour: int = 0) -> datetime:
    """A local time in January 2030 (no daylight saving change around it)."""
    return datetime(2030, 1, day, hour, tzinfo=dt_util.get_default_time_zone())


def _utc(moment: datetime) -> str:
    return dt_util.as_utc(moment).isoformat(timespec="microseconds")


@pytest.fixture
async def day_recorded(
    hass: HomeAssistant,
    recorder_mock: Recorder,
    freezer: FrozenDateTimeFactory,
    init_integration: MockConfigEntry,
) -> None:
    """States around 15 January 2030 (local), then the clock at 01:00 on the 16th."""
    await record_state(hass, freezer, _local(14, 23), "sensor.a", "0")
    await record_state(hass, freezer, _local(15, 0), "sensor.a", "1")
    await record_state(hass, freezer, _local(15, 6), "sensor.a", "2", {"unit_of_measurement": "W"})
    await record_state(
        hass, freezer, _local(15, 12), "sensor.b", 'on, "really"', {"b": 1, "a": "é"}
    )
    await record_state(hass, freezer, _local(15, 13), "sensor.secret", "hidden")
    # An attribute change only: last_changed stays at 06:00.
    await record_state(
        hass, freezer, _local(15, 18), "sensor.a", "2", {"unit_of_measurement": "kW"}
    )
    await record_state(hass, freezer, _local(16, 0), "sensor.a", "3")
    freezer.move_to(_local(16, 1))


async def _export(hass: HomeAssistant, **data: Any) -> dict[str, Any]:
    response = await hass.services.async_call(
        DOMAIN, "export_history", data, blocking=True, return_response=True
    )
    assert isinstance(response, dict)
    return response


def _expected_states() -> list[list[str]]:
    """The rows of the 15th in time order (built in a test: Home Assistant's time zone)."""
    return [
        HEADER,
        ["sensor.a", "1", _utc(_local(15, 0)), _utc(_local(15, 0)), "{}"],
        ["sensor.a", "2", _utc(_local(15, 6)), _utc(_local(15, 6)), '{"unit_of_measurement":"W"}'],
        ["sensor.b", 'on, "really"', _utc(_local(15, 12)), _utc(_local(15, 12)), '{"a":"é","b":1}'],
        ["sensor.a", "2", _utc(_local(15, 6)), _utc(_local(15, 18)), '{"unit_of_measurement":"kW"}'],  # noqa: E501
    ]  # fmt: skip


@pytest.mark.usefixtures("day_recorded")
async def test_export_yesterday_row_by_row(hass: HomeAssistant, s3: Any) -> None:
    """Yesterday by default: every recorded state of the day, midnight included, in order."""
    response = await _export(hass, entity_id=["sensor.a", "sensor.b"], statistics=False)

    assert export_rows(s3, STATES_KEY) == _expected_states()
    head = s3.head_object(Bucket=BUCKET, Key=STATES_KEY)
    assert head["StorageClass"] == "GLACIER_IR"
    [item] = response["exported"]
    assert item["key"] == STATES_KEY
    assert item["rows"] == 4
    assert item["bytes"] == head["ContentLength"]
    assert item["sha256"] == head["Metadata"]["sha256"]
    assert item["monthly_cost"] == 0.0001
    assert response["skipped"] == []
    assert response["start"] == dt_util.as_utc(_local(15)).isoformat()
    # An ordinary archived object: the catalog holds it.
    catalog = hass.config_entries.async_entries(DOMAIN)[0].runtime_data.catalog
    stored = await hass.async_add_executor_job(catalog.get, STATES_KEY)
    assert stored is not None
    assert stored.sha256 == item["sha256"]
    # No temporary file is left in the configuration directory.
    assert not list(Path(hass.config.config_dir).glob(".s3_glacier_export_*"))


@pytest.mark.usefixtures("day_recorded")
async def test_export_again_is_skipped_identical(
    hass: HomeAssistant, s3: Any, freezer: FrozenDateTimeFactory
) -> None:
    """The same day again, later: the same bytes, so no new object and nothing billed twice."""
    await _export(hass, entity_id=["sensor.a", "sensor.b"], statistics=False)
    before = s3.head_object(Bucket=BUCKET, Key=STATES_KEY)
    freezer.tick(timedelta(hours=5))

    response = await _export(hass, entity_id=["sensor.a", "sensor.b"], statistics=False)

    assert response["exported"] == []
    assert response["skipped"] == [{"key": STATES_KEY, "reason": "identical"}]
    after = s3.head_object(Bucket=BUCKET, Key=STATES_KEY)
    assert after["LastModified"] == before["LastModified"]
    assert after["ETag"] == before["ETag"]


@pytest.mark.usefixtures("day_recorded")
async def test_other_rows_for_an_exported_day_never_replace_it(
    hass: HomeAssistant, s3: Any
) -> None:
    """A day exported with other entities holds other bytes: refused, the first one kept."""
    await _export(hass, entity_id=["sensor.a"], statistics=False)
    before = s3.head_object(Bucket=BUCKET, Key=STATES_KEY)

    with pytest.raises(HomeAssistantError) as err:
        await _export(hass, entity_id=["sensor.a", "sensor.b"], statistics=False)

    assert err.value.translation_key == "export_day_differs"
    assert s3.head_object(Bucket=BUCKET, Key=STATES_KEY)["ETag"] == before["ETag"]
    assert export_rows(s3, STATES_KEY) == [
        row for row in _expected_states() if row[0] != "sensor.b"
    ]


@pytest.mark.usefixtures("day_recorded")
async def test_default_entities_respect_the_recorder_exclude(hass: HomeAssistant, s3: Any) -> None:
    """Without entity_id: every recorded entity, none the recorder excludes."""
    await _export(hass, statistics=False)

    rows = export_rows(s3, STATES_KEY)
    assert rows[0] == HEADER
    ours = [row for row in rows[1:] if row[0] in {"sensor.a", "sensor.b", "sensor.secret"}]
    assert ours == _expected_states()[1:]
    assert rows[1:] == sorted(rows[1:], key=lambda row: (row[3], row[0]))


@pytest.mark.usefixtures("day_recorded")
async def test_entity_excluded_later_is_not_exported(
    hass: HomeAssistant, recorder_mock: Recorder, s3: Any
) -> None:
    """An entity excluded after it was recorded: its old rows stay out of the export too."""
    excluded = {"sensor.secret", "sensor.b"}
    # What the recorder's configuration gives after a restart with sensor.b excluded.
    recorder_mock.entity_filter = lambda entity_id: entity_id not in excluded

    await _export(hass, statistics=False)

    rows = export_rows(s3, STATES_KEY)
    expected = [row for row in _expected_states()[1:] if row[0] != "sensor.b"]
    assert [row for row in rows[1:] if row[0].startswith("sensor.")] == expected


@pytest.mark.usefixtures("day_recorded")
async def test_export_statistics(hass: HomeAssistant, s3: Any) -> None:
    """Hourly statistics of the day, with their unit, beside the states."""
    hass.states.async_set("sensor.energy", "12")
    async_import_statistics(
        hass,
        {
            "mean_type": StatisticMeanType.NONE,
            "has_sum": True,
            "name": "Energy",
            "source": "recorder",
            "statistic_id": "sensor.energy",
            "unit_class": "energy",
            "unit_of_measurement": "kWh",
        },
        [
            {"start": dt_util.as_utc(_local(14, 23)), "state": 0.5, "sum": 0.5},
            {"start": dt_util.as_utc(_local(15, 0)), "state": 1.0, "sum": 1.5},
            {"start": dt_util.as_utc(_local(15, 1)), "state": 2.25, "sum": 3.75},
        ],
    )
    await async_wait_recording_done(hass)

    expected = [
        ["statistic_id", "start", "mean", "min", "max", "last_reset", "state", "sum", "unit"],
        ["sensor.energy", _utc(_local(15, 0)), "", "", "", "", "1.0", "1.5", "kWh"],
        ["sensor.energy", _utc(_local(15, 1)), "", "", "", "", "2.25", "3.75", "kWh"],
    ]

    # Every statistic (the default), then only this entity's, under another prefix.
    response = await _export(hass)
    chosen = await _export(hass, entity_id=["sensor.energy"], key="ha/energy/")

    assert [item["key"] for item in response["exported"]] == [STATES_KEY, STATISTICS_KEY]
    assert export_rows(s3, STATISTICS_KEY) == expected
    assert [item["key"] for item in chosen["exported"]] == [
        "ha/energy/states/2030/01/15.csv.gz",
        "ha/energy/statistics/2030/01/15.csv.gz",
    ]
    assert export_rows(s3, "ha/energy/statistics/2030/01/15.csv.gz") == expected
    # The states of the day: sensor.energy was set after it, so only the header.
    assert export_rows(s3, "ha/energy/states/2030/01/15.csv.gz") == [HEADER]


@pytest.mark.usefixtures("day_recorded")
@pytest.mark.parametrize(
    ("data", "error"),
    [
        (
            {"start": "2030-01-15 12:00:00", "end": "2030-01-15 06:00:00"},
            "export_end_before_start",
        ),
        ({"start": "2030-01-15 00:00:00", "end": "2030-01-17 00:00:00"}, "export_period_in_future"),
        ({"entity_id": ["sensor.nowhere"]}, "export_unknown_entity"),
        ({"entity_id": ["sensor.secret"]}, "export_entity_not_recorded"),
        (
            {"start": "2020-01-01 00:00:00", "end": "2020-01-02 00:00:00"},
            "export_period_not_recorded",
        ),
        ({"storage_class": "tape"}, "invalid_storage_class"),
        ({"key": "elsewhere/"}, "key_outside_prefix"),
    ],
)  # fmt: skip
async def test_bad_input_uploads_nothing(
    hass: HomeAssistant, s3: Any, data: dict[str, Any], error: str
) -> None:
    """Each bad value is a translated validation error, and the bucket stays empty."""
    with pytest.raises(ServiceValidationError) as err:
        await _export(hass, **data)
    assert err.value.translation_key == error
    assert bucket_keys(s3) == []


@pytest.mark.usefixtures("day_recorded")
async def test_failed_upload_leaves_no_object_and_no_catalog_row(
    hass: HomeAssistant, s3: Any
) -> None:
    """The PUT never reaches the service: nothing stored, nothing recorded, no temp file."""
    entry = hass.config_entries.async_entries(DOMAIN)[0]
    target = entry.runtime_data.target
    assert isinstance(target, S3Target)

    def _unreachable(**kwargs: Any) -> None:
        raise EndpointConnectionError(endpoint_url="https://s3.example")

    target._client.meta.events.register("before-call.s3.PutObject", _unreachable)
    with pytest.raises(HomeAssistantError) as err:
        await _export(hass, entity_id=["sensor.a"], statistics=False)

    assert err.value.translation_key == "cannot_connect"
    assert bucket_keys(s3) == []
    assert await hass.async_add_executor_job(entry.runtime_data.catalog.get, STATES_KEY) is None
    assert not list(Path(hass.config.config_dir).glob(".s3_glacier_export_*"))


async def test_vault_entry_is_refused(
    hass: HomeAssistant, s3: Any, loaded_vault: MockConfigEntry
) -> None:
    """History goes to buckets only: a vault entry gets a translated error."""
    with pytest.raises(ServiceValidationError) as err:
        await _export(hass, config_entry_id=loaded_vault.entry_id)
    assert err.value.translation_key == "export_needs_bucket"
    assert bucket_keys(s3) == []


async def test_day_with_a_daylight_saving_change(
    hass: HomeAssistant,
    recorder_mock: Recorder,
    freezer: FrozenDateTimeFactory,
    init_integration: MockConfigEntry,
    s3: Any,
) -> None:
    """Yesterday is 23 hours long when the clocks went forward: local midnight to midnight."""
    zone = dt_util.get_default_time_zone()
    assert str(zone) == "US/Pacific"  # clocks go forward on 10 March 2030
    march = [datetime(2030, 3, day, hour, minute, tzinfo=zone) for day, hour, minute in
             ((9, 23, 59), (10, 0, 0), (10, 23, 30), (11, 0, 0))]  # fmt: skip
    for n, moment in enumerate(march):
        await record_state(hass, freezer, moment, "sensor.a", str(n))
    freezer.move_to(datetime(2030, 3, 11, 1, tzinfo=zone))

    response = await _export(hass, entity_id=["sensor.a"], statistics=False)

    key = "ha/history/states/2030/03/10.csv.gz"
    assert response["start"] == "2030-03-10T08:00:00+00:00"
    assert response["end"] == "2030-03-11T07:00:00+00:00"
    assert [row[:2] for row in export_rows(s3, key)] == [
        ["entity_id", "state"],
        ["sensor.a", "1"],
        ["sensor.a", "2"],
    ]


async def test_leftovers_of_an_interrupted_export_are_removed_at_start(
    hass: HomeAssistant, aws: None, mock_config_entry: MockConfigEntry
) -> None:
    """A crash or a kill mid-export leaves a hidden temporary file in the configuration
    directory; the next start removes it, and nothing else."""
    config = Path(hass.config.config_dir)
    leftover = config / ".s3_glacier_export_k2j4.csv.gz"
    leftover.write_bytes(b"\x1f\x8b half a day")
    kept = config / "s3_glacier_export_notes.csv.gz"
    kept.write_bytes(b"the user's own file")
    mock_config_entry.add_to_hass(hass)

    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()

    assert not leftover.exists()
    assert kept.read_bytes() == b"the user's own file"
    assert await hass.config_entries.async_unload(mock_config_entry.entry_id)
