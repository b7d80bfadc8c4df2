"""Config flow: every step and every error path, against moto (in process and over HTTP)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

import custom_components.s3_glacier
from custom_components.s3_glacier.archive.errors import ArchiveError
from custom_components.s3_glacier.archive.models import S3_STORAGE_CLASSES
from custom_components.s3_glacier.archive.s3 import S3Target
from custom_components.s3_glacier.const import (
    AWS_REGIONS,
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
from custom_components.s3_glacier.helpers import option_value

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
    assert result["options"] == {CONF_STORAGE_CLASS: "glacier_ir", CONF_ENCRYPTION: "aes256"}
    assert result["result"].minor_version == 2
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

    new_location = {
        CONF_ACCESS_KEY_ID: ACCESS_KEY_ID,
        CONF_REGION: REGION,
        CONF_BUCKET: "missing",
        CONF_PREFIX: "photos",
    }
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
        result["flow_id"],
        {
            CONF_ACCESS_KEY_ID: ACCESS_KEY_ID,
            CONF_REGION: REGION,
            CONF_BUCKET: BUCKET,
            CONF_PREFIX: "other",
        },
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


@pytest.mark.usefixtures("init_integration")
async def test_options(hass: HomeAssistant, mock_config_entry: MockConfigEntry) -> None:
    """Options: class, encryption, transfers, reconcile, prices; applied without a reload."""
    loaded = mock_config_entry.runtime_data
    result = await hass.config_entries.options.async_init(mock_config_entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            CONF_STORAGE_CLASS: "deep_archive",
            CONF_ENCRYPTION: "aws_kms",
            CONF_KMS_KEY_ID: "alias/archive",
            CONF_PART_SIZE_MIB: 8.0,
            CONF_CONCURRENCY: 2.0,
            CONF_RECONCILE_HOURS: 12.0,
            CONF_PRICE_OVERRIDES: {"DEEP_ARCHIVE": 0.002},
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert mock_config_entry.options == {
        CONF_STORAGE_CLASS: "deep_archive",
        CONF_ENCRYPTION: "aws_kms",
        CONF_KMS_KEY_ID: "alias/archive",
        CONF_PART_SIZE_MIB: 8,
        CONF_CONCURRENCY: 2,
        CONF_RECONCILE_HOURS: 12,
        CONF_PRICE_OVERRIDES: {"DEEP_ARCHIVE": 0.002},
        "backup_storage_class": "glacier_ir",
        "tier": "standard",
    }
    # The new prices show at once, from the same loaded entry (no reload).
    attributes = hass.states.get("sensor.demo_archive_ha_estimated_monthly_cost").attributes
    assert attributes["overridden_prices"] == ["DEEP_ARCHIVE"]
    assert mock_config_entry.runtime_data is loaded
    await hass.async_block_till_done()
    assert mock_config_entry.runtime_data is loaded

    result = await hass.config_entries.options.async_init(mock_config_entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            CONF_STORAGE_CLASS: "glacier",
            CONF_ENCRYPTION: "none",
            CONF_PART_SIZE_MIB: 16,
            CONF_CONCURRENCY: 4,
            CONF_RECONCILE_HOURS: 24,
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert mock_config_entry.options == {
        CONF_STORAGE_CLASS: "glacier",
        CONF_ENCRYPTION: "none",
        CONF_PART_SIZE_MIB: 16,
        CONF_CONCURRENCY: 4,
        CONF_RECONCILE_HOURS: 24,
        CONF_PRICE_OVERRIDES: {},
        "backup_storage_class": "glacier_ir",
        "tier": "standard",
    }


_VALID_OPTIONS: dict[str, Any] = {
    CONF_STORAGE_CLASS: "glacier_ir",
    CONF_ENCRYPTION: "aes256",
    CONF_PART_SIZE_MIB: 16,
    CONF_CONCURRENCY: 4,
    CONF_RECONCILE_HOURS: 24,
}


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        ({CONF_PART_SIZE_MIB: 1.0}, {CONF_PART_SIZE_MIB: "part_size_out_of_range"}),
        ({CONF_PART_SIZE_MIB: 129}, {CONF_PART_SIZE_MIB: "part_size_out_of_range"}),
        ({CONF_PART_SIZE_MIB: 6.5}, {CONF_PART_SIZE_MIB: "part_size_out_of_range"}),
        ({CONF_CONCURRENCY: 0}, {CONF_CONCURRENCY: "concurrency_out_of_range"}),
        ({CONF_RECONCILE_HOURS: 721}, {CONF_RECONCILE_HOURS: "reconcile_out_of_range"}),
        ({CONF_KMS_KEY_ID: "alias/archive"}, {CONF_KMS_KEY_ID: "kms_key_without_kms"}),
        (
            {CONF_ENCRYPTION: "none", CONF_KMS_KEY_ID: "alias/archive"},
            {CONF_KMS_KEY_ID: "kms_key_without_kms"},
        ),
    ],
)
@pytest.mark.usefixtures("init_integration")
async def test_options_field_errors(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    changes: dict[str, Any],
    errors: dict[str, str],
) -> None:
    """A bad value gets an error at its own field that states the range; nothing is saved."""
    before = dict(mock_config_entry.options)
    result = await hass.config_entries.options.async_init(mock_config_entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {**_VALID_OPTIONS, **changes}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == errors
    assert result["description_placeholders"] == {
        "part_size_min": "5",
        "part_size_max": "128",
        "concurrency_min": "1",
        "concurrency_max": "16",
        "reconcile_min": "1",
        "reconcile_max": "720",
    }
    assert mock_config_entry.options == before
    result = await hass.config_entries.options.async_configure(result["flow_id"], _VALID_OPTIONS)
    assert result["type"] is FlowResultType.CREATE_ENTRY


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
        result["flow_id"],
        {
            CONF_ACCESS_KEY_ID: ACCESS_KEY_ID,
            CONF_REGION: REGION,
            CONF_BUCKET: "new-bucket",
            CONF_PREFIX: "ha",
        },
    )
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done(wait_background_tasks=True)
    assert hass.states.get("sensor.demo_archive_ha_archived_objects").state == "0"


@pytest.mark.usefixtures("aws")
async def test_unexpected_exception_is_unknown(
    hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Any other exception while checking → unknown, logged with its traceback."""

    def broken(self: S3Target) -> None:
        raise RuntimeError("broken check")

    monkeypatch.setattr(S3Target, "check", broken)
    flow_id = await _bucket_form(hass)
    result = await hass.config_entries.flow.async_configure(flow_id, USER_INPUT)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "unknown"}
    [record] = [r for r in caplog.records if r.getMessage().startswith("Unexpected error")]
    assert record.exc_info is not None
    assert "broken check" in str(record.exc_info[1])


