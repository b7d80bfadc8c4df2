"""README's IAM policies are exactly what the integration needs, proven against moto.

The bucket policy is parsed from README.md and given to an IAM user in moto with IAM
enforced; setup, every action and a due reconcile then run with that user's keys. A
policy that lacks an action gives a repair issue naming it, never a reauth, and the
sensors stay available.
"""

from __future__ import annotations

from datetime import timedelta
import hashlib
import json
from pathlib import Path
import re
from typing import Any

import boto3
from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
)

from custom_components.s3_glacier.archive import errors
from custom_components.s3_glacier.archive.summary import META_RECONCILED_AT
from custom_components.s3_glacier.const import DOMAIN

from .conftest import BUCKET, REGION, call_action
from .helpers import our_issues
from .moto_iam import Moto, moto_bucket_policy, readme_policy

ROOT = Path(__file__).parents[1]
ENGINE = ROOT / "custom_components" / "s3_glacier" / "archive"
MIB = 1024 * 1024


# --- the README's policies ------------------------------------------------------------


def _actions(policy: dict[str, Any]) -> set[str]:
    return {action for statement in policy["Statement"] for action in statement["Action"]}


def _operations_called(source: Path, service: str) -> set[str]:
    """The API operations a module sends: its client method calls and paginators."""
    text = source.read_text()
    methods = set(re.findall(r"_client\.(\w+)\(", text))
    methods |= set(re.findall(r"get_paginator\(\s*\"(\w+)\"", text))
    methods -= {"close", "get_paginator"}
    client = boto3.client(
        service, region_name=REGION, aws_access_key_id="x", aws_secret_access_key="y"
    )
    mapping = client.meta.method_to_api_mapping
    assert methods <= mapping.keys(), methods - mapping.keys()
    return {mapping[method] for method in methods}


@pytest.mark.parametrize(
    ("service", "module", "table"),
    [
        ("s3", "s3.py", errors.S3_IAM_ACTIONS),
        ("glacier", "vault.py", errors.GLACIER_IAM_ACTIONS),
    ],
)
def test_readme_policy_holds_exactly_what_the_code_sends(
    service: str, module: str, table: dict[str, str]
) -> None:
    """Every request in the engine has its IAM action in the table, and README lists
    exactly those actions: no more, no fewer."""
    operations = _operations_called(ENGINE / module, service)
    assert operations <= table.keys(), operations - table.keys()
    assert _actions(readme_policy(service)) == {table[op] for op in operations}


# --- the bucket policy in moto with IAM enforced --------------------------------------


def _moto(aws: None, monkeypatch: pytest.MonkeyPatch, without: str = "") -> Moto:
    moto = Moto(moto_bucket_policy(without), monkeypatch)
    # An upload abandoned by a crash (moto dates every upload 2010): the reconcile's
    # cleanup must list and abort it.
    moto.s3.create_multipart_upload(Bucket=BUCKET, Key="ha/crashed.bin")
    return moto


@pytest.fixture
def allowed(hass: HomeAssistant, tmp_path: Path) -> Path:
    base = tmp_path / "files"
    base.mkdir()
    hass.config.allowlist_external_dirs = {str(base.resolve())}
    return base


async def _setup(hass: HomeAssistant, entry: MockConfigEntry, moto: Moto) -> None:
    entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(entry, data={**entry.data, **moto.keys})
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)


