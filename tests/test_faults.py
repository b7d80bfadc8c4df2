"""The fault suite: real S3 servers on 127.0.0.1, with a fault proxy in between.

Servers: ``moto_server`` (conftest's ``moto_endpoint``) and SeaweedFS (``weed mini``,
started once for this module by ``seaweedfs_process``), a real S3 implementation that
checks signatures. Each fault ends either in success with the data intact or in a
translated error with nothing lost: no object, no open multipart upload, no partial
file, the source kept. Every wait is bounded; botocore's backoff is real but short.

Cut mid-upload and mid-download against moto_server are in test_http.py; here they
run against SeaweedFS.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
import hashlib
import json
import os
from pathlib import Path
from typing import Any
import urllib.request

from freezegun.api import FrozenDateTimeFactory
from homeassistant import loader
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
    async_test_home_assistant,
)
import voluptuous as vol

from custom_components.s3_glacier.archive import client as client_module
from custom_components.s3_glacier.const import (
    CONF_ACCESS_KEY_ID,
    CONF_CONCURRENCY,
    CONF_ENCRYPTION,
    CONF_ENDPOINT_URL,
    CONF_PART_SIZE_MIB,
    CONF_SECRET_ACCESS_KEY,
    CONF_STORAGE_CLASS,
    DOMAIN,
)

from .conftest import ACCESS_KEY_ID, BUCKET, BUCKET_DATA, SECRET_ACCESS_KEY, MotoServer, call_action
from .fault_proxy import FaultProxy
from .helpers import add_and_set_up
from .seaweedfs import (
    ACCESS_KEY_ID as WEED_ACCESS_KEY_ID,
    SECRET_ACCESS_KEY as WEED_SECRET_ACCESS_KEY,
    SeaweedFS,
)

MIB = 1024 * 1024
ENTRY_ID = "01JS3GLAC1ERFAULTENTRY0001"


# --- servers, proxy, entries -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class S3Server:
    """What a test needs to know about the server behind the proxy."""

    name: str
    port: int
    url: str
    access_key_id: str
    secret_access_key: str
    client: Callable[[], Any]


@pytest.fixture(scope="module")
def seaweedfs_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    """One SeaweedFS for the module, started by the first test that needs it."""
    server = SeaweedFS(tmp_path_factory.mktemp("seaweedfs"))
    yield server
    server.stop()


@pytest.fixture
def seaweedfs(socket_enabled: None, seaweedfs_process: SeaweedFS) -> SeaweedFS:
    """The module's SeaweedFS, with the default keys and an empty demo bucket."""
    seaweedfs_process.start()
    if seaweedfs_process.access_key_id != WEED_ACCESS_KEY_ID:
        seaweedfs_process.set_credentials(WEED_ACCESS_KEY_ID, WEED_SECRET_ACCESS_KEY)
    seaweedfs_process.create_bucket(BUCKET)
    seaweedfs_process.empty_bucket(BUCKET)
    return seaweedfs_process


def _moto(endpoint: MotoServer) -> S3Server:
    return S3Server(
        "moto_server",
        endpoint.port,
        endpoint.url,
        ACCESS_KEY_ID,
        SECRET_ACCESS_KEY,
        endpoint.client,
    )


def _weed(server: SeaweedFS) -> S3Server:
    return S3Server(
        "seaweedfs",
        server.port,
        server.url,
        server.access_key_id,
        server.secret_access_key,
        server.client,
    )


@pytest.fixture(params=["moto_server", "seaweedfs"])
def server(request: pytest.FixtureRequest) -> S3Server:
    """Each server in turn."""
    if request.param == "moto_server":
        return _moto(request.getfixturevalue("moto_endpoint"))
    return _weed(request.getfixturevalue("seaweedfs"))


@pytest.fixture
def weed(seaweedfs: SeaweedFS) -> S3Server:
    """SeaweedFS only (its checks are the subject, or moto's case is tested elsewhere)."""
    return _weed(seaweedfs)


