"""Setup, not-ready, auth failure → reauth, setup errors, unload."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import boto3
from homeassistant.config_entries import (
    SOURCE_REAUTH,
    ConfigEntry,
    ConfigEntryState,
    ConfigFlow,
    ConfigFlowResult,
)
from homeassistant.const import EVENT_HOMEASSISTANT_STOP
from homeassistant.core import Event, HomeAssistant
from homeassistant.helpers import issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.s3_glacier.archive.catalog import Catalog, CatalogError
from custom_components.s3_glacier.const import (
    CONF_ACCESS_KEY_ID,
    CONF_BUCKET,
    CONF_ENCRYPTION,
    CONF_ENDPOINT_URL,
    CONF_KMS_KEY_ID,
    CONF_PART_SIZE_MIB,
    CONF_PREFIX,
    CONF_REGION,
    CONF_SECRET_ACCESS_KEY,
    CONF_STORAGE_CLASS,
    CONF_TIER,
    DOMAIN,
)

from .conftest import BUCKET, BUCKET_DATA, REGION, SECRET_ACCESS_KEY


async def test_setup_and_unload(hass: HomeAssistant, init_integration: MockConfigEntry) -> None:
    """The entry loads with its target in runtime_data, and unloads cleanly."""
    entry = init_integration
    assert entry.state is ConfigEntryState.LOADED
    assert entry.runtime_data.target.bucket == BUCKET
    assert entry.runtime_data.target.prefix == "ha/"

    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.NOT_LOADED


@pytest.mark.usefixtures("aws", "socket_enabled", "one_attempt")
async def test_endpoint_unreachable_not_ready(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, closed_port: int
) -> None:
    """An endpoint that does not answer → not ready (Home Assistant retries later)."""
    mock_config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        mock_config_entry,
        data={**mock_config_entry.data, CONF_ENDPOINT_URL: f"http://127.0.0.1:{closed_port}"},
    )
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert mock_config_entry.state is ConfigEntryState.SETUP_RETRY
    assert mock_config_entry.reason == "Could not reach the storage endpoint"


@pytest.mark.usefixtures("moto_auth")
async def test_refused_keys_start_reauth(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> None:
    """Keys the service refuses → setup error and a reauth flow for the entry."""
    mock_config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert mock_config_entry.state is ConfigEntryState.SETUP_ERROR
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [(f["context"]["source"], f["context"]["entry_id"]) for f in flows] == [
        (SOURCE_REAUTH, mock_config_entry.entry_id)
    ]


@pytest.mark.usefixtures("aws")
async def test_bucket_gone(hass: HomeAssistant, mock_config_entry: MockConfigEntry) -> None:
    """A bucket deleted since the entry was made → a setup error that says so."""
    mock_config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        mock_config_entry, data={**mock_config_entry.data, CONF_BUCKET: "deleted-bucket"}
    )
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert mock_config_entry.state is ConfigEntryState.SETUP_ERROR
    assert mock_config_entry.reason == "The bucket no longer exists at this endpoint and region"


@pytest.mark.parametrize("keys_work", [False, True], ids=["keys_refused", "bucket_gone"])
async def test_secret_not_logged(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    moto_auth: dict[str, str],
    caplog: pytest.LogCaptureFixture,
    keys_work: bool,
) -> None:
    """Failing setups log, at debug level too, without the entry's secret access key:
    keys the service refuses, and keys it accepts for a bucket that is gone."""
    caplog.set_level("DEBUG")
    mock_config_entry.add_to_hass(hass)
    if keys_work:
        hass.config_entries.async_update_entry(
            mock_config_entry,
            data={**mock_config_entry.data, **moto_auth, CONF_BUCKET: "deleted-bucket"},
        )
    secret = mock_config_entry.data[CONF_SECRET_ACCESS_KEY]
    assert secret == (moto_auth[CONF_SECRET_ACCESS_KEY] if keys_work else SECRET_ACCESS_KEY)
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert mock_config_entry.state is ConfigEntryState.SETUP_ERROR
    assert caplog.text
    assert secret not in caplog.text


async def test_removing_the_entry_deletes_its_catalog(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """The catalog lives under .storage (so backups include it) and goes with the entry."""
    storage = Path(hass.config.path(".storage"))
    files = [p.name for p in storage.glob(f"{DOMAIN}.{init_integration.entry_id}.*.sqlite3")]
    assert len(files) == 1
    assert await hass.config_entries.async_remove(init_integration.entry_id)
    await hass.async_block_till_done()
    assert list(storage.glob(f"{DOMAIN}.*")) == []


# --- one reload mechanism (Home Assistant 2026.6+ reports a listener next to it) -------


@pytest.fixture
def reload_reports(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What Home Assistant 2026.6+ reports when a flow reloads an entry with a listener.

    2026.2 (installed here) does not check yet; this applies 2026.11's check to every
    async_update_reload_and_abort and collects its report.
    """
    reports: list[str] = []
    original = ConfigFlow.async_update_reload_and_abort

    def checked(self: ConfigFlow, entry: ConfigEntry, **kwargs: Any) -> ConfigFlowResult:
        if entry.update_listeners:
            reports.append(
                f"{entry.domain} has an update listener and should use it for scheduling a reload"
            )
        return original(self, entry, **kwargs)

    monkeypatch.setattr(ConfigFlow, "async_update_reload_and_abort", checked)
    return reports