def _write(path: Path, size: int) -> bytes:
    data = (hashlib.sha256(path.name.encode()).digest() * (size // 32 + 1))[:size]
    path.write_bytes(data)
    return data


async def _due_reconcile(
    hass: HomeAssistant, entry: MockConfigEntry, freezer: FrozenDateTimeFactory
) -> None:
    """Move past the reconcile interval; the periodic check then reconciles."""
    before = await hass.async_add_executor_job(
        entry.runtime_data.catalog.get_meta, META_RECONCILED_AT
    )
    freezer.tick(timedelta(hours=24, minutes=16))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    after = await hass.async_add_executor_job(
        entry.runtime_data.catalog.get_meta, META_RECONCILED_AT
    )
    assert after is not None
    assert after != before


def _reauth_flows(hass: HomeAssistant) -> list[Any]:
    return hass.config_entries.flow.async_progress_by_handler(DOMAIN)


def _sensor_states(hass: HomeAssistant, entry: MockConfigEntry) -> list[str]:
    registry = er.async_get(hass)
    states = [
        hass.states.get(e.entity_id)
        for e in er.async_entries_for_config_entry(registry, entry.entry_id)
    ]
    return [s.state for s in states if s is not None]


def _assert_healthy(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    assert _reauth_flows(hass) == []
    sensors = _sensor_states(hass, entry)
    assert len(sensors) >= 5
    assert STATE_UNAVAILABLE not in sensors


async def test_readme_policy_allows_setup_every_action_and_the_reconcile(
    hass: HomeAssistant,
    aws: None,
    monkeypatch: pytest.MonkeyPatch,
    mock_config_entry: MockConfigEntry,
    allowed: Path,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Exactly README's policy: everything works, no reauth, no repair issue."""
    moto = _moto(aws, monkeypatch)
    await _setup(hass, mock_config_entry, moto)
    assert moto.uploads() == []  # the setup's reconcile aborted the abandoned upload

    small = _write(allowed / "small.txt", 3000)
    big = _write(allowed / "big.bin", 17 * MIB)  # two parts of the default 16 MiB
    cold = _write(allowed / "cold.tar", 4000)
    await call_action(hass, "archive", path=str(allowed / "small.txt"))
    multipart = await call_action(hass, "archive", path=str(allowed / "big.bin"))
    assert multipart["archived"][0]["size"] == 17 * MIB
    await call_action(hass, "archive", path=str(allowed / "cold.tar"), storage_class="GLACIER")
    listed = await call_action(hass, "list")
    assert sorted(o["key"] for o in listed["objects"]) == [
        "ha/big.bin",
        "ha/cold.tar",
        "ha/small.txt",
    ]

    restored = allowed / "restored"
    restored.mkdir()
    await call_action(hass, "restore", key="ha/small.txt", destination=str(restored))
    assert (restored / "small.txt").read_bytes() == small
    completed = async_capture_events(hass, f"{DOMAIN}_restore_completed")
    requested = await call_action(
        hass, "restore", key="ha/cold.tar", destination=str(restored), tier="Bulk", days=1
    )
    assert requested["status"] == "restore_requested"
    freezer.tick(timedelta(hours=1, seconds=1))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert [e.data["key"] for e in completed] == ["ha/cold.tar"]
    assert (restored / "cold.tar").read_bytes() == cold

    await call_action(hass, "delete", key="ha/small.txt")
    refreshed = await call_action(hass, "refresh")
    assert refreshed["objects"] == 2
    assert refreshed["bytes"] == len(big) + len(cold)

    moto.s3.create_multipart_upload(Bucket=BUCKET, Key="ha/crashed-again.bin")
    await _due_reconcile(hass, mock_config_entry, freezer)
    assert moto.uploads() == []

    assert our_issues(hass) == []
    _assert_healthy(hass, mock_config_entry)


async def test_missing_upload_listing_is_a_repair_issue_not_a_reauth(
    hass: HomeAssistant,
    aws: None,
    monkeypatch: pytest.MonkeyPatch,
    mock_config_entry: MockConfigEntry,
    allowed: Path,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Without s3:ListBucketMultipartUploads: refresh and the reconcile still work, a
    repair issue names the action (logged once), the sensors stay available; granting
    it clears the issue."""
    moto = _moto(aws, monkeypatch, without="s3:ListBucketMultipartUploads")
    moto.s3.put_object(Bucket=BUCKET, Key="ha/there.bin", Body=b"12345")
    await _setup(hass, mock_config_entry, moto)

    refreshed = await call_action(hass, "refresh")
    assert refreshed["objects"] == 1
    assert refreshed["bytes"] == 5
    (issue,) = our_issues(hass)
    assert issue.translation_key == "missing_permission"
    assert issue.translation_placeholders == {
        "title": mock_config_entry.title,
        "action": "s3:ListBucketMultipartUploads",
    }
    _assert_healthy(hass, mock_config_entry)

    await _due_reconcile(hass, mock_config_entry, freezer)
    assert [i.translation_placeholders["action"] for i in our_issues(hass)] == [
        "s3:ListBucketMultipartUploads"
    ]
    _assert_healthy(hass, mock_config_entry)
    assert moto.uploads() == ["ha/crashed.bin"]
    warnings = [r for r in caplog.records if "s3:ListBucketMultipartUploads" in r.getMessage()]
    assert len(warnings) == 1  # setup's reconcile, refresh, the due reconcile: one line

    moto.set_policy(moto_bucket_policy())
    await call_action(hass, "refresh")
    assert our_issues(hass) == []
    assert moto.uploads() == []


async def test_refused_action_names_it_and_raises_an_issue(
    hass: HomeAssistant,
    aws: None,
    monkeypatch: pytest.MonkeyPatch,
    mock_config_entry: MockConfigEntry,
    allowed: Path,
) -> None:
    """Without s3:DeleteObject the delete action fails with a message naming it, plus a
    repair issue, and no reauth; once allowed, a delete succeeds and clears the issue."""
    moto = _moto(aws, monkeypatch, without="s3:DeleteObject")
    moto.s3.put_object(Bucket=BUCKET, Key="ha/old.bin", Body=b"1")
    moto.s3.put_object(Bucket=BUCKET, Key="ha/older.bin", Body=b"2")
    await _setup(hass, mock_config_entry, moto)

    with pytest.raises(HomeAssistantError) as err:
        await call_action(hass, "delete", key="ha/old.bin")
    assert err.value.translation_key == "access_denied"
    assert err.value.translation_placeholders["action"] == "s3:DeleteObject"
    assert "s3:DeleteObject" in str(err.value)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert [i.translation_placeholders["action"] for i in our_issues(hass)] == ["s3:DeleteObject"]
    _assert_healthy(hass, mock_config_entry)

    moto.set_policy(moto_bucket_policy())
    await call_action(hass, "delete", key="ha/older.bin")
    assert our_issues(hass) == []


async def test_moto_tells_bucket_from_object_resources(
    hass: HomeAssistant,
    aws: None,
    monkeypatch: pytest.MonkeyPatch,
    mock_config_entry: MockConfigEntry,
) -> None:
    """README's statements with their resources swapped are refused: moto checks the
    bucket ARN for bucket requests and the object ARN for object requests, so the tests
    above prove the resources too. Setup then waits for the policy, without a reauth."""
    policy = json.loads(moto_bucket_policy())
    bucket, objects = policy["Statement"]
    bucket["Resource"], objects["Resource"] = objects["Resource"], bucket["Resource"]
    moto = Moto(json.dumps(policy), monkeypatch)
    mock_config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        mock_config_entry, data={**mock_config_entry.data, **moto.keys}
    )
    assert not await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert mock_config_entry.state is ConfigEntryState.SETUP_RETRY
    assert "s3:ListBucket" in (mock_config_entry.reason or "")
    assert _reauth_flows(hass) == []
    # The missing action is a repair issue too, not only the entry's retry reason.
    assert [(i.translation_key, i.translation_placeholders) for i in our_issues(hass)] == [
        ("missing_permission", {"title": mock_config_entry.title, "action": "s3:ListBucket"})
    ]