@pytest.fixture
def proxy(request: pytest.FixtureRequest) -> Iterator[FaultProxy]:
    """A fault proxy in front of the test's server (``server`` or ``weed``)."""
    name = "weed" if "weed" in request.fixturenames else "server"
    target: S3Server = request.getfixturevalue(name)
    fault_proxy = FaultProxy(target.port)
    fault_proxy.start()
    yield fault_proxy
    fault_proxy.stop()


@pytest.fixture(autouse=True)
async def unload_cleanly(hass: HomeAssistant) -> AsyncIterator[None]:
    """Unload what a test left loaded and let the catalogs close before the harness stops
    Home Assistant (the close runs in a background task, which a stop would cancel)."""
    yield
    for entry in hass.config_entries.async_entries(DOMAIN):
        if entry.state is ConfigEntryState.LOADED:
            await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)


@pytest.fixture
def allowed(hass: HomeAssistant, tmp_path: Path) -> Path:
    """A directory the actions may read and write (allowlist_external_dirs)."""
    base = tmp_path / "files"
    base.mkdir()
    hass.config.allowlist_external_dirs = {str(base.resolve())}
    return base


def _entry(url: str, access_key_id: str, secret_access_key: str, **options: Any) -> MockConfigEntry:
    """An entry for the demo bucket (prefix 'ha') at ``url``; 5 MiB parts, 2 at a time."""
    return MockConfigEntry(
        domain=DOMAIN,
        entry_id=ENTRY_ID,
        title=f"{BUCKET}/ha",
        data={
            **BUCKET_DATA,
            CONF_ENDPOINT_URL: url,
            CONF_ACCESS_KEY_ID: access_key_id,
            CONF_SECRET_ACCESS_KEY: secret_access_key,
        },
        options={
            CONF_STORAGE_CLASS: "GLACIER_IR",
            CONF_ENCRYPTION: "AES256",
            CONF_PART_SIZE_MIB: 5,
            CONF_CONCURRENCY: 2,
            **options,
        },
        unique_id=f"{url}|{BUCKET}|ha",
    )


async def _with_read_timeout(
    hass: HomeAssistant, entry: MockConfigEntry, monkeypatch: pytest.MonkeyPatch, seconds: int
) -> None:
    """Reload ``entry`` with a client whose read timeout is ``seconds``."""
    monkeypatch.setattr(client_module, "_READ_TIMEOUT", seconds)
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)


@pytest.fixture
async def proxied_entry(
    hass: HomeAssistant, server: S3Server, proxy: FaultProxy, allowed: Path
) -> AsyncIterator[MockConfigEntry]:
    """A loaded entry whose endpoint is the proxy in front of ``server``."""
    entry = await add_and_set_up(
        hass, _entry(proxy.url, server.access_key_id, server.secret_access_key)
    )
    yield entry
    await hass.config_entries.async_unload(entry.entry_id)


def _write(path: Path, size: int) -> bytes:
    data = os.urandom(size)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


def _objects(s3: Any) -> dict[str, tuple[int, str]]:
    """Key → (size, ETag) of everything in the bucket."""
    listing = s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    return {item["Key"]: (item["Size"], item["ETag"]) for item in listing}


def _uploads(s3: Any) -> list[str]:
    return [u["Key"] for u in s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])]


def _tree(base: Path) -> dict[str, bytes | None]:
    """Every file (its bytes) and directory (None) under ``base``."""
    return {
        p.relative_to(base).as_posix(): p.read_bytes() if p.is_file() else None
        for p in sorted(base.rglob("*"))
    }


# --- throttling ----------------------------------------------------------------------------


@pytest.mark.usefixtures("proxied_entry")
async def test_throttled_parts_are_retried(
    hass: HomeAssistant, server: S3Server, proxy: FaultProxy, allowed: Path
) -> None:
    """503 SlowDown on the first two part uploads: botocore retries, the archive succeeds."""
    data = _write(allowed / "big.bin", 12 * MIB)
    proxy.throttle(2, methods=("PUT",))
    response = await call_action(hass, "archive", path=str(allowed / "big.bin"))

    assert len(proxy.throttled) == 2
    assert all("partNumber=" in line for line in proxy.throttled)
    item = response["archived"][0]
    assert item["sha256"] == hashlib.sha256(data).hexdigest()
    head = server.client().head_object(Bucket=BUCKET, Key="ha/big.bin")
    assert head["ContentLength"] == len(data)
    assert head["Metadata"]["sha256"] == item["sha256"]
    assert _uploads(server.client()) == []


