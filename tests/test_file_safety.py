"""Nothing is lost on the way between a local file and the archive (issue 13, 1-3 and 9).

Each test drives an action through Home Assistant against moto (in process; one cut
connection through moto_server behind the fault proxy). Where the fault is the local
file system's (a denied open or delete, a full disk, no hard links), it is injected at
the ``os``/``pathlib``/``io`` layer for the files under test only: we run as root, whom
chmod does not stop. The engine and boto3 run unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
import errno
import hashlib
import io
import os
from pathlib import Path
from typing import Any

import boto3
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from moto.core import DEFAULT_ACCOUNT_ID
from moto.glacier.models import glacier_backends
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
)

from custom_components.s3_glacier import bucket_actions
from custom_components.s3_glacier.action_helpers import ProgressLog
from custom_components.s3_glacier.archive.models import ArchivedObject
from custom_components.s3_glacier.const import (
    CONF_ACCESS_KEY_ID,
    CONF_ENDPOINT_URL,
    CONF_PART_SIZE_MIB,
    CONF_REGION,
    CONF_SECRET_ACCESS_KEY,
    CONF_TARGET,
    CONF_VAULT_NAME,
    DOMAIN,
    TARGET_VAULT,
)
from custom_components.s3_glacier.paths import writing

from .client_hooks import ClientHooks
from .conftest import (
    ACCESS_KEY_ID,
    BUCKET,
    DEMO_VAULT,
    REGION,
    SECRET_ACCESS_KEY,
    MotoServer,
    call_action,
    write_seeded,
)
from .fault_proxy import FaultProxy
from .full_disk import FullDiskFile

MIB = 1024 * 1024
VAULT_DATA = {
    CONF_ACCESS_KEY_ID: ACCESS_KEY_ID,
    CONF_SECRET_ACCESS_KEY: SECRET_ACCESS_KEY,
    CONF_REGION: REGION,
    CONF_VAULT_NAME: DEMO_VAULT,
    CONF_TARGET: TARGET_VAULT,
}


def _objects(s3: Any) -> dict[str, bytes]:
    listed = s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read() for o in listed}


def _uploads(s3: Any) -> list[str]:
    return [u["Key"] for u in s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])]


def _files(base: Path) -> dict[str, bytes]:
    """Every file under ``base``, hidden temporary files included."""
    return {p.relative_to(base).as_posix(): p.read_bytes() for p in base.rglob("*") if p.is_file()}


async def _catalog(hass: HomeAssistant, entry: MockConfigEntry) -> list[ArchivedObject]:
    return await hass.async_add_executor_job(entry.runtime_data.catalog.objects)


def _under(base: Path, name: str | bytes | int | os.PathLike[str]) -> bool:
    """Whether ``name`` (a path, or an open file descriptor) lies under ``base``."""
    if isinstance(name, int):
        name = Path(f"/proc/self/fd/{name}").readlink()
    return str(os.fsdecode(name)).startswith(str(base.resolve()) + os.sep)


def _denied(path: Path | str) -> PermissionError:
    return PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))


# --- fixtures --------------------------------------------------------------------------


@pytest.fixture
def bucket_entry(init_integration: MockConfigEntry) -> MockConfigEntry:
    """The loaded demo bucket entry (prefix 'ha', GLACIER_IR)."""
    return init_integration


@pytest.fixture
def no_hard_links(monkeypatch: pytest.MonkeyPatch, allowed: Path) -> Callable[[int], list[str]]:
    """Make ``os.link`` fail under ``allowed`` as a file system without hard links does.

    Returns a setter taking the errno; the list it returns names the links refused,
    so that a test can tell the fallback was taken.
    """
    real_link = os.link
    refused: list[str] = []

    def arm(code: int) -> list[str]:
        def link(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
            if _under(allowed, dst):
                refused.append(os.fsdecode(dst))
                raise OSError(code, os.strerror(code), os.fsdecode(src), None, os.fsdecode(dst))
            real_link(src, dst, *args, **kwargs)

        monkeypatch.setattr(os, "link", link)
        return refused

    return arm


class _AppearAtEnd(ProgressLog):
    """A progress log that, at the end of the download, has another writer create the file.

    Called from the executor thread that streams the body: after every byte is in the
    temporary file, before it is moved into place.
    """

    appear: Path | None = None
    appeared = b"written by someone else meanwhile"

    def __call__(self, done: int) -> None:
        if self.appear is not None and done == self._size:
            self.appear.write_bytes(self.appeared)
            type(self).appear = None
        super().__call__(done)


@pytest.fixture
def appear_during_download(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[_AppearAtEnd]]:
    """Set ``.appear`` to a path: a file is written there mid-download."""
    monkeypatch.setattr(bucket_actions, "ProgressLog", _AppearAtEnd)
    yield _AppearAtEnd
    _AppearAtEnd.appear = None


# --- 1. skip-identical compares bytes, not sizes -----------------------------------------


async def test_same_size_rewrite_is_refused_and_keeps_source(
    hass: HomeAssistant, bucket_entry: MockConfigEntry, allowed: Path, s3: Any
) -> None:
    """A file rewritten with other bytes of the same size is no skip: refused, source kept."""
    path = allowed / "notes.txt"
    first = write_seeded(path, 4096, seed=1)
    await call_action(hass, "archive", path=str(path))
    stored = await _catalog(hass, bucket_entry)

    second = write_seeded(path, 4096, seed=2)
    assert second != first
    archived = async_capture_events(hass, f"{DOMAIN}_archived")
    with pytest.raises(HomeAssistantError) as err:
        await call_action(hass, "archive", path=str(path), delete_source=True)

    assert err.value.translation_key == "object_exists"
    assert err.value.translation_placeholders["key"] == "ha/notes.txt"
    assert path.read_bytes() == second
    assert _objects(s3) == {"ha/notes.txt": first}
    assert await _catalog(hass, bucket_entry) == stored
    assert archived == []


async def test_identical_bytes_are_skipped_and_source_deleted(
    hass: HomeAssistant, bucket_entry: MockConfigEntry, allowed: Path, s3: Any
) -> None:
    """The contrast: the very same bytes are a skip, and delete_source removes them."""
    path = allowed / "notes.txt"
    data = write_seeded(path, 4096, seed=1)
    await call_action(hass, "archive", path=str(path))
    response = await call_action(hass, "archive", path=str(path), delete_source=True)
    assert response["skipped"] == [
        {"path": str(path.resolve()), "key": "ha/notes.txt", "reason": "identical"}
    ]
    assert response["archived"] == []
    assert not path.exists()
    assert _objects(s3) == {"ha/notes.txt": data}


# --- 2. a failed vault upload keeps its source -------------------------------------------


def _vault_archives() -> dict[str, Any]:
    vault = glacier_backends[DEFAULT_ACCOUNT_ID][REGION].vaults.get(DEMO_VAULT)
    return {} if vault is None else dict(vault.archives)


@pytest.mark.parametrize(
    ("size", "break_vault", "error"),
    [
        # The vault was deleted meanwhile: the service refuses the upload.
        (4096, True, "vault_not_found"),
        # Past 1 MiB moto reports a plain SHA-256 where Glacier reports the tree hash:
        # the archive does not verify, is deleted, and the call fails.
        (2 * MIB, False, "checksum_mismatch"),
    ],
)
async def test_failed_vault_upload_keeps_source(
    hass: HomeAssistant,
    loaded_vault: MockConfigEntry,
    allowed: Path,
    size: int,
    break_vault: bool,
    error: str,
) -> None:
    """delete_source removes nothing when the vault did not take the file."""
    path = allowed / "photos.tar"
    data = write_seeded(path, size)
    if break_vault:
        boto3.client("glacier", region_name=REGION).delete_vault(vaultName=DEMO_VAULT)
    archived = async_capture_events(hass, f"{DOMAIN}_archived")

    with pytest.raises(HomeAssistantError) as err:
        await call_action(hass, "archive", path=str(path), delete_source=True)

    assert err.value.translation_key == error
    assert path.read_bytes() == data
    assert _vault_archives() == {}
    assert await _catalog(hass, loaded_vault) == []
    assert archived == []
    assert hass.states.get("sensor.demo_vault_archived_objects").state == "0"


@pytest.mark.usefixtures("one_attempt")
async def test_cut_vault_upload_keeps_source(
    hass: HomeAssistant, moto_endpoint: MotoServer, allowed: Path
) -> None:
    """The connection reset mid-upload (moto_server behind a fault proxy): source kept."""
    glacier = moto_endpoint.client("glacier")
    glacier.create_vault(vaultName=DEMO_VAULT)
    proxy = FaultProxy(moto_endpoint.port)
    proxy.start()
    try:
        entry = MockConfigEntry(
            domain=DOMAIN,
            title=DEMO_VAULT,
            data={**VAULT_DATA, CONF_ENDPOINT_URL: proxy.url},
            unique_id=f"{REGION}|vault|{DEMO_VAULT}",
        )
        entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done(wait_background_tasks=True)
        path = allowed / "photos.tar"
        data = write_seeded(path, 512 * 1024)
        proxy.cut_upstream = 64 * 1024

        with pytest.raises(HomeAssistantError) as err:
            await call_action(hass, "archive", path=str(path), delete_source=True)

        assert err.value.translation_key == "cannot_connect"
        assert proxy.cuts == 1
        assert path.read_bytes() == data
        assert glacier.describe_vault(vaultName=DEMO_VAULT)["NumberOfArchives"] == 0
        assert await _catalog(hass, entry) == []
        assert await hass.config_entries.async_unload(entry.entry_id)
    finally:
        proxy.stop()


async def test_vault_source_unreadable_keeps_it(
    hass: HomeAssistant,
    loaded_vault: MockConfigEntry,
    allowed: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A source that cannot be opened: a translated file error, nothing archived."""
    path = allowed / "photos.tar"
    data = write_seeded(path, 4096)
    _deny_opens(monkeypatch, path, opens={1})
    with pytest.raises(HomeAssistantError) as err:
        await call_action(hass, "archive", path=str(path), delete_source=True)
    assert err.value.translation_key == "file_error"
    assert err.value.translation_placeholders["path"] == str(path.resolve())
    assert path.read_bytes() == data
    assert _vault_archives() == {}
    assert await _catalog(hass, loaded_vault) == []


