"""Fixtures the benchmarks that run inside Home Assistant's test harness share."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from common import BUCKET, Endpoint, ensure_bucket, local_s3
import pytest


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load the integration from custom_components."""


@pytest.fixture(autouse=True)
def enable_event_loop_debug() -> None:
    """Override the harness's fixture: a production loop does not run in debug mode."""
    asyncio.get_event_loop().set_debug(False)


@pytest.fixture
def endpoint(socket_enabled: None) -> Iterator[Endpoint]:
    """The local S3 server with the benchmark bucket."""
    with local_s3() as given:
        ensure_bucket(given, BUCKET)
        yield given
