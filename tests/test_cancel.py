"""Cancelled actions: the upload runs on in the executor, and keeps what it holds.

A script that is stopped, or an automation restarted, cancels the action's coroutine
but not the executor job it awaits. These tests hold a real upload (against moto) in
its progress report — after the object is stored, before the catalog records it —
cancel the call, and check that the key lock and the catalog stay held until the job
has really ended.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import timedelta
import hashlib
from pathlib import Path
import threading
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.s3_glacier import bucket_actions, vault_actions
from custom_components.s3_glacier.archive.catalog import Catalog, CatalogError

from .conftest import BUCKET, call_action
from .executor_jobs import ExecutorJobs


class HeldUpload:
    """Stands in for ProgressLog: the first upload's progress report waits for ``release``.

    Single-request uploads report once, after the object is stored and verified, so the
    job is held between storing the object and recording it in the catalog.
    """

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.ended = threading.Event()
        self._first = True

    def __call__(self, _verb: str, _key: str, _size: int) -> Callable[[int], None]:
        first, self._first = self._first, False

        def report(_done: int) -> None:
            if not first:
                return
            self.entered.set()
            # Bounded only so that a broken test cannot hang the suite.
            assert self.release.wait(30), "the test never released the upload"

        return report


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> Iterator[HeldUpload]:
    """Hold the first archive's upload in both kinds of entry; release it at teardown."""
    upload = HeldUpload()
    monkeypatch.setattr(bucket_actions, "ProgressLog", upload)
    monkeypatch.setattr(vault_actions, "ProgressLog", upload)
    yield upload
    upload.release.set()


@pytest.fixture
def jobs(hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch) -> ExecutorJobs:
    """The executor jobs of the test."""
    return ExecutorJobs(hass, monkeypatch)


@pytest.fixture
def files(hass: HomeAssistant, tmp_path: Path) -> Path:
    """An allowlisted directory."""
    base = tmp_path / "files"
    base.mkdir()
    hass.config.allowlist_external_dirs = {str(base.resolve())}
    return base


