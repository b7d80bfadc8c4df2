"""Waiting for the executor jobs Home Assistant starts, without sleeping."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from homeassistant.core import HomeAssistant
import pytest


class ExecutorJobs:
    """Records every executor job Home Assistant starts, to wait for them to end."""

    def __init__(self, hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch) -> None:
        self.futures: list[asyncio.Future[Any]] = []
        submit = hass.async_add_executor_job

        def recorded(target: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
            future = submit(target, *args)
            self.futures.append(future)
            return future

        monkeypatch.setattr(hass, "async_add_executor_job", recorded)

    def mark(self) -> int:
        """A point to settle from (jobs started before it are not waited for)."""
        return len(self.futures)

    async def settle(self, since: int) -> None:
        """Return once every job started since ``since`` ended and no task starts another."""
        while True:
            for _ in range(5):
                await asyncio.sleep(0)  # let woken tasks run to their next await
            running = [f for f in self.futures[since:] if not f.done()]
            if not running:
                return
            await asyncio.wait(running)
