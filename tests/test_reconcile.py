"""The reconcile streams the bucket's listing: what an action records meanwhile stays."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.s3_glacier.archive.models import ArchivedObject
from custom_components.s3_glacier.const import DOMAIN

from .conftest import BUCKET

OBJECTS = "sensor.demo_archive_ha_archived_objects"


async def test_archive_finished_during_the_listing_stays(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    s3: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An archive action that ends while refresh is listing keeps its row and sensor.

    The listing's page was read before the upload, so it cannot show the new object;
    before, the reconcile then dropped it until the next day's reconcile.
    """
    hass.config.allowlist_external_dirs = {str(tmp_path.resolve())}
    (tmp_path / "fresh.bin").write_bytes(b"f" * 500)
    for name in ("a.bin", "b.bin"):
        s3.put_object(Bucket=BUCKET, Key=f"ha/{name}", Body=b"x" * 100)
    target = init_integration.runtime_data.target
    list_bucket = target.iterate

    def listing_during_an_archive(*args: Any, **kwargs: Any) -> Iterator[ArchivedObject]:
        for number, listed in enumerate(list_bucket(*args, **kwargs)):
            if number == 1:
                archive = hass.services.async_call(
                    DOMAIN, "archive", {"path": str(tmp_path / "fresh.bin")}, blocking=True
                )
                # Bounded only so that a catalog locked for the listing fails the test.
                asyncio.run_coroutine_threadsafe(archive, hass.loop).result(timeout=30)
            yield listed

    monkeypatch.setattr(target, "iterate", listing_during_an_archive)
    response = await hass.services.async_call(
        DOMAIN, "refresh", {}, blocking=True, return_response=True
    )
    await hass.async_block_till_done()

    assert response == {"added": 2, "removed": 0, "changed": 0, "objects": 3, "bytes": 700}
    catalog = init_integration.runtime_data.catalog
    assert [o.key for o in catalog.objects()] == ["ha/a.bin", "ha/b.bin", "ha/fresh.bin"]
    assert hass.states.get(OBJECTS).state == "3"