async def _start_and_cancel(hass: HomeAssistant, held: HeldUpload, path: Path, **data: Any) -> None:
    """Archive ``path``, wait until its upload is held, cancel the call."""
    task = hass.async_create_task(call_action(hass, "archive", path=str(path), **data))
    assert await hass.async_add_executor_job(held.entered.wait, 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task  # the caller is released at once; the upload is not


async def test_second_archive_to_the_key_waits_for_the_cancelled_upload(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    files: Path,
    s3: Any,
    held: HeldUpload,
    jobs: ExecutorJobs,
) -> None:
    """After a cancelled archive, a second one to the key starts only once the first ended."""
    (files / "one").mkdir()
    (files / "two").mkdir()
    (files / "one" / "same.bin").write_bytes(b"1" * 1000)
    (files / "two" / "same.bin").write_bytes(b"2" * 2000)
    await _start_and_cancel(hass, held, files / "one" / "same.bin", overwrite=True)

    mark = jobs.mark()
    second = hass.async_create_task(
        call_action(hass, "archive", path=str(files / "two" / "same.bin"), overwrite=True)
    )
    await jobs.settle(mark)
    assert not second.done()  # waiting for the key, not uploading over the first
    held.release.set()
    response = await second

    assert [item["size"] for item in response["archived"]] == [2000]
    stored = s3.get_object(Bucket=BUCKET, Key="ha/same.bin")
    assert stored["Body"].read() == b"2" * 2000
    recorded = init_integration.runtime_data.catalog.get("ha/same.bin")
    assert recorded is not None
    assert recorded.sha256 == hashlib.sha256(b"2" * 2000).hexdigest()


async def test_cancelled_upload_keeps_its_transfer_slot(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    files: Path,
    s3: Any,
    held: HeldUpload,
    jobs: ExecutorJobs,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With one transfer slot, an archive to another key waits for the cancelled upload."""
    monkeypatch.setattr(init_integration.runtime_data, "transfers", asyncio.Semaphore(1))
    (files / "first.bin").write_bytes(b"1" * 1000)
    (files / "second.bin").write_bytes(b"2" * 1000)
    await _start_and_cancel(hass, held, files / "first.bin")

    mark = jobs.mark()
    second = hass.async_create_task(call_action(hass, "archive", path=str(files / "second.bin")))
    await jobs.settle(mark)
    assert not second.done()  # queued for the slot the first upload still uses
    held.release.set()
    response = await second

    assert [item["key"] for item in response["archived"]] == ["ha/second.bin"]
    listed = s3.list_objects_v2(Bucket=BUCKET)["Contents"]
    assert sorted(obj["Key"] for obj in listed) == ["ha/first.bin", "ha/second.bin"]


async def test_unload_waits_for_a_cancelled_upload_to_record_its_object(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    files: Path,
    held: HeldUpload,
    jobs: ExecutorJobs,
) -> None:
    """The catalog closes only after the cancelled upload has recorded its object."""
    (files / "slow.bin").write_bytes(b"s" * 5000)
    data = init_integration.runtime_data
    await _start_and_cancel(hass, held, files / "slow.bin")

    mark = jobs.mark()
    unload = hass.async_create_task(hass.config_entries.async_unload(init_integration.entry_id))
    await jobs.settle(mark)  # whatever the unload does before the upload ends, it has done
    held.release.set()
    assert await unload
    await hass.async_block_till_done(wait_background_tasks=True)

    with pytest.raises(CatalogError):
        data.catalog.get("ha/slow.bin")  # closed, now that nothing uses it
    with Catalog(data.catalog.path) as reopened:
        recorded = reopened.get("ha/slow.bin")
    assert recorded is not None
    assert recorded.size == 5000


async def test_cancelled_vault_upload_keeps_its_archive_id(
    hass: HomeAssistant,
    loaded_vault: MockConfigEntry,
    files: Path,
    held: HeldUpload,
    jobs: ExecutorJobs,
) -> None:
    """A vault archive whose call was cancelled, then the entry unloaded, is in the catalog."""
    body = b"v" * 4000
    (files / "photos.tar").write_bytes(body)
    data = loaded_vault.runtime_data
    await _start_and_cancel(hass, held, files / "photos.tar")

    mark = jobs.mark()
    unload = hass.async_create_task(hass.config_entries.async_unload(loaded_vault.entry_id))
    await jobs.settle(mark)
    held.release.set()
    assert await unload
    await hass.async_block_till_done(wait_background_tasks=True)

    with Catalog(data.catalog.path) as reopened:
        archives = reopened.objects()
    # moto's archive ID is the MD5 of the body: the one the upload got back.
    assert [(a.key, a.size) for a in archives] == [(hashlib.md5(body).hexdigest(), 4000)]


async def test_unload_waits_for_the_watchers_download(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    files: Path,
    jobs: ExecutorJobs,
    freezer: FrozenDateTimeFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A restore the watcher is downloading holds the catalog like an action would.

    Unloading cancels the watcher's check; its download runs on in the executor, and the
    catalog and client stay open until it has written the file.
    """
    body = b"g" * 3000
    (files / "cold.bin").write_bytes(body)
    await call_action(hass, "archive", path=str(files / "cold.bin"), storage_class="GLACIER")
    (files / "out").mkdir()
    data = init_integration.runtime_data
    entered, release = threading.Event(), threading.Event()
    real_get = data.target.get

    def held_get(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        assert release.wait(30), "the test never released the download"
        return real_get(*args, **kwargs)

    monkeypatch.setattr(data.target, "get", held_get)
    response = await call_action(
        hass, "restore", key="ha/cold.bin", destination=str(files / "out"), tier="bulk"
    )
    assert response["status"] == "restore_requested"
    # moto finishes restores at once: the watcher's first check (Bulk: after an hour)
    # finds the copy readable and downloads it.
    freezer.tick(timedelta(hours=1, seconds=1))
    async_fire_time_changed(hass)
    assert await hass.async_add_executor_job(entered.wait, 10)

    mark = jobs.mark()
    unload = hass.async_create_task(hass.config_entries.async_unload(init_integration.entry_id))
    await jobs.settle(mark)  # whatever the unload does before the download ends, it has done
    try:
        assert data.catalog.get("ha/cold.bin") is not None  # still open
    finally:
        release.set()
    assert await unload
    await hass.async_block_till_done(wait_background_tasks=True)
    assert (files / "out" / "cold.bin").read_bytes() == body
    with pytest.raises(CatalogError):
        data.catalog.get("ha/cold.bin")  # closed, now that nothing uses it