@pytest.mark.usefixtures("aws")
async def test_invalid_endpoint_names_an_example(hass: HomeAssistant) -> None:
    """The endpoint example is a placeholder: strings.json holds no URL."""
    flow_id = await _bucket_form(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {**USER_INPUT, CONF_ENDPOINT_URL: "s3.example.com"}
    )
    assert result["errors"] == {CONF_ENDPOINT_URL: "invalid_endpoint"}
    assert result["description_placeholders"] == {"endpoint_example": "https://s3.example.com"}


@pytest.fixture
def eu_bucket(aws: None) -> str:
    """A bucket that AWS keeps in eu-west-1."""
    boto3.client("s3", region_name="eu-west-1").create_bucket(
        Bucket="eu-archive", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    return "eu-archive"


async def test_bucket_entered_with_wrong_region(hass: HomeAssistant, eu_bucket: str) -> None:
    """The bucket's real region is stored, priced and in the unique ID; no second entry."""
    flow_id = await _bucket_form(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {**USER_INPUT, CONF_BUCKET: eu_bucket, CONF_REGION: "us-east-1"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_REGION] == "eu-west-1"
    assert result["result"].unique_id == f"eu-west-1|{eu_bucket}|ha"
    await hass.async_block_till_done(wait_background_tasks=True)
    cost = hass.states.get("sensor.eu_archive_ha_estimated_monthly_cost")
    assert cost.attributes["priced_region"] == "eu-west-1"

    for region in ("us-east-1", "ap-southeast-2", "eu-west-1"):
        flow_id = await _bucket_form(hass)
        result = await hass.config_entries.flow.async_configure(
            flow_id, {**USER_INPUT, CONF_BUCKET: eu_bucket, CONF_REGION: region}
        )
        assert result["type"] is FlowResultType.ABORT, region
        assert result["reason"] == "already_configured"
    assert len(hass.config_entries.async_entries(DOMAIN)) == 1


async def test_reconfigure_stores_the_real_region(
    hass: HomeAssistant, init_integration: MockConfigEntry, eu_bucket: str
) -> None:
    """Reconfiguring to a bucket of another region stores that region, not the one typed."""
    result = await init_integration.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {CONF_ACCESS_KEY_ID: ACCESS_KEY_ID, CONF_REGION: REGION, CONF_BUCKET: eu_bucket},
    )
    assert result["reason"] == "reconfigure_successful"
    assert init_integration.data[CONF_REGION] == "eu-west-1"
    assert init_integration.unique_id == f"eu-west-1|{eu_bucket}|"
    await hass.async_block_till_done(wait_background_tasks=True)


async def test_reconfigure_without_changes(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """Submitting the same keys and location says so, and does not reload the entry."""
    loaded = init_integration.runtime_data
    result = await init_integration.start_reconfigure_flow(hass)
    suggested = {
        str(field): (field.description or {}).get("suggested_value")
        for field in result["data_schema"].schema
    }
    # The keys can change here too; the stored secret is never sent to the browser.
    assert suggested[CONF_ACCESS_KEY_ID] == ACCESS_KEY_ID
    assert suggested[CONF_SECRET_ACCESS_KEY] is None
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            CONF_ACCESS_KEY_ID: ACCESS_KEY_ID,
            CONF_REGION: REGION,
            CONF_BUCKET: BUCKET,
            CONF_PREFIX: "ha",
        },
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "no_changes"
    await hass.async_block_till_done(wait_background_tasks=True)
    assert init_integration.runtime_data is loaded


async def test_reconfigure_changes_the_keys(
    hass: HomeAssistant, init_integration: MockConfigEntry, moto_auth: dict[str, str]
) -> None:
    """New keys are checked before they are saved; an empty secret keeps the stored one."""
    location = {CONF_REGION: REGION, CONF_BUCKET: BUCKET, CONF_PREFIX: "ha"}
    result = await init_integration.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_ACCESS_KEY_ID: moto_auth[CONF_ACCESS_KEY_ID], **location}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "invalid_auth"}  # new key ID, old secret

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {**moto_auth, **location}
    )
    assert result["reason"] == "reconfigure_successful"
    assert init_integration.data[CONF_ACCESS_KEY_ID] == moto_auth[CONF_ACCESS_KEY_ID]
    assert init_integration.data[CONF_SECRET_ACCESS_KEY] == moto_auth[CONF_SECRET_ACCESS_KEY]
    await hass.async_block_till_done(wait_background_tasks=True)
    assert init_integration.state is ConfigEntryState.LOADED


