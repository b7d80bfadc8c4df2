"""History export: the recorder's states and statistics, one object per day and kind.

The ``export_history`` action and the daily schedule (``export_schedule.py``) share
``async_export``: one code path from the recorder to the bucket.

The recorder is read through its own executor and its history/statistics helpers,
never on the event loop. Each day and kind is written by ``archive/history.py`` into
a hidden temporary file in the configuration directory, one entity (or a few
statistics) at a time, then uploaded with ``S3Target.put`` like any archived file: a
day exported again gives the same bytes and is skipped as identical, and the upload
is recorded in the catalog.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import batched
import os
from pathlib import Path
import tempfile
from typing import IO, Literal

from homeassistant.components.recorder.history import get_significant_states
from homeassistant.components.recorder.statistics import (
    get_metadata,
    statistics_during_period,
)
from homeassistant.core import HomeAssistant, ServiceCall, ServiceResponse, State
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.recorder import get_instance, session_scope
from homeassistant.util import dt as dt_util
from homeassistant.util.json import JsonValueType
import voluptuous as vol

from .action_helpers import (
    ATTR_CONFIG_ENTRY_ID,
    ATTR_KEY,
    ATTR_STORAGE_CLASS,
    money,
    remote_errors,
)
from .archive.catalog import Catalog
from .archive.errors import ObjectExistsError
from .archive.history import (
    CsvResult,
    StateRow,
    StatisticRow,
    write_states,
    write_statistics,
)
from .archive.models import TransferOptions
from .archive.pricing import object_monthly_cost
from .archive.s3 import PutResult, S3Target
from .bucket_actions import archive_one, bucket_target, entry_transfer_options
from .const import (
    DOMAIN,
    EVENT_ARCHIVED,
    HISTORY_ENTITY_BATCH,
    HISTORY_FOLDER,
    HISTORY_STATES_WINDOW_SECONDS,
    HISTORY_STATISTIC_BATCH,
    LOGGER,
)
from .data import S3GlacierConfigEntry
from .paths import Source, check_in_prefix, invalid, validate_key

ATTR_START = "start"
ATTR_END = "end"
ATTR_ENTITY_ID = "entity_id"
ATTR_STATISTICS = "statistics"

EXPORT_HISTORY_SCHEMA = vol.Schema(
    {
        vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
        vol.Optional(ATTR_START): cv.datetime,
        vol.Optional(ATTR_END): cv.datetime,
        vol.Optional(ATTR_ENTITY_ID): cv.entity_ids,
        vol.Optional(ATTR_STATISTICS, default=True): cv.boolean,
        vol.Optional(ATTR_STORAGE_CLASS): cv.string,
        vol.Optional(ATTR_KEY): cv.string,
    }
)

# The recorder's queries exclude their start time; asking from a little earlier and
# keeping rows at or after the start puts a state recorded exactly at midnight in
# the day it starts (and in no other).
_QUERY_MARGIN = timedelta(seconds=1)
# Long-term statistics are hourly.
_STATISTIC_TYPES: set[Literal["change", "last_reset", "max", "mean", "min", "state", "sum"]] = {
    "last_reset",
    "max",
    "mean",
    "min",
    "state",
    "sum",
}

type Kind = Literal["states", "statistics"]


@dataclass(frozen=True, slots=True)
class _Day:
    """One local day of the period (clipped to it) and where its objects go."""

    day: date
    start: datetime
    end: datetime

    def key(self, folder: str, kind: Kind) -> str:
        return f"{folder}{kind}/{self.day:%Y/%m/%d}.csv.gz"


def _days(start: datetime, end: datetime) -> list[_Day]:
    """Local days covering [start, end), each clipped to the period."""
    days = []
    day = dt_util.as_local(start).date()
    while (midnight := local_midnight(day)) < end:
        following = local_midnight(day + timedelta(days=1))
        days.append(_Day(day, max(start, midnight), min(end, following)))
        day += timedelta(days=1)
    return days


def local_midnight(day: date) -> datetime:
    """The UTC time at which the local ``day`` starts."""
    return dt_util.as_utc(dt_util.start_of_local_day(day))


def _period(call: ServiceCall) -> tuple[datetime, datetime]:
    """The period asked for (UTC), yesterday from local midnight to midnight by default."""
    today = dt_util.now().date()
    start = call.data.get(ATTR_START)
    end = call.data.get(ATTR_END)
    # Midnights by the calendar: a day with a daylight saving change is not 24 hours.
    start = dt_util.as_utc(start or dt_util.start_of_local_day(today - timedelta(days=1)))
    end = dt_util.as_utc(end or dt_util.start_of_local_day(today))
    if end <= start:
        raise invalid("export_end_before_start", start=_shown(start), end=_shown(end))
    if end > dt_util.utcnow():
        raise invalid("export_period_in_future", end=_shown(end))
    return start, end


def _shown(moment: datetime) -> str:
    """A time as the user's messages show it: local, to the second."""
    return dt_util.as_local(moment).replace(microsecond=0).isoformat()


