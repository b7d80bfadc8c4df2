"""Fixtures for the S3 Glacier Archive tests.

S3 is always a real protocol: moto in process (``aws``) or ``moto_server`` over HTTP
on 127.0.0.1 (``moto_endpoint``), never a MagicMock of boto3.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
import hashlib
import json
import math
import os
from pathlib import Path
import socket
import subprocess
import sys
import time
from typing import Any
from unittest.mock import PropertyMock, patch
import urllib.error
import urllib.request
import weakref

import boto3
from homeassistant.core import HomeAssistant
from moto import mock_aws, settings as moto_settings
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.authorization import ActionAuthenticatorMixin
from moto.moto_api import state_manager
from moto.s3.models import s3_backends
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

# Import the integration before the `hass` fixture runs, so that this package and not
# the placeholder `custom_components` of pytest-homeassistant-custom-component is cached.
import custom_components.s3_glacier  # noqa: F401
from custom_components.s3_glacier import bucket_actions, vault_actions
from custom_components.s3_glacier.action_helpers import restore_cost_fields
from custom_components.s3_glacier.archive import client as client_module
from custom_components.s3_glacier.archive.catalog import Catalog
from custom_components.s3_glacier.archive.pricing import RestoreEstimate
from custom_components.s3_glacier.const import (
    CONF_ACCESS_KEY_ID,
    CONF_BUCKET,
    CONF_ENCRYPTION,
    CONF_ENDPOINT_URL,
    CONF_PREFIX,
    CONF_REGION,
    CONF_SECRET_ACCESS_KEY,
    CONF_STORAGE_CLASS,
    CONF_TARGET,
    CONF_VAULT_NAME,
    DOMAIN,
    TARGET_BUCKET,
    TARGET_VAULT,
)

BUCKET = "demo-archive"
REGION = "us-east-1"
ACCESS_KEY_ID = "AKIDEXAMPLE0TESTKEY"
SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

BUCKET_DATA: dict[str, Any] = {
    CONF_ACCESS_KEY_ID: ACCESS_KEY_ID,
    CONF_SECRET_ACCESS_KEY: SECRET_ACCESS_KEY,
    CONF_REGION: REGION,
    CONF_BUCKET: BUCKET,
    CONF_PREFIX: "ha",
    CONF_TARGET: TARGET_BUCKET,
}


@pytest.fixture(autouse=True)
def catalogs_closed_by_teardown(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail the test that leaves a catalog open, once Home Assistant has stopped.

    pyproject's filterwarnings make SQLite's "unclosed database" an error, but that
    only fires when the connection is collected, and Home Assistant's objects live in
    reference cycles: the warning would fail some later test, if any. Set up before
    ``hass`` (this fixture comes first and does not use it), this runs after Home
    Assistant has unloaded its entries and stopped.
    """
    opened: weakref.WeakSet[Catalog] = weakref.WeakSet()
    original = Catalog.__init__

    def tracked(self: Catalog, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        opened.add(self)

    monkeypatch.setattr(Catalog, "__init__", tracked)
    yield
    left_open = [catalog.path for catalog in opened if catalog._conn is not None]
    for catalog in opened:
        catalog.close()
    assert left_open == [], "catalogs left open"


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(
    request: pytest.FixtureRequest, catalogs_closed_by_teardown: None
) -> None:
    """Let Home Assistant load the integration from custom_components.

    (This starts ``hass``: the catalog check must be set up before, to end after it.)
    """
    if "recorder_mock" in request.fixturenames:
        # The recorder's database must be prepared before Home Assistant starts.
        request.getfixturevalue("recorder_db_url")
    request.getfixturevalue("enable_custom_integrations")


@pytest.fixture(autouse=True)
def isolated_config_dir(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """Give each Home Assistant test its own config directory.

    The entry's catalog lives under <config>/.storage; the harness's shared testing
    config would carry catalogs from one test to the next.
    """
    if "hass" not in request.fixturenames:
        return
    hass: HomeAssistant = request.getfixturevalue("hass")
    config_dir = tmp_path / "config"
    (config_dir / ".storage").mkdir(parents=True)
    hass.config.config_dir = str(config_dir)


@pytest.fixture
def entity_registry_enabled_by_default() -> Iterator[None]:
    """Create every entity enabled, the disabled-by-default ones too."""
    with patch(
        "homeassistant.helpers.entity.Entity.entity_registry_enabled_default",
        return_value=True,
        new_callable=PropertyMock,
    ):
        yield


@pytest.fixture
def aws() -> Iterator[None]:
    """In-process moto with the bucket the entries point at."""
    with mock_aws():
        boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
        yield


@pytest.fixture
def moto_auth(aws: None, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Make moto check credentials; return the keys of an IAM user allowed to use S3.

    Any other access key is refused (InvalidAccessKeyId), as AWS would.
    """
    iam = boto3.client("iam", region_name=REGION)
    iam.create_user(UserName="archiver")
    iam.put_user_policy(
        UserName="archiver",
        PolicyName="s3",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
            }
        ),
    )
    key = iam.create_access_key(UserName="archiver")["AccessKey"]
    monkeypatch.setattr(moto_settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)
    monkeypatch.setattr(ActionAuthenticatorMixin, "request_count", 0)
    return {
        CONF_ACCESS_KEY_ID: key["AccessKeyId"],
        CONF_SECRET_ACCESS_KEY: key["SecretAccessKey"],
    }


@pytest.fixture
def one_attempt(monkeypatch: pytest.MonkeyPatch) -> None:
    """No retries: tests of unreachable endpoints need not wait out the backoff."""
    monkeypatch.setattr(client_module, "DEFAULT_MAX_ATTEMPTS", 1)


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    return _free_port()


@pytest.fixture
def s3(aws: None) -> Any:
    """A plain boto3 client on the same in-process moto, for arranging and asserting."""
    return boto3.client("s3", region_name=REGION)


@pytest.fixture
def mock_config_entry() -> MockConfigEntry:
    """An entry for the demo bucket under the prefix 'ha'."""
    return MockConfigEntry(
        domain=DOMAIN,
        entry_id="01JS3GLAC1ERTESTENTRY00001",
        title=f"{BUCKET}/ha",
        data=dict(BUCKET_DATA),
        options={CONF_STORAGE_CLASS: "GLACIER_IR", CONF_ENCRYPTION: "AES256"},
        unique_id=f"{REGION}|{BUCKET}|ha",
    )


@pytest.fixture
async def init_integration(
    hass: HomeAssistant, aws: None, mock_config_entry: MockConfigEntry
) -> AsyncIterator[MockConfigEntry]:
    """Set the entry up against in-process moto."""
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    # Including the reconcile that setup starts in the background.
    await hass.async_block_till_done(wait_background_tasks=True)
    return mock_config_entry


class MotoRestores:
    """Holds moto's restores in progress until the test lets them finish.

    moto advances a restore one step per *lookup* of the key (each HEAD or GET), so a
    count cannot hold one open across our own checks: the test sets the state.
    """

    def __init__(self) -> None:
        state_manager.set_transition(
            model_name="s3::keyrestore", transition={"progression": "manual", "times": 10**9}
        )

    def hold(self, key: str) -> None:
        bucket = s3_backends[DEFAULT_ACCOUNT_ID]["aws"].buckets[BUCKET]
        bucket.keys[key].status = "IN_PROGRESS"

    def finish(self) -> None:
        state_manager.set_transition(
            model_name="s3::keyrestore", transition={"progression": "immediate"}
        )


@pytest.fixture
def restores() -> Iterator[MotoRestores]:
    """Control moto's Glacier restores."""
    yield MotoRestores()
    state_manager.unset_transition("s3::keyrestore")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_up(url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError:
            return  # it answers, even if with an error status
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


class MotoServer:
    """A `moto_server` subprocess on 127.0.0.1 (real HTTP), stopped by its PID."""

    def __init__(self, log_dir: Path) -> None:
        """Start nothing yet: sockets are only allowed inside tests that ask for them."""
        self.port = 0
        self.url = ""
        self._log_dir = log_dir
        self._process: subprocess.Popen[bytes] | None = None

    def ensure_started(self) -> None:
        """Start the server (once) and wait until it answers."""
        if self._process is not None and self._process.poll() is None:
            return
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = self._log_dir / f"moto_server_{self.port}.log"
        moto_server = Path(sys.executable).with_name("moto_server")
        with self._log.open("ab") as log:
            self._process = subprocess.Popen(
                [str(moto_server), "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "MOTO_PORT": str(self.port)},
            )
        _wait_until_up(f"{self.url}/moto-api/", self._process)

    def stop(self) -> None:
        """Stop the server (by its PID) and wait for it."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def reset(self) -> None:
        """Forget every bucket and object (cheaper than a restart)."""
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=5):
            pass

    def client(self, service: str = "s3") -> Any:
        """A plain boto3 client on this server, for arranging and asserting."""
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
        )


@pytest.fixture(scope="session")
def moto_server_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """One moto_server for the session."""
    server = MotoServer(tmp_path_factory.mktemp("moto"))
    yield server
    server.stop()


@pytest.fixture
def moto_endpoint(socket_enabled: None, moto_server_process: MotoServer) -> Iterator[MotoServer]:
    """The session's moto_server, reset, with the demo bucket created."""
    moto_server_process.ensure_started()
    moto_server_process.reset()
    moto_server_process.client().create_bucket(Bucket=BUCKET)
    yield moto_server_process
    moto_server_process.reset()


@pytest.fixture
def endpoint_data(moto_endpoint: MotoServer) -> dict[str, Any]:
    """Entry data pointing at moto_server over HTTP."""
    return {**BUCKET_DATA, CONF_ENDPOINT_URL: moto_endpoint.url}


@pytest.fixture
def restore_estimates(monkeypatch: pytest.MonkeyPatch) -> list[RestoreEstimate]:
    """Every restore estimate the actions answered with, before rounding for display.

    Responses show money rounded up to a hundredth of a cent, so every charge of a small
    test file reads 0.0001: the exact figure is what tells a wrong price, size or day
    count apart.
    """
    estimates: list[RestoreEstimate] = []

    def recorded(estimate: RestoreEstimate) -> dict[str, Any]:
        estimates.append(estimate)
        return restore_cost_fields(estimate)

    for module in (bucket_actions, vault_actions):
        monkeypatch.setattr(module, "restore_cost_fields", recorded)
    return estimates


def shown_money(usd: float) -> float:
    """An amount as responses show it: rounded up to a hundredth of a cent."""
    return math.ceil(round(usd * 10_000, 6)) / 10_000


DEMO_VAULT = "demo-vault"


@pytest.fixture
async def loaded_vault(hass: HomeAssistant, aws: None) -> MockConfigEntry:
    """A loaded entry of moto's demo vault."""
    boto3.client("glacier", region_name=REGION).create_vault(vaultName=DEMO_VAULT)
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=DEMO_VAULT,
        data={
            CONF_ACCESS_KEY_ID: ACCESS_KEY_ID,
            CONF_SECRET_ACCESS_KEY: SECRET_ACCESS_KEY,
            CONF_REGION: REGION,
            CONF_VAULT_NAME: DEMO_VAULT,
            CONF_TARGET: TARGET_VAULT,
        },
        unique_id=f"{REGION}|vault|{DEMO_VAULT}",
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    return entry


async def call_action(hass: HomeAssistant, action: str, **data: Any) -> dict[str, Any]:
    """Call one of the integration's actions as an automation would; return its response."""
    response = await hass.services.async_call(
        DOMAIN, action, data, blocking=True, return_response=True
    )
    assert response is not None
    return response


@pytest.fixture
def allowed(hass: HomeAssistant, tmp_path: Path) -> Path:
    """A directory the actions may read and write (allowlist_external_dirs)."""
    base = tmp_path / "files" / "allowed"
    base.mkdir(parents=True)
    hass.config.allowlist_external_dirs = {str(base.resolve())}
    return base


def write_seeded(path: Path, size: int, seed: int = 0) -> bytes:
    """Write ``size`` bytes that differ by ``seed`` (parents made); return them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (hashlib.sha256(str(seed).encode()).digest() * (size // 32 + 1))[:size]
    path.write_bytes(data)
    return data
