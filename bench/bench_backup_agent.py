"""Benchmark: one backup uploaded by this integration's agent and by Home Assistant's
built-in AWS S3 agent, side by side on one local S3 server.

Not a test (not collected by scripts/test). A pytest file because the Home Assistant
test harness is the practical way to run a real core on this loop:

    .venv/bin/python -m pytest bench/bench_backup_agent.py -p no:cacheprovider -s

Both agents get the same ``open_stream``: a local file read in 1 MiB chunks through the
executor, as Home Assistant streams a backup. For each agent: wall time, the process's
peak RSS during the upload (VmHWM, reset before each run) and the event loop's lag
(a probe sleeping 10 ms, how late it wakes). The built-in agent needs aiobotocore
(installed with Home Assistant's aws_s3 requirements); without it only ours runs.

Peak RSS is only comparable between runs in separate processes (memory freed by the
first run is reused by the second without growing RSS): S3_GLACIER_BENCH_AGENT=ours or
builtin runs one agent only (default: both, ours first).

Environment: S3_GLACIER_BENCH_SIZE_MIB (default 1024), S3_GLACIER_BENCH_AGENT,
S3_GLACIER_BENCH_BACKUP_JSON (default bench/results/backup_agent.json), and the entry's
part size and concurrency options (S3_GLACIER_BENCH_PART_MIB, S3_GLACIER_BENCH_CONCURRENCY;
default: the integration's defaults; backups never exceed ``BACKUP_PART_SIZE`` and
``BACKUP_PARTS_IN_FLIGHT``, so raise those to try larger settings); the row names what
the agent used.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
import importlib.util
import os
from pathlib import Path
import re
import statistics
import time
from typing import Any

from common import (
    MIB,
    RESULTS,
    Endpoint,
    machine,
    machine_line,
    table,
    write_distinct_mibs,
    write_json,
)
from homeassistant.components.backup import AgentBackup
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

import custom_components.s3_glacier  # noqa: F401 - cached before the hass fixture loads it
from custom_components.s3_glacier.backup_agent import (
    S3GlacierBackupAgent,
    backup_transfer_options,
)
from custom_components.s3_glacier.const import (
    CONF_ACCESS_KEY_ID,
    CONF_BUCKET,
    CONF_CONCURRENCY,
    CONF_ENDPOINT_URL,
    CONF_PART_SIZE_MIB,
    CONF_PREFIX,
    CONF_REGION,
    CONF_SECRET_ACCESS_KEY,
    CONF_TARGET,
    DOMAIN,
    TARGET_BUCKET,
)

BUCKET = "bench"
PROBE_INTERVAL = 0.01


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """The backup file: distinct MiBs (S3_GLACIER_BENCH_SIZE_MIB, default 1024)."""
    return write_distinct_mibs(tmp_path / "backup.tar")


def _part_options() -> dict[str, int]:
    """The entry's part size and concurrency options, where the environment sets them."""
    given = {
        CONF_PART_SIZE_MIB: os.environ.get("S3_GLACIER_BENCH_PART_MIB"),
        CONF_CONCURRENCY: os.environ.get("S3_GLACIER_BENCH_CONCURRENCY"),
    }
    return {key: int(value) for key, value in given.items() if value}


def _backup(name: str, size: int) -> AgentBackup:
    return AgentBackup(
        addons=[],
        backup_id=f"bench-{name}",
        date="2026-11-27T09:00:00.000000+00:00",
        database_included=True,
        extra_metadata={},
        folders=[],
        homeassistant_included=True,
        homeassistant_version="2026.2.3",
        name=name,
        protected=False,
        size=size,
    )


def _open_stream(hass: HomeAssistant, path: Path) -> Callable[[], Awaitable[AsyncIterator[bytes]]]:
    async def _open() -> AsyncIterator[bytes]:
        handle = await hass.async_add_executor_job(path.open, "rb")

        async def _chunks() -> AsyncIterator[bytes]:
            try:
                while chunk := await hass.async_add_executor_job(handle.read, MIB):
                    yield chunk
            finally:
                await hass.async_add_executor_job(handle.close)

        return _chunks()

    return _open


def _reset_peak_rss() -> None:
    """Reset the process's VmHWM (Linux: writing 5 to clear_refs)."""
    Path("/proc/self/clear_refs").write_text("5")


