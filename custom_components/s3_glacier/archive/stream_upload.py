"""Streams in and out of one S3 key: what a Home Assistant backup needs.

``upload_stream`` sends a stream of known size; ``ObjectStream`` reads an object
chunk by chunk, hashing it; ``put_small`` / ``read_small`` write and read a small
companion object (a backup's sidecar).

``S3Target.put`` hashes a file before sending it; a stream can be read only once, so
here the SHA-256 is computed while the parts go out, and returned for the caller to
keep beside the object (the backup's sidecar, the catalog). The parts are the same
equal parts, through the same bounded pump (``transfer.pump_parts``): at most
``concurrency`` parts are in flight, plus the one being read: never the whole stream.

Plain Python, synchronous, no Home Assistant imports: the reader may block (the
shell hands in a bridge from its event loop). Nothing here overwrites an object: every
write is conditional (``IfNoneMatch="*"``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
import hashlib
import logging
from typing import Any, Protocol

from botocore.exceptions import ClientError

from .errors import (
    ArchiveError,
    ChecksumMismatchError,
    FileTooLargeError,
    ObjectExistsError,
    aws_errors,
    error_code,
)
from .models import ArchivedObject, TransferOptions
from .s3 import (
    _CONFLICT_CODES,
    MAX_PARTS,
    UPLOADS_IN_FLIGHT,
    S3Target,
    _integrity_args,
    _object_args,
    _object_from_response,
    _stored_sha256,
    abort_upload,
    plan_part_size,
    upload_part,
)
from .transfer import FilePart, PartData, ProgressCallback, ceil_div, max_held_part, pump_parts

_LOGGER = logging.getLogger(__name__)

# How much of a part is asked from the stream at a time.
READ_STEP = 1024 * 1024


class BlockingReader(Protocol):
    """What the upload reads from: ``read(n)`` returns at most ``n`` bytes, b"" at the end."""

    def read(self, size: int, /) -> bytes:
        """Return the next bytes."""


class _FullReads:
    """Reads that return exactly what was asked for, unless the stream ended.

    A reader may return fewer bytes than asked before its end (Home Assistant's
    ``AsyncIteratorReader`` does); the part pump takes a short read for the end.
    A part is filled in place, ``READ_STEP`` at a time, so that reading it holds
    about one part in memory rather than two.
    """

    def __init__(self, reader: BlockingReader) -> None:
        self._reader = reader

    def read(self, size: int, /) -> bytes:
        buffer = bytearray(size)
        view = memoryview(buffer)
        filled = 0
        while filled < size:
            chunk = self._reader.read(min(READ_STEP, size - filled))
            if not chunk:
                break
            view[filled : filled + len(chunk)] = chunk
            filled += len(chunk)
        view.release()
        if filled < size:
            del buffer[filled:]
        # A bytearray is bytes-like for hashing and for botocore's request body.
        return buffer  # type: ignore[return-value]


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamUploadResult:
    """The stored object (its ``sha256`` is the digest of the bytes sent) and its parts."""

    object: ArchivedObject
    parts: int


def upload_stream(
    target: S3Target,
    reader: BlockingReader,
    size: int,
    key: str,
    options: TransferOptions,
    *,
    progress: ProgressCallback | None = None,
) -> StreamUploadResult:
    """Send exactly ``size`` bytes of ``reader`` to ``key``; never overwrite an object.

    A stream shorter or longer than ``size`` raises ``ChecksumMismatchError`` and
    nothing is stored. ``key`` already present raises ``ObjectExistsError`` (checked
    by S3 itself with a conditional write, so a concurrent writer is never
    overwritten). A failed or interrupted multipart upload is aborted once its
    in-flight parts have finished, so no billed part is left behind.
    """
    client = target._client  # noqa: SLF001 - the engine's own client, shared by design
    reader = _FullReads(reader)
    # A stream cannot be read again, so every part is held: never a streamed FilePart.
    part_size = min(plan_part_size(size, options.part_size), max_held_part())
    if ceil_div(size, part_size) > MAX_PARTS:
        raise FileTooLargeError(
            "stream is larger than 10,000 parts that fit in memory", key=key, limit="1 TiB"
        )
    hasher = hashlib.sha256()
    # The object metadata can only carry a digest known before the first byte is
    # sent: single PUTs get it, multipart objects keep theirs in the caller's sidecar.
    with aws_errors():
        if size <= part_size:
            data = reader.read(size)
            _check_length(key, len(data), size, reader)
            hasher.update(data)
            digest = hasher.hexdigest()
            args = _object_args(options, digest)
            integrity = _integrity_args(_checksum_algorithm(client), (data,))
            written = _conditional(
                target,
                key,
                lambda **condition: client.put_object(
                    Bucket=target.bucket, Key=key, Body=data, **condition, **args, **integrity
                ),
            )
            parts = 0
            if progress is not None:
                progress(size)
        else:
            args = _object_args(options, "")
            args.pop("Metadata")
            upload = _StreamMultipart(target, key, _checksum_algorithm(client))
            parts = upload.run(reader, size, part_size, options.concurrency, hasher, args, progress)
            written = upload.written
            digest = hasher.hexdigest()
        stored = client.head_object(Bucket=target.bucket, Key=key)
    if stored.get("ContentLength") != size:
        # What this call wrote is no backup: delete it (only it: version ID or If-Match
        # on its ETag), or it would stay billed with nothing listing it.
        target._delete_own(key, written)  # noqa: SLF001 - the target's own safe delete
        raise ChecksumMismatchError("stored object does not match the stream", key=key)
    return StreamUploadResult(object=_object_from_response(key, stored, sha256=digest), parts=parts)


def _checksum_algorithm(client: Any) -> str | None:
    """A CRC32 per part where the client sends checksums (AWS), none elsewhere."""
    policy = getattr(client.meta.config, "request_checksum_calculation", None)
    return "CRC32" if policy == "when_supported" else None


def _check_length(key: str, got: int, size: int, reader: BlockingReader) -> None:
    """Raise unless exactly ``size`` bytes were read and the stream has ended."""
    if got != size or reader.read(1):
        raise ChecksumMismatchError("stream length differs from the announced size", key=key)


def _conditional(target: S3Target, key: str, write: Callable[..., Any]) -> Any:
    """Call ``write`` so that it stores only if ``key`` is empty (``If-None-Match``).

    Through the target's own conditional writes: a service that answers 501 to them
    gets the write without the condition, with the target's one warning. A key that
    exists becomes ``ObjectExistsError``.
    """
    try:
        return target._conditional.send(write, {"IfNoneMatch": "*"})  # noqa: SLF001
    except ClientError as err:
        if error_code(err) in _CONFLICT_CODES:
            raise ObjectExistsError(key, key=key) from err
        raise


class _StreamMultipart:
    """One multipart upload fed from a stream, aborted on any failure."""

    def __init__(self, target: S3Target, key: str, algorithm: str | None) -> None:
        self._target = target
        self._client = target._client  # noqa: SLF001 - see upload_stream
        self._bucket = target.bucket
        self._key = key
        self._algorithm = algorithm
        self._upload_id = ""
        # CompleteMultipartUpload's answer: the ETag (and version) of what was written.
        self.written: dict[str, Any] = {}

    def run(
        self,
        reader: BlockingReader,
        size: int,
        part_size: int,
        concurrency: int,
        hasher: Any,
        args: dict[str, Any],
        progress: ProgressCallback | None,
    ) -> int:
        """Upload every part and complete; return the part count."""
        create_args = dict(args)
        if self._algorithm:
            create_args["ChecksumAlgorithm"] = self._algorithm
        response = self._client.create_multipart_upload(
            Bucket=self._bucket, Key=self._key, **create_args
        )
        self._upload_id = response["UploadId"]
        # A reconcile's sweep of abandoned uploads must leave this one alone.
        UPLOADS_IN_FLIGHT.add(self._upload_id)
        try:
            parts = pump_parts(
                reader,  # type: ignore[arg-type]  # only read() is used
                size,
                part_size=part_size,
                concurrency=concurrency,
                upload_part=self._upload_part,
                name=self._key,
                thread_name_prefix="s3_glacier_backup_part",
                hash_part=hasher.update,
                after_read=lambda: _check_length(self._key, size, size, reader),
                progress=progress,
            )
            self.written = _conditional(
                self._target,
                self._key,
                lambda **condition: self._client.complete_multipart_upload(
                    Bucket=self._bucket,
                    Key=self._key,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": parts},
                    **condition,
                ),
            )
        except BaseException:
            self._abort()
            raise
        finally:
            UPLOADS_IN_FLIGHT.discard(self._upload_id)
        return len(parts)

    def _upload_part(self, number: int, _offset: int, data: PartData) -> dict[str, Any]:
        assert not isinstance(data, FilePart)  # a stream's parts are held (max_held_part)
        return upload_part(
            self._client, self._bucket, self._key, self._upload_id, self._algorithm, number, data
        )

    def _abort(self) -> None:
        abort_upload(self._client, self._bucket, self._key, self._upload_id)


# -- the small companions of a streamed object -----------------------------------------


def put_small(target: S3Target, key: str, data: bytes, options: TransferOptions) -> ArchivedObject:
    """Store ``data`` at ``key`` in one PUT, in ``options``' class; never overwrite.

    For sidecars that must stay readable without a restore: pass a STANDARD class.
    """
    client = target._client  # noqa: SLF001 - see upload_stream
    digest = hashlib.sha256(data).hexdigest()
    args = _object_args(options, digest)
    integrity = _integrity_args(_checksum_algorithm(client), (data,))
    with aws_errors():
        _conditional(
            target,
            key,
            lambda **condition: client.put_object(
                Bucket=target.bucket, Key=key, Body=data, **condition, **args, **integrity
            ),
        )
        stored = client.head_object(Bucket=target.bucket, Key=key)
    return _object_from_response(key, stored, sha256=digest)


def read_small(target: S3Target, key: str, limit: int) -> bytes:
    """Return the bytes of a small object (at most ``limit``; larger raises ``ArchiveError``)."""
    client = target._client  # noqa: SLF001 - see upload_stream
    with aws_errors():
        response = client.get_object(Bucket=target.bucket, Key=key)
        body = response["Body"]
        try:
            if int(response.get("ContentLength", 0)) > limit:
                raise ArchiveError("object too large to be a sidecar", key=key)
            data: bytes = body.read()
        finally:
            body.close()
    return data


class ObjectStream:
    """An open download: ``next_chunk()`` until ``b""``, then ``close()``.

    Each chunk is hashed; ``sha256`` and ``size`` describe what was read so far.
    """

    def __init__(self, target: S3Target, key: str, chunk_size: int) -> None:
        """Send the GET (blocking); ``NotRestoredError`` for an archived object."""
        client = target._client  # noqa: SLF001 - see upload_stream
        with aws_errors():
            self._response = client.get_object(Bucket=target.bucket, Key=key)
        self._chunks = self._response["Body"].iter_chunks(chunk_size)
        self._hasher = hashlib.sha256()
        self.size = 0
        self.expected_size = int(self._response.get("ContentLength", 0))
        self.stored_sha256: str | None = _stored_sha256(self._response)

    def next_chunk(self) -> bytes:
        """Return the next chunk (blocking), or ``b""`` at the end."""
        with aws_errors():
            chunk: bytes = next(self._chunks, b"")
        self._hasher.update(chunk)
        self.size += len(chunk)
        return chunk

    @property
    def sha256(self) -> str:
        """The digest of the bytes read so far."""
        return self._hasher.hexdigest()

    def close(self) -> None:
        """Release the connection (blocking)."""
        self._response["Body"].close()
