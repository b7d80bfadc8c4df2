"""The daily history export, with the harness's recorder (SQLite) against moto in process.

States are written at known times with ``freezer``; the option is switched through the
options flow; nights pass with ``async_fire_time_changed``; a restart is an unload and
a setup with the clock moved on. What the bucket holds is decompressed and compared.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
import threading
from typing import Any

from botocore.exceptions import EndpointConnectionError
from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.recorder import Recorder
from homeassistant.const import STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_purge_done,
    async_wait_recording_done,
)

from custom_components.s3_glacier import export as export_module, export_schedule
from custom_components.s3_glacier.archive.s3 import S3Target
from custom_components.s3_glacier.const import CONF_DAILY_HISTORY_EXPORT, DOMAIN
from custom_components.s3_glacier.repairs import issue_id

from .helpers import set_up, unload
from .history_rows import HEADER, bucket_keys, export_rows, record_state
from .moto_iam import Moto, moto_bucket_policy

pytestmark = pytest.mark.usefixtures("recorder_mock")

SENSOR = "sensor.demo_archive_ha_history_days_to_export"
OURS = {"sensor.a", "sensor.b"}


def _at(day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A local time in January 2030 (no daylight saving change around it)."""
    return datetime(2030, 1, day, hour, minute, tzinfo=dt_util.get_default_time_zone())


def _key(day: int, kind: str = "states") -> str:
    return f"ha/history/{kind}/2030/01/{day:02d}.csv.gz"


def _row(entity_id: str, state: str, when: datetime) -> list[str]:
    moment = dt_util.as_utc(when).isoformat(timespec="microseconds")
    return [entity_id, state, moment, moment, "{}"]


def _our_rows(s3: Any, key: str) -> list[list[str]]:
    """The header and the rows of the test's own entities (the entry's sensors record too)."""
    rows = export_rows(s3, key)
    assert rows[0] == HEADER
    return [rows[0], *(row for row in rows[1:] if row[0] in OURS)]


def _day_keys(s3: Any) -> list[str]:
    return sorted(key for key in bucket_keys(s3) if key.startswith("ha/history/"))


async def _switch(hass: HomeAssistant, entry: MockConfigEntry, on: bool) -> None:
    """Switch the daily export through the options flow, as a user does."""
    # What the recorder still holds decides where the export starts: let it commit.
    await async_wait_recording_done(hass)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_DAILY_HISTORY_EXPORT: on}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options[CONF_DAILY_HISTORY_EXPORT] is on
    await hass.async_block_till_done(wait_background_tasks=True)


async def _switched_on(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, entry: MockConfigEntry
) -> None:
    """At noon on the 15th, switch the daily export on (it exports the 14th at once)."""
    freezer.move_to(_at(15, 12))
    await _switch(hass, entry, True)


def _s3_unreachable(entry: MockConfigEntry) -> Callable[[], None]:
    """Make every upload of ``entry`` fail as an unreachable S3 does; return the undo."""
    target = entry.runtime_data.target
    assert isinstance(target, S3Target)

    def unreachable(**kwargs: Any) -> None:
        raise EndpointConnectionError(endpoint_url="https://s3.example")

    events = target._client.meta.events
    events.register("before-call.s3.PutObject", unreachable)
    return lambda: events.unregister("before-call.s3.PutObject", unreachable)


async def _night(hass: HomeAssistant, freezer: FrozenDateTimeFactory, when: datetime) -> None:
    freezer.move_to(when)
    async_fire_time_changed(hass, when)
    await hass.async_block_till_done(wait_background_tasks=True)


async def _restart(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, entry: MockConfigEntry, when: datetime
) -> None:
    """Set the entry up again at ``when``, as a start of Home Assistant does."""
    freezer.move_to(when)
    await set_up(hass, entry)


def _progress(hass: HomeAssistant) -> tuple[str, str | None]:
    state = hass.states.get(SENSOR)
    assert state is not None
    return state.state, state.attributes.get("last_exported_day")


