"""Tests for archive/transfer.py: the memory bound of uploads and the verified body."""

from __future__ import annotations

import ctypes
from datetime import UTC, datetime, timedelta, timezone
import errno
import hashlib
import io
import os
from pathlib import Path
import stat
import threading
from typing import Any

import pytest

from custom_components.s3_glacier.archive import transfer as transfer_module
from custom_components.s3_glacier.archive.errors import ChecksumMismatchError
from custom_components.s3_glacier.archive.models import GIB, MIB
from custom_components.s3_glacier.archive.transfer import (
    MAX_TRANSFER_MEMORY,
    TRANSFER_OVERHEAD,
    FilePart,
    VerifiedFileBody,
    new_file_mode,
    parallel_parts,
    pump_parts,
    streams_parts,
    write_into_place,
)


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations() -> None:
    """Override the project's autouse fixture: these tests need no Home Assistant."""


@pytest.mark.parametrize(
    ("part_size", "concurrency", "expected"),
    [
        (16 * MIB, 4, 4),  # the defaults: 64 MiB
        (16 * MIB, 8, 7),  # 112 MiB of parts, 16 MiB kept for the rest
        (32 * MIB, 4, 3),
        (56 * MIB, 4, 2),
        (64 * MIB, 4, 1),
        (105 * MIB, 4, 1),  # a 1 TiB file on S3 (10,000 parts)
        (4 * GIB, 8, 1),  # the largest vault part
        (5 * MIB, 1, 1),
    ],
)
def test_parallel_parts(part_size: int, concurrency: int, expected: int) -> None:
    assert MAX_TRANSFER_MEMORY == 128 * MIB
    assert TRANSFER_OVERHEAD == 16 * MIB
    assert parallel_parts(part_size, concurrency) == expected


def test_streams_parts() -> None:
    assert not streams_parts(112 * MIB)
    assert streams_parts(112 * MIB + 1)
    assert streams_parts(4 * GIB)


def test_pump_holds_no_more_parts_than_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """With parts of half the bound, never more than two are held, whatever concurrency.

    Each upload waits until the reader can read no further: either every part is read
    or the reader is waiting for a slot (it has read two more than were sent).
    """
    monkeypatch.setattr("custom_components.s3_glacier.archive.transfer.MAX_TRANSFER_MEMORY", 8)
    monkeypatch.setattr("custom_components.s3_glacier.archive.transfer.TRANSFER_OVERHEAD", 0)
    data = bytes(range(40))
    condition = threading.Condition()
    state = {"read": 0, "sent": 0, "most_held": 0}

    def hash_part(part: bytes) -> None:
        with condition:
            state["read"] += 1
            state["most_held"] = max(state["most_held"], state["read"] - state["sent"])
            condition.notify_all()

    def upload(number: int, offset: int, part: bytes) -> int:
        with condition:
            # Let the reader run ahead as far as it is allowed to, then finish.
            condition.wait_for(lambda: state["read"] == 10 or state["read"] - state["sent"] >= 2, 5)
            state["sent"] += 1
            condition.notify_all()
        return number

    results = pump_parts(
        io.BytesIO(data),
        len(data),
        part_size=4,
        concurrency=8,
        upload_part=upload,
        name="f",
        thread_name_prefix="test_part",
        hash_part=hash_part,
    )
    assert results == list(range(1, 11))
    assert state["most_held"] == 2


def _body(tmp_path: Path, size: int) -> tuple[Path, Any, VerifiedFileBody]:
    path = tmp_path / "f"
    path.write_bytes(os.urandom(size))
    handle = path.open("rb")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return path, handle, VerifiedFileBody(handle, size, digest, "f")


def test_verified_body_reads_seeks_and_rereads(tmp_path: Path) -> None:
    path, handle, body = _body(tmp_path, 3 * MIB + 5)
    with handle:
        assert body.seek(0, os.SEEK_END) == 3 * MIB + 5  # botocore's length probe
        assert body.seek(0) == 0
        first = b"".join(iter(lambda: body.read(65536), b""))
        body.seek(0)
        second = body.read()
        body.seek(MIB)  # a pass that starts mid-way still checks the whole file
        tail = body.read()
    assert first == second == path.read_bytes()
    assert tail == path.read_bytes()[MIB:]


