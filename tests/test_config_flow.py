"""Config flow: every step and every error path, against moto (in process and over HTTP)."""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.s3_glacier.archive.errors import ArchiveError
from custom_components.s3_glacier.archive.s3 import S3Target
from custom_components.s3_glacier.const import (
    CONF_ACCESS_KEY_ID,
    CONF_BUCKET,
    CONF_CONCURRENCY,
    CONF_ENCRYPTION,
    CONF_ENDPOINT_URL,
    CONF_KMS_KEY_ID,
    CONF_PART_SIZE_MIB,
    CONF_PREFIX,
    CONF_PRICE_OVERRIDES,
    CONF_RECONCILE_HOURS,
    CONF_REGION,
    CONF_SECRET_ACCESS_KEY,
    CONF_STORAGE_CLASS,
    CONF_TARGET,
    DOMAIN,
)

from .conftest import ACCESS_KEY_ID, BUCKET, REGION, SECRET_ACCESS_KEY, MotoServer

USER_INPUT: dict[str, Any] = {
    CONF_ACCESS_KEY_ID: ACCESS_KEY_ID,
    CONF_SECRET_ACCESS_KEY: SECRET_ACCESS_KEY,
    CONF_REGION: REGION,
    CONF_BUCKET: BUCKET,
    CONF_PREFIX: "/ha/",
}