async def test_switched_on_exports_yesterday_then_each_night(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    init_integration: MockConfigEntry,
    s3: Any,
) -> None:
    """Switched on: yesterday at once; then each night after 00:20 the day before."""
    await record_state(hass, freezer, _at(14, 9), "sensor.a", "0")
    await record_state(hass, freezer, _at(15, 0), "sensor.a", "1")
    await record_state(hass, freezer, _at(15, 6), "sensor.b", "on")
    freezer.move_to(_at(15, 12))
    assert _progress(hass)[0] == STATE_UNKNOWN

    await _switch(hass, init_integration, True)

    assert _day_keys(s3) == [_key(14), _key(14, "statistics")]
    assert _our_rows(s3, _key(14)) == [HEADER, _row("sensor.a", "0", _at(14, 9))]
    assert _progress(hass) == ("0", "2030-01-14")
    head = s3.head_object(Bucket="demo-archive", Key=_key(14))
    assert head["StorageClass"] == "GLACIER_IR"

    await record_state(hass, freezer, _at(15, 23, 59), "sensor.a", "2")
    await record_state(hass, freezer, _at(16, 0), "sensor.b", "off")
    # Past midnight but before the export's time: the 15th waits.
    await _night(hass, freezer, _at(16, 0, 10))
    assert _day_keys(s3) == [_key(14), _key(14, "statistics")]

    await _night(hass, freezer, _at(16, 0, 20))

    assert _day_keys(s3) == sorted(
        [_key(14), _key(14, "statistics"), _key(15), _key(15, "statistics")]
    )
    assert _our_rows(s3, _key(15)) == [
        HEADER,
        _row("sensor.a", "1", _at(15, 0)),
        _row("sensor.b", "on", _at(15, 6)),
        _row("sensor.a", "2", _at(15, 23, 59)),
    ]
    # Statistics in the bucket are like any export: a header, then hourly rows.
    assert export_rows(s3, _key(15, "statistics"))[0][:2] == ["statistic_id", "start"]
    assert _progress(hass) == ("0", "2030-01-15")
    # Ordinary archived objects: the catalog holds them.
    catalog = init_integration.runtime_data.catalog
    assert await hass.async_add_executor_job(catalog.get, _key(15)) is not None
    assert not list(Path(hass.config.config_dir).glob(".s3_glacier_export_*"))


async def test_days_missed_while_off_are_caught_up_at_start(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    init_integration: MockConfigEntry,
    s3: Any,
) -> None:
    """Home Assistant off for three nights: the next start exports them, oldest first."""
    await _switched_on(hass, freezer, init_integration)
    await unload(hass, init_integration)
    for day in (15, 16, 17):
        await record_state(hass, freezer, _at(day, 18), "sensor.a", str(day))
    archived: list[str] = []
    hass.bus.async_listen(f"{DOMAIN}_archived", lambda event: archived.append(event.data["key"]))

    await _restart(hass, freezer, init_integration, _at(18, 8))

    states = [key for key in archived if "/states/" in key]
    assert states == [_key(15), _key(16), _key(17)]
    for day in (15, 16, 17):
        assert _our_rows(s3, _key(day)) == [HEADER, _row("sensor.a", str(day), _at(day, 18))]
        assert _key(day, "statistics") in bucket_keys(s3)
    assert _progress(hass) == ("0", "2030-01-17")
    assert not ir.async_get(hass).issues


async def test_purged_days_raise_the_repair_issue(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    recorder_mock: Recorder,
    init_integration: MockConfigEntry,
    s3: Any,
) -> None:
    """Days the recorder purged before the start are named in an issue; the rest exported."""
    await _switched_on(hass, freezer, init_integration)
    await unload(hass, init_integration)
    for day in range(15, 21):
        await record_state(hass, freezer, _at(day, 9), "sensor.a", str(day))
    # Off until the 21st; the recorder (keeping 3 days) purged at 08:00 meanwhile.
    freezer.move_to(_at(21, 8))
    await hass.services.async_call(
        "recorder", "purge", {"keep_days": 3, "repack": False}, blocking=True
    )
    await async_wait_purge_done(hass)

    await _restart(hass, freezer, init_integration, _at(21, 8, 30))

    # The 18th lost its first hours to the purge: it is lost as a whole.
    assert [key for key in _day_keys(s3) if "/states/" in key] == [
        _key(14),
        _key(19),
        _key(20),
    ]
    assert _our_rows(s3, _key(19)) == [HEADER, _row("sensor.a", "19", _at(19, 9))]
    issue = ir.async_get(hass).async_get_issue(
        DOMAIN, issue_id(init_integration, "history_days_lost")
    )
    assert issue is not None
    assert issue.translation_key == "history_days_lost"
    assert issue.translation_placeholders == {
        "title": "demo-archive/ha",
        "count": "4",
        "first": "2030-01-15",
        "last": "2030-01-18",
        "keep_days": str(recorder_mock.keep_days),
    }
    assert _progress(hass) == ("0", "2030-01-20")

    # The issue is not persistent: after a restart (the registry forgot it) it is back.
    await unload(hass, init_integration)
    ir.async_delete_issue(hass, DOMAIN, issue_id(init_integration, "history_days_lost"))
    await _restart(hass, freezer, init_integration, _at(21, 9))
    again = ir.async_get(hass).async_get_issue(
        DOMAIN, issue_id(init_integration, "history_days_lost")
    )
    assert again is not None
    assert again.translation_placeholders == issue.translation_placeholders

    # Switched off: the issue goes, and switched on again it starts afresh.
    await _switch(hass, init_integration, False)
    assert not ir.async_get(hass).issues
    assert _progress(hass)[0] == STATE_UNKNOWN


