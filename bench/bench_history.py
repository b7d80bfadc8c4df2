"""Benchmark the history CSV writer on a busy day: 1,000,000 state rows.

Not a test. Measures ``archive.history.write_states`` (sorting, CSV, JSON attributes,
gzip, SHA-256) writing one day into a temporary file, the rows handed over as the
export hands them: one batch per hour window (what ``export.py`` holds in memory at a
time), and, for comparison, the whole day as one batch. Rows are made on the fly per
batch (500 entities, five attributes each), so the peak is what the writer and one
batch hold. Reported: wall time, rows/s, compressed size, and the peak of Python's
allocations (tracemalloc, which slows the run; the time comes from a separate run
without it).

What this leaves out: reading the rows from the recorder's SQLite (the recorder's own
queries, one per hour window) and the upload (``S3Target.put``, measured by
bench_transfer.py).

    .venv/bin/python bench/bench_history.py --rows 1000000
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
import sys
import tempfile
import time
import tracemalloc
from typing import Any

# The engine without Home Assistant, as the top-level package `archive`.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "custom_components" / "s3_glacier"))

from archive.history import StateRow, write_states
from common import MIB, RESULTS, machine, machine_line, table, write_json

DAY = datetime(2026, 11, 26, tzinfo=UTC)
ENTITIES = 500


def _batches(rows: int, windows: int) -> Iterator[list[StateRow]]:
    """``rows`` states spread evenly over the day, in ``windows`` consecutive batches."""
    step = timedelta(days=1) / rows
    per_window = -(-rows // windows)
    for first in range(0, rows, per_window):
        yield [
            StateRow(
                f"sensor.power_{n % ENTITIES:03d}",
                f"{(n * 7919) % 100000 / 10:.1f}",
                DAY + step * n,
                DAY + step * n,
                {
                    "device_class": "power",
                    "friendly_name": f"Power {n % ENTITIES}",
                    "state_class": "measurement",
                    "unit_of_measurement": "W",
                    "voltage": 230 + n % 7,
                },
            )
            for n in range(first, min(first + per_window, rows))
        ]


def _write(rows: int, windows: int, *, trace: bool) -> dict[str, Any]:
    with tempfile.TemporaryFile() as sink:
        if trace:
            tracemalloc.start()
        began = time.perf_counter()
        result = write_states(sink, _batches(rows, windows))
        seconds = time.perf_counter() - began
        peak = tracemalloc.get_traced_memory()[1] if trace else None
        if trace:
            tracemalloc.stop()
    assert result.rows == rows
    return {"seconds": seconds, "bytes": result.bytes, "peak_bytes": peak}


def run(rows: int) -> dict[str, Any]:
    """One hour per batch, then the whole day in one: time (untraced) and peak (traced)."""
    results = []
    for label, windows in (("hourly batches (as exported)", 24), ("whole day in one batch", 1)):
        timed = _write(rows, windows, trace=False)
        traced = _write(rows, windows, trace=True)
        results.append(
            {
                "batching": label,
                "seconds": timed["seconds"],
                "rows_per_s": rows / timed["seconds"],
                "bytes": timed["bytes"],
                "peak_mib": traced["peak_bytes"] / MIB,
            }
        )
    return {"benchmark": "history", "rows": rows, "entities": ENTITIES, "results": results}


def report(result: dict[str, Any]) -> str:
    """The table."""
    return f"History CSV writer, {result['rows']:,} state rows, {result['entities']} entities\n" + (
        table(
            ["batching", "seconds", "rows/s", "gzip MiB", "peak MiB (tracemalloc)"],
            [
                [
                    r["batching"],
                    f"{r['seconds']:.1f}",
                    f"{r['rows_per_s']:,.0f}",
                    f"{r['bytes'] / MIB:.1f}",
                    f"{r['peak_mib']:.0f}",
                ]
                for r in result["results"]
            ],
        )
    )


def main() -> None:
    """Run and report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    info = machine()
    result = run(args.rows) | {"machine": info}
    print(machine_line(info))
    print(report(result))
    write_json(RESULTS / "history.json", result)


if __name__ == "__main__":
    main()