async def _bucket_form(hass: HomeAssistant) -> str:
    """Open the flow, pick the bucket target from the menu; return the flow id."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.MENU
    assert result["menu_options"] == ["bucket", "vault"]
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "bucket"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "bucket"
    assert result["errors"] == {}
    return result["flow_id"]


@pytest.mark.usefixtures("aws")
async def test_create_bucket_entry(hass: HomeAssistant) -> None:
    """Keys, region, bucket and prefix checked with a real head_bucket create the entry."""
    flow_id = await _bucket_form(hass)
    result = await hass.config_entries.flow.async_configure(flow_id, USER_INPUT)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == f"{BUCKET}/ha"
    assert result["data"] == {
        CONF_ACCESS_KEY_ID: ACCESS_KEY_ID,
        CONF_SECRET_ACCESS_KEY: SECRET_ACCESS_KEY,
        CONF_REGION: REGION,
        CONF_BUCKET: BUCKET,
        CONF_PREFIX: "ha",
        CONF_TARGET: "bucket",
    }
    assert result["options"] == {CONF_STORAGE_CLASS: "GLACIER_IR", CONF_ENCRYPTION: "AES256"}
    assert result["result"].unique_id == f"{REGION}|{BUCKET}|ha"
    await hass.async_block_till_done()


@pytest.mark.usefixtures("aws")
async def test_title_without_prefix(hass: HomeAssistant) -> None:
    """No prefix: the title is the bucket alone, and an empty prefix is not stored."""
    flow_id = await _bucket_form(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {**USER_INPUT, CONF_PREFIX: " "}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == BUCKET
    assert CONF_PREFIX not in result["data"]
    assert result["result"].unique_id == f"{REGION}|{BUCKET}|"
    await hass.async_block_till_done()


async def test_create_entry_with_endpoint(hass: HomeAssistant, moto_endpoint: MotoServer) -> None:
    """An S3-compatible endpoint over real HTTP; the endpoint is part of the unique id."""
    flow_id = await _bucket_form(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {**USER_INPUT, CONF_ENDPOINT_URL: f"{moto_endpoint.url}/"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_ENDPOINT_URL] == moto_endpoint.url
    assert result["result"].unique_id == f"{moto_endpoint.url}|{BUCKET}|ha"
    await hass.async_block_till_done()


@pytest.mark.parametrize(
    ("changes", "field", "error"),
    [
        ({CONF_BUCKET: "no-such-bucket"}, CONF_BUCKET, "bucket_not_found"),
        ({CONF_BUCKET: "not a bucket!"}, CONF_BUCKET, "invalid_name"),
        ({CONF_BUCKET: "   "}, CONF_BUCKET, "required"),
        ({CONF_REGION: "not a region!"}, CONF_REGION, "invalid_region"),
        ({CONF_ENDPOINT_URL: "http://user:pw@127.0.0.1:9"}, CONF_ENDPOINT_URL, "invalid_endpoint"),
        ({CONF_ENDPOINT_URL: "s3.example.com"}, CONF_ENDPOINT_URL, "invalid_endpoint"),
        ({CONF_ENDPOINT_URL: "ftp://s3.example.com"}, CONF_ENDPOINT_URL, "invalid_endpoint"),
        ({CONF_ENDPOINT_URL: "http://127.0.0.1:notaport"}, CONF_ENDPOINT_URL, "invalid_endpoint"),
    ],
)
@pytest.mark.usefixtures("aws")
async def test_form_errors_then_recover(
    hass: HomeAssistant, changes: dict[str, str], field: str, error: str
) -> None:
    """Each bad value gets its own translated error; correcting it creates the entry."""
    flow_id = await _bucket_form(hass)
    result = await hass.config_entries.flow.async_configure(flow_id, {**USER_INPUT, **changes})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {field: error}
    result = await hass.config_entries.flow.async_configure(flow_id, USER_INPUT)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()


async def test_invalid_auth(hass: HomeAssistant, moto_auth: dict[str, str]) -> None:
    """Keys the service does not know → invalid_auth; the right keys then pass."""
    flow_id = await _bucket_form(hass)
    result = await hass.config_entries.flow.async_configure(flow_id, USER_INPUT)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "invalid_auth"}
    result = await hass.config_entries.flow.async_configure(flow_id, {**USER_INPUT, **moto_auth})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()


@pytest.mark.usefixtures("aws", "socket_enabled")
async def test_cannot_connect(hass: HomeAssistant, closed_port: int) -> None:
    """Nothing listens at the endpoint → cannot_connect, after one attempt."""
    flow_id = await _bucket_form(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {**USER_INPUT, CONF_ENDPOINT_URL: f"http://127.0.0.1:{closed_port}"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cannot_connect"}


@pytest.mark.usefixtures("aws")
async def test_unknown_error(hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch) -> None:
    """An answer the flow does not know → unknown (logged), and the form stays."""

    def odd_answer(self: S3Target) -> None:
        raise ArchiveError("InternalError")

    monkeypatch.setattr(S3Target, "check", odd_answer)
    flow_id = await _bucket_form(hass)
    result = await hass.config_entries.flow.async_configure(flow_id, USER_INPUT)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "unknown"}


@pytest.mark.usefixtures("aws")
async def test_already_configured(hass: HomeAssistant, mock_config_entry: MockConfigEntry) -> None:
    """The same endpoint/region, bucket and prefix twice → abort."""
    mock_config_entry.add_to_hass(hass)
    flow_id = await _bucket_form(hass)
    result = await hass.config_entries.flow.async_configure(flow_id, USER_INPUT)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_reauth(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, moto_auth: dict[str, str]
) -> None:
    """Reauth asks for new keys, refuses wrong ones and saves working ones."""
    mock_config_entry.add_to_hass(hass)
    result = await mock_config_entry.start_reauth_flow(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reauth_confirm"
    assert result["description_placeholders"] == {"name": mock_config_entry.title}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {CONF_ACCESS_KEY_ID: "AKIDWRONG", CONF_SECRET_ACCESS_KEY: "wrong"},
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "invalid_auth"}

    result = await hass.config_entries.flow.async_configure(result["flow_id"], moto_auth)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert mock_config_entry.data[CONF_ACCESS_KEY_ID] == moto_auth[CONF_ACCESS_KEY_ID]
    assert mock_config_entry.data[CONF_SECRET_ACCESS_KEY] == moto_auth[CONF_SECRET_ACCESS_KEY]
    assert mock_config_entry.data[CONF_BUCKET] == BUCKET
    await hass.async_block_till_done()


@pytest.mark.usefixtures("aws")
async def test_reconfigure(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, s3: Any
) -> None:
    """Reconfigure checks the new location, then updates data, title and unique id."""
    s3.create_bucket(Bucket="other-bucket")
    mock_config_entry.add_to_hass(hass)
    result = await mock_config_entry.start_reconfigure_flow(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure"

    new_location = {CONF_REGION: REGION, CONF_BUCKET: "missing", CONF_PREFIX: "photos"}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], new_location)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_BUCKET: "bucket_not_found"}

    new_location[CONF_BUCKET] = "other-bucket"
    result = await hass.config_entries.flow.async_configure(result["flow_id"], new_location)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert mock_config_entry.title == "other-bucket/photos"
    assert mock_config_entry.unique_id == f"{REGION}|other-bucket|photos"
    assert mock_config_entry.data[CONF_ACCESS_KEY_ID] == ACCESS_KEY_ID
    assert mock_config_entry.data[CONF_PREFIX] == "photos"
    await hass.async_block_till_done()


@pytest.mark.usefixtures("aws")
async def test_reconfigure_onto_another_entry(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> None:
    """Reconfiguring onto the location of another entry aborts."""
    mock_config_entry.add_to_hass(hass)
    other = MockConfigEntry(
        domain=DOMAIN,
        title=BUCKET,
        data={**mock_config_entry.data, CONF_PREFIX: "other"},
        unique_id=f"{REGION}|{BUCKET}|other",
    )
    other.add_to_hass(hass)
    result = await mock_config_entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_REGION: REGION, CONF_BUCKET: BUCKET, CONF_PREFIX: "other"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


@pytest.mark.usefixtures("init_integration")
async def test_options(hass: HomeAssistant, mock_config_entry: MockConfigEntry) -> None:
    """Options: class, encryption (a KMS key only with KMS), transfers, reconcile, prices."""
    result = await hass.config_entries.options.async_init(mock_config_entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            CONF_STORAGE_CLASS: "DEEP_ARCHIVE",
            CONF_ENCRYPTION: "aws:kms",
            CONF_KMS_KEY_ID: "alias/archive",
            CONF_PART_SIZE_MIB: 8.0,
            CONF_CONCURRENCY: 2.0,
            CONF_RECONCILE_HOURS: 12.0,
            CONF_PRICE_OVERRIDES: {"DEEP_ARCHIVE": 0.002},
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert mock_config_entry.options == {
        CONF_STORAGE_CLASS: "DEEP_ARCHIVE",
        CONF_ENCRYPTION: "aws:kms",
        CONF_KMS_KEY_ID: "alias/archive",
        CONF_PART_SIZE_MIB: 8,
        CONF_CONCURRENCY: 2,
        CONF_RECONCILE_HOURS: 12,
        CONF_PRICE_OVERRIDES: {"DEEP_ARCHIVE": 0.002},
        "backup_storage_class": "glacier_ir",
    }
    await hass.async_block_till_done()
    attributes = hass.states.get("sensor.demo_archive_ha_estimated_monthly_cost").attributes
    assert attributes["overridden_prices"] == ["DEEP_ARCHIVE"]

    result = await hass.config_entries.options.async_init(mock_config_entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            CONF_STORAGE_CLASS: "GLACIER",
            CONF_ENCRYPTION: "none",
            CONF_KMS_KEY_ID: "stale",
            CONF_PART_SIZE_MIB: 16,
            CONF_CONCURRENCY: 4,
            CONF_RECONCILE_HOURS: 24,
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert mock_config_entry.options == {
        CONF_STORAGE_CLASS: "GLACIER",
        CONF_ENCRYPTION: "none",
        CONF_PART_SIZE_MIB: 16,
        CONF_CONCURRENCY: 4,
        CONF_RECONCILE_HOURS: 24,
        CONF_PRICE_OVERRIDES: {},
        "backup_storage_class": "glacier_ir",
    }


async def test_reconfigure_starts_a_new_catalog(
    hass: HomeAssistant, init_integration: MockConfigEntry, s3: Any, tmp_path: Any
) -> None:
    """Objects of the old location do not follow the entry to the new one."""
    hass.config.allowlist_external_dirs = {str(tmp_path.resolve())}
    (tmp_path / "a.bin").write_bytes(b"a")
    await hass.services.async_call(
        DOMAIN, "archive", {"path": str(tmp_path / "a.bin")}, blocking=True
    )
    assert hass.states.get("sensor.demo_archive_ha_archived_objects").state == "1"
    s3.create_bucket(Bucket="new-bucket")
    result = await init_integration.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_REGION: REGION, CONF_BUCKET: "new-bucket", CONF_PREFIX: "ha"}
    )
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done(wait_background_tasks=True)
    assert hass.states.get("sensor.demo_archive_ha_archived_objects").state == "0"