async def test_short_keep_days_warns_before_a_day_is_lost(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    recorder_mock: Recorder,
    init_integration: MockConfigEntry,
    s3: Any,
) -> None:
    """purge_keep_days of 2 leaves one night to retry: a warning while the export is on."""
    recorder_mock.keep_days = 2
    freezer.move_to(_at(15, 12))

    await _switch(hass, init_integration, True)

    issue = ir.async_get(hass).async_get_issue(
        DOMAIN, issue_id(init_integration, "history_keep_days_short")
    )
    assert issue is not None
    assert issue.severity is ir.IssueSeverity.WARNING
    assert issue.translation_placeholders == {
        "title": "demo-archive/ha",
        "keep_days": "2",
        "min_keep_days": "3",
    }
    # The recorder keeps enough again (a restart with a new configuration).
    recorder_mock.keep_days = 10
    await unload(hass, init_integration)
    await _restart(hass, freezer, init_integration, _at(15, 13))
    assert not ir.async_get(hass).issues


async def test_switched_off_exports_nothing(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    init_integration: MockConfigEntry,
    s3: Any,
) -> None:
    """The option is off by default: nights and starts pass without an export."""
    assert CONF_DAILY_HISTORY_EXPORT not in init_integration.options
    await record_state(hass, freezer, _at(15, 6), "sensor.a", "1")
    await _night(hass, freezer, _at(16, 0, 20))
    await unload(hass, init_integration)
    await _restart(hass, freezer, init_integration, _at(18, 8))
    await _night(hass, freezer, _at(19, 0, 20))

    assert _day_keys(s3) == []
    assert _progress(hass)[0] == STATE_UNKNOWN


async def test_failed_night_is_retried_the_next_night(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    init_integration: MockConfigEntry,
    s3: Any,
) -> None:
    """S3 unreachable at night: nothing stored, the day waits, the next night sends both."""
    await _switched_on(hass, freezer, init_integration)
    await record_state(hass, freezer, _at(15, 18), "sensor.a", "15")
    await record_state(hass, freezer, _at(16, 18), "sensor.a", "16")
    reachable_again = _s3_unreachable(init_integration)
    await _night(hass, freezer, _at(16, 0, 20))

    assert _day_keys(s3) == [_key(14), _key(14, "statistics")]
    catalog = init_integration.runtime_data.catalog
    assert await hass.async_add_executor_job(catalog.get, _key(15)) is None
    assert not list(Path(hass.config.config_dir).glob(".s3_glacier_export_*"))
    assert _progress(hass) == ("1", "2030-01-14")

    reachable_again()
    await _night(hass, freezer, _at(17, 0, 20))

    assert _our_rows(s3, _key(15)) == [HEADER, _row("sensor.a", "15", _at(15, 18))]
    assert _our_rows(s3, _key(16)) == [HEADER, _row("sensor.a", "16", _at(16, 18))]
    assert _progress(hass) == ("0", "2030-01-16")


async def test_failed_day_is_retried_at_start(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    init_integration: MockConfigEntry,
    s3: Any,
) -> None:
    """A night that failed is tried again when Home Assistant starts."""
    await _switched_on(hass, freezer, init_integration)
    await record_state(hass, freezer, _at(15, 18), "sensor.a", "15")
    _s3_unreachable(init_integration)
    await _night(hass, freezer, _at(16, 0, 20))
    assert _key(15) not in bucket_keys(s3)
    await unload(hass, init_integration)

    await _restart(hass, freezer, init_integration, _at(16, 9))

    assert _our_rows(s3, _key(15)) == [HEADER, _row("sensor.a", "15", _at(15, 18))]
    assert _progress(hass) == ("0", "2030-01-15")


