"""A lease's executor job that fails after its caller was cancelled."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading

from homeassistant.core import HomeAssistant
import pytest

from custom_components.s3_glacier.data import Lease


async def test_failed_job_of_a_cancelled_caller_is_collected(
    hass: HomeAssistant, caplog: pytest.LogCaptureFixture
) -> None:
    """The job's error is logged once at debug, never as an unretrieved future."""
    go = threading.Event()
    released: list[str] = []
    all_released = asyncio.Event()

    def give_back() -> None:
        released.append("slot")
        all_released.set()

    def job() -> None:
        go.wait(5)
        raise OSError("disk full")

    lease = Lease(hass, [give_back])
    caller = hass.async_create_task(lease.run(job))
    await asyncio.sleep(0)
    caller.cancel()
    lease.leave()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert released == []
    caplog.set_level(logging.DEBUG)
    go.set()
    async with asyncio.timeout(5):
        await all_released.wait()
    gc.collect()
    await hass.async_block_till_done()

    assert released == ["slot"]
    assert "never retrieved" not in caplog.text
    assert [r.getMessage() for r in caplog.records if "disk full" in r.getMessage()] == [
        "A job went on after its action was cancelled and failed: disk full"
    ]