# --- 3. a restore never replaces a file that appeared meanwhile ---------------------------


async def _archived_for_restore(hass: HomeAssistant, allowed: Path, size: int) -> bytes:
    data = write_seeded(allowed / "src" / "v.bin", size, seed=7)
    await call_action(hass, "archive", path=str(allowed / "src" / "v.bin"))
    (allowed / "out").mkdir()
    return data


async def test_restore_downloads_without_hard_links(
    hass: HomeAssistant,
    bucket_entry: MockConfigEntry,
    allowed: Path,
    no_hard_links: Callable[[int], list[str]],
) -> None:
    """Without hard links the download is renamed into place, whole, no temporary left."""
    data = await _archived_for_restore(hass, allowed, 70_000)
    refused = no_hard_links(errno.EPERM)
    response = await call_action(hass, "restore", key="ha/v.bin", destination=str(allowed / "out"))
    destination = (allowed / "out" / "v.bin").resolve()
    assert response["status"] == "restored"
    assert response["path"] == str(destination)
    assert refused == [str(destination)]
    assert _files(allowed / "out") == {"v.bin": data}


@pytest.mark.parametrize(
    "link_error",
    [None, errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV],
    ids=["hard-links", "EPERM", "EOPNOTSUPP", "EXDEV"],
)
async def test_restore_keeps_file_that_appeared_during_download(
    hass: HomeAssistant,
    bucket_entry: MockConfigEntry,
    allowed: Path,
    no_hard_links: Callable[[int], list[str]],
    appear_during_download: type[_AppearAtEnd],
    link_error: int | None,
) -> None:
    """Without overwrite, a file written meanwhile stays; the download is dropped."""
    await _archived_for_restore(hass, allowed, 70_000)
    refused = no_hard_links(link_error) if link_error else []
    destination = (allowed / "out" / "v.bin").resolve()
    appear_during_download.appear = destination
    completed = async_capture_events(hass, f"{DOMAIN}_restore_completed")
    before = await _catalog(hass, bucket_entry)

    with pytest.raises(ServiceValidationError) as err:
        await call_action(hass, "restore", key="ha/v.bin", destination=str(allowed / "out"))

    assert appear_during_download.appear is None  # the other writer did write
    assert err.value.translation_key == "destination_exists"
    assert err.value.translation_placeholders["path"] == str(destination)
    assert _files(allowed / "out") == {"v.bin": _AppearAtEnd.appeared}
    assert refused == ([str(destination)] if link_error else [])
    assert completed == []
    assert await _catalog(hass, bucket_entry) == before