def _default_folder(prefix: str) -> str:
    """Where the day objects go unless the action names a key: under the entry's prefix."""
    return f"{prefix}{HISTORY_FOLDER}/"


def _folder(call: ServiceCall, prefix: str) -> str:
    """The key prefix the day objects go under (ends with a slash)."""
    folder = call.data.get(ATTR_KEY)
    if folder is None:
        return _default_folder(prefix)
    folder = folder.lstrip("/")
    if not folder.endswith("/"):
        folder += "/"
    return check_in_prefix(validate_key(folder), prefix)


# Recorder side: everything below runs in the recorder's executor.


def _oldest_ts(hass: HomeAssistant) -> float | None:
    return get_instance(hass).states_manager.oldest_ts


def _recorded_entities(hass: HomeAssistant) -> tuple[set[str], float | None]:
    """Entity IDs the recorder holds states of (and still records), and its oldest time."""
    instance = get_instance(hass)
    with session_scope(hass=hass, read_only=True) as session:
        held = set(instance.states_meta_manager.get_metadata_id_to_entity_id(session).values())
    return held, instance.states_manager.oldest_ts


def _state_rows(state: State) -> StateRow:
    return StateRow(
        state.entity_id,
        state.state,
        state.last_changed,
        state.last_updated,
        dict(state.attributes),
    )


def _windows(day: _Day) -> Iterator[tuple[datetime, datetime]]:
    """The day in consecutive windows: what one batch of states holds in memory."""
    start = day.start
    while start < day.end:
        end = min(start + timedelta(seconds=HISTORY_STATES_WINDOW_SECONDS), day.end)
        yield start, end
        start = end


def _state_batches(
    hass: HomeAssistant, entity_ids: Sequence[str], day: _Day
) -> Iterator[list[StateRow]]:
    """The day's states (every row, attribute changes too), one time window at a time."""
    for start, end in _windows(day):
        batch: list[StateRow] = []
        for group in batched(entity_ids, HISTORY_ENTITY_BATCH, strict=False):
            found = get_significant_states(
                hass,
                start - _QUERY_MARGIN,
                end,
                list(group),
                include_start_time_state=False,
                significant_changes_only=False,
            )
            batch.extend(
                _state_rows(state)
                for states in found.values()
                for state in states
                if isinstance(state, State) and start <= state.last_updated < end
            )
        yield batch


def _statistic_batches(
    hass: HomeAssistant, statistic_ids: Iterable[str], day: _Day
) -> Iterator[list[StatisticRow]]:
    """Hourly long-term statistics that start within the day, a few statistics at a time."""
    for group in batched(sorted(statistic_ids), HISTORY_STATISTIC_BATCH, strict=False):
        wanted = set(group)
        units = {
            statistic_id: meta["unit_of_measurement"]
            for statistic_id, (_, meta) in get_metadata(hass, statistic_ids=wanted).items()
        }
        found = statistics_during_period(
            hass, day.start, day.end, wanted, "hour", None, _STATISTIC_TYPES
        )
        for statistic_id in group:
            yield [
                StatisticRow(
                    statistic_id,
                    dt_util.utc_from_timestamp(row["start"]),
                    row.get("mean"),
                    row.get("min"),
                    row.get("max"),
                    _from_timestamp(row.get("last_reset")),
                    row.get("state"),
                    row.get("sum"),
                    units.get(statistic_id),
                )
                for row in found.get(statistic_id, [])
            ]


def _from_timestamp(value: float | None) -> datetime | None:
    return None if value is None else dt_util.utc_from_timestamp(value)


def _statistic_ids(hass: HomeAssistant, entity_ids: list[str] | None) -> list[str]:
    """The statistics to export: those of the chosen entities, else all still recorded."""
    if entity_ids is not None:
        return sorted(get_metadata(hass, statistic_ids=set(entity_ids)))
    instance = get_instance(hass)
    return sorted(
        statistic_id
        for statistic_id in get_metadata(hass)
        # External statistics (source:id) have no entity to exclude.
        if ":" in statistic_id
        or instance.entity_filter is None
        or instance.entity_filter(statistic_id)
    )


TEMPORARY_PREFIX = ".s3_glacier_export_"