def _rss_mib(field: str) -> float:
    """VmHWM (peak) or VmRSS (now) of this process, in MiB."""
    status = Path("/proc/self/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) / 1024 if match else float("nan")


async def _measured(work: Callable[[], Awaitable[Any]]) -> dict[str, Any]:
    samples: list[float] = []
    done = asyncio.Event()

    async def probe() -> None:
        while not done.is_set():
            started = time.perf_counter()
            await asyncio.sleep(PROBE_INTERVAL)
            samples.append(time.perf_counter() - started - PROBE_INTERVAL)

    _reset_peak_rss()
    baseline = _rss_mib("VmRSS")
    task = asyncio.create_task(probe())
    started = time.perf_counter()
    try:
        await work()
    finally:
        seconds = time.perf_counter() - started
        done.set()
        await task
    ordered = sorted(samples)
    return {
        "seconds": round(seconds, 2),
        "peak_rss_mib": round(_rss_mib("VmHWM"), 1),
        "peak_over_start_mib": round(_rss_mib("VmHWM") - baseline, 1),
        "lag_p50_ms": round(statistics.median(ordered) * 1e3, 2),
        "lag_p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1e3, 2),
        "lag_max_ms": round(ordered[-1] * 1e3, 2),
    }


@pytest.mark.timeout(3600)
async def test_backup_upload_side_by_side(
    hass: HomeAssistant, endpoint: Endpoint, source: Path, tmp_path: Path
) -> None:
    """Upload the same backup with each agent; print and save the figures."""
    hass.config.config_dir = str(tmp_path / "config")
    Path(hass.config.config_dir, ".storage").mkdir(parents=True)
    size = source.stat().st_size
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=f"{BUCKET}/ours",
        data={
            CONF_ACCESS_KEY_ID: endpoint.access_key_id,
            CONF_SECRET_ACCESS_KEY: endpoint.secret_access_key,
            CONF_REGION: endpoint.region,
            CONF_ENDPOINT_URL: endpoint.url,
            CONF_BUCKET: BUCKET,
            CONF_PREFIX: "ours",
            CONF_TARGET: TARGET_BUCKET,
        },
        options={"backup_storage_class": "standard", **_part_options()},
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)

    results: dict[str, dict[str, Any]] = {}
    which = os.environ.get("S3_GLACIER_BENCH_AGENT", "both")
    if which in ("both", "ours"):
        ours = S3GlacierBackupAgent(hass, entry)
        used = backup_transfer_options(entry)
        label = f"s3_glacier ({used.part_size // MIB} MiB parts, {used.concurrency} at a time)"
        results[label] = await _measured(
            lambda: ours.async_upload_backup(
                open_stream=_open_stream(hass, source), backup=_backup("ours", size)
            )
        )

    if which in ("both", "builtin") and importlib.util.find_spec("aiobotocore") is not None:
        from aiobotocore.session import get_session  # noqa: PLC0415 - optional
        from homeassistant.components.aws_s3.backup import S3BackupAgent  # noqa: PLC0415

        async with get_session().create_client(
            "s3",
            endpoint_url=endpoint.url,
            region_name=endpoint.region,
            aws_access_key_id=endpoint.access_key_id,
            aws_secret_access_key=endpoint.secret_access_key,
        ) as client:
            builtin_entry = MockConfigEntry(domain="aws_s3", data={"bucket": BUCKET})
            builtin_entry.runtime_data = client
            builtin = S3BackupAgent(hass, builtin_entry)
            results["aws_s3 built-in (20 MiB parts, one at a time)"] = await _measured(
                lambda: builtin.async_upload_backup(
                    open_stream=_open_stream(hass, source), backup=_backup("builtin", size)
                )
            )
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)

    rows = [
        [
            name,
            r["seconds"],
            round(size / MIB / r["seconds"], 1),
            r["peak_rss_mib"],
            r["peak_over_start_mib"],
            r["lag_p50_ms"],
            r["lag_p99_ms"],
            r["lag_max_ms"],
        ]
        for name, r in results.items()
    ]
    info = machine()
    print()
    print(f"Backup upload, {size // MIB} MiB, {machine_line(info)}")
    print(
        table(
            ["agent", "s", "MiB/s", "peak RSS MiB", "over start", "lag p50 ms", "p99 ms", "max ms"],
            rows,
        )
    )
    out = Path(os.environ.get("S3_GLACIER_BENCH_BACKUP_JSON", RESULTS / "backup_agent.json"))
    write_json(out, {"size": size, "machine": info, "results": results})