@pytest.mark.parametrize("change", ["rewrite", "append", "truncate"])
def test_verified_body_withholds_the_last_bytes_of_a_changed_file(
    tmp_path: Path, change: str
) -> None:
    path, handle, body = _body(tmp_path, 200_000)
    with handle:
        sent = body.read(100_000)
        with path.open("r+b") as out:
            if change == "rewrite":
                out.seek(150_000)
                out.write(b"\x00" * 16 if out.read(16) != b"\x00" * 16 else b"\x01" * 16)
            elif change == "append":
                out.seek(0, os.SEEK_END)
                out.write(b"more")
            else:
                out.truncate(199_999)
        with pytest.raises(ChecksumMismatchError) as err:
            _drain(body)
    assert len(sent) == 100_000
    assert err.value.placeholders == {"key": "f"}


def _drain(body: VerifiedFileBody) -> None:
    """Read the rest in small blocks, as http.client sends a body."""
    while body.read(8192):
        pass


def test_pump_streams_parts_too_large_to_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parts over the bound reach upload_part as file ranges, hashed, one at a time."""
    monkeypatch.setattr("custom_components.s3_glacier.archive.transfer.MAX_TRANSFER_MEMORY", 3)
    monkeypatch.setattr("custom_components.s3_glacier.archive.transfer.TRANSFER_OVERHEAD", 0)
    data = bytes(range(10))
    whole = hashlib.sha256()
    received: list[tuple[int, int, bytes]] = []

    def upload(number: int, offset: int, part: Any) -> int:
        assert isinstance(part, FilePart)
        assert part.sha256 == hashlib.sha256(data[offset : offset + 4]).hexdigest()
        received.append((number, offset, part.body().read()))
        return number

    results = pump_parts(
        io.BytesIO(data),
        len(data),
        part_size=4,
        concurrency=4,
        upload_part=upload,
        name="f",
        thread_name_prefix="test_part",
        hash_part=whole.update,
    )
    assert results == [1, 2, 3]
    assert received == [(1, 0, data[0:4]), (2, 4, data[4:8]), (3, 8, data[8:10])]
    assert whole.hexdigest() == hashlib.sha256(data).hexdigest()


def test_verified_body_is_a_readable_seekable_stream(tmp_path: Path) -> None:
    """What an HTTP client asks of a body before it streams and rewinds it."""
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    with path.open("rb") as handle:
        body = VerifiedFileBody(handle, 3, hashlib.sha256(b"abc").hexdigest(), "f")
        assert (body.readable(), body.seekable()) == (True, True)


# -- write_into_place: whole and verified, or nothing; never over another file --------------


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".part"))


def test_write_into_place_writes_a_new_file(tmp_path: Path) -> None:
    destination = tmp_path / "restored.bin"
    result = write_into_place(destination, lambda out: out.write(b"data"), overwrite=False)
    assert result == 4
    assert destination.read_bytes() == b"data"
    assert _leftovers(tmp_path) == []
    assert destination.stat().st_mode & 0o777 == new_file_mode()


@pytest.mark.parametrize("hard_links", [True, False], ids=["link", "no-hard-links"])
def test_a_file_that_appears_during_the_download_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hard_links: bool
) -> None:
    """Without overwrite, a file another program wrote meanwhile is never replaced."""
    if not hard_links:  # a file system without hard links: check, then rename
        monkeypatch.setattr(os, "link", _no_hard_links)
    destination = tmp_path / "restored.bin"

    def write(out: Any) -> None:
        out.write(b"ours")
        destination.write_bytes(b"theirs")

    with pytest.raises(FileExistsError) as err:
        write_into_place(destination, write, overwrite=False)
    assert (err.value.errno, err.value.strerror, err.value.filename) == (
        errno.EEXIST,
        "destination exists",
        str(destination),
    )
    assert destination.read_bytes() == b"theirs"
    assert _leftovers(tmp_path) == []


def test_without_hard_links_a_new_file_is_renamed_into_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "link", _no_hard_links)
    destination = tmp_path / "restored.bin"
    write_into_place(destination, lambda out: out.write(b"ours"), overwrite=False)
    assert destination.read_bytes() == b"ours"
    assert _leftovers(tmp_path) == []


def test_overwrite_replaces_the_file(tmp_path: Path) -> None:
    destination = tmp_path / "restored.bin"
    destination.write_bytes(b"old")
    write_into_place(destination, lambda out: out.write(b"new"), overwrite=True)
    assert destination.read_bytes() == b"new"
    assert _leftovers(tmp_path) == []


def test_a_failed_check_leaves_nothing(tmp_path: Path) -> None:
    destination = tmp_path / "restored.bin"

    def refuse(_: int) -> None:
        raise ChecksumMismatchError("bad", key="k")

    with pytest.raises(ChecksumMismatchError):
        write_into_place(destination, lambda out: out.write(b"data"), overwrite=True, check=refuse)
    assert list(tmp_path.iterdir()) == []


def _no_hard_links(src: Any, dst: Any) -> None:
    raise OSError(errno.EPERM, "Operation not permitted")


def test_file_part_of_a_file_that_shrank(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 10)
    with path.open("rb") as handle:
        part = FilePart(handle, 4, 8, "unused", "f")
        with pytest.raises(ChecksumMismatchError) as err:
            list(part.chunks())
    assert err.value.placeholders == {"key": "f"}
    assert str(err.value) == "file shrank while it was being archived"


def test_verified_body_rehashes_a_prefix_longer_than_a_chunk(tmp_path: Path) -> None:
    """A seek past the first MiB: the bytes skipped are hashed in whole chunks, once."""
    path, handle, body = _body(tmp_path, 3 * MIB)
    with handle:
        body.seek(MIB + MIB // 2)
        assert body.read() == path.read_bytes()[MIB + MIB // 2 :]


def test_streamed_parts_of_a_file_that_shrank(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parts too large to hold are hashed in chunks; a short file stops the pump."""
    monkeypatch.setattr(transfer_module, "MAX_TRANSFER_MEMORY", 4)
    monkeypatch.setattr(transfer_module, "TRANSFER_OVERHEAD", 0)
    with pytest.raises(ChecksumMismatchError) as err:
        pump_parts(
            io.BytesIO(b"x" * 10),
            12,
            part_size=6,
            concurrency=2,
            upload_part=lambda number, offset, data: number,
            name="f",
            thread_name_prefix="test_part",
        )
    assert str(err.value) == "file shrank while it was being archived"
    assert err.value.placeholders == {"key": "f"}