def remove_leftovers(directory: str) -> list[Path]:
    """Delete the temporary files of exports a crash or a kill interrupted (executor).

    Run at start, before any export: they would otherwise stay in the configuration
    directory, and in its backups, for good.
    """
    removed = []
    for path in Path(directory).glob(f"{TEMPORARY_PREFIX}*.csv.gz"):
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def _write_day(
    hass: HomeAssistant, directory: str, kind: Kind, ids: list[str], day: _Day
) -> tuple[Path, CsvResult]:
    """Write one day of one kind into a hidden temporary file; return it and what it holds."""
    handle, name = tempfile.mkstemp(prefix=TEMPORARY_PREFIX, suffix=".csv.gz", dir=directory)
    path = Path(name)
    try:
        with os.fdopen(handle, "wb") as sink:
            result = _write_kind(hass, sink, kind, ids, day)
            sink.flush()
            os.fsync(sink.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path, result


def _write_kind(
    hass: HomeAssistant, sink: IO[bytes], kind: Kind, ids: list[str], day: _Day
) -> CsvResult:
    if kind == "states":
        return write_states(sink, _state_batches(hass, ids, day))
    return write_statistics(sink, _statistic_batches(hass, ids, day))


# What the action and the schedule share.


@dataclass(frozen=True, slots=True)
class ExportRequest:
    """A period to export, where to and how; ``entity_ids`` None is every recorded one."""

    start: datetime
    end: datetime
    folder: str
    options: TransferOptions
    entity_ids: list[str] | None = None
    statistics: bool = True
    # The schedule keeps an object that differs (an earlier export of other entities
    # under the same key) and goes on; the action refuses it as an error.
    keep_differing: bool = False


@dataclass(slots=True)
class ExportResult:
    """What an export wrote and skipped, as the action's response lists them."""

    exported: list[JsonValueType] = field(default_factory=list)
    skipped: list[JsonValueType] = field(default_factory=list)


def _check_entities(hass: HomeAssistant, asked: list[str], recorded: set[str]) -> None:
    """Refuse entities that are unknown or that the recorder does not record."""
    entity_filter = get_instance(hass).entity_filter
    for entity_id in asked:
        if entity_id not in recorded and hass.states.get(entity_id) is None:
            raise invalid("export_unknown_entity", entity_id=entity_id)
        if entity_filter is not None and not entity_filter(entity_id):
            raise invalid("export_entity_not_recorded", entity_id=entity_id)


async def _write(
    hass: HomeAssistant, kind: Kind, ids: list[str], day: _Day
) -> tuple[Path, CsvResult]:
    """Write one day of one kind in the recorder's executor.

    A cancelled caller (the action stopped, the entry unloaded) does not stop the
    write; the file it leaves is removed once it is written.
    """
    job = get_instance(hass).async_add_executor_job(
        _write_day, hass, hass.config.config_dir, kind, ids, day
    )
    try:
        return await asyncio.shield(job)
    except asyncio.CancelledError:
        job.add_done_callback(lambda done: _drop_written(hass, done))
        raise


def _drop_written(hass: HomeAssistant, job: asyncio.Future[tuple[Path, CsvResult]]) -> None:
    if not job.cancelled() and job.exception() is None:
        path, _ = job.result()
        hass.async_add_executor_job(path.unlink, True)


def _archive_day(
    target: S3Target, catalog: Catalog, source: Source, options: TransferOptions
) -> PutResult:
    """Upload and record one day's file, then remove it, in one executor job.

    The job removes the file itself: a caller cancelled meanwhile (the action
    stopped, the entry unloaded) must not remove it under the running upload.
    """
    try:
        return archive_one(target, catalog, source, options, False)
    finally:
        source.path.unlink(missing_ok=True)


async def _upload(
    hass: HomeAssistant,
    entry: S3GlacierConfigEntry,
    request: ExportRequest,
    source: Source,
) -> PutResult | None:
    """Upload one day's file and record it, like any archived file; the file goes after.

    None: another object is at the key and ``request.keep_differing`` keeps it.
    """
    data = entry.runtime_data
    handed_over = False
    try:
        async with data.lease(hass, source.key, transfer=True) as lease:
            with remote_errors(hass, entry, key=source.key):
                try:
                    target = bucket_target(entry)
                    # From here the upload job owns the file and removes it.
                    handed_over = True
                    return await lease.run(
                        _archive_day, target, data.catalog, source, request.options
                    )
                except ObjectExistsError as err:
                    # Never replaced: that would lose the rows it holds.
                    if request.keep_differing:
                        LOGGER.warning(
                            "%s already holds other rows at %s (an earlier export of"
                            " other entities?); it is kept as it is",
                            entry.title,
                            source.key,
                        )
                        return None
                    raise HomeAssistantError(
                        translation_domain=DOMAIN,
                        translation_key="export_day_differs",
                        translation_placeholders={"key": source.key},
                    ) from err
    finally:
        if not handed_over:  # cancelled while waiting for the key or a transfer slot
            await hass.async_add_executor_job(source.path.unlink, True)


async def _chosen_ids(hass: HomeAssistant, request: ExportRequest) -> list[tuple[Kind, list[str]]]:
    """The entities (and statistics) to export, after checking the period and entities."""
    recorder = get_instance(hass)
    recorded, oldest_ts = await recorder.async_add_executor_job(_recorded_entities, hass)
    if oldest_ts is None or request.start.timestamp() < oldest_ts:
        oldest = _shown(dt_util.utc_from_timestamp(oldest_ts)) if oldest_ts else "-"
        raise invalid("export_period_not_recorded", start=_shown(request.start), oldest=oldest)
    asked = request.entity_ids
    if asked is not None:
        _check_entities(hass, asked, recorded)
        entity_ids = sorted(set(asked) & recorded)
    else:
        entity_filter = recorder.entity_filter
        entity_ids = sorted(e for e in recorded if entity_filter is None or entity_filter(e))
    kinds: list[tuple[Kind, list[str]]] = [("states", entity_ids)]
    if request.statistics:
        statistic_ids = await recorder.async_add_executor_job(_statistic_ids, hass, asked)
        kinds.append(("statistics", statistic_ids))
    return kinds


async def async_export(
    hass: HomeAssistant, entry: S3GlacierConfigEntry, request: ExportRequest
) -> ExportResult:
    """Export the recorder's states (and statistics) of a period, one object per day and kind."""
    if "recorder" not in hass.config.components:
        raise invalid("export_needs_recorder")
    kinds = await _chosen_ids(hass, request)
    data = entry.runtime_data
    result = ExportResult()
    try:
        for day in _days(request.start, request.end):
            for kind, ids in kinds:
                key = day.key(request.folder, kind)
                path, written = await _write(hass, kind, ids, day)
                put = await _upload(hass, entry, request, Source(path, key, written.bytes))
                if put is None:
                    result.skipped.append({"key": key, "reason": "differs"})
                    continue
                if put.skipped:
                    result.skipped.append({"key": key, "reason": put.reason})
                    continue
                obj = put.object
                cost = money(
                    object_monthly_cost(data.coordinator.prices, obj.storage_class, obj.size)
                )
                result.exported.append(
                    {
                        "key": key,
                        "rows": written.rows,
                        "bytes": written.bytes,
                        "sha256": written.sha256,
                        "storage_class": str(obj.storage_class),
                        "monthly_cost": cost,
                    }
                )
                hass.bus.async_fire(
                    EVENT_ARCHIVED,
                    {
                        "config_entry_id": entry.entry_id,
                        "key": key,
                        "size": obj.size,
                        "storage_class": str(obj.storage_class),
                        "sha256": obj.sha256,
                        "etag": obj.etag,
                        "monthly_cost": cost,
                    },
                )
    finally:
        await data.coordinator.async_catalog_changed()
    return result


async def async_export_day(
    hass: HomeAssistant, entry: S3GlacierConfigEntry, day: date
) -> ExportResult:
    """Export one local day as the schedule does.

    Every recorded entity with its statistics, in the entry's storage class, under the
    default history folder.
    """
    request = ExportRequest(
        start=local_midnight(day),
        end=local_midnight(day + timedelta(days=1)),
        folder=_default_folder(bucket_target(entry).prefix),
        options=entry_transfer_options(entry, None),
        keep_differing=True,
    )
    return await async_export(hass, entry, request)


async def async_oldest_recorded(hass: HomeAssistant) -> datetime | None:
    """When the oldest state the recorder still holds was recorded (None: no states)."""
    oldest_ts = await get_instance(hass).async_add_executor_job(_oldest_ts, hass)
    return None if oldest_ts is None else dt_util.utc_from_timestamp(oldest_ts)


# The action.


async def export_history(
    hass: HomeAssistant, entry: S3GlacierConfigEntry, call: ServiceCall
) -> ServiceResponse:
    """Export the recorder's states (and statistics) of a period, one object per day."""
    options = entry_transfer_options(entry, call.data.get(ATTR_STORAGE_CLASS))
    start, end = _period(call)
    request = ExportRequest(
        start=start,
        end=end,
        folder=_folder(call, bucket_target(entry).prefix),
        options=options,
        entity_ids=call.data.get(ATTR_ENTITY_ID),
        statistics=call.data[ATTR_STATISTICS],
    )
    result = await async_export(hass, entry, request)
    return {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "exported": result.exported,
        "skipped": result.skipped,
    }


async def export_history_vault(
    hass: HomeAssistant, entry: S3GlacierConfigEntry, call: ServiceCall
) -> ServiceResponse:
    """Vaults hold opaque archives without keys: history goes to a bucket."""
    raise invalid("export_needs_bucket", title=entry.title)
