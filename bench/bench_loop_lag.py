"""Benchmark the event loop's lag in Home Assistant while s3_glacier moves a large file.

Not a test, and not collected by scripts/test (pyproject's testpaths is tests/). A
pytest file only because the Home Assistant test harness (``hass`` fixture) is the
practical way to run a real Home Assistant core on this loop:

    .venv/bin/python -m pytest bench/bench_loop_lag.py -p no:cacheprovider -s

A config entry points at the local S3 server (the one scripts/bench started, from the
environment, else a SeaweedFS of its own). A probe task sleeps 10 ms on the loop, over
and over, and records how late it wakes up: first with the loop idle, then while the
``s3_glacier.archive`` action uploads the file (hash pass, then 16 MiB parts 4 at a
time, the integration's defaults), then while ``s3_glacier.restore`` downloads it.
Reports p50 / p99 / max of the lateness. For reference, the same upload by plain
boto3 ``upload_file`` in Home Assistant's executor (S3_GLACIER_BENCH_REFERENCE=0: not).
Each phase runs once per round; the median round and the range are shown. The
harness's event-loop debug mode (slow callback checks) is turned off, as in a real
Home Assistant.

The S3 server shares this machine's CPUs, which a Home Assistant host uploading to
AWS does not: when its PID is known (a server of its own, or from scripts/bench), the
server runs at nice 19 (S3_GLACIER_BENCH_SERVER_NICE; empty: unchanged) during this
benchmark, so that Home Assistant's threads get the CPU when they want it, while the
server still takes what is left.

Environment: S3_GLACIER_BENCH_SIZE_MIB (default 1024), S3_GLACIER_BENCH_ROUNDS
(default 3), S3_GLACIER_BENCH_IDLE_S (the idle phase, default 2),
S3_GLACIER_BENCH_LAG_JSON (where to write the results; default
bench/results/loop_lag.json).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
import os
from pathlib import Path
import statistics
import time
from typing import Any

from common import (
    MIB,
    RESULTS,
    Endpoint,
    lag_report as report,
    machine,
    machine_line,
    write_distinct_mibs,
    write_json,
)
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

import custom_components.s3_glacier  # noqa: F401 - cached before the hass fixture loads it
from custom_components.s3_glacier.const import (
    CONF_ACCESS_KEY_ID,
    CONF_BUCKET,
    CONF_ENDPOINT_URL,
    CONF_PREFIX,
    CONF_REGION,
    CONF_SECRET_ACCESS_KEY,
    CONF_TARGET,
    DOMAIN,
    TARGET_BUCKET,
)

BUCKET = "bench"
PROBE_INTERVAL = 0.01
IDLE_SECONDS = float(os.environ.get("S3_GLACIER_BENCH_IDLE_S", "2"))


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A large file of distinct MiBs (S3_GLACIER_BENCH_SIZE_MIB, default 1024)."""
    return write_distinct_mibs(tmp_path / "files" / "large.bin")


@pytest.fixture
async def entry(
    hass: HomeAssistant, endpoint: Endpoint, source: Path
) -> AsyncIterator[MockConfigEntry]:
    """A loaded entry on the local server, with the integration's default options."""
    hass.config.config_dir = str(source.parent.parent / "config")
    Path(hass.config.config_dir, ".storage").mkdir(parents=True)
    hass.config.allowlist_external_dirs = {str(source.parent)}
    config_entry = MockConfigEntry(
        domain=DOMAIN,
        title=f"{BUCKET}/lag",
        data={
            CONF_ACCESS_KEY_ID: endpoint.access_key_id,
            CONF_SECRET_ACCESS_KEY: endpoint.secret_access_key,
            CONF_REGION: endpoint.region,
            CONF_ENDPOINT_URL: endpoint.url,
            CONF_BUCKET: BUCKET,
            CONF_PREFIX: "lag",
            CONF_TARGET: TARGET_BUCKET,
        },
    )
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    yield config_entry
    assert await hass.config_entries.async_unload(config_entry.entry_id)


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def _probed(work: Callable[[], Awaitable[Any]]) -> dict[str, Any]:
    """Run ``work`` while a probe measures how late 10 ms sleeps wake up."""
    samples: list[float] = []
    done = asyncio.Event()

    async def probe() -> None:
        while not done.is_set():
            started = time.perf_counter()
            await asyncio.sleep(PROBE_INTERVAL)
            samples.append(time.perf_counter() - started - PROBE_INTERVAL)

    task = asyncio.create_task(probe())
    started = time.perf_counter()
    try:
        await work()
    finally:
        seconds = time.perf_counter() - started
        done.set()
        await task
    return {
        "seconds": seconds,
        "samples": len(samples),
        "p50_ms": statistics.median(samples) * 1e3,
        "p99_ms": _percentile(samples, 0.99) * 1e3,
        "max_ms": max(samples) * 1e3,
    }