def _english() -> dict[str, Any]:
    path = Path(custom_components.s3_glacier.__file__).parent / "translations" / "en.json"
    return dict(json.loads(path.read_text()))


def test_vault_options_text_is_about_vaults() -> None:
    """The vault's options speak of vaults only, with one set of retrieval times."""
    english = _english()
    texts = json.dumps(
        [
            english["options"]["step"]["vault"],
            english["selector"]["vault_tier"],
            english["selector"]["vault_part_size"],
        ]
    )
    for s3_thing in ("class", "Deep Archive", "S3", "compatible"):
        assert s3_thing not in texts
    tier = english["options"]["step"]["vault"]["data_description"]["tier"]
    labels = english["selector"]["vault_tier"]["options"]
    for name, time in (
        ("expedited", "1\N{EN DASH}5 minutes"),
        ("standard", "3\N{EN DASH}5 hours"),
        ("bulk", "5\N{EN DASH}12 hours"),
    ):
        assert time in tier
        assert time in labels[name]


def test_regions_are_named_and_class_names_agree() -> None:
    """Each offered region has a name; options and price overrides name classes alike."""
    english = _english()
    regions = english["selector"]["region"]["options"]
    assert set(regions) == set(AWS_REGIONS)
    assert regions["us-east-1"] == "US East (N. Virginia) \N{EN DASH} us-east-1"
    classes = english["selector"]["storage_class"]["options"]
    prices = english["options"]["step"]["init"]["sections"]["price_overrides"]["data"]
    for storage_class in S3_STORAGE_CLASSES:
        assert prices[str(storage_class)].startswith(classes[option_value(storage_class)])
    messages = [m["message"] for m in english["exceptions"].values()]
    messages += list(english["config"]["error"].values())
    messages += list(english["options"]["error"].values())
    assert [m for m in messages if "`" in m] == []


@pytest.fixture
def reader_keys(aws: None) -> dict[str, str]:
    """Keys of an IAM user that may read objects but not list (or HEAD) the bucket.

    Made before ``moto_auth`` turns authorisation on.
    """
    iam = boto3.client("iam", region_name=REGION)
    iam.create_user(UserName="reader")
    iam.put_user_policy(
        UserName="reader",
        PolicyName="objects-only",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::*/*"}
                ],
            }
        ),
    )
    key = iam.create_access_key(UserName="reader")["AccessKey"]
    return {CONF_ACCESS_KEY_ID: key["AccessKeyId"], CONF_SECRET_ACCESS_KEY: key["SecretAccessKey"]}


async def test_keys_without_the_bucket_permission(
    hass: HomeAssistant, reader_keys: dict[str, str], moto_auth: dict[str, str]
) -> None:
    """Valid keys whose policy does not allow the bucket check: access_denied, not invalid_auth.

    New keys would not help; the policy needs s3:ListBucket (the form says so).
    """
    flow_id = await _bucket_form(hass)
    result = await hass.config_entries.flow.async_configure(flow_id, {**USER_INPUT, **reader_keys})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "access_denied"}
    result = await hass.config_entries.flow.async_configure(flow_id, {**USER_INPUT, **moto_auth})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
