"""The restore watcher beyond the happy path, driven through Home Assistant.

Entries are set up, restores requested with the restore action, and time moved with
freezer. S3 and Glacier are moto in process; a fault moto cannot produce (a cut
connection, throttling, a failed or expired job) is injected on the entry's own
botocore client through its event hooks, answering or refusing only the request in
question. A restart is an unload and a setup of the same entry.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
import datetime as dt
from datetime import timedelta
import json
from pathlib import Path
import threading
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ConnectionClosedError, EndpointConnectionError
from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import Event, HomeAssistant
from homeassistant.helpers import issue_registry as ir
from moto.core import DEFAULT_ACCOUNT_ID
from moto.glacier.models import glacier_backends
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
)

from custom_components.s3_glacier import repairs
from custom_components.s3_glacier.archive import s3 as s3_module
from custom_components.s3_glacier.archive.catalog import CatalogError
from custom_components.s3_glacier.archive.models import RestoreTier
from custom_components.s3_glacier.archive.s3 import S3Target
from custom_components.s3_glacier.archive.vault import build_description
from custom_components.s3_glacier.const import DOMAIN, META_INVENTORY_JOB
from custom_components.s3_glacier.restore import RestoreWatcher, retry_delay

from .client_hooks import ClientHooks, error_response
from .conftest import DEMO_VAULT, REGION, MotoRestores, call_action, write_seeded
from .full_disk import FullDiskFile
from .helpers import key_lock_held_during, moto_object, our_issue_ids, set_up, tick, unload

ENDPOINT = "https://demo-archive.s3.amazonaws.com"
COMPLETED = f"{DOMAIN}_restore_completed"
FAILED = f"{DOMAIN}_restore_failed"
AGAIN = f"{DOMAIN}_restore_requested_again"

type Answer = Callable[[], tuple[AWSResponse, dict[str, Any]] | None]


@pytest.fixture(autouse=True)
async def unload_at_teardown(hass: HomeAssistant) -> AsyncIterator[None]:
    """Unload the entries a test leaves loaded, so that their catalogs are closed."""
    yield
    for entry in hass.config_entries.async_entries(DOMAIN):
        if entry.state is ConfigEntryState.LOADED:
            assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)


@pytest.fixture
def hooks_on() -> Iterator[Callable[[MockConfigEntry], ClientHooks]]:
    """Hooks on an entry's current client (a new one after each restart), removed after."""
    made: list[ClientHooks] = []

    def make(entry: MockConfigEntry) -> ClientHooks:
        made.append(ClientHooks(entry))
        return made[-1]

    yield make
    for hooks in made:
        hooks.remove_all()