def _server_nice(pid: int | None, value: int | None) -> int | None:
    """Set the niceness of the local server; return the old one."""
    if not pid or value is None:
        return None
    old = os.getpriority(os.PRIO_PROCESS, pid)
    os.setpriority(os.PRIO_PROCESS, pid, value)
    return old


@pytest.mark.timeout(1800)
async def test_loop_lag_during_transfers(
    hass: HomeAssistant, entry: MockConfigEntry, endpoint: Endpoint, source: Path
) -> None:
    """Measure; write the table and the JSON."""
    size_mib = source.stat().st_size // MIB
    rounds = int(os.environ.get("S3_GLACIER_BENCH_ROUNDS", "3"))
    nice = os.environ.get("S3_GLACIER_BENCH_SERVER_NICE", "19")
    with_reference = os.environ.get("S3_GLACIER_BENCH_REFERENCE", "1") == "1"
    restored = source.parent / "restored"
    restored.mkdir()
    reference = endpoint.client()

    async def call(action: str, **data: Any) -> None:
        await hass.services.async_call(DOMAIN, action, data, blocking=True, return_response=True)

    def key(number: int) -> str:
        return f"lag/{number}/{source.name}"

    old_nice = _server_nice(endpoint.pid, int(nice) if nice else None)
    try:
        runs: dict[str, list[dict[str, Any]]] = {
            "idle": [await _probed(lambda: asyncio.sleep(IDLE_SECONDS))]
        }
        for number in range(rounds):
            phases = {
                "archive (s3_glacier.archive)": lambda n=number: call(
                    "archive", path=str(source), key=key(n)
                ),
                "restore (s3_glacier.restore)": lambda n=number: call(
                    "restore", key=key(n), destination=str(restored), overwrite=True
                ),
            }
            if with_reference:
                phases["boto3 upload_file in the executor"] = (
                    lambda n=number: hass.async_add_executor_job(
                        reference.upload_file, str(source), BUCKET, f"lag/boto3-{n}.bin"
                    )
                )
            for name, work in phases.items():
                runs.setdefault(name, []).append(await _probed(work))
            assert (restored / source.name).stat().st_size == source.stat().st_size
            for stale in (key(number), f"lag/boto3-{number}.bin"):
                reference.delete_object(Bucket=BUCKET, Key=stale)  # absent: no error
    finally:
        _server_nice(endpoint.pid, old_nice)

    result = {
        "benchmark": "loop lag",
        "size_mib": size_mib,
        "rounds": rounds,
        "server_nice": int(nice) if nice and endpoint.pid else 0,
        "probe_interval_ms": PROBE_INTERVAL * 1e3,
        "phases": {
            name: {
                "best": min(measured, key=lambda m: (m["p99_ms"], m["max_ms"])),
                "worst": max(measured, key=lambda m: (m["p99_ms"], m["max_ms"])),
                "rounds": measured,
            }
            for name, measured in runs.items()
        },
        "machine": machine(),
    }
    print()
    print(machine_line(result["machine"]))
    print(report(result))
    write_json(Path(os.environ.get("S3_GLACIER_BENCH_LAG_JSON", RESULTS / "loop_lag.json")), result)