async def test_a_day_exported_otherwise_is_kept_and_passed(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    init_integration: MockConfigEntry,
    s3: Any,
) -> None:
    """The action exported a few entities of the day already: kept, and the night goes on."""
    await _switched_on(hass, freezer, init_integration)
    await record_state(hass, freezer, _at(15, 18), "sensor.a", "15")
    await record_state(hass, freezer, _at(15, 19), "sensor.b", "on")
    freezer.move_to(_at(16, 0, 5))
    await hass.services.async_call(
        DOMAIN,
        "export_history",
        {"entity_id": ["sensor.b"], "statistics": False},
        blocking=True,
        return_response=True,
    )
    before = s3.head_object(Bucket="demo-archive", Key=_key(15))

    await _night(hass, freezer, _at(16, 0, 20))

    assert s3.head_object(Bucket="demo-archive", Key=_key(15))["ETag"] == before["ETag"]
    assert export_rows(s3, _key(15))[1:] == [_row("sensor.b", "on", _at(15, 19))]
    assert _key(15, "statistics") in bucket_keys(s3)
    assert _progress(hass) == ("0", "2030-01-15")


async def test_unload_during_a_catch_up(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    monkeypatch: pytest.MonkeyPatch,
    init_integration: MockConfigEntry,
    s3: Any,
) -> None:
    """Unloaded while a day uploads: the upload ends and is recorded, nothing is left over,
    and the next start finds that day identical and goes on from there.
    """
    await _switched_on(hass, freezer, init_integration)
    await unload(hass, init_integration)
    await record_state(hass, freezer, _at(15, 18), "sensor.a", "15")
    await record_state(hass, freezer, _at(16, 18), "sensor.a", "16")
    uploading, release = threading.Event(), threading.Event()
    real_put = S3Target.put

    def _held_put(self: S3Target, path: Path, key: str, *args: Any, **kwargs: Any) -> Any:
        # The upload of the 15th waits (in the executor) until the entry is unloaded.
        if key == _key(15):
            uploading.set()
            release.wait(timeout=30)
        return real_put(self, path, key, *args, **kwargs)

    monkeypatch.setattr(S3Target, "put", _held_put)
    freezer.move_to(_at(17, 8))
    assert await hass.config_entries.async_setup(init_integration.entry_id)
    assert await hass.async_add_executor_job(uploading.wait, 30)
    assert await hass.config_entries.async_unload(init_integration.entry_id)
    release.set()
    await hass.async_block_till_done(wait_background_tasks=True)
    monkeypatch.undo()
    first = s3.head_object(Bucket="demo-archive", Key=_key(15))
    assert _key(16) not in bucket_keys(s3)
    assert not list(Path(hass.config.config_dir).glob(".s3_glacier_export_*"))

    await _restart(hass, freezer, init_integration, _at(17, 9))

    assert s3.head_object(Bucket="demo-archive", Key=_key(15))["ETag"] == first["ETag"]
    assert _our_rows(s3, _key(16)) == [HEADER, _row("sensor.a", "16", _at(16, 18))]
    assert _progress(hass) == ("0", "2030-01-16")


async def test_unload_while_a_day_is_read(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    monkeypatch: pytest.MonkeyPatch,
    init_integration: MockConfigEntry,
    s3: Any,
) -> None:
    """Unloaded while the recorder writes a day's file: the file is removed once written,
    nothing is uploaded, and the next start exports the day.
    """
    await _switched_on(hass, freezer, init_integration)
    await unload(hass, init_integration)
    await record_state(hass, freezer, _at(15, 18), "sensor.a", "15")
    reading, release, written = threading.Event(), threading.Event(), threading.Event()
    real_write_day = export_module._write_day

    def _held_write_day(*args: Any) -> Any:
        # The recorder's executor job waits until the entry is unloaded.
        reading.set()
        release.wait(timeout=30)
        try:
            return real_write_day(*args)
        finally:
            written.set()

    monkeypatch.setattr(export_module, "_write_day", _held_write_day)
    freezer.move_to(_at(16, 8))
    assert await hass.config_entries.async_setup(init_integration.entry_id)
    assert await hass.async_add_executor_job(reading.wait, 30)
    assert await hass.config_entries.async_unload(init_integration.entry_id)
    release.set()
    # The recorder's executor is not Home Assistant's: wait for the write to end.
    assert await hass.async_add_executor_job(written.wait, 30)
    await hass.async_block_till_done(wait_background_tasks=True)
    monkeypatch.undo()
    assert _key(15) not in bucket_keys(s3)
    assert not list(Path(hass.config.config_dir).glob(".s3_glacier_export_*"))

    await _restart(hass, freezer, init_integration, _at(16, 9))

    assert _our_rows(s3, _key(15)) == [HEADER, _row("sensor.a", "15", _at(15, 18))]
    assert _progress(hass) == ("0", "2030-01-15")