@pytest.mark.usefixtures("one_attempt")
async def test_persistent_throttling_aborts_and_keeps_source(
    hass: HomeAssistant, server: S3Server, proxy: FaultProxy, allowed: Path
) -> None:
    """SlowDown on every part until the client gives up → "throttled", nothing left over."""
    await add_and_set_up(hass, _entry(proxy.url, server.access_key_id, server.secret_access_key))
    data = _write(allowed / "big.bin", 12 * MIB)
    proxy.throttle(1000, methods=("PUT",))
    with pytest.raises(HomeAssistantError) as err:
        await call_action(hass, "archive", path=str(allowed / "big.bin"), delete_source=True)
    assert err.value.translation_key == "throttled"
    proxy.throttle(0)

    s3 = server.client()
    assert _uploads(s3) == []
    assert _objects(s3) == {}
    assert (allowed / "big.bin").read_bytes() == data
    assert hass.states.get("sensor.demo_archive_ha_archived_objects").state == "0"


# --- endpoint down at setup ----------------------------------------------------------------


@pytest.mark.usefixtures("one_attempt")
async def test_endpoint_down_at_setup_loads_when_back(
    hass: HomeAssistant,
    server: S3Server,
    proxy: FaultProxy,
    allowed: Path,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Refused connections → not ready; Home Assistant's retries load it once it is back."""
    proxy.set_listening(False)
    entry = _entry(proxy.url, server.access_key_id, server.secret_access_key)
    entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.SETUP_RETRY
    assert entry.reason == "Could not reach the storage endpoint"

    # First retry after 5 s (plus jitter): still down.
    freezer.tick(timedelta(seconds=6))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert entry.state is ConfigEntryState.SETUP_RETRY

    # Second retry after 10 s more: the server is back.
    proxy.set_listening(True)
    freezer.tick(timedelta(seconds=11))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert entry.state is ConfigEntryState.LOADED

    _write(allowed / "a.txt", 100)
    await call_action(hass, "archive", path=str(allowed / "a.txt"))
    assert list(_objects(server.client())) == ["ha/a.txt"]
    assert await hass.config_entries.async_unload(entry.entry_id)


# --- credentials on a server that checks them ------------------------------------------------


@pytest.mark.parametrize(
    ("access_key_id", "secret_access_key"),
    [
        (WEED_ACCESS_KEY_ID, "not-the-secret"),
        ("AKIDNOSUCHKEY0000000", WEED_SECRET_ACCESS_KEY),
    ],
    ids=["wrong_secret", "unknown_key"],
)
async def test_refused_keys_at_setup_start_reauth(
    hass: HomeAssistant, seaweedfs: SeaweedFS, access_key_id: str, secret_access_key: str
) -> None:
    """SeaweedFS refuses the keys → setup error and a reauth flow for the entry."""
    entry = _entry(seaweedfs.url, access_key_id, secret_access_key)
    entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_ERROR
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [(f["context"]["source"], f["context"]["entry_id"]) for f in flows] == [
        (SOURCE_REAUTH, entry.entry_id)
    ]


async def test_revoked_keys_fail_every_action_until_reauth(
    hass: HomeAssistant, seaweedfs: SeaweedFS, allowed: Path
) -> None:
    """Keys revoked at the server → each action fails with invalid_auth and changes nothing;
    one reauth flow; new keys through it → the entry works again."""
    entry = await add_and_set_up(
        hass, _entry(seaweedfs.url, seaweedfs.access_key_id, seaweedfs.secret_access_key)
    )
    _write(allowed / "a.txt", 1000)
    await call_action(hass, "archive", path=str(allowed / "a.txt"))
    b_data = _write(allowed / "b.txt", 1000)
    (allowed / "out").mkdir()

    seaweedfs.set_credentials("AKIDROTATED000000001", "rotated-secret-0001")
    calls: list[tuple[str, dict[str, Any]]] = [
        ("archive", {"path": str(allowed / "b.txt"), "delete_source": True}),
        ("restore", {"key": "ha/a.txt", "destination": str(allowed / "out")}),
        ("delete", {"key": "ha/a.txt"}),
        ("list", {}),
        ("refresh", {}),
    ]
    for action, data in calls:
        with pytest.raises(HomeAssistantError) as err:
            await call_action(hass, action, **data)
        assert (action, err.value.translation_key) == (action, "invalid_auth")
    await hass.async_block_till_done(wait_background_tasks=True)

    assert list(_objects(seaweedfs.client())) == ["ha/a.txt"]
    assert (allowed / "b.txt").read_bytes() == b_data
    assert list((allowed / "out").iterdir()) == []
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [(f["context"]["source"], f["context"]["entry_id"]) for f in flows] == [
        (SOURCE_REAUTH, entry.entry_id)
    ]

    result = await hass.config_entries.flow.async_configure(
        flows[0]["flow_id"],
        {
            CONF_ACCESS_KEY_ID: seaweedfs.access_key_id,
            CONF_SECRET_ACCESS_KEY: seaweedfs.secret_access_key,
        },
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    await hass.async_block_till_done(wait_background_tasks=True)
    assert entry.state is ConfigEntryState.LOADED
    await call_action(hass, "archive", path=str(allowed / "b.txt"))
    assert sorted(_objects(seaweedfs.client())) == ["ha/a.txt", "ha/b.txt"]
    assert await hass.config_entries.async_unload(entry.entry_id)


# --- cut, stalled and slow connections (SeaweedFS) ------------------------------------------


@pytest.mark.usefixtures("one_attempt")
async def test_cut_upload_on_seaweedfs_leaves_nothing_behind(
    hass: HomeAssistant, weed: S3Server, proxy: FaultProxy, allowed: Path
) -> None:
    """Connection reset mid-multipart: cannot_connect, upload aborted, source kept."""
    await add_and_set_up(hass, _entry(proxy.url, weed.access_key_id, weed.secret_access_key))
    data = _write(allowed / "big.bin", 12 * MIB)
    proxy.cut_upstream = 3 * MIB
    with pytest.raises(HomeAssistantError) as err:
        await call_action(hass, "archive", path=str(allowed / "big.bin"), delete_source=True)
    assert err.value.translation_key == "cannot_connect"
    assert proxy.cuts >= 1
    proxy.cut_upstream = None

    s3 = weed.client()
    assert _uploads(s3) == []
    assert _objects(s3) == {}
    assert (allowed / "big.bin").read_bytes() == data
    assert hass.states.get("sensor.demo_archive_ha_archived_objects").state == "0"


@pytest.mark.usefixtures("one_attempt")
@pytest.mark.parametrize("fault", ["cut", "stall"])
async def test_broken_download_on_seaweedfs_leaves_no_file(
    hass: HomeAssistant,
    weed: S3Server,
    proxy: FaultProxy,
    allowed: Path,
    monkeypatch: pytest.MonkeyPatch,
    fault: str,
) -> None:
    """Download reset (or stalled past the read timeout) mid-body: cannot_connect, no
    file and no temporary file at the destination; the retry succeeds."""
    entry = await add_and_set_up(
        hass, _entry(proxy.url, weed.access_key_id, weed.secret_access_key)
    )
    data = _write(allowed / "big.bin", 12 * MIB)
    await call_action(hass, "archive", path=str(allowed / "big.bin"))
    # The short read timeout only for the download: a loaded machine may take longer
    # than a second to store an uploaded part.
    await _with_read_timeout(hass, entry, monkeypatch, 1)
    out = allowed / "out"
    out.mkdir()

    if fault == "cut":
        proxy.cut_downstream = 2 * MIB
    else:
        proxy.stall_downstream = 2 * MIB
    with pytest.raises(HomeAssistantError) as err:
        await call_action(hass, "restore", key="ha/big.bin", destination=str(out))
    assert err.value.translation_key == "cannot_connect"
    assert list(out.iterdir()) == []
    # The fault injected is the one meant: a cut resets once and drops nothing; a stall
    # never resets (the client gave up on its read timeout) and dropped the rest.
    if fault == "cut":
        assert (proxy.cuts, proxy.stalls) == (1, 0)
    else:
        assert proxy.cuts == 0
        assert proxy.stalls >= 1

    proxy.cut_downstream = proxy.stall_downstream = None
    await call_action(hass, "restore", key="ha/big.bin", destination=str(out))
    assert (out / "big.bin").read_bytes() == data
    assert [p.name for p in out.iterdir()] == ["big.bin"]


@pytest.mark.usefixtures("one_attempt")
async def test_slow_link_is_not_a_timeout(
    hass: HomeAssistant,
    weed: S3Server,
    proxy: FaultProxy,
    allowed: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A download that takes longer than the read timeout still succeeds while bytes flow:
    the timeout bounds silence, not the length of a transfer."""
    entry = await add_and_set_up(
        hass, _entry(proxy.url, weed.access_key_id, weed.secret_access_key)
    )
    data = _write(allowed / "slow.bin", 6 * MIB)
    await call_action(hass, "archive", path=str(allowed / "slow.bin"))
    (allowed / "slow.bin").unlink()
    await _with_read_timeout(hass, entry, monkeypatch, 1)

    proxy.rate = 4 * MIB
    await call_action(hass, "restore", key="ha/slow.bin", destination=str(allowed))
    # The whole download was paced: at 4 MiB/s, 6 MiB take 1.5 s, past the 1 s timeout.
    assert proxy.paced >= 6 * MIB
    assert (allowed / "slow.bin").read_bytes() == data


# --- Home Assistant restarted while a Glacier restore is pending ----------------------------


class MotoServerRestores:
    """Drives moto_server's restores over its HTTP API (POST /moto-api/state-manager/...).

    moto counts one tick per lookup of a key (HEAD, GET) and, with a manual transition of
    ``times=1``, moves a restore one state (none → in progress → restored) each time a
    lookup reads the state. The state is only read once a restore has been requested,
    so: the first check after the request sees "in progress", the second "restored".
    """

    def __init__(self, url: str) -> None:
        self._url = url

    def _post(self, action: str, body: dict[str, Any]) -> None:
        request = urllib.request.Request(
            f"{self._url}/moto-api/state-manager/{action}",
            data=json.dumps(body).encode(),
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5):
            pass

    def one_step_per_check(self) -> None:
        self._post(
            "set-transition",
            {"model_name": "s3::keyrestore", "transition": {"progression": "manual", "times": 1}},
        )

    def reset(self) -> None:
        self._post("unset-transition", {"model_name": "s3::keyrestore"})


@pytest.fixture
def moto_restores(moto_endpoint: MotoServer) -> Iterator[MotoServerRestores]:
    """Control moto_server's Glacier restores; back to 'immediate' afterwards."""
    restores = MotoServerRestores(moto_endpoint.url)
    yield restores
    restores.reset()


async def test_pending_restore_completes_after_restart(
    hass: HomeAssistant,
    moto_endpoint: MotoServer,
    moto_restores: MotoServerRestores,
    allowed: Path,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Restore requested, Home Assistant goes away; a new instance on the same config
    directory follows the restore from the catalog to the download and the event."""
    entry = await add_and_set_up(hass, _entry(moto_endpoint.url, ACCESS_KEY_ID, SECRET_ACCESS_KEY))
    data = _write(allowed / "deep.bin", 3000)
    await call_action(hass, "archive", path=str(allowed / "deep.bin"), storage_class="DEEP_ARCHIVE")
    (allowed / "deep.bin").unlink()
    moto_restores.one_step_per_check()
    response = await call_action(hass, "restore", key="ha/deep.bin", destination=str(allowed))
    assert response["status"] == "restore_requested"

    # The first instance stops: the entry unloads, its timers and catalog are closed.
    assert await hass.config_entries.async_unload(entry.entry_id)
    config_dir = hass.config.config_dir

    async with async_test_home_assistant(config_dir=config_dir) as restarted:
        restarted.data.pop(loader.DATA_CUSTOM_COMPONENTS)  # custom integrations enabled
        restarted.config.allowlist_external_dirs = {str(allowed.resolve())}
        again = _entry(moto_endpoint.url, ACCESS_KEY_ID, SECRET_ACCESS_KEY)
        again.add_to_hass(restarted)
        completed = async_capture_events(restarted, f"{DOMAIN}_restore_completed")
        # First check, at setup: still in progress.
        assert await restarted.config_entries.async_setup(again.entry_id)
        await restarted.async_block_till_done(wait_background_tasks=True)
        assert restarted.states.get("sensor.demo_archive_ha_pending_restores").state == "1"
        assert completed == []
        assert not (allowed / "deep.bin").exists()

        # Second check (Standard tier: 15 min later): restored → downloaded, verified,
        # event fired.
        freezer.tick(timedelta(minutes=15, seconds=1))
        async_fire_time_changed(restarted)
        await restarted.async_block_till_done(wait_background_tasks=True)
        assert [(e.data["key"], e.data["path"]) for e in completed] == [
            ("ha/deep.bin", str((allowed / "deep.bin").resolve()))
        ]
        assert (allowed / "deep.bin").read_bytes() == data
        assert restarted.states.get("sensor.demo_archive_ha_pending_restores").state == "0"

        assert await restarted.config_entries.async_unload(again.entry_id)
        await restarted.async_block_till_done(wait_background_tasks=True)
        await restarted.async_stop(force=True)


# --- bad input: every action, nothing uploaded, downloaded or deleted -----------------------

# A marker for cases in which no entry is loaded when the action is called.
UNLOADED = "{unloaded}"
# Placeholders in field values: {allowed} the allowlisted directory, {other} a second
# entry of this integration that is not loaded, {foreign} an entry of another domain.
_ENTRY_CASES: list[tuple[str, dict[str, Any], str]] = [
    (action, {**base, **entry_fields}, error)
    for action, base in (
        ("archive", {"path": "{allowed}/ok.txt"}),
        ("restore", {"key": "ha/keep.txt", "destination": "{allowed}/out"}),
        ("delete", {"key": "ha/keep.txt"}),
        ("list", {}),
        ("refresh", {}),
    )
    for entry_fields, error in (
        ({"config_entry_id": "nope"}, "config_entry_not_found"),
        ({"config_entry_id": "{foreign}"}, "config_entry_not_found"),
        ({"config_entry_id": "{other}"}, "config_entry_not_loaded"),
        ({UNLOADED: True}, "config_entry_required"),
    )
    # test_services.py already calls archive with an unknown entry ID.
    if (action, entry_fields) != ("archive", {"config_entry_id": "nope"})
]
_FIELD_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("delete", {"key": ""}, "key_empty"),
    ("delete", {"key": "/ha/keep.txt"}, "key_absolute"),
    ("delete", {"key": "ha/../ha/keep.txt"}, "key_parent_segment"),
    ("delete", {"key": "k" * 1025}, "key_too_long"),
    ("delete", {"key": "ha/none.txt"}, "key_not_found"),
    ("delete", {"key": "elsewhere/keep.txt"}, "key_outside_prefix"),
    ("delete", {}, "key_required"),
    ("delete", {"key": "ha/keep.txt", "force": True}, "schema:force"),
    ("list", {"limit": 0}, "invalid_limit"),
    ("list", {"limit": -5}, "invalid_limit"),
    ("list", {"limit": 10_001}, "invalid_limit"),
    ("list", {"limit": "many"}, "schema:limit"),
    ("list", {"recursive": True}, "schema:recursive"),
    ("refresh", {"force": True}, "schema:force"),
    ("restore", {"key": "", "destination": "{allowed}/out"}, "key_empty"),
    ("restore", {"key": "ha/../x", "destination": "{allowed}/out"}, "key_parent_segment"),
    ("restore", {"key": "ha/keep.txt", "destination": "{allowed}/dir"}, "destination_is_directory"),
    ("restore", {"key": "ha/keep.txt", "days": "three"}, "schema:days"),
    ("restore", {"key": "ha/keep.txt", "overwrite": "maybe"}, "schema:overwrite"),
    (
        "restore",
        {"key": "elsewhere/keep.txt", "destination": "{allowed}/out"},
        "key_outside_prefix",
    ),
    ("restore", {"destination": "{allowed}/out"}, "key_required"),
    ("archive", {"path": "{allowed}/ok.txt", "key": "elsewhere/ok.txt"}, "key_outside_prefix"),
    ("archive", {}, "schema:path"),
    ("archive", {"path": "{allowed}/ok.txt", "overwrite": "maybe"}, "schema:overwrite"),
    ("archive", {"path": "{allowed}/ok.txt", "delete_source": "perhaps"}, "schema:delete_source"),
    ("archive", {"path": "{allowed}/ok.txt", "destination": "x"}, "schema:destination"),
]


@pytest.mark.usefixtures("socket_enabled")
@pytest.mark.parametrize(
    ("action", "fields", "error"),
    _ENTRY_CASES + _FIELD_CASES,
    ids=[
        f"{action}-{error}-{'-'.join(fields) or 'nothing'}"
        for action, fields, error in _ENTRY_CASES + _FIELD_CASES
    ],
)
async def test_bad_input_changes_nothing(
    hass: HomeAssistant,
    moto_endpoint: MotoServer,
    allowed: Path,
    action: str,
    fields: dict[str, Any],
    error: str,
) -> None:
    """Each bad value → its documented error (a translated key, or the schema naming the
    field); the bucket and the local files are exactly as before."""
    s3 = moto_endpoint.client()
    s3.put_object(Bucket=BUCKET, Key="ha/keep.txt", Body=b"keep", StorageClass="GLACIER_IR")
    s3.put_object(Bucket=BUCKET, Key="ha/deep.bin", Body=b"deep", StorageClass="DEEP_ARCHIVE")
    entry = await add_and_set_up(hass, _entry(moto_endpoint.url, ACCESS_KEY_ID, SECRET_ACCESS_KEY))
    other = MockConfigEntry(domain=DOMAIN, title="other", data=dict(entry.data))
    other.add_to_hass(hass)
    foreign = MockConfigEntry(domain="sun", title="foreign")
    foreign.add_to_hass(hass)
    _write(allowed / "ok.txt", 100)
    (allowed / "out").mkdir()
    (allowed / "dir" / "keep.txt").mkdir(parents=True)

    data = {
        name: value.format(allowed=allowed, other=other.entry_id, foreign=foreign.entry_id)
        if isinstance(value, str)
        else value
        for name, value in fields.items()
        if name != UNLOADED
    }
    if action == "archive":
        data.setdefault("delete_source", True)
    if UNLOADED in fields:
        assert await hass.config_entries.async_unload(entry.entry_id)
    objects, files = _objects(s3), _tree(allowed)

    if error.startswith("schema:"):
        with pytest.raises(vol.Invalid) as invalid:
            await call_action(hass, action, **data)
        assert invalid.value.path == [error.removeprefix("schema:")]
    else:
        with pytest.raises(ServiceValidationError) as err:
            await call_action(hass, action, **data)
        assert err.value.translation_key == error

    assert _objects(s3) == objects
    assert _uploads(s3) == []
    assert _tree(allowed) == files
    assert "Restore" not in s3.head_object(Bucket=BUCKET, Key="ha/deep.bin")
    if entry.state is ConfigEntryState.LOADED:
        assert await hass.config_entries.async_unload(entry.entry_id)