class Requests:
    """Counts one operation's requests and answers the next ones from a script.

    ``fail(answer, ...)`` queues answers for the next requests (each returns a botocore
    response or raises); requests with nothing queued reach moto.
    """

    def __init__(self, hooks: ClientHooks, event: str) -> None:
        self.count = 0
        self._queued: list[Answer] = []
        hooks.on(event, self._answer)

    def fail(self, *answers: Answer) -> None:
        self._queued.extend(answers)

    def _answer(self, **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        self.count += 1
        return self._queued.pop(0)() if self._queued else None


def _raise(err: Exception) -> Answer:
    def answer() -> None:
        raise err

    return answer


def _answer_error(code: str, status: int) -> Answer:
    return lambda: error_response(code, status)


def _pending_keys(entry: MockConfigEntry) -> list[str]:
    return [p.key for p in entry.runtime_data.catalog.pending_restores()]


def _leftovers(directory: Path) -> list[str]:
    """Files in ``directory``: a half-written download would show as a hidden .part."""
    return sorted(p.name for p in directory.iterdir())


async def _archive_and_restore(
    hass: HomeAssistant, allowed: Path, name: str, size: int, **restore: Any
) -> bytes:
    """Archive ``allowed/name`` to GLACIER, remove it, and ask for it back (Expedited
    into ``allowed`` unless ``restore`` says otherwise)."""
    data = write_seeded(allowed / name, size)
    await call_action(hass, "archive", path=str(allowed / name), storage_class="GLACIER")
    (allowed / name).unlink()
    response = await call_action(
        hass,
        "restore",
        key=f"ha/{name}",
        **({"tier": "Expedited", "destination": str(allowed)} | restore),
    )
    assert response["status"] == "restore_requested"
    return data


async def _restored_while_stopped(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    allowed: Path,
    restores: MotoRestores,
    name: str,
    size: int,
    **restore: Any,
) -> bytes:
    """Archive and ask for ``name`` back, then stop: the restore finishes while the
    entry is unloaded. Returns the bytes."""
    data = await _archive_and_restore(hass, allowed, name, size, **restore)
    restores.hold(f"ha/{name}")
    await unload(hass, entry)
    restores.finish()  # done while Home Assistant was off
    return data


def _keys_and_paths(events: list[Event]) -> list[tuple[str, str | None]]:
    """(key, path) of each restore_completed event."""
    return [(e.data["key"], e.data["path"]) for e in events]


def _keys_and_reasons(events: list[Event]) -> list[tuple[str, str]]:
    """(key, reason) of each restore_failed or restore_requested_again event."""
    return [(e.data["key"], e.data["reason"]) for e in events]


# --- S3: checks that cannot be made ----------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(_raise(EndpointConnectionError(endpoint_url=ENDPOINT)), id="unreachable"),
        pytest.param(_raise(ConnectionClosedError(endpoint_url=ENDPOINT)), id="connection_closed"),
        pytest.param(_answer_error("SlowDown", 503), id="slow_down"),
        pytest.param(_answer_error("ThrottlingException", 400), id="throttling"),
        pytest.param(_raise(RuntimeError("surprise")), id="unexpected"),
    ],
)
async def test_check_that_cannot_be_made_is_postponed_then_completes(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    allowed: Path,
    hooks_on: Callable[[MockConfigEntry], ClientHooks],
    restores: MotoRestores,
    freezer: FrozenDateTimeFactory,
    fault: Answer,
) -> None:
    """Each failed check is retried twice as late (2, then 4 minutes for Expedited); a
    check that gets an answer resets the backoff; once restored, the file is written."""
    data = await _archive_and_restore(hass, allowed, "n.bin", 3000)
    restores.hold("ha/n.bin")
    heads = Requests(hooks_on(init_integration), "before-call.s3.HeadObject")
    completed = async_capture_events(hass, COMPLETED)
    failed = async_capture_events(hass, FAILED)

    heads.fail(fault, fault)
    await tick(hass, freezer, timedelta(minutes=1, seconds=1))
    assert heads.count == 1
    await tick(hass, freezer, timedelta(minutes=1, seconds=57))
    assert heads.count == 1  # postponed by 2 minutes, not checked at the usual pace
    await tick(hass, freezer, timedelta(seconds=4))
    assert heads.count == 2
    await tick(hass, freezer, timedelta(minutes=3, seconds=56))
    assert heads.count == 2  # failed again: 4 minutes
    await tick(hass, freezer, timedelta(seconds=4))
    assert heads.count == 3  # answered: still restoring, so the usual pace again
    await tick(hass, freezer, timedelta(minutes=1))
    assert heads.count == 4
    assert completed == failed == []
    assert _pending_keys(init_integration) == ["ha/n.bin"]
    assert hass.states.get("sensor.demo_archive_ha_pending_restores").state == "1"

    heads.fail(fault)  # a new failure after an answer starts the backoff afresh
    await tick(hass, freezer, timedelta(minutes=1))
    assert heads.count == 5
    restores.finish()
    await tick(hass, freezer, timedelta(minutes=1, seconds=56))
    assert heads.count == 5
    assert not (allowed / "n.bin").exists()
    await tick(hass, freezer, timedelta(seconds=4))
    assert _keys_and_paths(completed) == [("ha/n.bin", str((allowed / "n.bin").resolve()))]
    assert (allowed / "n.bin").read_bytes() == data
    assert failed == []
    assert _pending_keys(init_integration) == []
    assert our_issue_ids(hass) == set()


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(_raise(ConnectionClosedError(endpoint_url=ENDPOINT)), id="connection_closed"),
        # The bucket's own repair issue covers it; the restore waits for it to return.
        pytest.param(_answer_error("NoSuchBucket", 404), id="bucket_missing"),
    ],
)
async def test_download_cut_off_is_postponed_then_completes(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    allowed: Path,
    hooks_on: Callable[[MockConfigEntry], ClientHooks],
    freezer: FrozenDateTimeFactory,
    fault: Answer,
) -> None:
    """A download that cannot be made (after a good check) is retried, not a failure."""
    data = await _archive_and_restore(hass, allowed, "c.bin", 2000)  # moto restores at once
    gets = Requests(hooks_on(init_integration), "before-call.s3.GetObject")
    gets.fail(fault)
    completed = async_capture_events(hass, COMPLETED)
    failed = async_capture_events(hass, FAILED)

    await tick(hass, freezer, timedelta(minutes=1, seconds=1))
    assert gets.count == 1
    assert completed == failed == []
    assert _leftovers(allowed) == []
    await tick(hass, freezer, timedelta(minutes=1, seconds=57))
    assert gets.count == 1
    await tick(hass, freezer, timedelta(seconds=4))
    assert gets.count == 2
    assert [e.data["key"] for e in completed] == ["ha/c.bin"]
    assert (allowed / "c.bin").read_bytes() == data
    assert failed == []


# --- S3: restarts ----------------------------------------------------------------------


async def test_restored_while_stopped_is_downloaded_at_setup(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    allowed: Path,
    restores: MotoRestores,
) -> None:
    """A Bulk restore (checked hourly) that finished while Home Assistant was off is
    downloaded as soon as the entry is set up again, without waiting for the hour."""
    data = await _restored_while_stopped(
        hass, init_integration, allowed, restores, "r.bin", 2500, tier="Bulk"
    )
    completed = async_capture_events(hass, COMPLETED)

    await set_up(hass, init_integration)

    assert _keys_and_paths(completed) == [("ha/r.bin", str((allowed / "r.bin").resolve()))]
    assert (allowed / "r.bin").read_bytes() == data
    assert _pending_keys(init_integration) == []