async def test_flows_reload_without_an_update_listener(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    moto_auth: dict[str, str],
    reload_reports: list[str],
) -> None:
    """Reauth and reconfigure reload a loaded entry once, with no listener to double it."""
    entry = init_integration
    assert entry.update_listeners == []
    setups: list[str] = []
    entry.async_on_state_change(lambda: setups.append(entry.state.value))

    result = await entry.start_reauth_flow(hass)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], moto_auth)
    assert result["reason"] == "reauth_successful"
    await hass.async_block_till_done(wait_background_tasks=True)
    assert entry.state is ConfigEntryState.LOADED
    assert entry.update_listeners == []

    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            CONF_ACCESS_KEY_ID: moto_auth[CONF_ACCESS_KEY_ID],
            CONF_REGION: "us-east-1",
            CONF_BUCKET: BUCKET,
            CONF_PREFIX: "photos",
        },
    )
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done(wait_background_tasks=True)
    assert entry.state is ConfigEntryState.LOADED
    assert entry.runtime_data.target.prefix == "photos/"
    assert reload_reports == []


async def test_reauth_reloads_an_entry_that_failed_setup(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, moto_auth: dict[str, str]
) -> None:
    """Keys refused at setup: working keys from reauth load the entry (no listener needed)."""
    mock_config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert mock_config_entry.state is ConfigEntryState.SETUP_ERROR
    [flow] = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    result = await hass.config_entries.flow.async_configure(flow["flow_id"], moto_auth)
    assert result["reason"] == "reauth_successful"
    await hass.async_block_till_done(wait_background_tasks=True)
    assert mock_config_entry.state is ConfigEntryState.LOADED


# --- migration -------------------------------------------------------------------------


@pytest.mark.usefixtures("aws")
async def test_migrate_upper_case_options(hass: HomeAssistant) -> None:
    """1.1 → 1.2: stored selector values become the lower-case option values."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        version=1,
        minor_version=1,
        title=f"{BUCKET}/ha",
        data=dict(BUCKET_DATA),
        options={
            CONF_STORAGE_CLASS: "DEEP_ARCHIVE",
            CONF_ENCRYPTION: "aws:kms",
            CONF_KMS_KEY_ID: "alias/archive",
            CONF_TIER: "Expedited",
            CONF_PART_SIZE_MIB: 16,
        },
        unique_id=f"{REGION}|{BUCKET}|ha",
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert (entry.version, entry.minor_version) == (1, 2)
    assert entry.options == {
        CONF_STORAGE_CLASS: "deep_archive",
        CONF_ENCRYPTION: "aws_kms",
        CONF_KMS_KEY_ID: "alias/archive",
        CONF_TIER: "expedited",
        CONF_PART_SIZE_MIB: 16,
    }


@pytest.mark.usefixtures("aws")
async def test_entry_from_a_newer_version_is_not_loaded(hass: HomeAssistant) -> None:
    """An entry written by a newer major version is left alone (migration error)."""
    entry = MockConfigEntry(domain=DOMAIN, version=2, data=dict(BUCKET_DATA))
    entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.MIGRATION_ERROR


# --- closing the catalog ---------------------------------------------------------------


@pytest.fixture
def catalog_closes(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every Catalog.close call (the real close still runs), by catalog path."""
    closes: list[Path] = []
    original = Catalog.close

    def counted(self: Catalog) -> None:
        closes.append(self.path)
        original(self)

    monkeypatch.setattr(Catalog, "close", counted)
    return closes


