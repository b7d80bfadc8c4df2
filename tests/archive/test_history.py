"""The history CSV writer: deterministic bytes, readable by csv + gzip, sorted rows."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta, timezone
import gzip
import hashlib
import io

import pytest

from custom_components.s3_glacier.archive.history import (
    STATES_COLUMNS,
    STATISTICS_COLUMNS,
    StateRow,
    StatisticRow,
    write_states,
    write_statistics,
)

T0 = datetime(2026, 11, 26, 0, 0, tzinfo=UTC)


def _states() -> list[StateRow]:
    return [
        StateRow("sensor.b", "21.5", T0, T0 + timedelta(hours=1), {"unit": "°C", "a": [1, 2]}),
        StateRow("sensor.a", 'say "hi", ok', T0, T0, {}),
        StateRow("sensor.b", "20", T0, T0, {"z": None, "friendly_name": "Bé"}),
    ]


def _read(data: bytes) -> list[list[str]]:
    with gzip.open(io.BytesIO(data), "rt", encoding="utf-8", newline="") as text:
        return list(csv.reader(text))


def test_states_are_sorted_and_readable() -> None:
    """Rows sorted by time then entity; quoting, UTF-8 and compact JSON survive csv+gzip."""
    sink = io.BytesIO()
    states = _states()
    result = write_states(sink, [[states[2], states[1]], [states[0]]])
    data = sink.getvalue()
    assert result.rows == 3
    assert result.bytes == len(data)
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert _read(data) == [
        list(STATES_COLUMNS),
        ["sensor.a", 'say "hi", ok', "2026-11-26T00:00:00.000000+00:00",
         "2026-11-26T00:00:00.000000+00:00", "{}"],
        ["sensor.b", "20", "2026-11-26T00:00:00.000000+00:00",
         "2026-11-26T00:00:00.000000+00:00", '{"friendly_name":"Bé","z":null}'],
        ["sensor.b", "21.5", "2026-11-26T00:00:00.000000+00:00",
         "2026-11-26T01:00:00.000000+00:00", '{"a":[1,2],"unit":"°C"}'],
    ]  # fmt: skip


def test_same_rows_give_identical_bytes() -> None:
    """Batch order within a batch and the time zone of the input do not change the bytes."""
    first, second = io.BytesIO(), io.BytesIO()
    states = _states()
    write_states(first, [[states[1], states[2]], [states[0]]])
    shifted = timezone(timedelta(hours=2))
    moved = [
        StateRow(s.entity_id, s.state, s.last_changed.astimezone(shifted),
                 s.last_updated.astimezone(shifted), dict(reversed(list(s.attributes.items()))))
        for s in states
    ]  # fmt: skip
    write_states(second, [[moved[2], moved[1]], [moved[0]]])
    assert first.getvalue() == second.getvalue()
    # The gzip header: no modification time, no file name (FLG has no FNAME bit).
    header = first.getvalue()[:10]
    assert header[4:8] == b"\0\0\0\0"
    assert header[3] & 0x08 == 0


def test_batches_out_of_order_are_refused() -> None:
    """A batch that sorts before the previous one would break the file's order."""
    states = _states()
    with pytest.raises(ValueError):
        write_states(io.BytesIO(), [[states[0]], [states[2]]])


def test_statistics_columns() -> None:
    """Empty fields for missing values; floats as Python writes them."""
    sink = io.BytesIO()
    rows = [
        StatisticRow(
            "sensor.energy", T0 + timedelta(hours=1), None, None, None, T0, 3.5, 10.25, "kWh"
        ),
        StatisticRow("sensor.energy", T0, None, None, None, T0, 1.0, 7.75, "kWh"),
        StatisticRow("sensor.temp", T0, 20.5, 19.0, 22.0, None, None, None, "°C"),
    ]  # fmt: skip
    result = write_statistics(sink, [rows[:2], rows[2:]])
    assert result.rows == 3
    assert _read(sink.getvalue()) == [
        list(STATISTICS_COLUMNS),
        ["sensor.energy", "2026-11-26T00:00:00.000000+00:00", "", "", "",
         "2026-11-26T00:00:00.000000+00:00", "1.0", "7.75", "kWh"],
        ["sensor.energy", "2026-11-26T01:00:00.000000+00:00", "", "", "",
         "2026-11-26T00:00:00.000000+00:00", "3.5", "10.25", "kWh"],
        ["sensor.temp", "2026-11-26T00:00:00.000000+00:00", "20.5", "19.0", "22.0", "", "", "",
         "°C"],
    ]  # fmt: skip


def test_no_rows_still_has_a_header() -> None:
    """An empty day is a valid CSV with only the header."""
    sink = io.BytesIO()
    assert write_states(sink, []).rows == 0
    assert _read(sink.getvalue()) == [list(STATES_COLUMNS)]
