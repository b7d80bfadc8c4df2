"""Legacy Glacier vault entries: config flow and the same actions, against moto.

moto implements vaults, single-request uploads and jobs (finishing 2/5/10 s after they
start, on a clock the tests move with freezer) but returns a plain SHA-256 where
Glacier returns a tree hash: the two agree only up to 1 MiB, so files here stay small.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import ServiceValidationError
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
)

from custom_components.s3_glacier.archive.errors import ServiceUnavailableError
from custom_components.s3_glacier.archive.pricing import RestoreEstimate
from custom_components.s3_glacier.archive.vault import VaultTarget, build_description
from custom_components.s3_glacier.const import (
    CONF_ACCESS_KEY_ID,
    CONF_CONCURRENCY,
    CONF_PART_SIZE_MIB,
    CONF_PRICE_OVERRIDES,
    CONF_REGION,
    CONF_SECRET_ACCESS_KEY,
    CONF_TARGET,
    CONF_TIER,
    CONF_VAULT_NAME,
    DOMAIN,
)

from .conftest import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, call_action, shown_money
from .helpers import tick

VAULT = "demo-vault"
VAULT_DATA: dict[str, Any] = {
    CONF_ACCESS_KEY_ID: ACCESS_KEY_ID,
    CONF_SECRET_ACCESS_KEY: SECRET_ACCESS_KEY,
    CONF_REGION: REGION,
    CONF_VAULT_NAME: VAULT,
    CONF_TARGET: "vault",
}


@pytest.fixture
def glacier(aws: None) -> Iterator[Any]:
    """moto's Glacier with the demo vault."""
    client = boto3.client("glacier", region_name=REGION)
    client.create_vault(vaultName=VAULT)
    return client


@pytest.fixture
async def vault_entry(hass: HomeAssistant, glacier: Any, tmp_path: Path) -> MockConfigEntry:
    """A loaded vault entry; files under tmp_path/files may be read and written."""
    files = tmp_path / "files"
    files.mkdir()
    hass.config.allowlist_external_dirs = {str(files.resolve())}
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=VAULT,
        data=dict(VAULT_DATA),
        options={CONF_PART_SIZE_MIB: 8, CONF_CONCURRENCY: 4, CONF_TIER: "Expedited"},
        unique_id=f"{REGION}|vault|{VAULT}",
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    return entry


# --- config flow -----------------------------------------------------------------------


async def _vault_form(hass: HomeAssistant) -> str:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "vault"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "vault"
    return result["flow_id"]


@pytest.mark.usefixtures("glacier")
async def test_vault_flow(hass: HomeAssistant) -> None:
    """A missing vault is refused; an existing one makes an entry titled after it."""
    flow_id = await _vault_form(hass)
    user_input = {k: v for k, v in VAULT_DATA.items() if k != CONF_TARGET}
    result = await hass.config_entries.flow.async_configure(
        flow_id, {**user_input, CONF_VAULT_NAME: "nope"}
    )
    assert result["errors"] == {CONF_VAULT_NAME: "vault_not_found"}
    result = await hass.config_entries.flow.async_configure(flow_id, user_input)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == VAULT
    assert result["data"] == VAULT_DATA
    assert result["result"].unique_id == f"{REGION}|vault|{VAULT}"
    assert result["options"] == {CONF_PART_SIZE_MIB: 8, CONF_CONCURRENCY: 4, CONF_TIER: "standard"}
    await hass.async_block_till_done(wait_background_tasks=True)