def _warnings_or_worse(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


async def test_stop_then_unload_closes_once(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    catalog_closes: list[Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Stop closes the catalog; a later unload neither closes it again nor logs an error."""
    path = init_integration.runtime_data.catalog.path
    hass.bus.async_fire(EVENT_HOMEASSISTANT_STOP)
    await hass.async_block_till_done()
    assert catalog_closes == [path]

    assert await hass.config_entries.async_unload(init_integration.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert catalog_closes == [path]
    assert _warnings_or_worse(caplog) == []


async def test_stop_waits_for_the_close_an_unload_deferred(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    catalog_closes: list[Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Unloaded while an action runs, then stopped: the close still happens, once.

    The action ends during the stop (a stop listener ends it), after Home Assistant
    has cancelled its background tasks.
    """
    path = init_integration.runtime_data.catalog.path
    action = init_integration.runtime_data.activity.busy()
    await action.__aenter__()
    assert await hass.config_entries.async_unload(init_integration.entry_id)
    # (No async_block_till_done here: it would wait for the close, which waits for
    # the action.)
    assert catalog_closes == []

    async def _action_ends(_event: Event) -> None:
        await action.__aexit__(None, None, None)

    hass.bus.async_listen_once(EVENT_HOMEASSISTANT_STOP, _action_ends)
    await hass.async_stop(force=True)
    assert catalog_closes == [path]
    assert _warnings_or_worse(caplog) == []


async def test_unload_closes_once(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    catalog_closes: list[Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A plain unload closes the catalog once; a stop afterwards does nothing more."""
    path = init_integration.runtime_data.catalog.path
    assert await hass.config_entries.async_unload(init_integration.entry_id)
    await hass.async_block_till_done()
    assert catalog_closes == [path]
    hass.bus.async_fire(EVENT_HOMEASSISTANT_STOP)
    await hass.async_block_till_done()
    assert catalog_closes == [path]
    assert _warnings_or_worse(caplog) == []


async def test_stop_right_after_an_unload_still_closes(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    catalog_closes: list[Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Unloaded with nothing running, then stopped at once: the close is not cancelled.

    (Started eagerly, the close reached its executor job before Home Assistant tracked
    it; the job then counted as a background task, which stopping cancels.)
    """
    catalog = init_integration.runtime_data.catalog
    assert await hass.config_entries.async_unload(init_integration.entry_id)
    await hass.async_stop(force=True)
    assert catalog_closes == [catalog.path]
    with pytest.raises(CatalogError):
        catalog.objects()  # closed
    assert _warnings_or_worse(caplog) == []


# --- the bucket's real region ----------------------------------------------------------


async def test_entry_with_a_wrong_region_gets_a_repair_issue(
    hass: HomeAssistant, aws: None, issue_registry: ir.IssueRegistry
) -> None:
    """An older entry that names the wrong region is told to reconfigure; it still loads."""
    boto3.client("s3", region_name="eu-west-1").create_bucket(
        Bucket="eu-archive", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    entry = MockConfigEntry(
        domain=DOMAIN,
        minor_version=2,
        title="eu-archive",
        data={**BUCKET_DATA, CONF_BUCKET: "eu-archive"},
        unique_id=f"{REGION}|eu-archive|ha",
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert entry.state is ConfigEntryState.LOADED
    issue = issue_registry.async_get_issue(DOMAIN, f"wrong_region_{entry.entry_id}")
    assert issue is not None
    assert issue.translation_placeholders == {
        "title": "eu-archive",
        "region": "eu-west-1",
        "configured": "us-east-1",
    }


async def test_entry_with_the_right_region_has_no_issue(
    hass: HomeAssistant, init_integration: MockConfigEntry, issue_registry: ir.IssueRegistry
) -> None:
    """The region S3 reports matches: no issue."""
    assert (
        issue_registry.async_get_issue(DOMAIN, f"wrong_region_{init_integration.entry_id}") is None
    )


async def test_removing_the_entry_removes_its_region_issue(
    hass: HomeAssistant, aws: None, issue_registry: ir.IssueRegistry
) -> None:
    """The wrong-region issue goes with the entry."""
    boto3.client("s3", region_name="eu-west-1").create_bucket(
        Bucket="eu-archive", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    entry = MockConfigEntry(
        domain=DOMAIN,
        minor_version=2,
        title="eu-archive",
        data={**BUCKET_DATA, CONF_BUCKET: "eu-archive"},
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert issue_registry.async_get_issue(DOMAIN, f"wrong_region_{entry.entry_id}")
    assert await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert issue_registry.async_get_issue(DOMAIN, f"wrong_region_{entry.entry_id}") is None
