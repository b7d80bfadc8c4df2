"""What the S3 and vault targets share: the part pump, safe downloads, small helpers.

Plain Python, no Home Assistant imports, and Python 3.11 syntax (no ``type``
statements or PEP 695 generics).

``pump_parts`` runs the parts of a multipart upload: the calling thread reads a file's
parts in order and hashes them, and a bounded pool of workers sends them.
``write_into_place`` writes a download through a hidden temporary file that is only
renamed to the destination once it is complete, synced and checked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime
import errno
import hashlib
import os
from pathlib import Path
import re
import tempfile
import threading
from typing import IO, Generic, Protocol, TypeVar

from .errors import ChecksumMismatchError
from .models import MIB

# What files and response bodies are read in.
CHUNK_SIZE = MIB
# Downloads report progress at most this often, so a slow consumer (the event loop)
# is not flooded with one call per MiB.
GET_PROGRESS_STEP = 8 * MIB
# The memory one upload may take, whatever the file's size (a small host runs several
# transfers, and parts grow to hundreds of MiB for files of a few TiB): parallelism is
# lowered as parts grow, and parts too large to hold are streamed from the file.
MAX_TRANSFER_MEMORY = 128 * MIB
# Of which this much is kept for what is not file data: HTTP buffers, botocore's
# request objects, the interpreter's own growth.
TRANSFER_OVERHEAD = 16 * MIB

_T = TypeVar("_T")


class ProgressCallback(Protocol):
    """Told how many bytes are done so far; ``put`` may call it from worker threads."""

    def __call__(self, done: int, /) -> None:
        """Report progress."""


def ceil_div(numerator: int, denominator: int) -> int:
    """Integer division rounding up."""
    return -(-numerator // denominator)


def utc(value: datetime) -> datetime:
    """``value`` as an aware UTC datetime (naive values are taken to be UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


# -- uploads -----------------------------------------------------------------------------


def _part_memory() -> int:
    """The bytes of parts one upload may hold (read at call time, so tests can lower it)."""
    return MAX_TRANSFER_MEMORY - TRANSFER_OVERHEAD


def max_held_part() -> int:
    """The largest part that is held in memory rather than streamed from a file.

    A stream (a backup) cannot be read twice, so its parts must never be larger.
    """
    return _part_memory()


def parallel_parts(part_size: int, concurrency: int) -> int:
    """How many parts of ``part_size`` may be in flight at once.

    ``concurrency``, lowered so that the parts held stay within ``MAX_TRANSFER_MEMORY``
    less ``TRANSFER_OVERHEAD``; at least one.
    """
    return max(1, min(concurrency, _part_memory() // part_size))


def streams_parts(part_size: int) -> bool:
    """Whether parts of ``part_size`` are too large to hold and are streamed instead."""
    return part_size > _part_memory()


@dataclass(frozen=True, slots=True)
class FilePart:
    """A part too large to hold: ``length`` bytes of the file at ``offset``.

    ``sha256`` is what the reader hashed there; ``body()`` serves the range to botocore
    and refuses to finish a request whose bytes differ. The file is read with
    ``os.pread`` where it can be, so several threads may use one handle.
    """

    handle: IO[bytes]
    offset: int
    length: int
    sha256: str
    name: str

    def body(self) -> VerifiedFileBody:
        """The range as a request body (``VerifiedFileBody``)."""
        return VerifiedFileBody(
            self.handle, self.length, self.sha256, self.name, offset=self.offset, part=True
        )

    def chunks(self) -> Iterator[bytes]:
        """The range in ``CHUNK_SIZE`` pieces (for a checksum the request must carry)."""
        for start in range(0, self.length, CHUNK_SIZE):
            amount = min(CHUNK_SIZE, self.length - start)
            yield read_exactly(self.handle, self.offset + start, amount, self.name)


# What a part pump hands to ``upload_part``: the bytes, or the range to stream.
PartData = bytes | FilePart


def part_length(data: PartData) -> int:
    """The number of bytes in a part."""
    return data.length if isinstance(data, FilePart) else len(data)


def read_exactly(handle: IO[bytes], offset: int, amount: int, name: str) -> bytes:
    """``amount`` bytes of the file at ``offset``; a short read means the file shrank.

    Uses ``os.pread`` (no shared file position) where the handle has a descriptor.
    """
    try:
        fd = handle.fileno()
    except (AttributeError, OSError):
        fd = None
    if fd is None:
        handle.seek(offset)
        data = handle.read(amount)
    else:
        pieces: list[bytes] = []
        done = 0
        while done < amount:
            piece = os.pread(fd, amount - done, offset + done)
            if not piece:
                break
            pieces.append(piece)
            done += len(piece)
        data = b"".join(pieces)
    if len(data) != amount:
        raise ChecksumMismatchError("file shrank while it was being archived", key=name)
    return data


class VerifiedFileBody:
    """The first ``size`` bytes of an open file as a request body, checked as it is read.

    botocore may read a body several times (a checksum or a signature first, then the
    sending, again on each retry), seeking back to the start in between. Each pass is
    hashed; the read that reaches the end raises ``ChecksumMismatchError`` instead of
    returning the last bytes when they do not hash to ``sha256`` or the file has grown
    or shrunk. So a request can only ever complete with the bytes that were hashed
    before, and the file is streamed rather than held in memory.
    """

    def __init__(
        self,
        handle: IO[bytes],
        size: int,
        sha256: str,
        name: str,
        *,
        offset: int = 0,
        part: bool = False,
    ) -> None:
        """Serve ``size`` bytes of ``handle`` from ``offset``; they must hash to ``sha256``.

        A whole file must also not have grown; a ``part`` need not end the file (the
        part pump checks the file's end).
        """
        self._handle = handle
        self._offset = offset
        self._part = part
        self._size = size
        self._expected = sha256
        self._name = name
        self._position = 0
        # The hasher covers the bytes [0, _hashed) of the current pass.
        self._hasher = hashlib.sha256()
        self._hashed = 0

    def read(self, amount: int | None = -1) -> bytes:
        """Return up to ``amount`` bytes (all that remain if negative or ``None``)."""
        if self._hashed != self._position:
            self._rehash_prefix()
        remaining = self._size - self._position
        if amount is None or amount < 0 or amount > remaining:
            amount = remaining
        data = self._read_at(self._position, amount)
        self._hasher.update(data)
        self._position += amount
        self._hashed = self._position
        if self._position == self._size:
            self._check_end()
        return data

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        """Move within the ``size`` bytes (hashing catches up at the next read)."""
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._position, os.SEEK_END: self._size}[whence]
        self._position = min(max(base + offset, 0), self._size)
        return self._position

    def tell(self) -> int:
        """The position in the body."""
        return self._position

    def seekable(self) -> bool:
        """Seekable: botocore rewinds the body for checksums and retries."""
        return True

    def readable(self) -> bool:
        """A readable stream."""
        return True

    def _read_at(self, position: int, amount: int) -> bytes:
        """Exactly ``amount`` bytes of the body at ``position``."""
        return read_exactly(self._handle, self._offset + position, amount, self._name)

    def _rehash_prefix(self) -> None:
        """Restart the pass's hash and feed it the bytes before the position (a seek)."""
        self._hasher = hashlib.sha256()
        for offset in range(0, self._position, CHUNK_SIZE):
            self._hasher.update(self._read_at(offset, min(CHUNK_SIZE, self._position - offset)))
        self._hashed = self._position

    def _check_end(self) -> None:
        """At the end of a pass: the file must not have grown nor changed its bytes."""
        grown = not self._part and _has_byte_at(self._handle, self._offset + self._size)
        if grown or self._hasher.hexdigest() != self._expected:
            raise ChecksumMismatchError("file changed while it was being archived", key=self._name)


def _has_byte_at(handle: IO[bytes], offset: int) -> bool:
    """Whether the file has a byte at ``offset`` (it grew past an expected size)."""
    try:
        return os.pread(handle.fileno(), 1, offset) != b""
    except (AttributeError, OSError):
        handle.seek(offset)
        return handle.read(1) != b""


# -- multipart uploads -----------------------------------------------------------------


def pump_parts(  # noqa: UP047 - PEP 695 generics need Python 3.12
    handle: IO[bytes],
    size: int,
    *,
    part_size: int,
    concurrency: int,
    upload_part: Callable[[int, int, PartData], _T],
    name: str,
    thread_name_prefix: str,
    hash_part: Callable[[bytes], None] | None = None,
    after_read: Callable[[], None] | None = None,
    progress: ProgressCallback | None = None,
) -> list[_T]:
    """Send the ``size`` bytes of ``handle`` in parts of ``part_size``; return the results.

    The calling thread reads the parts in order and passes each one's bytes to
    ``hash_part``; a part shorter than planned (the file shrank) raises
    ``ChecksumMismatchError`` for ``name``. Once the last part is read, ``after_read``
    is called (in the calling thread, before any upload is waited for: the place to
    check that the file did not change). Each part is sent by
    ``upload_part(number, offset, data)`` in one of ``concurrency`` worker threads
    named ``thread_name_prefix...``; part numbers start at 1.

    A part is read only once one of ``concurrency`` slots is free and the slot is held
    until its upload has finished, so at most ``concurrency`` parts are held in memory
    or in flight; ``concurrency`` is lowered for large parts so that they stay within
    ``MAX_TRANSFER_MEMORY`` (``parallel_parts``). A part too large to hold even alone
    (``streams_parts``) is not held: the reader hashes it in chunks and ``upload_part``
    gets a ``FilePart`` to stream from the file (one more read of it) instead of its
    bytes. ``progress(bytes_done)`` is called
    after each part, from its worker, under a lock so its values never decrease; an
    exception from it fails the part.

    Returns what ``upload_part`` returned, in part order. On any exception, including
    ``BaseException``s such as ``KeyboardInterrupt``, no further part is read and every
    in-flight part has finished before the exception propagates (the first failed
    part's, in part order, when a worker failed), so the caller's abort that follows
    leaves no part behind.
    """
    pump = PartPump(
        upload_part,
        part_size=part_size,
        concurrency=concurrency,
        name=name,
        thread_name_prefix=thread_name_prefix,
        hash_part=hash_part,
        progress=progress,
    )
    return pump.run(handle, size, after_read=after_read)


class PartPump(Generic[_T]):  # noqa: UP046 - PEP 695 generics need Python 3.12
    """The state of one ``pump_parts`` call: its slots, failure flag and progress.

    Use ``pump_parts``; the class is public so that tests can watch ``_read_part``.
    """

    def __init__(
        self,
        upload_part: Callable[[int, int, PartData], _T],
        *,
        part_size: int,
        concurrency: int,
        name: str,
        thread_name_prefix: str,
        hash_part: Callable[[bytes], None] | None,
        progress: ProgressCallback | None,
    ) -> None:
        """Prepare to pump one file; nothing is read until ``run``."""
        self._upload_part = upload_part
        self._part_size = part_size
        self._concurrency = parallel_parts(part_size, concurrency)
        # Parts too large to hold are hashed by the reader and streamed by the worker.
        self._stream = streams_parts(part_size)
        self._name = name
        self._thread_name_prefix = thread_name_prefix
        self._hash_part = hash_part
        self._progress = progress
        self._slots = threading.BoundedSemaphore(self._concurrency)
        self._failed = threading.Event()
        self._progress_lock = threading.Lock()
        self._bytes_done = 0

    def run(
        self, handle: IO[bytes], size: int, *, after_read: Callable[[], None] | None
    ) -> list[_T]:
        """Read, hash and submit every part; return the parts' results in order."""
        futures: list[Future[_T]] = []
        executor = ThreadPoolExecutor(
            max_workers=self._concurrency, thread_name_prefix=self._thread_name_prefix
        )
        try:
            for number in range(1, ceil_div(size, self._part_size) + 1):
                self._slots.acquire()
                if self._failed.is_set():
                    self._slots.release()
                    break
                offset = (number - 1) * self._part_size
                length = min(self._part_size, size - offset)
                futures.append(self._submit(executor, handle, number, offset, length))
            else:
                if after_read is not None:
                    after_read()
            # result() re-raises the first failed part's exception here.
            return [future.result() for future in futures]
        except BaseException:
            self._failed.set()
            raise
        finally:
            # Wait for in-flight parts so the abort that follows leaves none behind.
            executor.shutdown(wait=True, cancel_futures=True)

    def _submit(
        self,
        executor: ThreadPoolExecutor,
        handle: IO[bytes],
        number: int,
        offset: int,
        length: int,
    ) -> Future[_T]:
        """Read part ``number`` (holding one slot) and hand it to the pool.

        A separate function so the reader drops its reference to the bytes as soon as
        they are submitted; only the worker keeps them.
        """
        try:
            data: PartData
            if self._stream:
                data = self._read_streamed_part(handle, offset, length)
            else:
                data = self._read_part(handle, length)
            return executor.submit(self._send, number, offset, data)
        except BaseException:
            self._slots.release()
            raise

    def _read_part(self, handle: IO[bytes], length: int) -> bytes:
        """Read and hash the next ``length`` bytes; a short read means the file shrank."""
        data = handle.read(length)
        if self._hash_part is not None:
            self._hash_part(data)
        if len(data) != length:
            raise ChecksumMismatchError("file shrank while it was being archived", key=self._name)
        return data

    def _read_streamed_part(self, handle: IO[bytes], offset: int, length: int) -> FilePart:
        """Hash the next ``length`` bytes in chunks; the worker streams them from the file."""
        hasher = hashlib.sha256()
        remaining = length
        while remaining:
            chunk = handle.read(min(CHUNK_SIZE, remaining))
            if self._hash_part is not None:
                self._hash_part(chunk)
            if not chunk:
                raise ChecksumMismatchError(
                    "file shrank while it was being archived", key=self._name
                )
            hasher.update(chunk)
            remaining -= len(chunk)
        return FilePart(handle, offset, length, hasher.hexdigest(), self._name)

    def _send(self, number: int, offset: int, data: PartData) -> _T:
        """Upload one part (in a worker thread), report it and release its slot."""
        try:
            result = self._upload_part(number, offset, data)
            self._report(part_length(data))
        except BaseException:
            self._failed.set()
            raise
        finally:
            self._slots.release()
        return result

    def _report(self, length: int) -> None:
        """Add ``length`` to the bytes done and tell the progress callback."""
        with self._progress_lock:
            self._bytes_done += length
            # Called under the lock so the values the callback sees never go back.
            if self._progress is not None:
                self._progress(self._bytes_done)


# -- downloads -------------------------------------------------------------------------


def check_destination(destination: Path, *, overwrite: bool) -> None:
    """Raise ``FileExistsError`` if ``destination`` exists and is not to be overwritten."""
    if not overwrite and destination.exists():
        raise file_exists_error(destination)


def write_into_place(
    destination: Path,
    write: Callable[[IO[bytes]], _T],
    *,
    overwrite: bool,
    check: Callable[[_T], None] | None = None,
) -> _T:
    """Write ``destination`` through a temporary file, whole and verified or not at all.

    ``write(out)`` fills a hidden ``.<name>.<random>.part`` file next to
    ``destination``, created with the mode a new file would get (``new_file_mode``).
    The file is flushed and synced, ``check`` is called with what ``write`` returned,
    and the file is moved into place (``move_into_place``) and the directory synced.
    On any exception the temporary file is removed and ``destination`` is untouched.
    Returns what ``write`` returned.
    """
    fd, temp_name = tempfile.mkstemp(
        dir=destination.parent, prefix=f".{destination.name}.", suffix=".part"
    )
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), new_file_mode())
            result = write(out)
            out.flush()
            os.fsync(out.fileno())
        if check is not None:
            check(result)
        move_into_place(temp, destination, overwrite=overwrite)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    fsync_directory(destination.parent)
    return result