@pytest.mark.usefixtures("glacier")
async def test_vault_service_unavailable(
    hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An account AWS no longer serves gets the explanation, not a generic error."""

    def closed(self: VaultTarget) -> None:
        raise ServiceUnavailableError("NoLongerSupportedException")

    monkeypatch.setattr(VaultTarget, "check", closed)
    flow_id = await _vault_form(hass)
    user_input = {k: v for k, v in VAULT_DATA.items() if k != CONF_TARGET}
    result = await hass.config_entries.flow.async_configure(flow_id, user_input)
    assert result["errors"] == {"base": "vault_service_unavailable"}


async def test_vault_options_and_reconfigure(
    hass: HomeAssistant, vault_entry: MockConfigEntry, glacier: Any
) -> None:
    """Vault options: power-of-two part size, threads, tier, vault price; reconfigure."""
    result = await hass.config_entries.options.async_init(vault_entry.entry_id)
    assert result["step_id"] == "vault"  # its own texts: no storage classes there
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            CONF_PART_SIZE_MIB: "64",
            CONF_CONCURRENCY: 2,
            CONF_TIER: "bulk",
            CONF_PRICE_OVERRIDES: {"VAULT": 0.004},
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done(wait_background_tasks=True)
    assert vault_entry.options == {
        CONF_PART_SIZE_MIB: 64,
        CONF_CONCURRENCY: 2,
        CONF_TIER: "bulk",
        CONF_PRICE_OVERRIDES: {"VAULT": 0.004},
    }
    assert vault_entry.runtime_data.target.part_size == 64 * 1024 * 1024  # applied live

    glacier.create_vault(vaultName="other-vault")
    result = await vault_entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            CONF_ACCESS_KEY_ID: VAULT_DATA[CONF_ACCESS_KEY_ID],
            CONF_REGION: REGION,
            CONF_VAULT_NAME: "other-vault",
        },
    )
    assert result["reason"] == "reconfigure_successful"
    assert vault_entry.title == "other-vault"
    await hass.async_block_till_done(wait_background_tasks=True)


# --- actions ---------------------------------------------------------------------------


async def test_archive_list_restore_delete(
    hass: HomeAssistant,
    vault_entry: MockConfigEntry,
    tmp_path: Path,
    freezer: FrozenDateTimeFactory,
    restore_estimates: list[RestoreEstimate],
) -> None:
    """The round trip a user knows from buckets, with archive IDs in place of keys."""
    files = tmp_path / "files"
    data = bytes(range(256)) * 3000  # 768,000 bytes
    (files / "photos.tar").write_bytes(data)
    archived_events = async_capture_events(hass, f"{DOMAIN}_archived")

    response = await call_action(
        hass, "archive", path=str(files / "photos.tar"), delete_source=True
    )
    item = response["archived"][0]
    archive_id = item["archive_id"]
    assert item["size"] == len(data)
    assert item["storage_class"] == "VAULT"
    assert item["tree_hash"]
    assert not (files / "photos.tar").exists()
    assert [e.data["archive_id"] for e in archived_events] == [archive_id]
    assert hass.states.get("sensor.demo_vault_archived_objects").state == "1"

    listed = await call_action(hass, "list")
    assert [(o["archive_id"], o["name"], o["size"]) for o in listed["objects"]] == [
        (archive_id, "photos.tar", len(data))
    ]

    completed = async_capture_events(hass, f"{DOMAIN}_restore_completed")
    response = await call_action(hass, "restore", key="photos.tar", destination=str(files))
    assert response["status"] == "restore_requested"
    assert response["archive_id"] == archive_id
    # Where the file will be written when the job is done, and its size.
    assert response["path"] == str((files / "photos.tar").resolve())
    assert response["size"] == len(data)
    # Downloading the job's output is internet egress ($0.09/GB in us-east-1, priced
    # as if the account's free 100 GB were used up); each charge is listed.
    breakdown = response["cost_breakdown"]
    assert breakdown["egress"] == shown_money(len(data) / 2**30 * 0.09)
    assert breakdown["copy_storage"] == 0
    assert breakdown["egress_free_gb_per_month"] == 100
    # The entry's Expedited tier: $0.03/GB and $10 per 1,000 requests, plus the egress.
    assert breakdown["retrieval"] == shown_money(len(data) / 2**30 * 0.03)
    # $10 per 1,000 retrieval requests, plus the job output's GET ($0.0004 per 1,000).
    assert breakdown["requests"] == shown_money(10 / 1000 + 0.0004 / 1000)
    assert response["estimated_cost"] == round(
        breakdown["retrieval"] + breakdown["requests"] + breakdown["egress"], 4
    )
    gb = Decimal(len(data)) / 2**30
    assert restore_estimates == [
        RestoreEstimate(
            retrieval=gb * Decimal("0.03"),
            requests=Decimal(10) / 1000 + Decimal("0.0004") / 1000,
            egress=gb * Decimal("0.09"),
        )
    ]
    again = await call_action(hass, "restore", archive_id=archive_id, destination=str(files / "x"))
    assert again["status"] == "restore_in_progress"
    assert again["path"] == response["path"]  # the running job keeps its destination
    assert hass.states.get("sensor.demo_vault_pending_restores").state == "1"

    await tick(hass, freezer, timedelta(minutes=1, seconds=1))
    assert [(e.data["key"], e.data["path"]) for e in completed] == [
        (archive_id, str((files / "photos.tar").resolve()))
    ]
    assert (files / "photos.tar").read_bytes() == data
    assert hass.states.get("sensor.demo_vault_pending_restores").state == "0"

    response = await call_action(hass, "delete", archive_id=archive_id)
    # 90-day minimum at $0.0036/GB-month: (768,000 + 32 KiB) bytes for 3 months
    assert response["early_deletion_charge"] == shown_money(
        (len(data) + 32 * 1024) / 2**30 * 0.0036 * 3
    )
    assert hass.states.get("sensor.demo_vault_archived_objects").state == "0"


@pytest.mark.parametrize(
    ("action", "fields", "error"),
    [
        (
            "archive",
            {"path": "{files}/a.bin", "storage_class": "GLACIER"},
            "storage_class_not_for_vault",
        ),
        ("archive", {"path": "{files}/a.bin", "key": "a.bin"}, "key_not_for_vault"),
        ("restore", {"archive_id": "unknown"}, "archive_not_found"),
        ("restore", {"key": "missing.bin"}, "archive_not_found"),
        ("restore", {}, "archive_id_required"),
        ("restore", {"key": "a.bin", "tier": "Fast"}, "invalid_tier"),
        ("delete", {"archive_id": "unknown"}, "archive_not_found"),
        ("list", {"limit": 0}, "invalid_limit"),
    ],
)
async def test_vault_bad_input(
    hass: HomeAssistant,
    vault_entry: MockConfigEntry,
    glacier: Any,
    tmp_path: Path,
    action: str,
    fields: dict[str, Any],
    error: str,
) -> None:
    """Each bad input has its translated error; nothing is uploaded or requested."""
    files = tmp_path / "files"
    (files / "a.bin").write_bytes(b"a" * 100)
    await call_action(hass, "archive", path=str(files / "a.bin"))
    data = {k: v.format(files=files) if isinstance(v, str) else v for k, v in fields.items()}
    with pytest.raises(ServiceValidationError) as err:
        await call_action(hass, action, **data)
    assert err.value.translation_key == error
    assert len(glacier.list_jobs(vaultName=VAULT)["JobList"]) == 0
    assert hass.states.get("sensor.demo_vault_archived_objects").state == "1"


async def test_same_name_twice_is_ambiguous(
    hass: HomeAssistant, vault_entry: MockConfigEntry, tmp_path: Path
) -> None:
    """Two archives of files with one name: restore by name asks for the archive ID."""
    files = tmp_path / "files"
    for folder, content in (("a", b"first"), ("b", b"second")):
        (files / folder).mkdir()
        (files / folder / "same.txt").write_bytes(content)
        await call_action(hass, "archive", path=str(files / folder / "same.txt"))
    with pytest.raises(ServiceValidationError) as err:
        await call_action(hass, "restore", key="same.txt")
    assert err.value.translation_key == "archive_ambiguous"


async def test_inventory_reconciles_the_catalog(
    hass: HomeAssistant,
    vault_entry: MockConfigEntry,
    glacier: Any,
    tmp_path: Path,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Refresh starts an inventory job; when it ends, the catalog follows the vault.

    Archives uploaded elsewhere are added with their description; archives gone from
    the vault are dropped, except recent ones that an inventory may not show yet.
    """
    files = tmp_path / "files"
    (files / "old.bin").write_bytes(b"o" * 1000)
    old = (await call_action(hass, "archive", path=str(files / "old.bin")))["archived"][0]
    await tick(hass, freezer, timedelta(days=3))
    (files / "new.bin").write_bytes(b"n" * 2000)
    await call_action(hass, "archive", path=str(files / "new.bin"))
    # Behind the integration's back: one archive deleted, one uploaded by another tool.
    glacier.delete_archive(vaultName=VAULT, archiveId=old["archive_id"])
    new_ids = {a["archive_id"] for a in (await call_action(hass, "list"))["objects"]}
    new_ids.discard(old["archive_id"])
    glacier.delete_archive(vaultName=VAULT, archiveId=next(iter(new_ids)))
    foreign = glacier.upload_archive(
        vaultName=VAULT,
        archiveDescription=build_description("foreign.csv", None, datetime.now(UTC)),
        body=b"f" * 300,
    )["archiveId"]

    response = await call_action(hass, "refresh")
    assert response["status"] == "inventory_requested"
    assert response["job_id"]
    await tick(hass, freezer, timedelta(minutes=16))

    listed = {o["name"]: o["archive_id"] for o in (await call_action(hass, "list"))["objects"]}
    # old.bin is gone (older than the inventory's lag); new.bin is kept (too recent to
    # be missing for sure); foreign.csv is added with its name from the description.
    assert listed == {"new.bin": next(iter(new_ids)), "foreign.csv": foreign}
    assert hass.states.get("sensor.demo_vault_archived_objects").state == "2"
