"""Setup, not-ready, auth failure → reauth, setup errors, unload."""

from __future__ import annotations

from pathlib import Path

from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.s3_glacier.const import CONF_BUCKET, CONF_ENDPOINT_URL, DOMAIN

from .conftest import BUCKET, SECRET_ACCESS_KEY


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


async def test_secret_not_logged(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    moto_auth: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Failing setups log, at debug level too, without the secret access key."""
    caplog.set_level("DEBUG")
    mock_config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert caplog.text
    assert SECRET_ACCESS_KEY not in caplog.text
    assert moto_auth["secret_access_key"] not in caplog.text


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