def test_a_directory_that_cannot_be_synced_is_no_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Syncing the directory after the rename is best effort (some file systems refuse)."""
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "Invalid argument")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    destination = tmp_path / "restored.bin"
    write_into_place(destination, lambda out: out.write(b"data"), overwrite=False)
    assert destination.read_bytes() == b"data"


# -- found unpinned by scripts/mutate ---------------------------------------------------------


def test_held_parts_of_a_file_that_shrank() -> None:
    """Parts read whole: a short file stops the pump with the file's name."""
    with pytest.raises(ChecksumMismatchError) as err:
        pump_parts(
            io.BytesIO(b"x" * 10),
            12,
            part_size=4,
            concurrency=2,
            upload_part=lambda number, offset, data: number,
            name="f",
            thread_name_prefix="test_part",
        )
    assert str(err.value) == "file shrank while it was being archived"
    assert err.value.placeholders == {"key": "f"}


def test_verified_body_reads_nothing_when_asked_for_nothing(tmp_path: Path) -> None:
    """read(0) is an empty read (as for any file), not the rest of the body."""
    path, handle, body = _body(tmp_path, 1000)
    with handle:
        assert body.read(0) == b""
        assert body.tell() == 0
        assert body.read() == path.read_bytes()


@pytest.mark.parametrize(("content", "grown"), [(b"abc", False), (b"abcd", True)])
def test_verified_body_over_a_stream_without_descriptor(content: bytes, grown: bool) -> None:
    """A handle without a file descriptor is read by position; growth is still caught."""
    body = VerifiedFileBody(io.BytesIO(content), 3, hashlib.sha256(b"abc").hexdigest(), "f")
    if grown:
        with pytest.raises(ChecksumMismatchError) as err:
            body.read()
        assert str(err.value) == "file changed while it was being archived"
    else:
        assert body.read() == b"abc"


