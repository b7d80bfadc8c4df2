"""Keys revoked while Home Assistant runs: the periodic check starts a reauth.

moto with IAM enforced: the entry uses an IAM user's keys, an administrator's keys
revoke them or narrow the user's policy, and time moves to the next periodic check
(every 15 minutes). Refused keys need new keys (reauth); valid keys whose policy
lacks an action need a fixed policy (a repair issue), never a reauth. A vault's check
is covered with Glacier's refusal stubbed (moto cannot verify Glacier's signatures).
"""

from __future__ import annotations

from datetime import timedelta
import json
from typing import Any

import boto3
from botocore.stub import Stubber
from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er, issue_registry as ir
from moto import settings as moto_settings
from moto.core.authorization import ActionAuthenticatorMixin
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.s3_glacier.const import (
    CONF_ACCESS_KEY_ID,
    CONF_SECRET_ACCESS_KEY,
    DOMAIN,
)

from .conftest import REGION
from .helpers import next_check

USER = "archiver"
ALLOW_S3 = {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}


class Iam:
    """An IAM user for the entry, and an administrator's clients to change it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        iam = boto3.client("iam", region_name=REGION)
        iam.create_user(UserName="admin")
        iam.put_user_policy(
            UserName="admin",
            PolicyName="all",
            PolicyDocument=_policy({"Effect": "Allow", "Action": "*", "Resource": "*"}),
        )
        admin = iam.create_access_key(UserName="admin")["AccessKey"]
        iam.create_user(UserName=USER)
        iam.put_user_policy(UserName=USER, PolicyName="s3", PolicyDocument=_policy(ALLOW_S3))
        # From here on every request must be signed by a known key.
        monkeypatch.setattr(moto_settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)
        monkeypatch.setattr(ActionAuthenticatorMixin, "request_count", 0)
        self.admin = boto3.session.Session(
            aws_access_key_id=admin["AccessKeyId"],
            aws_secret_access_key=admin["SecretAccessKey"],
            region_name=REGION,
        ).client("iam")

    def new_keys(self) -> dict[str, str]:
        key = self.admin.create_access_key(UserName=USER)["AccessKey"]
        return {
            CONF_ACCESS_KEY_ID: key["AccessKeyId"],
            CONF_SECRET_ACCESS_KEY: key["SecretAccessKey"],
        }

    def revoke(self, keys: dict[str, str]) -> None:
        self.admin.delete_access_key(UserName=USER, AccessKeyId=keys[CONF_ACCESS_KEY_ID])

    def set_policy(self, *statements: dict[str, Any]) -> None:
        self.admin.put_user_policy(
            UserName=USER, PolicyName="s3", PolicyDocument=_policy(*statements)
        )


def _policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


@pytest.fixture
def iam(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iam:
    """moto enforcing IAM, with the entry's user allowed every S3 action."""
    return Iam(monkeypatch)


async def _load(hass: HomeAssistant, entry: MockConfigEntry, keys: dict[str, str]) -> None:
    entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(entry, data={**entry.data, **keys})
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert entry.state is ConfigEntryState.LOADED


def _flows(hass: HomeAssistant) -> list[tuple[str, str]]:
    return [
        (flow["context"]["source"], flow["context"]["entry_id"])
        for flow in hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    ]


def _sensor_states(hass: HomeAssistant, entry: MockConfigEntry) -> dict[str, str]:
    registry = er.async_get(hass)
    return {
        e.entity_id: hass.states.get(e.entity_id).state  # type: ignore[union-attr]
        for e in er.async_entries_for_config_entry(registry, entry.entry_id)
        if hass.states.get(e.entity_id) is not None
    }