async def test_restore_running_across_a_restart_is_followed(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    allowed: Path,
    restores: MotoRestores,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Still running after a restart: followed again, at its tier's pace."""
    data = await _archive_and_restore(hass, allowed, "s.bin", 1200)
    restores.hold("ha/s.bin")
    await unload(hass, init_integration)
    completed = async_capture_events(hass, COMPLETED)

    await set_up(hass, init_integration)
    [pending] = init_integration.runtime_data.catalog.pending_restores()
    assert (pending.key, pending.destination) == ("ha/s.bin", (allowed / "s.bin").resolve())
    assert init_integration.runtime_data.restores.pending("ha/s.bin") == pending
    restores.finish()
    await tick(hass, freezer, timedelta(seconds=57))
    assert completed == []  # that check found it running: the next one is a minute later
    await tick(hass, freezer, timedelta(seconds=4))
    assert [e.data["key"] for e in completed] == ["ha/s.bin"]
    assert (allowed / "s.bin").read_bytes() == data


async def test_request_made_during_a_check_supersedes_it(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    allowed: Path,
    hooks_on: Callable[[MockConfigEntry], ClientHooks],
    restores: MotoRestores,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A destination given while a check runs: that check ends quietly, and the new
    request (its destination, its pace) is the one followed to the end."""
    write_seeded(allowed / "sup.bin", 800)
    await call_action(hass, "archive", path=str(allowed / "sup.bin"), storage_class="GLACIER")
    data = (allowed / "sup.bin").read_bytes()
    (allowed / "sup.bin").unlink()
    await call_action(hass, "restore", key="ha/sup.bin", tier="Expedited")  # no destination
    restores.hold("ha/sup.bin")
    hooks = hooks_on(init_integration)
    responses: list[dict[str, Any]] = []

    def ask_with_destination(**_: Any) -> None:
        # The watcher's HEAD, in the executor: the user asks again before it answers.
        if not responses:
            responses.append({})
            asked = asyncio.run_coroutine_threadsafe(
                call_action(hass, "restore", key="ha/sup.bin", destination=str(allowed)),
                hass.loop,
            )
            responses[0] = asked.result(timeout=30)

    hooks.on("before-call.s3.HeadObject", ask_with_destination)
    completed = async_capture_events(hass, COMPLETED)

    await tick(hass, freezer, timedelta(minutes=1, seconds=1))
    assert responses[0]["status"] == "restore_in_progress"
    [pending] = init_integration.runtime_data.catalog.pending_restores()
    assert pending.destination == (allowed / "sup.bin").resolve()
    restores.finish()
    await tick(hass, freezer, timedelta(minutes=1))
    assert _keys_and_paths(completed) == [("ha/sup.bin", str((allowed / "sup.bin").resolve()))]
    assert (allowed / "sup.bin").read_bytes() == data


# --- S3: the copy, the destination, the disk -------------------------------------------


async def test_copy_expired_between_check_and_download_is_asked_again(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    allowed: Path,
    hooks_on: Callable[[MockConfigEntry], ClientHooks],
    freezer: FrozenDateTimeFactory,
) -> None:
    """Readable at the check, expired at the GET: nothing written, no failure; the next
    check finds no copy and asks for it again (with the days first asked)."""
    data = await _archive_and_restore(hass, allowed, "x.bin", 1800, days=3)
    hooks = hooks_on(init_integration)

    def expire_first(**_: Any) -> None:
        if not expired:
            expired.append(True)
            moto_object("ha/x.bin").set_expiry(None)  # moto then answers InvalidObjectState

    expired: list[bool] = []
    hooks.on("before-call.s3.GetObject", expire_first)
    again = async_capture_events(hass, AGAIN)
    completed = async_capture_events(hass, COMPLETED)
    failed = async_capture_events(hass, FAILED)

    await tick(hass, freezer, timedelta(minutes=1, seconds=1))
    assert expired == [True]
    assert again == completed == failed == []
    assert _leftovers(allowed) == []
    assert _pending_keys(init_integration) == ["ha/x.bin"]

    await tick(hass, freezer, timedelta(minutes=1))
    assert _keys_and_reasons(again) == [("ha/x.bin", "restore_expired")]
    assert hooks.restore_requests == [{"Days": 3, "GlacierJobParameters": {"Tier": "Expedited"}}]
    await tick(hass, freezer, timedelta(minutes=1))
    assert [e.data["key"] for e in completed] == ["ha/x.bin"]
    assert (allowed / "x.bin").read_bytes() == data
    assert failed == []


async def test_destination_that_appeared_is_kept_and_reported(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    allowed: Path,
    hooks_on: Callable[[MockConfigEntry], ClientHooks],
    restores: MotoRestores,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Another file written at the destination while restoring: kept, nothing fetched,
    the restore fails with a reason and a repair issue."""
    await _archive_and_restore(hass, allowed, "d.bin", 1000)
    restores.hold("ha/d.bin")
    gets = Requests(hooks_on(init_integration), "before-call.s3.GetObject")
    failed = async_capture_events(hass, FAILED)
    completed = async_capture_events(hass, COMPLETED)
    (allowed / "d.bin").write_bytes(b"someone else's file")
    restores.finish()

    await tick(hass, freezer, timedelta(minutes=1, seconds=1))
    assert [e.data for e in failed] == [
        {
            "config_entry_id": init_integration.entry_id,
            "key": "ha/d.bin",
            "reason": "destination_exists",
        }
    ]
    assert completed == []
    assert gets.count == 0
    assert (allowed / "d.bin").read_bytes() == b"someone else's file"
    assert _leftovers(allowed) == ["d.bin"]
    assert our_issue_ids(hass) == {repairs.issue_id(init_integration, "restore_failed", "ha/d.bin")}
    assert _pending_keys(init_integration) == []


async def test_destination_already_holding_the_object_completes_without_download(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    allowed: Path,
    hooks_on: Callable[[MockConfigEntry], ClientHooks],
    restores: MotoRestores,
    freezer: FrozenDateTimeFactory,
) -> None:
    """The same bytes already at the destination (a download cut short by a reload):
    the restore is complete, and nothing is fetched again."""
    data = await _archive_and_restore(hass, allowed, "same.bin", 1000)
    restores.hold("ha/same.bin")
    gets = Requests(hooks_on(init_integration), "before-call.s3.GetObject")
    completed = async_capture_events(hass, COMPLETED)
    (allowed / "same.bin").write_bytes(data)
    restores.finish()

    await tick(hass, freezer, timedelta(minutes=1, seconds=1))
    assert _keys_and_paths(completed) == [("ha/same.bin", str((allowed / "same.bin").resolve()))]
    assert gets.count == 0
    assert (allowed / "same.bin").read_bytes() == data


async def test_watched_download_holds_the_keys_lock(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    allowed: Path,
    freezer: FrozenDateTimeFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While the watcher writes a restored object, no action runs on its key."""
    data = await _archive_and_restore(hass, allowed, "locked.bin", 600)
    locked_while_reading = key_lock_held_during(monkeypatch, S3Target, "get", init_integration)
    await tick(hass, freezer, timedelta(minutes=1, seconds=1))
    assert locked_while_reading == [True]
    assert (allowed / "locked.bin").read_bytes() == data


async def test_object_deleted_during_the_check_fails_the_restore(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    allowed: Path,
    hooks_on: Callable[[MockConfigEntry], ClientHooks],
    freezer: FrozenDateTimeFactory,
) -> None:
    """Another tool deletes the object between the restore check and the read of its
    details: the restore fails (key_not_found), nothing is written."""
    await _archive_and_restore(hass, allowed, "gone.bin", 800)
    heads = Requests(hooks_on(init_integration), "before-call.s3.HeadObject")
    heads.fail(lambda: None, _answer_error("404", 404))  # restored; then gone
    failed = async_capture_events(hass, FAILED)

    await tick(hass, freezer, timedelta(minutes=1, seconds=1))
    assert heads.count == 2
    assert _keys_and_reasons(failed) == [("ha/gone.bin", "key_not_found")]
    assert _leftovers(allowed) == []


async def test_watched_restore_overwrites_when_asked(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    allowed: Path,
    freezer: FrozenDateTimeFactory,
) -> None:
    data = await _archive_and_restore(hass, allowed, "over.bin", 900, overwrite=True)
    (allowed / "over.bin").write_bytes(b"an older copy")
    completed = async_capture_events(hass, COMPLETED)

    await tick(hass, freezer, timedelta(minutes=1, seconds=1))
    assert _keys_and_paths(completed) == [("ha/over.bin", str((allowed / "over.bin").resolve()))]
    assert (allowed / "over.bin").read_bytes() == data


async def test_deleting_the_object_clears_its_restore_issue(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    allowed: Path,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A failed restore's repair issue goes when its object is deleted: nothing left to fix."""
    await _archive_and_restore(hass, allowed, "in-the-way.bin", 700)
    (allowed / "in-the-way.bin").write_bytes(b"another file")
    await tick(hass, freezer, timedelta(minutes=1, seconds=1))
    assert our_issue_ids(hass) == {
        repairs.issue_id(init_integration, "restore_failed", "ha/in-the-way.bin")
    }

    await call_action(hass, "delete", key="ha/in-the-way.bin")
    assert our_issue_ids(hass) == set()


async def test_write_failure_leaves_nothing_and_is_reported(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    allowed: Path,
    freezer: FrozenDateTimeFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The disk fills up halfway through the download: no partial file stays, the
    restore fails (write_failed) with a repair issue, and no check follows."""
    await _archive_and_restore(hass, allowed, "w.bin", 3000)
    real_copy = s3_module._copy_stream
    monkeypatch.setattr(
        s3_module,
        "_copy_stream",
        lambda body, out, progress: real_copy(
            body, FullDiskFile(out.fileno(), 1000, closefd=False), progress
        ),
    )
    failed = async_capture_events(hass, FAILED)
    completed = async_capture_events(hass, COMPLETED)

    await tick(hass, freezer, timedelta(minutes=1, seconds=1))
    assert _keys_and_reasons(failed) == [("ha/w.bin", "write_failed")]
    assert completed == []
    assert _leftovers(allowed) == []
    assert our_issue_ids(hass) == {repairs.issue_id(init_integration, "restore_failed", "ha/w.bin")}
    assert _pending_keys(init_integration) == []
    await tick(hass, freezer, timedelta(hours=2))
    assert len(failed) == 1
    assert _leftovers(allowed) == []


async def test_restored_bytes_that_differ_are_not_written(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    allowed: Path,
    restores: MotoRestores,
    freezer: FrozenDateTimeFactory,
) -> None:
    """The bucket now holds other bytes than were archived (same size, SHA-256 differs):
    the download is refused (checksum_mismatch) and nothing reaches the destination."""
    data = await _archive_and_restore(hass, allowed, "m.bin", 1000)
    restores.hold("ha/m.bin")
    moto_object("ha/m.bin").value = bytes(reversed(data))
    restores.finish()
    failed = async_capture_events(hass, FAILED)

    await tick(hass, freezer, timedelta(minutes=1, seconds=1))
    assert _keys_and_reasons(failed) == [("ha/m.bin", "checksum_mismatch")]
    assert _leftovers(allowed) == []
    assert our_issue_ids(hass) == {repairs.issue_id(init_integration, "restore_failed", "ha/m.bin")}


# --- S3: restores that no longer run ---------------------------------------------------


async def test_deleting_the_object_stops_its_restore(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    allowed: Path,
    hooks_on: Callable[[MockConfigEntry], ClientHooks],
    restores: MotoRestores,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Deleted with the delete action while restoring: no more checks, no event, no issue."""
    await _archive_and_restore(hass, allowed, "del.bin", 500)
    restores.hold("ha/del.bin")
    heads = Requests(hooks_on(init_integration), "before-call.s3.HeadObject")
    completed = async_capture_events(hass, COMPLETED)
    failed = async_capture_events(hass, FAILED)

    await call_action(hass, "delete", key="ha/del.bin")
    heads_after_delete = heads.count
    assert _pending_keys(init_integration) == []
    await tick(hass, freezer, timedelta(hours=2))
    assert heads.count == heads_after_delete
    assert completed == failed == []
    assert our_issue_ids(hass) == set()
    assert hass.states.get("sensor.demo_archive_ha_pending_restores").state == "0"


async def test_object_deleted_elsewhere_fails_the_restore(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    allowed: Path,
    s3: Any,
    restores: MotoRestores,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Deleted behind Home Assistant's back while restoring: key_not_found, an issue."""
    await _archive_and_restore(hass, allowed, "gone.bin", 500)
    restores.hold("ha/gone.bin")
    s3.delete_object(Bucket="demo-archive", Key="ha/gone.bin")
    failed = async_capture_events(hass, FAILED)

    await tick(hass, freezer, timedelta(minutes=1, seconds=1))
    assert _keys_and_reasons(failed) == [("ha/gone.bin", "key_not_found")]
    assert our_issue_ids(hass) == {
        repairs.issue_id(init_integration, "restore_failed", "ha/gone.bin")
    }
    assert _pending_keys(init_integration) == []
    assert _leftovers(allowed) == []


# --- vault retrieval jobs ----------------------------------------------------------------


def _vault_job(job_id: str) -> Any:
    return glacier_backends[DEFAULT_ACCOUNT_ID][REGION].vaults[DEMO_VAULT].jobs[job_id]


def _hold_job(job_id: str) -> None:
    """Keep moto's job running (moto ends jobs seconds after they start)."""
    job = _vault_job(job_id)
    job.et = job.st + timedelta(days=365)


def _finish_job(job_id: str) -> None:
    job = _vault_job(job_id)
    job.et = job.st


def _job_answer(status: str, message: str | None = None) -> Callable[..., None]:
    """An after-call handler that makes DescribeJob report ``status``."""

    def answer(parsed: dict[str, Any], **_: Any) -> None:
        parsed["StatusCode"] = status
        parsed["StatusMessage"] = message

    return answer


async def _vault_restore(
    hass: HomeAssistant, entry: MockConfigEntry, allowed: Path, name: str, size: int, **extra: Any
) -> tuple[str, str, bytes]:
    """Archive ``allowed/name`` in the vault, remove it, start an Expedited retrieval.

    Returns the archive ID, the job ID and the bytes.
    """
    data = write_seeded(allowed / name, size)
    response = await call_action(hass, "archive", path=str(allowed / name))
    archive_id = response["archived"][0]["archive_id"]
    (allowed / name).unlink()
    response = await call_action(
        hass,
        "restore",
        archive_id=archive_id,
        tier="Expedited",
        **({"destination": str(allowed)} | extra),
    )
    assert response["status"] == "restore_requested"
    pending = entry.runtime_data.restores.pending(archive_id)
    assert pending is not None
    assert pending.job_id is not None
    return archive_id, pending.job_id, data


async def test_vault_job_still_running_is_checked_at_its_pace(
    hass: HomeAssistant,
    loaded_vault: MockConfigEntry,
    allowed: Path,
    hooks_on: Callable[[MockConfigEntry], ClientHooks],
    freezer: FrozenDateTimeFactory,
) -> None:
    """InProgress: checked again every minute (Expedited) until done, then downloaded."""
    archive_id, job_id, data = await _vault_restore(hass, loaded_vault, allowed, "v.bin", 4000)
    _hold_job(job_id)
    checks = Requests(hooks_on(loaded_vault), "before-call.glacier.DescribeJob")
    completed = async_capture_events(hass, COMPLETED)

    await tick(hass, freezer, timedelta(minutes=1, seconds=1))
    assert checks.count == 1
    await tick(hass, freezer, timedelta(seconds=57))
    assert checks.count == 1
    await tick(hass, freezer, timedelta(seconds=4))
    assert checks.count == 2
    assert completed == []
    assert _pending_keys(loaded_vault) == [archive_id]
    assert not (allowed / "v.bin").exists()

    _finish_job(job_id)
    await tick(hass, freezer, timedelta(minutes=1))
    assert checks.count == 3
    assert _keys_and_paths(completed) == [(archive_id, str((allowed / "v.bin").resolve()))]
    assert (allowed / "v.bin").read_bytes() == data
    assert _pending_keys(loaded_vault) == []


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        pytest.param(
            ("after-call.glacier.DescribeJob", _job_answer("Failed", "Archive unreadable")),
            "job_failed",
            id="failed",
        ),
        pytest.param(
            (
                "before-call.glacier.DescribeJob",
                lambda **_: error_response("ResourceNotFoundException", 404),
            ),
            "job_not_found",
            id="expired",
        ),
    ],
)
async def test_vault_job_that_cannot_finish_fails_the_restore(
    hass: HomeAssistant,
    loaded_vault: MockConfigEntry,
    allowed: Path,
    hooks_on: Callable[[MockConfigEntry], ClientHooks],
    freezer: FrozenDateTimeFactory,
    fault: tuple[str, Callable[..., Any]],
    reason: str,
) -> None:
    """A failed job, or one Glacier no longer knows (its output expired): the restore
    fails with the reason, a repair issue names the archive, nothing is written."""
    archive_id, _job_id, _data = await _vault_restore(hass, loaded_vault, allowed, "f.bin", 100)
    hooks_on(loaded_vault).on(*fault)
    failed = async_capture_events(hass, FAILED)
    completed = async_capture_events(hass, COMPLETED)

    await tick(hass, freezer, timedelta(minutes=1, seconds=1))
    assert [e.data for e in failed] == [
        {"config_entry_id": loaded_vault.entry_id, "key": archive_id, "reason": reason}
    ]
    assert completed == []
    issue = repairs.issue_id(loaded_vault, "restore_failed", archive_id)
    assert our_issue_ids(hass) == {issue}
    registered = ir.async_get(hass).async_get_issue(DOMAIN, issue)
    assert registered is not None
    assert registered.translation_placeholders["key"] == archive_id
    assert _pending_keys(loaded_vault) == []
    assert _leftovers(allowed) == []
    assert hass.states.get("sensor.demo_vault_pending_restores").state == "0"


async def test_vault_check_cut_off_is_postponed_then_completes(
    hass: HomeAssistant,
    loaded_vault: MockConfigEntry,
    allowed: Path,
    hooks_on: Callable[[MockConfigEntry], ClientHooks],
    freezer: FrozenDateTimeFactory,
) -> None:
    """Throttled DescribeJob: retried 2 minutes later, then the output is downloaded."""
    archive_id, _job_id, data = await _vault_restore(hass, loaded_vault, allowed, "t.bin", 700)
    checks = Requests(hooks_on(loaded_vault), "before-call.glacier.DescribeJob")
    checks.fail(_answer_error("ThrottlingException", 400))
    completed = async_capture_events(hass, COMPLETED)

    await tick(hass, freezer, timedelta(minutes=1, seconds=1))
    assert checks.count == 1
    await tick(hass, freezer, timedelta(minutes=1, seconds=57))
    assert checks.count == 1
    assert completed == []
    await tick(hass, freezer, timedelta(seconds=4))
    assert checks.count == 2
    assert [e.data["key"] for e in completed] == [archive_id]
    assert (allowed / "t.bin").read_bytes() == data


async def test_vault_job_done_while_stopped_is_downloaded_at_setup(
    hass: HomeAssistant,
    loaded_vault: MockConfigEntry,
    allowed: Path,
) -> None:
    """A job that ended while Home Assistant was off is downloaded at setup."""
    archive_id, job_id, data = await _vault_restore(hass, loaded_vault, allowed, "r.bin", 900)
    _hold_job(job_id)
    await unload(hass, loaded_vault)
    _finish_job(job_id)
    completed = async_capture_events(hass, COMPLETED)

    await set_up(hass, loaded_vault)
    assert [e.data["key"] for e in completed] == [archive_id]
    assert (allowed / "r.bin").read_bytes() == data
    assert _pending_keys(loaded_vault) == []


async def test_vault_job_without_destination_completes_without_download(
    hass: HomeAssistant,
    loaded_vault: MockConfigEntry,
    allowed: Path,
    hooks_on: Callable[[MockConfigEntry], ClientHooks],
    freezer: FrozenDateTimeFactory,
) -> None:
    """No destination: the finished job is reported (path None) and its output not read."""
    data = write_seeded(allowed / "n.bin", 300)
    archive_id = (await call_action(hass, "archive", path=str(allowed / "n.bin")))["archived"][0][
        "archive_id"
    ]
    await call_action(hass, "restore", archive_id=archive_id, tier="Expedited")
    outputs = Requests(hooks_on(loaded_vault), "before-call.glacier.GetJobOutput")
    completed = async_capture_events(hass, COMPLETED)

    await tick(hass, freezer, timedelta(minutes=1, seconds=1))
    assert [e.data for e in completed] == [
        {"config_entry_id": loaded_vault.entry_id, "key": archive_id, "path": None}
    ]
    assert outputs.count == 0
    assert (allowed / "n.bin").read_bytes() == data


async def test_vault_output_already_at_destination_is_not_fetched_again(
    hass: HomeAssistant,
    loaded_vault: MockConfigEntry,
    allowed: Path,
    hooks_on: Callable[[MockConfigEntry], ClientHooks],
    freezer: FrozenDateTimeFactory,
) -> None:
    """The archive's bytes already at the destination: complete, nothing downloaded;
    other bytes there: kept, and the restore fails (destination_exists)."""
    same_id, _job, same = await _vault_restore(hass, loaded_vault, allowed, "same.bin", 400)
    other_id, _job, _other = await _vault_restore(hass, loaded_vault, allowed, "other.bin", 500)
    (allowed / "same.bin").write_bytes(same)
    (allowed / "other.bin").write_bytes(b"not the archive")
    outputs = Requests(hooks_on(loaded_vault), "before-call.glacier.GetJobOutput")
    completed = async_capture_events(hass, COMPLETED)
    failed = async_capture_events(hass, FAILED)

    await tick(hass, freezer, timedelta(minutes=1, seconds=1))
    assert _keys_and_paths(completed) == [(same_id, str((allowed / "same.bin").resolve()))]
    assert _keys_and_reasons(failed) == [(other_id, "destination_exists")]
    assert outputs.count == 0
    assert (allowed / "same.bin").read_bytes() == same
    assert (allowed / "other.bin").read_bytes() == b"not the archive"
    assert _leftovers(allowed) == ["other.bin", "same.bin"]


@pytest.mark.parametrize("recorded", ["sha256", "tree_hash"])
async def test_vault_output_not_matching_the_catalog_is_not_written(
    hass: HomeAssistant,
    loaded_vault: MockConfigEntry,
    allowed: Path,
    freezer: FrozenDateTimeFactory,
    recorded: str,
) -> None:
    """The job output is checked against the hashes the catalog recorded at upload."""
    archive_id, _job_id, _data = await _vault_restore(hass, loaded_vault, allowed, "h.bin", 300)
    catalog = loaded_vault.runtime_data.catalog
    archived = catalog.get(archive_id)
    assert archived is not None
    await hass.async_add_executor_job(catalog.record, replace(archived, **{recorded: "0" * 64}))
    failed = async_capture_events(hass, FAILED)
    completed = async_capture_events(hass, COMPLETED)

    await tick(hass, freezer, timedelta(minutes=1, seconds=1))
    assert _keys_and_reasons(failed) == [(archive_id, "checksum_mismatch")]
    assert completed == []
    assert _leftovers(allowed) == []


async def test_vault_output_replaces_a_file_when_asked_to_overwrite(
    hass: HomeAssistant,
    loaded_vault: MockConfigEntry,
    allowed: Path,
    freezer: FrozenDateTimeFactory,
) -> None:
    archive_id, _job_id, data = await _vault_restore(
        hass, loaded_vault, allowed, "o.bin", 300, overwrite=True
    )
    (allowed / "o.bin").write_bytes(b"an older copy")
    completed = async_capture_events(hass, COMPLETED)

    await tick(hass, freezer, timedelta(minutes=1, seconds=1))
    assert _keys_and_paths(completed) == [(archive_id, str((allowed / "o.bin").resolve()))]
    assert (allowed / "o.bin").read_bytes() == data


async def test_vault_archive_dropped_just_before_the_download_fails_the_restore(
    hass: HomeAssistant,
    loaded_vault: MockConfigEntry,
    allowed: Path,
    freezer: FrozenDateTimeFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An inventory drops the archive between the check and the download: not written."""
    archive_id, _job_id, _data = await _vault_restore(hass, loaded_vault, allowed, "d.bin", 300)
    catalog = loaded_vault.runtime_data.catalog
    advance = RestoreWatcher._advance

    def advance_then_drop(watcher: RestoreWatcher, restore: Any) -> Any:
        outcome = advance(watcher, restore)
        catalog.remove(restore.key)
        return outcome

    monkeypatch.setattr(RestoreWatcher, "_advance", advance_then_drop)
    failed = async_capture_events(hass, FAILED)

    await tick(hass, freezer, timedelta(minutes=1, seconds=1))
    assert _keys_and_reasons(failed) == [(archive_id, "key_not_found")]
    assert _leftovers(allowed) == []


async def test_vault_archive_dropped_from_the_catalog_fails_the_restore(
    hass: HomeAssistant,
    loaded_vault: MockConfigEntry,
    allowed: Path,
    freezer: FrozenDateTimeFactory,
) -> None:
    """The catalog no longer knows the archive (an inventory dropped it): without its
    size and hashes the output cannot be verified, so it is not written."""
    archive_id, _job_id, _data = await _vault_restore(hass, loaded_vault, allowed, "k.bin", 300)
    await hass.async_add_executor_job(loaded_vault.runtime_data.catalog.remove, archive_id)
    failed = async_capture_events(hass, FAILED)

    await tick(hass, freezer, timedelta(minutes=1, seconds=1))
    assert _keys_and_reasons(failed) == [(archive_id, "key_not_found")]
    assert _leftovers(allowed) == []


# --- vault inventories -------------------------------------------------------------------


def _foreign_archive(name: str) -> str:
    """Upload an archive to the vault as another tool would; return its ID."""
    glacier = boto3.client("glacier", region_name=REGION)
    return str(
        glacier.upload_archive(
            vaultName=DEMO_VAULT,
            archiveDescription=build_description(name, None, dt.datetime.now(dt.UTC)),
            body=name.encode() * 10,
        )["archiveId"]
    )


def _catalog_keys(entry: MockConfigEntry) -> set[str]:
    return {o.key for o in entry.runtime_data.catalog.objects()}


def _inventory_job(entry: MockConfigEntry) -> str | None:
    """The inventory job the catalog waits for ('' or None when none)."""
    record = entry.runtime_data.catalog.get_meta(META_INVENTORY_JOB)
    return json.loads(record)["job_id"] if record else record


async def test_inventory_running_across_a_restart_is_resumed_at_setup(
    hass: HomeAssistant, loaded_vault: MockConfigEntry
) -> None:
    """An inventory that ended while Home Assistant was off is read at setup."""
    foreign = _foreign_archive("foreign.csv")
    job_id = (await call_action(hass, "refresh"))["job_id"]
    _hold_job(job_id)
    await unload(hass, loaded_vault)
    _finish_job(job_id)

    await set_up(hass, loaded_vault)
    assert _catalog_keys(loaded_vault) == {foreign}
    assert _inventory_job(loaded_vault) == ""
    assert hass.states.get("sensor.demo_vault_archived_objects").state == "1"


async def test_inventory_still_running_is_checked_again(
    hass: HomeAssistant,
    loaded_vault: MockConfigEntry,
    hooks_on: Callable[[MockConfigEntry], ClientHooks],
    freezer: FrozenDateTimeFactory,
) -> None:
    """InProgress: checked every 15 minutes, the job kept; then the catalog follows."""
    foreign = _foreign_archive("foreign.csv")
    job_id = (await call_action(hass, "refresh"))["job_id"]
    _hold_job(job_id)
    checks = Requests(hooks_on(loaded_vault), "before-call.glacier.DescribeJob")

    await tick(hass, freezer, timedelta(minutes=15, seconds=1))
    assert checks.count == 1
    assert _inventory_job(loaded_vault) == job_id
    assert _catalog_keys(loaded_vault) == set()
    await tick(hass, freezer, timedelta(minutes=14, seconds=57))
    assert checks.count == 1
    await tick(hass, freezer, timedelta(seconds=4))
    assert checks.count == 2
    assert _inventory_job(loaded_vault) == job_id

    _finish_job(job_id)
    await tick(hass, freezer, timedelta(minutes=15))
    assert checks.count == 3
    assert _catalog_keys(loaded_vault) == {foreign}
    assert _inventory_job(loaded_vault) == ""
    await tick(hass, freezer, timedelta(hours=1))
    assert checks.count == 3  # done: no more checks


async def test_inventory_check_throttled_is_postponed(
    hass: HomeAssistant,
    loaded_vault: MockConfigEntry,
    hooks_on: Callable[[MockConfigEntry], ClientHooks],
    freezer: FrozenDateTimeFactory,
) -> None:
    """A check that cannot be made keeps the job and tries again 15 minutes later."""
    foreign = _foreign_archive("foreign.csv")
    job_id = (await call_action(hass, "refresh"))["job_id"]
    checks = Requests(hooks_on(loaded_vault), "before-call.glacier.DescribeJob")
    checks.fail(_raise(EndpointConnectionError(endpoint_url=ENDPOINT)))

    await tick(hass, freezer, timedelta(minutes=15, seconds=1))
    assert checks.count == 1
    assert _inventory_job(loaded_vault) == job_id
    assert _catalog_keys(loaded_vault) == set()
    await tick(hass, freezer, timedelta(minutes=15))
    assert checks.count == 2
    assert _catalog_keys(loaded_vault) == {foreign}
    assert _inventory_job(loaded_vault) == ""


@pytest.mark.parametrize(
    ("fault", "logged"),
    [
        pytest.param(
            ("after-call.glacier.DescribeJob", _job_answer("Failed", "Inventory unavailable")),
            "Inventory of demo-vault failed: Inventory unavailable",
            id="failed",
        ),
        pytest.param(
            (
                "before-call.glacier.DescribeJob",
                lambda **_: error_response("ResourceNotFoundException", 404),
            ),
            "Inventory of demo-vault failed: ResourceNotFoundException",
            id="expired",
        ),
    ],
)
async def test_failed_inventory_is_dropped_and_the_catalog_kept(
    hass: HomeAssistant,
    loaded_vault: MockConfigEntry,
    allowed: Path,
    hooks_on: Callable[[MockConfigEntry], ClientHooks],
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
    fault: tuple[str, Callable[..., Any]],
    logged: str,
) -> None:
    """A failed (or expired) inventory job: the catalog is left as it is, the job is
    forgotten and no longer checked."""
    write_seeded(allowed / "kept.bin", 100)
    kept = (await call_action(hass, "archive", path=str(allowed / "kept.bin")))["archived"][0]
    _foreign_archive("foreign.csv")
    job_id = (await call_action(hass, "refresh"))["job_id"]
    hooks = hooks_on(loaded_vault)
    checks = Requests(hooks, "before-call.glacier.DescribeJob")
    hooks.on(*fault)

    await tick(hass, freezer, timedelta(minutes=15, seconds=1))
    assert checks.count == 1
    assert job_id
    assert _inventory_job(loaded_vault) == ""
    assert _catalog_keys(loaded_vault) == {kept["archive_id"]}
    # Why it failed is in the log: Glacier's message, where it gave one.
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [logged]
    await tick(hass, freezer, timedelta(hours=1))
    assert checks.count == 1


async def test_inventory_record_gone_ends_the_checks(
    hass: HomeAssistant,
    loaded_vault: MockConfigEntry,
    hooks_on: Callable[[MockConfigEntry], ClientHooks],
    freezer: FrozenDateTimeFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The catalog no longer names the job (a catalog set aside and started anew): the
    check finds nothing to wait for and stops, asking Glacier nothing."""
    await call_action(hass, "refresh")
    catalog = loaded_vault.runtime_data.catalog
    await hass.async_add_executor_job(catalog.set_meta, META_INVENTORY_JOB, "")
    checks = Requests(hooks_on(loaded_vault), "before-call.glacier.DescribeJob")
    outcomes: list[object] = []
    advance = RestoreWatcher._advance_inventory

    def recorded(watcher: RestoreWatcher) -> bool:
        try:
            done = advance(watcher)
        except Exception as err:
            outcomes.append(type(err))
            raise
        outcomes.append(done)
        return done

    monkeypatch.setattr(RestoreWatcher, "_advance_inventory", recorded)

    await tick(hass, freezer, timedelta(minutes=15, seconds=1))
    assert outcomes == [True]
    await tick(hass, freezer, timedelta(hours=2))
    assert outcomes == [True]
    assert checks.count == 0


async def test_reload_during_a_download_does_not_download_twice(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    allowed: Path,
    restores: MotoRestores,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A reload (reauth, reconfigure) while the watcher downloads: the new load's
    watcher waits for the old load to close instead of downloading the same restore
    again and reporting the first copy as a destination in the way."""
    data = await _restored_while_stopped(
        hass, init_integration, allowed, restores, "r.bin", 2500, tier="Bulk"
    )

    started, go = threading.Event(), threading.Event()
    downloads: list[str] = []
    download = RestoreWatcher._download

    def slow_download(watcher: RestoreWatcher, restore: Any) -> Any:
        downloads.append(restore.key)
        started.set()
        go.wait(10)
        return download(watcher, restore)

    monkeypatch.setattr(RestoreWatcher, "_download", slow_download)
    completed = async_capture_events(hass, COMPLETED)
    failed = async_capture_events(hass, FAILED)
    # The setup's check downloads at once; the download holds until `go`.
    assert await hass.config_entries.async_setup(init_integration.entry_id)
    assert await hass.async_add_executor_job(started.wait, 10)

    assert await hass.config_entries.async_reload(init_integration.entry_id)
    go.set()
    await hass.async_block_till_done(wait_background_tasks=True)

    assert downloads == ["ha/r.bin"]
    assert [e.data["key"] for e in completed] == ["ha/r.bin"]
    assert failed == []
    assert (allowed / "r.bin").read_bytes() == data
    assert _pending_keys(init_integration) == []


async def test_setup_failing_late_leaves_no_check_running(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    allowed: Path,
    restores: MotoRestores,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A setup that fails once the catalog is open (here: setting up the sensors)
    starts no check of the pending restores, so nothing downloads into a destination
    with a closed catalog and client, and the restore stays pending for the next setup."""
    await _restored_while_stopped(hass, init_integration, allowed, restores, "f.bin", 1200)
    downloads: list[str] = []
    download = RestoreWatcher._download

    def counted(watcher: RestoreWatcher, restore: Any) -> Any:
        downloads.append(restore.key)
        return download(watcher, restore)

    async def no_platforms(*_: Any) -> None:
        raise RuntimeError("platforms refused")

    monkeypatch.setattr(RestoreWatcher, "_download", counted)
    monkeypatch.setattr(hass.config_entries, "async_forward_entry_setups", no_platforms)

    assert not await hass.config_entries.async_setup(init_integration.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)

    assert init_integration.state is ConfigEntryState.SETUP_ERROR
    assert downloads == []
    assert _leftovers(allowed) == []
    catalog = init_integration.runtime_data.catalog
    with pytest.raises(CatalogError, match="closed"):
        catalog.count()


@pytest.mark.parametrize(
    ("tier", "failures", "delay"),
    [
        (RestoreTier.EXPEDITED, 1, timedelta(minutes=2)),
        (RestoreTier.EXPEDITED, 2, timedelta(minutes=4)),
        (RestoreTier.EXPEDITED, 3, timedelta(minutes=8)),
        (RestoreTier.EXPEDITED, 8, timedelta(minutes=256)),
        (RestoreTier.EXPEDITED, 9, timedelta(hours=6)),  # 512 minutes, capped
        (RestoreTier.STANDARD, 4, timedelta(hours=4)),
        (RestoreTier.STANDARD, 5, timedelta(hours=6)),  # 8 hours, capped
        (RestoreTier.BULK, 3, timedelta(hours=6)),
    ],
)
def test_backoff_doubles_up_to_six_hours(
    tier: RestoreTier, failures: int, delay: timedelta
) -> None:
    """Past the first two retries the tests above drive: each failure doubles the wait."""
    assert retry_delay(tier, failures) == delay