def test_an_existing_destination_is_named(tmp_path: Path) -> None:
    destination = tmp_path / "restored.bin"
    destination.write_bytes(b"theirs")
    transfer_module.check_destination(destination, overwrite=True)
    with pytest.raises(FileExistsError) as err:
        transfer_module.check_destination(destination, overwrite=False)
    assert (err.value.errno, err.value.strerror, err.value.filename) == (
        errno.EEXIST,
        "destination exists",
        str(destination),
    )


def test_new_files_stay_private_without_a_reported_umask(monkeypatch: pytest.MonkeyPatch) -> None:
    """A kernel older than 4.7 reports no Umask line: the restored file stays 0o600."""
    monkeypatch.setattr(Path, "read_text", lambda self, **_: "Name:\tpython3\nState:\tR\n")
    assert new_file_mode() == 0o600


def test_read_exactly_joins_short_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Linux returns at most 0x7ffff000 bytes per read: a 4 GiB part arrives in pieces.

    Reads are cut to 1,000 bytes here, the way the kernel cuts a larger part.
    """
    path = tmp_path / "f"
    data = os.urandom(10_000)
    path.write_bytes(data)
    real_pread = os.pread
    asked: list[tuple[int, int]] = []

    def short_pread(fd: int, length: int, offset: int) -> bytes:
        asked.append((length, offset))
        return real_pread(fd, min(length, 1000), offset)

    monkeypatch.setattr(transfer_module.os, "pread", short_pread)
    with path.open("rb") as handle:
        assert transfer_module.read_exactly(handle, 500, 3500, "f") == data[500:4000]
    assert asked == [(3500, 500), (2500, 1500), (1500, 2500), (500, 3500)]


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="Linux /proc only")
def test_new_file_mode_reads_the_umask_whatever_the_process_is_called() -> None:
    """A process name that is not ASCII (Linux keeps the bytes it was given) does not matter.

    /proc/self/status starts with ``Name:`` and the raw bytes of the main thread's name;
    the umask line after it is what counts.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_name, pr_get_name = 15, 16
    original = ctypes.create_string_buffer(16)
    assert threading.current_thread() is threading.main_thread()
    assert libc.prctl(pr_get_name, original, 0, 0, 0) == 0
    old_umask = os.umask(0o027)
    try:
        assert libc.prctl(pr_set_name, b"h\xe4\xff-archive", 0, 0, 0) == 0
        assert b"h\xe4\xff" in Path("/proc/self/status").read_bytes()
        assert new_file_mode() == 0o640
    finally:
        os.umask(old_umask)
        libc.prctl(pr_set_name, original, 0, 0, 0)


def test_parts_are_sent_from_named_worker_threads() -> None:
    """Worker threads carry the caller's prefix (how a log line or a stack dump finds them)."""
    names: list[str] = []

    def upload(number: int, offset: int, part: Any) -> int:
        names.append(threading.current_thread().name)
        return number

    pump_parts(
        io.BytesIO(b"x" * 8),
        8,
        part_size=4,
        concurrency=2,
        upload_part=upload,
        name="f",
        thread_name_prefix="s3_glacier_part",
    )
    assert len(names) == 2
    assert all(name.startswith("s3_glacier_part_") for name in names), names


def test_utc_reads_naive_times_as_utc() -> None:
    naive = datetime(2026, 1, 1, 12, 0)  # noqa: DTZ001 - the point of the test
    assert transfer_module.utc(naive) == datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert transfer_module.utc(naive).tzinfo is UTC
    tokyo = datetime(2026, 1, 1, 21, 0, tzinfo=timezone(timedelta(hours=9)))
    assert transfer_module.utc(tokyo).hour == 12