def move_into_place(temp: Path, destination: Path, *, overwrite: bool) -> None:
    """Rename the finished temporary file to ``destination``.

    Without ``overwrite`` a hard link is used, which fails atomically if a file
    appeared at ``destination`` during the download; file systems without hard links
    fall back to check-then-rename.
    """
    if overwrite:
        temp.replace(destination)
        return
    try:
        os.link(temp, destination)
    except FileExistsError:
        # The OS names the hidden temporary file; the user must hear the destination.
        raise file_exists_error(destination) from None
    except OSError:
        if destination.exists():
            raise file_exists_error(destination) from None
        temp.replace(destination)
        return
    temp.unlink(missing_ok=True)


def file_exists_error(destination: Path) -> FileExistsError:
    """Build the error for a destination that must not be overwritten."""
    return FileExistsError(errno.EEXIST, "destination exists", str(destination))


def new_file_mode() -> int:
    """Return the mode a newly created file would get (0o666 less the umask).

    ``mkstemp`` creates files 0o600. ``os.umask`` can only be read by setting it, which
    races with other threads, so Linux's /proc is read instead; elsewhere the file
    stays private.
    """
    try:
        status = Path("/proc/self/status").read_text(encoding="ascii", errors="replace")
    except OSError:
        return 0o600
    match = re.search(r"^Umask:\s*([0-7]+)", status, re.MULTILINE)
    return 0o666 & ~int(match.group(1), 8) if match else 0o600


def fsync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable; best effort, not every OS allows it."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