async def test_refused_night_raises_the_permission_issue_and_is_retried(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    aws: None,
    monkeypatch: pytest.MonkeyPatch,
    mock_config_entry: MockConfigEntry,
) -> None:
    """A policy without s3:PutObject: the night fails with the action's repair issue (no
    reauth), the day waits, and once the policy allows it the next night exports it.
    """
    moto = Moto(moto_bucket_policy(), monkeypatch)
    mock_config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        mock_config_entry, data={**mock_config_entry.data, **moto.keys}
    )
    await set_up(hass, mock_config_entry)
    freezer.move_to(_at(15, 12))
    await _switch(hass, mock_config_entry, True)
    await record_state(hass, freezer, _at(15, 18), "sensor.a", "15")
    moto.set_policy(moto_bucket_policy(without="s3:PutObject"))

    await _night(hass, freezer, _at(16, 0, 20))

    assert _key(15) not in _day_keys(moto.s3)
    issues = list(ir.async_get(hass).issues.values())
    assert [(i.translation_key, i.translation_placeholders["action"]) for i in issues] == [
        ("missing_permission", "s3:PutObject")
    ]
    assert not hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert _progress(hass) == ("1", "2030-01-14")

    moto.set_policy(moto_bucket_policy())
    await _night(hass, freezer, _at(17, 0, 20))

    assert _our_rows(moto.s3, _key(15)) == [HEADER, _row("sensor.a", "15", _at(15, 18))]
    assert _progress(hass) == ("0", "2030-01-16")


async def test_switched_off_and_on_again_starts_from_yesterday(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    init_integration: MockConfigEntry,
    s3: Any,
) -> None:
    """Days while switched off are not missed ones: on again, only yesterday is exported,
    also when it was switched off while the entry was not loaded.
    """
    await _switched_on(hass, freezer, init_integration)
    await _switch(hass, init_integration, False)
    freezer.move_to(_at(18, 12))
    await _switch(hass, init_integration, True)
    assert [key for key in _day_keys(s3) if "/states/" in key] == [_key(14), _key(17)]

    await unload(hass, init_integration)
    hass.config_entries.async_update_entry(
        init_integration, options={**init_integration.options, CONF_DAILY_HISTORY_EXPORT: False}
    )
    await _restart(hass, freezer, init_integration, _at(20, 12))
    await _switch(hass, init_integration, True)

    assert [key for key in _day_keys(s3) if "/states/" in key] == [_key(14), _key(17), _key(19)]
    assert _progress(hass) == ("0", "2030-01-19")
    assert not ir.async_get(hass).issues


@pytest.mark.parametrize(
    ("time_zone", "not_yet", "complete"),
    [
        # Midnight on a UTC hour: complete at 00:20 local.
        ("Europe/Amsterdam", "2030-01-21T00:19:00+01:00", "2030-01-21T00:20:00+01:00"),
        # Midnight at half past a UTC hour (18:30Z): the last statistics row, 18:00Z to
        # 19:00Z, is compiled after 19:00Z, so the day is complete at 00:50 local.
        ("Asia/Kolkata", "2030-01-21T00:49:00+05:30", "2030-01-21T00:50:00+05:30"),
        ("Asia/Kathmandu", "2030-01-21T01:04:00+05:45", "2030-01-21T01:05:00+05:45"),
    ],
)
async def test_a_day_is_complete_after_its_last_utc_hour(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    time_zone: str,
    not_yet: str,
    complete: str,
) -> None:
    """Whatever the time zone's offset, a day counts as complete (and is exported) only
    once the recorder has compiled the statistics hour that holds its last minutes."""
    await hass.config.async_set_time_zone(time_zone)
    freezer.move_to(not_yet)
    assert export_schedule._last_complete_day() == date(2030, 1, 19)
    freezer.move_to(complete)
    assert export_schedule._last_complete_day() == date(2030, 1, 20)
