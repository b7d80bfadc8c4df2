"""Benchmark: one day of 1,000,000 recorded states, read from the recorder and written.

Not a test (not collected by scripts/test). A pytest file because the Home Assistant
test harness gives a real recorder (SQLite in memory):

    .venv/bin/python -m pytest bench/bench_history_recorder.py -p no:cacheprovider -s

The day is put straight into the recorder's tables (500 entities, one attribute set
each, states spread evenly over the day; much faster than recording them one by
one), then ``export._write_day`` runs as the action runs it, in the recorder's
executor: the recorder's history queries one hour window at a time, the gzip CSV
writer, a temporary file in the configuration directory. Reported: wall time, rows/s,
the file's size, and the peak RSS during the export (VmHWM, reset just before) beside
the RSS before it. The upload that follows is ``S3Target.put`` of that file
(bench_transfer.py measures it).

Environment: S3_GLACIER_BENCH_ROWS (default 1000000).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
import json
import os
from pathlib import Path
import re
import time
from typing import Any

from common import MIB, RESULTS, machine, machine_line, table, write_json
from homeassistant.components.recorder import Recorder
from homeassistant.components.recorder.db_schema import StateAttributes, States, StatesMeta
from homeassistant.core import HomeAssistant
from homeassistant.helpers.recorder import session_scope
import pytest
from sqlalchemy import insert, select

import custom_components.s3_glacier  # noqa: F401 - cached before the hass fixture loads it
from custom_components.s3_glacier import export

DAY = datetime(2026, 11, 26, tzinfo=UTC)
ENTITIES = 500
CHUNK = 50_000


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(request: pytest.FixtureRequest) -> None:
    """The recorder's database is prepared before Home Assistant starts."""
    request.getfixturevalue("recorder_db_url")
    request.getfixturevalue("enable_custom_integrations")


@pytest.fixture(autouse=True)
def enable_event_loop_debug() -> None:
    """A real Home Assistant runs without asyncio debug mode."""
    asyncio.get_event_loop().set_debug(False)


def _fill(hass: HomeAssistant, rows: int) -> list[str]:
    """Put ``rows`` states of one day into the recorder's tables; return the entity IDs."""
    entity_ids = [f"sensor.power_{n:03d}" for n in range(ENTITIES)]
    step = 86_400 / rows
    start = DAY.timestamp()
    with session_scope(hass=hass) as session:
        session.execute(insert(StatesMeta), [{"entity_id": e} for e in entity_ids])
        metadata = dict(
            session.execute(select(StatesMeta.entity_id, StatesMeta.metadata_id)).tuples().all()
        )
        shared = {
            e: json.dumps(
                {
                    "device_class": "power",
                    "friendly_name": f"Power {n}",
                    "state_class": "measurement",
                    "unit_of_measurement": "W",
                },
                separators=(",", ":"),
            )
            for n, e in enumerate(entity_ids)
        }
        session.execute(
            insert(StateAttributes),
            [{"hash": n, "shared_attrs": shared[e]} for n, e in enumerate(entity_ids)],
        )
        attributes = {
            text: attributes_id
            for attributes_id, text in session.execute(
                select(StateAttributes.attributes_id, StateAttributes.shared_attrs)
            ).all()
        }
        for first in range(0, rows, CHUNK):
            session.execute(
                insert(States),
                [
                    {
                        "state": f"{(n * 7919) % 100000 / 10:.1f}",
                        "last_updated_ts": start + step * n,
                        "last_changed_ts": None,
                        "metadata_id": metadata[entity_ids[n % ENTITIES]],
                        "attributes_id": attributes[shared[entity_ids[n % ENTITIES]]],
                        "origin_idx": 0,
                    }
                    for n in range(first, min(first + CHUNK, rows))
                ],
            )
            session.commit()
    return entity_ids


def _reset_peak_rss() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def _rss_mib(field: str) -> float:
    status = Path("/proc/self/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) / 1024 if match else float("nan")


async def test_export_a_busy_day(
    hass: HomeAssistant, recorder_mock: Recorder, tmp_path: Path
) -> None:
    """Fill the recorder, export the day; print and save the figures."""
    rows = int(os.environ.get("S3_GLACIER_BENCH_ROWS", "1000000"))
    began = time.perf_counter()
    entity_ids = await recorder_mock.async_add_executor_job(_fill, hass, rows)
    fill_seconds = time.perf_counter() - began

    day = export._Day(  # noqa: SLF001 - the action's own unit of work
        DAY.date(), DAY, DAY + timedelta(days=1)
    )
    rss_before = _rss_mib("VmRSS")
    _reset_peak_rss()
    began = time.perf_counter()
    path, written = await recorder_mock.async_add_executor_job(
        export._write_day,  # noqa: SLF001
        hass,
        str(tmp_path),
        "states",
        entity_ids,
        day,
    )
    seconds = time.perf_counter() - began
    peak = _rss_mib("VmHWM")
    path.unlink()
    assert written.rows == rows

    result: dict[str, Any] = {
        "benchmark": "history_recorder",
        "rows": rows,
        "entities": ENTITIES,
        "window_seconds": export.HISTORY_STATES_WINDOW_SECONDS,
        "fill_seconds": fill_seconds,
        "export_seconds": seconds,
        "rows_per_s": rows / seconds,
        "gzip_bytes": written.bytes,
        "rss_before_mib": rss_before,
        "peak_rss_mib": peak,
        "machine": machine(),
    }
    print()
    print(machine_line(result["machine"]))
    print(
        f"History export from the recorder: {rows:,} states, {ENTITIES} entities, "
        f"one day in {export.HISTORY_STATES_WINDOW_SECONDS // 60}-minute windows"
    )
    print(
        table(
            ["export s", "rows/s", "gzip MiB", "RSS before MiB", "peak RSS MiB"],
            [
                [
                    f"{seconds:.1f}",
                    f"{rows / seconds:,.0f}",
                    f"{written.bytes / MIB:.1f}",
                    f"{rss_before:.0f}",
                    f"{peak:.0f}",
                ]
            ],
        )
    )
    write_json(RESULTS / "history_recorder.json", result)
