"""The periodic check and reconcile: a bucket gone, a cleanup that fails."""

from __future__ import annotations

from typing import Any

from botocore.awsrequest import AWSResponse
from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.s3_glacier.const import DOMAIN

from .conftest import BUCKET
from .helpers import next_check, our_issues

SIZE_SENSOR = "sensor.demo_archive_ha_archived_size"


async def test_bucket_gone_raises_a_repair_issue_until_it_is_back(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    s3: Any,
    freezer: FrozenDateTimeFactory,
) -> None:
    s3.delete_bucket(Bucket=BUCKET)
    await next_check(hass, freezer)
    (issue,) = our_issues(hass)
    assert issue.translation_key == "bucket_not_found"
    assert issue.translation_placeholders == {"title": init_integration.title, "bucket": BUCKET}
    assert hass.states.get(SIZE_SENSOR).state == STATE_UNAVAILABLE
    assert hass.config_entries.flow.async_progress_by_handler(DOMAIN) == []

    s3.create_bucket(Bucket=BUCKET)
    await next_check(hass, freezer)
    assert our_issues(hass) == []
    assert hass.states.get(SIZE_SENSOR).state != STATE_UNAVAILABLE


async def test_failed_upload_cleanup_does_not_stop_the_reconcile(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    s3: Any,
) -> None:
    """The cleanup of abandoned uploads is best effort: when its listing fails (here
    with S3's 500 InternalError), the refresh still lists and reconciles."""
    s3.put_object(Bucket=BUCKET, Key="ha/new.bin", Body=b"12345")
    failed: list[str] = []

    def internal_error(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        failed.append("ListMultipartUploads")
        error = {"Error": {"Code": "InternalError", "Message": "We encountered an internal error"}}
        response = AWSResponse("http://127.0.0.1", 500, {}, None)
        return response, {**error, "ResponseMetadata": {"HTTPStatusCode": 500}}

    events = init_integration.runtime_data.target._client.meta.events
    events.register("before-call.s3.ListMultipartUploads", internal_error)
    response = await hass.services.async_call(
        DOMAIN, "refresh", {}, blocking=True, return_response=True
    )
    assert failed  # the cleanup was tried (and retried) and failed
    assert response == {"added": 1, "removed": 0, "changed": 0, "objects": 1, "bytes": 5}
    assert our_issues(hass) == []
    assert hass.states.get(SIZE_SENSOR).state != STATE_UNAVAILABLE