async def test_keys_revoked_while_running_start_a_reauth(
    hass: HomeAssistant,
    iam: Iam,
    mock_config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """The next check after the keys are deleted: a reauth flow for the entry, the
    sensors unavailable; new keys entered there bring the sensors back."""
    keys = iam.new_keys()
    await _load(hass, mock_config_entry, keys)
    before = _sensor_states(hass, mock_config_entry)
    assert len(before) >= 5
    assert STATE_UNAVAILABLE not in before.values()

    iam.revoke(keys)
    await next_check(hass, freezer)

    assert _flows(hass) == [(SOURCE_REAUTH, mock_config_entry.entry_id)]
    assert mock_config_entry.state is ConfigEntryState.LOADED
    assert set(_sensor_states(hass, mock_config_entry).values()) == {STATE_UNAVAILABLE}

    # A second check neither starts a second flow nor brings the sensors back.
    await next_check(hass, freezer)
    assert _flows(hass) == [(SOURCE_REAUTH, mock_config_entry.entry_id)]
    assert set(_sensor_states(hass, mock_config_entry).values()) == {STATE_UNAVAILABLE}

    new_keys = iam.new_keys()
    [flow] = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    result = await hass.config_entries.flow.async_configure(flow["flow_id"], new_keys)
    assert result["reason"] == "reauth_successful"
    await hass.async_block_till_done(wait_background_tasks=True)
    assert mock_config_entry.state is ConfigEntryState.LOADED
    assert mock_config_entry.data[CONF_ACCESS_KEY_ID] == new_keys[CONF_ACCESS_KEY_ID]
    assert _flows(hass) == []
    assert _sensor_states(hass, mock_config_entry) == before


async def test_policy_narrowed_while_running_is_an_issue_not_a_reauth(
    hass: HomeAssistant,
    iam: Iam,
    mock_config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Valid keys refused the listing (AccessDenied) at a periodic reconcile: no reauth,
    the sensors stay available, a repair issue names the action; allowing it again
    clears the issue at the next check."""
    keys = iam.new_keys()
    await _load(hass, mock_config_entry, keys)
    before = _sensor_states(hass, mock_config_entry)
    assert STATE_UNAVAILABLE not in before.values()

    # moto authorises HeadBucket as s3:HeadBucket (AWS: s3:ListBucket), so the check
    # still passes and only the reconcile's listing is refused.
    iam.set_policy(ALLOW_S3, {"Effect": "Deny", "Action": "s3:ListBucket", "Resource": "*"})
    freezer.tick(timedelta(hours=24, minutes=15, seconds=1))  # a reconcile is due
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)

    assert _flows(hass) == []
    assert _sensor_states(hass, mock_config_entry) == before
    issues = [i for (d, _), i in ir.async_get(hass).issues.items() if d == DOMAIN]
    assert [(i.translation_key, i.translation_placeholders) for i in issues] == [
        (
            "missing_permission",
            {"title": mock_config_entry.title, "action": "s3:ListBucket"},
        )
    ]

    iam.set_policy(ALLOW_S3)
    await next_check(hass, freezer)
    assert [key for (d, key) in ir.async_get(hass).issues if d == DOMAIN] == []
    assert _flows(hass) == []


async def test_vault_keys_revoked_while_running_start_a_reauth(
    hass: HomeAssistant, loaded_vault: MockConfigEntry, freezer: FrozenDateTimeFactory
) -> None:
    """The same for a vault's check (DescribeVault). moto cannot verify Glacier's
    signatures with IAM enforced (SignatureDoesNotMatch for valid keys), so the
    refusal Glacier sends for unknown keys is stubbed on the entry's client."""
    before = _sensor_states(hass, loaded_vault)
    assert before
    assert STATE_UNAVAILABLE not in before.values()
    stubber = Stubber(loaded_vault.runtime_data.target._client)
    stubber.add_client_error(
        "describe_vault",
        service_error_code="UnrecognizedClientException",
        service_message="The security token included in the request is invalid.",
        http_status_code=403,
    )
    stubber.activate()

    await next_check(hass, freezer)

    stubber.assert_no_pending_responses()
    assert _flows(hass) == [(SOURCE_REAUTH, loaded_vault.entry_id)]
    assert set(_sensor_states(hass, loaded_vault).values()) == {STATE_UNAVAILABLE}
