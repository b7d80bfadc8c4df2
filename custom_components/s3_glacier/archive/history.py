"""Recorder rows → deterministic gzip-compressed CSV.

No Home Assistant here: the shell reads the recorder and hands over plain rows. The
same rows always give the same bytes (sorted rows, a gzip header without a time or a
file name, a fixed compression level), so a day exported again is byte-identical and
``S3Target.put`` skips it instead of storing (and billing) a second copy.

Rows arrive in batches (an hour of states, a few statistics): each batch is sorted
here and must not sort before the batch written before it, so the whole file is
sorted without ever holding more than one batch. States are in time order (then by
entity), statistics by statistic then period.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
import csv
from dataclasses import dataclass
from datetime import UTC, datetime
import gzip
import hashlib
import io
import json
from typing import IO, Any

# A fixed level: the bytes depend on it (and on zlib; the same installation gives
# the same bytes).
COMPRESS_LEVEL = 6

STATES_COLUMNS = ("entity_id", "state", "last_changed", "last_updated", "attributes")
STATISTICS_COLUMNS = (
    "statistic_id",
    "start",
    "mean",
    "min",
    "max",
    "last_reset",
    "state",
    "sum",
    "unit",
)


@dataclass(frozen=True, slots=True)
class StateRow:
    """One recorded state."""

    entity_id: str
    state: str
    last_changed: datetime
    last_updated: datetime
    attributes: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class StatisticRow:
    """One long-term statistic period."""

    statistic_id: str
    start: datetime
    mean: float | None
    min: float | None
    max: float | None
    last_reset: datetime | None
    state: float | None
    sum: float | None
    unit: str | None


@dataclass(frozen=True, slots=True)
class CsvResult:
    """What was written: data rows (header not counted), compressed bytes, their SHA-256."""

    rows: int
    bytes: int
    sha256: str


def iso_utc(moment: datetime | None) -> str:
    """A time as ISO 8601 in UTC, always with microseconds ('' for none)."""
    if moment is None:
        return ""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def compact_json(value: Mapping[str, Any]) -> str:
    """Attributes as compact JSON with sorted keys (UTF-8, not escaped)."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    return str(value)


def _number(value: float | None) -> str:
    return "" if value is None else repr(value)


def state_fields(row: StateRow) -> tuple[str, ...]:
    """The CSV fields of a state, in ``STATES_COLUMNS`` order."""
    return (
        row.entity_id,
        row.state,
        iso_utc(row.last_changed),
        iso_utc(row.last_updated),
        compact_json(row.attributes),
    )


def statistic_fields(row: StatisticRow) -> tuple[str, ...]:
    """The CSV fields of a statistic, in ``STATISTICS_COLUMNS`` order."""
    return (
        row.statistic_id,
        iso_utc(row.start),
        _number(row.mean),
        _number(row.min),
        _number(row.max),
        iso_utc(row.last_reset),
        _number(row.state),
        _number(row.sum),
        row.unit or "",
    )


def _state_order(fields: tuple[str, ...]) -> tuple[str, ...]:
    # Time first (UTC ISO strings with microseconds sort as times), so a day streams
    # hour by hour; then the entity, then the rest for equal times.
    entity_id, state, last_changed, last_updated, attributes = fields
    return (last_updated, entity_id, last_changed, state, attributes)


def _statistic_order(fields: tuple[str, ...]) -> tuple[str, ...]:
    return fields


class _CountingSink:
    """Forwards writes to ``sink``, counting and hashing the bytes."""

    def __init__(self, sink: IO[bytes]) -> None:
        self._sink = sink
        self.bytes = 0
        self.hash = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self._sink.write(data)
        self.bytes += len(data)
        self.hash.update(data)
        return len(data)

    def flush(self) -> None:
        self._sink.flush()


def _write(
    sink: IO[bytes],
    columns: tuple[str, ...],
    batches: Iterable[Iterable[tuple[str, ...]]],
    order: Callable[[tuple[str, ...]], tuple[str, ...]],
) -> CsvResult:
    counting = _CountingSink(sink)
    rows = 0
    last: tuple[str, ...] | None = None
    # filename="" and mtime=0: the gzip header names no file and no time.
    with (
        gzip.GzipFile(
            filename="",
            mode="wb",
            fileobj=counting,
            compresslevel=COMPRESS_LEVEL,
            mtime=0,
        ) as compressed,
        io.TextIOWrapper(compressed, encoding="utf-8", newline="") as text,
    ):
        writer = csv.writer(text)
        writer.writerow(columns)
        for batch in batches:
            ordered = sorted(batch, key=order)
            if not ordered:
                continue
            if last is not None and order(ordered[0]) < last:
                raise ValueError("batches must arrive in sorted order")
            writer.writerows(ordered)
            rows += len(ordered)
            last = order(ordered[-1])
    return CsvResult(rows=rows, bytes=counting.bytes, sha256=counting.hash.hexdigest())


def write_states(sink: IO[bytes], batches: Iterable[Iterable[StateRow]]) -> CsvResult:
    """Write states as gzip CSV into ``sink`` (a binary file), batch by batch."""
    return _write(
        sink,
        STATES_COLUMNS,
        ((state_fields(row) for row in batch) for batch in batches),
        _state_order,
    )


def write_statistics(sink: IO[bytes], batches: Iterable[Iterable[StatisticRow]]) -> CsvResult:
    """Write long-term statistics as gzip CSV into ``sink``, batch by batch."""
    return _write(
        sink,
        STATISTICS_COLUMNS,
        ((statistic_fields(row) for row in batch) for batch in batches),
        _statistic_order,
    )
