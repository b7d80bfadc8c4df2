"""Recording states at known times and reading back what the history export wrote."""

from __future__ import annotations

import csv
from datetime import datetime
import gzip
import io
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)

from .conftest import BUCKET

HEADER = ["entity_id", "state", "last_changed", "last_updated", "attributes"]


async def record_state(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    when: datetime,
    entity_id: str,
    state: str,
    attributes: dict[str, Any] | None = None,
) -> None:
    """Set ``entity_id`` to ``state`` at ``when`` and wait until the recorder has it."""
    freezer.move_to(when)
    hass.states.async_set(entity_id, state, attributes)
    await async_wait_recording_done(hass)


def export_rows(s3: Any, key: str) -> list[list[str]]:
    """The CSV rows of one gzipped export file in the test bucket."""
    body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    with gzip.open(io.BytesIO(body), "rt", encoding="utf-8", newline="") as text:
        return list(csv.reader(text))


def bucket_keys(s3: Any) -> list[str]:
    """Every key in the test bucket, in S3's (lexical) order."""
    return [obj["Key"] for obj in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