async def test_restore_with_overwrite_replaces_file_that_appeared(
    hass: HomeAssistant,
    bucket_entry: MockConfigEntry,
    allowed: Path,
    appear_during_download: type[_AppearAtEnd],
) -> None:
    """With overwrite the archived bytes win, as asked."""
    data = await _archived_for_restore(hass, allowed, 70_000)
    appear_during_download.appear = (allowed / "out" / "v.bin").resolve()
    response = await call_action(
        hass, "restore", key="ha/v.bin", destination=str(allowed / "out"), overwrite=True
    )
    assert response["status"] == "restored"
    assert appear_during_download.appear is None
    assert _files(allowed / "out") == {"v.bin": data}


# --- 9. file errors: translated, nothing half-written -------------------------------------


def _deny_opens(monkeypatch: pytest.MonkeyPatch, path: Path, opens: set[int]) -> list[int]:
    """Refuse the given openings (1 = first) of ``path`` with EACCES, as chmod would.

    We run as root, which chmod does not stop. Returns the list of openings seen.
    """
    real_open = Path.open
    seen: list[int] = []
    target = path.resolve()

    def open_(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self.resolve() == target:
            seen.append(len(seen) + 1)
            if seen[-1] in opens:
                raise _denied(self)
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", open_)
    return seen


@pytest.mark.parametrize(
    ("size", "denied_open"),
    [
        (4096, 1),  # unreadable from the start: nothing is sent
        (4096, 2),  # readable for the hash, denied for the upload
        (6 * MIB, 2),  # the same for a multipart upload: it is aborted
    ],
    ids=["before-hash", "before-put", "before-multipart"],
)
async def test_archive_source_permission_denied(
    hass: HomeAssistant,
    bucket_entry: MockConfigEntry,
    allowed: Path,
    s3: Any,
    monkeypatch: pytest.MonkeyPatch,
    size: int,
    denied_open: int,
) -> None:
    """A source that cannot be read: translated error naming it; nothing stored or lost."""
    # 5 MiB parts (S3's least): the 6 MiB file goes in a multipart upload of two.
    hass.config_entries.async_update_entry(
        bucket_entry, options={**bucket_entry.options, CONF_PART_SIZE_MIB: 5}
    )
    path = allowed / "secret.db"
    data = write_seeded(path, size)
    seen = _deny_opens(monkeypatch, path, {denied_open})

    with pytest.raises(HomeAssistantError) as err:
        await call_action(hass, "archive", path=str(path), delete_source=True)

    assert seen == list(range(1, denied_open + 1))
    assert err.value.translation_domain == DOMAIN
    assert err.value.translation_key == "file_error"
    assert err.value.translation_placeholders == {
        "path": str(path.resolve()),
        "error": "Permission denied",
    }
    assert path.read_bytes() == data
    assert _objects(s3) == {}
    assert _uploads(s3) == []
    assert await _catalog(hass, bucket_entry) == []


def _undeletable(monkeypatch: pytest.MonkeyPatch, base: Path) -> None:
    """Refuse deleting files under ``base`` with EACCES (a read-only share, say)."""
    real_unlink = Path.unlink
    under = base.resolve()

    def unlink(self: Path, *args: Any, **kwargs: Any) -> None:
        if self.resolve().is_relative_to(under):
            raise _denied(self)
        real_unlink(self, *args, **kwargs)

    monkeypatch.setattr(Path, "unlink", unlink)


async def test_archive_undeletable_sources(
    hass: HomeAssistant,
    bucket_entry: MockConfigEntry,
    allowed: Path,
    s3: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Sources that cannot be deleted: every file archived and announced, then an error
    that says so (not a read error, which would read as a failed upload)."""
    first = write_seeded(allowed / "share" / "a.mp4", 100, seed=1)
    second = write_seeded(allowed / "share" / "b.mp4", 100, seed=2)
    _undeletable(monkeypatch, allowed / "share")
    archived = async_capture_events(hass, f"{DOMAIN}_archived")

    with pytest.raises(HomeAssistantError) as err:
        await call_action(hass, "archive", path=str(allowed / "share"), delete_source=True)

    assert (err.value.translation_domain, err.value.translation_key) == (
        DOMAIN,
        "source_not_deleted",
    )
    assert err.value.translation_placeholders == {
        "path": str((allowed / "share" / "a.mp4").resolve()),
        "count": "2",
        "error": "Permission denied",
    }
    assert _objects(s3) == {"ha/a.mp4": first, "ha/b.mp4": second}
    assert sorted(o.key for o in await _catalog(hass, bucket_entry)) == ["ha/a.mp4", "ha/b.mp4"]
    assert [e.data["key"] for e in archived] == ["ha/a.mp4", "ha/b.mp4"]
    assert _files(allowed / "share") == {"a.mp4": first, "b.mp4": second}
    assert hass.states.get("sensor.demo_archive_ha_archived_objects").state == "2"


async def test_a_source_kept_for_a_reason_without_a_text_names_the_error(
    hass: HomeAssistant,
    bucket_entry: MockConfigEntry,
    allowed: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A delete refused by an error that carries no text (raised bare, as a wrapping
    library may): the error's kind is named, never "None"."""
    data = write_seeded(allowed / "clip.mp4", 100)
    real_unlink = Path.unlink

    def unlink(self: Path, *args: Any, **kwargs: Any) -> None:
        if self.name == "clip.mp4":
            raise PermissionError
        real_unlink(self, *args, **kwargs)

    monkeypatch.setattr(Path, "unlink", unlink)
    with pytest.raises(HomeAssistantError) as err:
        await call_action(hass, "archive", path=str(allowed / "clip.mp4"), delete_source=True)
    assert err.value.translation_placeholders == {
        "path": str((allowed / "clip.mp4").resolve()),
        "count": "1",
        "error": "PermissionError",
    }
    assert (allowed / "clip.mp4").read_bytes() == data


async def test_source_removed_by_another_program_meanwhile_is_no_error(
    hass: HomeAssistant, bucket_entry: MockConfigEntry, allowed: Path, s3: Any
) -> None:
    """A camera's own clean-up deletes the clip while it uploads: archived, no error."""
    data = write_seeded(allowed / "clip.mp4", 300)
    hooks = ClientHooks(bucket_entry)
    hooks.on("after-call.s3.PutObject", lambda **_: (allowed / "clip.mp4").unlink())
    try:
        response = await call_action(
            hass, "archive", path=str(allowed / "clip.mp4"), delete_source=True
        )
    finally:
        hooks.remove_all()
    assert [item["key"] for item in response["archived"]] == ["ha/clip.mp4"]
    assert _objects(s3) == {"ha/clip.mp4": data}
    assert not (allowed / "clip.mp4").exists()


async def test_vault_archive_undeletable_source(
    hass: HomeAssistant,
    loaded_vault: MockConfigEntry,
    allowed: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A vault has no skip: an error reading as a failed upload would be retried and
    billed twice. The archive is recorded and the error says it is archived."""
    data = write_seeded(allowed / "photos.tar", 4096)
    _undeletable(monkeypatch, allowed)

    with pytest.raises(HomeAssistantError) as err:
        await call_action(hass, "archive", path=str(allowed / "photos.tar"), delete_source=True)

    assert err.value.translation_key == "source_not_deleted"
    assert err.value.translation_placeholders["count"] == "1"
    [obj] = await _catalog(hass, loaded_vault)
    assert list(_vault_archives()) == [obj.key]
    assert obj.sha256 == hashlib.sha256(data).hexdigest()
    assert (allowed / "photos.tar").read_bytes() == data


@pytest.fixture
def disk_full(monkeypatch: pytest.MonkeyPatch, allowed: Path) -> Callable[[str, int], None]:
    """Fill the disk under ``allowed`` at ``write`` (after ``room`` bytes) or at ``fsync``."""
    real_fdopen, real_fsync = os.fdopen, os.fsync

    def arm(where: str, room: int = 0) -> None:
        if where == "write":

            def fdopen(fd: int, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
                if "w" in mode and _under(allowed, fd):
                    return io.BufferedWriter(FullDiskFile(fd, room))
                return real_fdopen(fd, mode, *args, **kwargs)

            monkeypatch.setattr(os, "fdopen", fdopen)
        else:

            def fsync(fd: int) -> None:
                if _under(allowed, fd) and Path(f"/proc/self/fd/{fd}").is_file():
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                real_fsync(fd)

            monkeypatch.setattr(os, "fsync", fsync)

    return arm


@pytest.mark.parametrize("existing", [None, b"the user's older copy"], ids=["new", "overwrite"])
@pytest.mark.parametrize("where", ["write", "fsync"])
async def test_restore_disk_full(
    hass: HomeAssistant,
    bucket_entry: MockConfigEntry,
    allowed: Path,
    disk_full: Callable[[str, int], None],
    where: str,
    existing: bytes | None,
) -> None:
    """ENOSPC mid-download: translated error naming the file; no partial file anywhere."""
    await _archived_for_restore(hass, allowed, 3 * MIB)
    destination = (allowed / "out" / "v.bin").resolve()
    if existing is not None:
        destination.write_bytes(existing)
    before = await _catalog(hass, bucket_entry)
    completed = async_capture_events(hass, f"{DOMAIN}_restore_completed")
    disk_full(where, MIB + MIB // 2)

    with pytest.raises(HomeAssistantError) as err:
        await call_action(
            hass,
            "restore",
            key="ha/v.bin",
            destination=str(allowed / "out"),
            overwrite=existing is not None,
        )

    assert err.value.translation_key == "file_error"
    assert err.value.translation_placeholders == {
        "path": str(destination),
        "error": "No space left on device",
    }
    assert _files(allowed / "out") == ({} if existing is None else {"v.bin": existing})
    assert await _catalog(hass, bucket_entry) == before
    assert completed == []


async def test_restore_destination_directory_not_writable(
    hass: HomeAssistant,
    bucket_entry: MockConfigEntry,
    allowed: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A directory that refuses new files: translated error naming the destination."""
    await _archived_for_restore(hass, allowed, 70_000)
    out = (allowed / "out").resolve()
    real_open = os.open

    def open_(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & os.O_CREAT and Path(os.fsdecode(path)).parent == out:
            raise _denied(path)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_)
    before = await _catalog(hass, bucket_entry)

    with pytest.raises(HomeAssistantError) as err:
        await call_action(hass, "restore", key="ha/v.bin", destination=str(out))

    assert err.value.translation_key == "file_error"
    assert err.value.translation_placeholders == {
        "path": str(out / "v.bin"),
        "error": "Permission denied",
    }
    assert _files(out) == {}
    assert await _catalog(hass, bucket_entry) == before


def test_writing_names_the_destination_and_keeps_messages(tmp_path: Path) -> None:
    """An error with a code names the destination instead of the hidden temporary
    file; an error without one (a timeout) keeps its message as it was."""
    dest = tmp_path / "photo.jpg"
    with pytest.raises(OSError) as coded, writing(dest):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / ".photo.part"))
    assert (coded.value.errno, coded.value.filename) == (errno.ENOSPC, str(dest))
    assert coded.value.strerror == "No space left on device"
    with pytest.raises(TimeoutError) as timed, writing(dest):
        raise TimeoutError("timed out")
    assert str(timed.value) == "timed out"
