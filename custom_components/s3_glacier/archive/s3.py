"""S3Target: put, get, restore, delete and list the objects of one S3 bucket.

Plain boto3, synchronous. One ``S3Target`` may be used from several threads at once:
boto3 clients are thread-safe and the target keeps no per-call state on ``self``.

Integrity is end to end with our own SHA-256, stored as the ``sha256`` user metadata
of every object: botocore does not verify the composite checksums of multipart
objects, and S3-compatible services may not compute any.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import partial
import hashlib
import logging
from pathlib import Path
import re
import threading
from typing import IO, Any

from botocore.exceptions import BotoCoreError, ClientError

from .errors import (
    BucketNotFoundError,
    ChecksumMismatchError,
    FileTooLargeError,
    NotFoundError,
    ObjectChangedError,
    ObjectExistsError,
    aws_errors,
    error_code,
    map_botocore_error,
)
from .models import (
    GIB,
    MIB,
    ArchivedObject,
    ArchiveStatus,
    RestoreState,
    RestoreTier,
    ServerSideEncryption,
    StorageClass,
    TransferOptions,
)
from .transfer import (
    CHUNK_SIZE,
    GET_PROGRESS_STEP,
    FilePart,
    PartData,
    ProgressCallback,
    VerifiedFileBody,
    ceil_div,
    check_destination,
    pump_parts,
    utc,
    write_into_place,
)

_LOGGER = logging.getLogger(__name__)

MIN_PART_SIZE = 5 * MIB
MAX_PART_SIZE = 5 * GIB
MAX_PARTS = 10_000
# AWS documents 50 TB per object; 10,000 parts of 5 GiB (53.7 TB) is the arithmetic
# limit. The smaller one is refused before a file is read, not after days of upload.
MAX_OBJECT_SIZE = min(50 * 10**12, MAX_PARTS * MAX_PART_SIZE)
SHA256_METADATA = "sha256"

# Codes meaning "this key (or its bucket, on a bodiless HEAD) is not there".
_MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
_MISSING_BUCKET_CODES = frozenset({"404", "NoSuchBucket", "NotFound"})
# Codes an S3-compatible service may answer when it does not know
# ``OptionalObjectAttributes``; the listing is then retried without it.
_UNSUPPORTED_CODES = frozenset({"InvalidArgument", "InvalidRequest", "NotImplemented"})
# A conditional write whose condition did not hold (412), or that raced another
# conditional write to the same key (409): another writer got there first.
_CONFLICT_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412", "409"})

_ONGOING_RE = re.compile(r'ongoing-request\s*=\s*"(true|false)"', re.IGNORECASE)
_EXPIRY_RE = re.compile(r'expiry-date\s*=\s*"([^"]+)"', re.IGNORECASE)


@dataclass(frozen=True, slots=True, kw_only=True)
class PutResult:
    """What ``S3Target.put`` did.

    ``reason`` is ``"identical"`` when the upload was skipped because the same bytes
    are already stored under the key in the requested class, and
    ``"identical_other_class"`` when they are stored in another class and
    ``overwrite`` was not given (``object`` then describes what is stored).
    ``parts`` is 0 for a single PUT (and a skip). ``replaced`` is the object an
    overwrite replaced (its class and age decide the early deletion charge).
    """

    object: ArchivedObject
    skipped: bool
    reason: str | None = None
    parts: int = 0
    replaced: ArchivedObject | None = None


def normalise_prefix(prefix: str) -> str:
    """Return ``prefix`` without leading slashes and with one trailing slash if non-empty."""
    prefix = prefix.lstrip("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return prefix


def check_object_size(size: int) -> None:
    """Raise ``FileTooLargeError`` if S3 cannot store ``size`` bytes as one object."""
    if size > MAX_OBJECT_SIZE:
        raise FileTooLargeError("file is larger than the 50 TB S3 object limit", limit="50 TB")


def plan_part_size(size: int, part_size: int) -> int:
    """Return the part size for uploading ``size`` bytes when ``part_size`` is asked for.

    The result is kept within S3's 5 MiB to 5 GiB per part and, when ``size`` would
    need more than 10,000 parts, grown to the next whole MiB that fits.
    """
    check_object_size(size)
    part = min(max(part_size, MIN_PART_SIZE), MAX_PART_SIZE)
    if ceil_div(size, part) > MAX_PARTS:
        part = ceil_div(ceil_div(size, MAX_PARTS), MIB) * MIB
    return part


def parse_restore_header(value: str | None) -> tuple[RestoreState, datetime | None]:
    """Parse S3's ``x-amz-restore`` header into a state and the restored copy's expiry.

    Absent → ``NONE``; ``ongoing-request="true"`` → ``IN_PROGRESS``;
    ``ongoing-request="false"`` (with ``expiry-date``) → ``RESTORED`` and the expiry as
    an aware UTC datetime (``None`` if the date cannot be read). A header naming
    neither is treated as absent.
    """
    if not value or not value.strip():
        return RestoreState.NONE, None
    ongoing = _ONGOING_RE.search(value)
    if ongoing and ongoing.group(1).lower() == "true":
        return RestoreState.IN_PROGRESS, None
    expiry_match = _EXPIRY_RE.search(value)
    if ongoing is None and expiry_match is None:
        return RestoreState.NONE, None
    expiry = _parse_http_date(expiry_match.group(1)) if expiry_match else None
    return RestoreState.RESTORED, expiry


def readable_state(obj: ArchivedObject) -> tuple[RestoreState, datetime | None]:
    """Whether an object, as a HEAD described it, can be read: its restore state and expiry.

    An object that needs no restore (an instant class, or INTELLIGENT_TIERING outside
    its archive tiers) is ``(RESTORED, None)``.
    """
    if obj.restore_state is RestoreState.NONE and not obj.needs_restore:
        return RestoreState.RESTORED, None
    return obj.restore_state, obj.restore_expiry


def sha256_file(path: Path) -> tuple[str, int]:
    """Stream ``path`` once and return its SHA-256 (hex) and size in bytes."""
    hasher = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            hasher.update(chunk)
            size += len(chunk)
    return hasher.hexdigest(), size


class _UploadsInFlight:
    """The multipart uploads this process is running, by upload ID (thread-safe).

    Shared by every target of the process: two entries may list the same bucket under
    overlapping prefixes, and neither may take the other's running upload for stale.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids: set[str] = set()

    def add(self, upload_id: str) -> None:
        with self._lock:
            self._ids.add(upload_id)

    def discard(self, upload_id: str) -> None:
        with self._lock:
            self._ids.discard(upload_id)

    def __contains__(self, upload_id: object) -> bool:
        with self._lock:
            return upload_id in self._ids


UPLOADS_IN_FLIGHT = _UploadsInFlight()


class _ConditionalWrites:
    """Sends writes with ``If-None-Match`` / ``If-Match`` while the service honours them.

    A service that answers 501 NotImplemented to a conditional write gets the write
    again without the condition, and no condition from then on (one warning per
    target): another writer's object at the same key can then be overwritten.
    """

    def __init__(self, bucket: str) -> None:
        self._bucket = bucket
        self._lock = threading.Lock()
        self.enabled = True

    def send(self, write: Callable[..., dict[str, Any]], condition: dict[str, str]) -> Any:
        """Call ``write(**condition)``, or ``write()`` on a service without conditions."""
        if self.enabled:
            try:
                return write(**condition)
            except ClientError as err:
                if not _not_implemented(err):
                    raise
                self._fall_back()
        return write()

    def _fall_back(self) -> None:
        with self._lock:
            if not self.enabled:
                return
            self.enabled = False
        _LOGGER.warning(
            "The storage service of bucket %s does not support conditional writes "
            "(If-None-Match / If-Match): uploads continue without them, so an object "
            "another writer stores at the same key during an upload can be overwritten",
            self._bucket,
        )


class S3Target:
    """One bucket (and default key prefix) that objects are archived to.

    Keys are always full keys: the target never adds ``prefix`` to them. ``prefix`` is
    what ``iterate`` lists by default and what the caller builds keys under.
    """

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        """Wrap an S3 ``client`` (from ``client.make_client("s3", ...)``)."""
        self._client = client
        self.bucket = bucket
        self.prefix = normalise_prefix(prefix)
        # Cleared once a service rejects OptionalObjectAttributes; a race between two
        # listing threads only costs one extra rejected request.
        self._list_restore_status = True
        self._conditional = _ConditionalWrites(bucket)

    # -- bucket and metadata ---------------------------------------------------------

    def close(self) -> None:
        """Close the client's connections (the target is not used afterwards)."""
        self._client.close()

    def check(self) -> str | None:
        """Verify that the bucket exists and the credentials may use it.

        Returns the bucket's region as S3 reports it (``x-amz-bucket-region``; botocore
        follows the redirect when the client's region is another), if it reports one.
        """
        try:
            response = self._client.head_bucket(Bucket=self.bucket)
        except ClientError as err:
            if error_code(err) in _MISSING_BUCKET_CODES:
                raise BucketNotFoundError(error_code(err), bucket=self.bucket) from err
            raise map_botocore_error(err) from err
        except BotoCoreError as err:
            raise map_botocore_error(err) from err
        region = response.get("BucketRegion")
        return str(region) if region else None

    def head(self, key: str) -> ArchivedObject | None:
        """Describe the object at ``key``, or return ``None`` if there is none."""
        response = self._head_response(key)
        return None if response is None else _object_from_response(key, response)

    # -- upload ----------------------------------------------------------------------

    def put(
        self,
        path: Path,
        key: str,
        options: TransferOptions,
        *,
        overwrite: bool = False,
        progress: ProgressCallback | None = None,
    ) -> PutResult:
        """Upload the file at ``path`` to ``key`` and verify what was stored.

        The file is read twice, never whole: once to hash it, once to send it, hashing
        again so a file that changes in between is caught (``ChecksumMismatchError``,
        nothing stored). A file over ``MAX_OBJECT_SIZE`` is refused before it is read
        (``FileTooLargeError``). If ``key`` already holds the same bytes nothing is
        sent; if it holds other bytes, ``ObjectExistsError`` is raised unless
        ``overwrite``.

        The write is conditional, so another writer's object is never replaced: on a
        key seen empty, S3 refuses to create the object if one has appeared since
        (``ObjectExistsError``; ``ObjectChangedError`` with ``overwrite``), and an
        overwrite only replaces the version that was seen (``ObjectChangedError``).
        (Services without conditional writes: see ``_ConditionalWrites``.)

        ``progress(bytes_done)`` is called after each part, possibly from a worker
        thread, with values that never decrease (a single PUT reports once, after the
        check). An exception from it during a multipart upload aborts the upload.

        A failed multipart upload is always aborted, so no billed parts linger. The
        object is then read back (HEAD): if it is no longer the one this call wrote,
        ``ObjectChangedError`` is raised and it is left alone; if it is ours but does
        not match the file, it is deleted when this call created it (an overwritten
        object cannot come back, so it is left for the caller to see) and
        ``ChecksumMismatchError`` is raised.
        """
        if options.storage_class is StorageClass.VAULT:
            raise ValueError("VAULT is not an S3 storage class")
        path = Path(path)
        check_object_size(path.stat().st_size)
        digest, size = sha256_file(path)
        existing = self._head_response(key)
        if existing is not None:
            if reason := _skip_reason(existing, digest, size, options, overwrite=overwrite):
                obj = _object_from_response(key, existing)
                return PutResult(object=obj, skipped=True, reason=reason)
            if not overwrite:
                raise ObjectExistsError(key, key=key)

        # Create only if still absent, or replace only the version seen.
        condition = {"IfNoneMatch": "*"} if existing is None else {}
        if existing is not None and existing.get("ETag"):
            condition = {"IfMatch": str(existing["ETag"])}
        args = _object_args(options, digest)
        part_size = plan_part_size(size, options.part_size)
        with aws_errors(), _write_conflicts(key, overwrite=overwrite):
            if size <= part_size:
                written = self._put_single(path, key, size, digest, args, condition)
                parts = 0
            else:
                upload = _MultipartUpload(
                    self._client,
                    bucket=self.bucket,
                    key=key,
                    part_size=part_size,
                    concurrency=options.concurrency,
                    checksum_algorithm=self._checksum_algorithm(),
                    progress=progress,
                )
                parts, written = upload.run(path, size, digest, args, self._conditional, condition)
        stored = self._verify_upload(key, size, digest, written, created=existing is None)
        if parts == 0 and progress is not None:
            progress(size)
        replaced = None if existing is None else _object_from_response(key, existing)
        return PutResult(
            object=_object_from_response(key, stored), skipped=False, parts=parts, replaced=replaced
        )

    def _put_single(
        self,
        path: Path,
        key: str,
        size: int,
        digest: str,
        args: dict[str, Any],
        condition: dict[str, str],
    ) -> dict[str, Any]:
        """Send a file of at most one part size in one PUT; return S3's answer.

        The body is streamed from the file (``VerifiedFileBody``): a request whose
        bytes are not the ones hashed before never completes.
        """
        algorithm = self._checksum_algorithm()
        integrity = _integrity_args(algorithm, () if algorithm else _file_chunks(path))
        with path.open("rb") as handle:

            def write(**extra: str) -> dict[str, Any]:
                body = VerifiedFileBody(handle, size, digest, key)
                response: dict[str, Any] = self._client.put_object(
                    Bucket=self.bucket, Key=key, Body=body, **args, **integrity, **extra
                )
                return response

            result: dict[str, Any] = self._conditional.send(write, condition)
            return result

    def _verify_upload(
        self, key: str, size: int, digest: str, written: dict[str, Any], *, created: bool
    ) -> dict[str, Any]:
        """Head the uploaded object and check it is ours, of the right size and SHA-256."""
        stored = self._head_response(key)
        ours = None if stored is None else _same_version(written, stored)
        if stored is None or ours is False:
            raise ObjectChangedError("another writer replaced the object", key=key)
        if stored.get("ContentLength") == size and _stored_sha256(stored) == digest:
            return stored
        if created and ours:
            self._delete_own(key, written)
        raise ChecksumMismatchError("stored object does not match the file", key=key)

    def _checksum_algorithm(self) -> str | None:
        """Return the per-part checksum to ask S3 for, following the client's policy.

        Like s3transfer: with ``when_supported`` (AWS) every part carries a CRC32 that
        S3 checks; with ``when_required`` (S3-compatible endpoints) none is sent.
        """
        policy = getattr(self._client.meta.config, "request_checksum_calculation", None)
        return "CRC32" if policy == "when_supported" else None

    # -- download --------------------------------------------------------------------

    def get(
        self,
        key: str,
        destination: Path,
        *,
        overwrite: bool = False,
        progress: ProgressCallback | None = None,
    ) -> ArchivedObject:
        """Download ``key`` to the file ``destination``, verified, or not at all.

        The bytes go to a hidden ``.<name>.<random>.part`` file next to ``destination``
        and are checked against the stored size and ``sha256`` metadata (when present)
        before being renamed into place; on any failure the temporary file is removed
        and ``destination`` is untouched. Raises ``FileExistsError`` before any request
        if ``destination`` exists and not ``overwrite``; ``NotRestoredError`` for an
        archived object that is not restored. The returned object's ``sha256`` is the
        digest of the bytes written. ``progress(bytes_done)`` is called every few MiB
        and at the end, from the calling thread.
        """
        destination = Path(destination)
        check_destination(destination, overwrite=overwrite)
        with aws_errors():
            response = self._client.get_object(Bucket=self.bucket, Key=key)
        body = response["Body"]
        try:
            digest, size = self._download(key, response, destination, overwrite, progress)
        finally:
            body.close()
        return _object_from_response(key, response, size=size, sha256=digest)

    def _download(
        self,
        key: str,
        response: dict[str, Any],
        destination: Path,
        overwrite: bool,
        progress: ProgressCallback | None,
    ) -> tuple[str, int]:
        """Stream the body into a temporary file, verify it, and move it into place."""

        def write(out: IO[bytes]) -> tuple[str, int]:
            with aws_errors():
                return _copy_stream(response["Body"], out, progress)

        def check(result: tuple[str, int]) -> None:
            _check_download(key, response, *result)

        return write_into_place(destination, write, overwrite=overwrite, check=check)

    # -- restore ---------------------------------------------------------------------

    def request_restore(self, key: str, days: int | None, tier: RestoreTier) -> RestoreState:
        """Ask S3 to restore an archived object for ``days`` days at ``tier``.

        ``days`` is ``None`` for an INTELLIGENT_TIERING object in an archive tier: S3
        refuses ``Days`` there, as the object moves back to the Frequent Access tier.
        Returns ``IN_PROGRESS`` when a restore was started or is already running (a
        faster tier than the running one upgrades it) and ``RESTORED`` when a restored
        copy exists (S3 then sets its expiry to now + ``days``) or the object needs no
        restore (``ObjectAlreadyInActiveTierError``).
        """
        request: dict[str, Any] = {"GlacierJobParameters": {"Tier": str(tier)}}
        if days is not None:
            request["Days"] = days
        try:
            response = self._client.restore_object(
                Bucket=self.bucket, Key=key, RestoreRequest=request
            )
        except ClientError as err:
            if error_code(err) == "RestoreAlreadyInProgress":
                return RestoreState.IN_PROGRESS
            if error_code(err) == "ObjectAlreadyInActiveTierError":
                return RestoreState.RESTORED
            raise map_botocore_error(err) from err
        except BotoCoreError as err:
            raise map_botocore_error(err) from err
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return RestoreState.RESTORED if status == 200 else RestoreState.IN_PROGRESS

    def restore_state(self, key: str) -> tuple[RestoreState, datetime | None]:
        """Whether ``key`` can be read now: its restore state and the copy's expiry.

        Objects that never need a restore are ``(RESTORED, None)`` (see
        ``readable_state``). Raises ``NotFoundError`` if the key does not exist.
        """
        obj = self.head(key)
        if obj is None:
            raise NotFoundError(key, key=key)
        return readable_state(obj)

    # -- delete and list -------------------------------------------------------------

    def delete(self, key: str) -> None:
        """Delete ``key``; raises ``NotFoundError`` if it does not exist."""
        if self._head_response(key) is None:
            raise NotFoundError(key, key=key)
        with aws_errors():
            self._client.delete_object(Bucket=self.bucket, Key=key)

    def abort_stale_uploads(self, older_than: timedelta) -> int:
        """Abort multipart uploads under the prefix started more than ``older_than`` ago.

        A crash (or a pulled plug) between the start and the abort of a failed upload
        leaves parts that are billed until removed; uploads this recent may still be
        running in another tool (or Home Assistant instance), and uploads this process
        is running (``UPLOADS_IN_FLIGHT``) are never touched, however old: a large
        file on a slow link takes days. Returns how many were aborted.
        """
        cutoff = datetime.now(UTC) - older_than
        aborted = 0
        with aws_errors():
            pages = self._client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=self.prefix
            )
            for page in pages:
                for upload in page.get("Uploads", []):
                    running_here = upload["UploadId"] in UPLOADS_IN_FLIGHT
                    if running_here or utc(upload["Initiated"]) >= cutoff:
                        continue
                    self._client.abort_multipart_upload(
                        Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                    _LOGGER.info("Aborted an abandoned upload of %s", upload["Key"])
                    aborted += 1
        return aborted

    def iterate(
        self, prefix: str | None = None, *, page_size: int | None = None, top_level: bool = False
    ) -> Iterator[ArchivedObject]:
        """Yield every object under ``prefix`` (default: the target's prefix), by key.

        Listings carry no metadata, so ``sha256`` is ``None``. ``page_size`` sets how
        many keys each request asks for (S3's default and maximum is 1,000).
        ``top_level`` lists only the objects directly under ``prefix`` (not those in
        its "folders"): S3 groups the rest by the ``/`` delimiter.
        """
        prefix = self.prefix if prefix is None else prefix
        with aws_errors():
            for page in self._pages(prefix, page_size, top_level=top_level):
                for item in page.get("Contents", ()):
                    yield _object_from_listing(item)

    def _pages(
        self, prefix: str, page_size: int | None, *, top_level: bool = False
    ) -> Iterator[dict[str, Any]]:
        """Pages of ``list_objects_v2``, with restore status where the service has it."""
        paginator = self._client.get_paginator("list_objects_v2")
        args: dict[str, Any] = {
            "Bucket": self.bucket,
            "Prefix": prefix,
            "PaginationConfig": {"PageSize": page_size} if page_size else {},
        }
        if top_level:
            args["Delimiter"] = "/"
        if self._list_restore_status:
            pages = iter(paginator.paginate(**args, OptionalObjectAttributes=["RestoreStatus"]))
            try:
                first = next(pages, None)
            except ClientError as err:
                if error_code(err) not in _UNSUPPORTED_CODES:
                    raise
                _LOGGER.debug("Service rejects OptionalObjectAttributes (%s)", error_code(err))
                self._list_restore_status = False
            else:
                if first is not None:
                    yield first
                    yield from pages
                return
        yield from paginator.paginate(**args)

    # -- helpers ---------------------------------------------------------------------

    def _head_response(self, key: str) -> dict[str, Any] | None:
        """``head_object`` for ``key``, or ``None`` when it does not exist."""
        try:
            response: dict[str, Any] = self._client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as err:
            if error_code(err) in _MISSING_CODES:
                return None
            raise map_botocore_error(err) from err
        except BotoCoreError as err:
            raise map_botocore_error(err) from err
        return response

    def _delete_own(self, key: str, written: dict[str, Any]) -> None:
        """Best-effort delete of the version this target wrote, and of no other.

        The version ID names it exactly in a versioned bucket; otherwise ``If-Match``
        with its ETag keeps a newer writer's object (412) where the service supports it.
        """
        condition: dict[str, str] = {}
        if version := _version_id(written):
            condition = {"VersionId": version}
        elif self._conditional.enabled and written.get("ETag"):
            condition = {"IfMatch": str(written["ETag"])}
        try:
            self._client.delete_object(Bucket=self.bucket, Key=key, **condition)
        except (ClientError, BotoCoreError) as err:
            _LOGGER.warning("Could not delete mismatched object %s: %s", key, err)


class _MultipartUpload:
    """One multipart upload: ``pump_parts`` reads the parts and a bounded pool sends them.

    The calling thread reads parts in order and re-hashes them; at most
    ``concurrency`` parts are held in memory or in flight at any time.
    """

    def __init__(
        self,
        client: Any,
        *,
        bucket: str,
        key: str,
        part_size: int,
        concurrency: int,
        checksum_algorithm: str | None,
        progress: ProgressCallback | None,
    ) -> None:
        """Prepare an upload of ``key``; nothing is sent until ``run``."""
        self._client = client
        self._bucket = bucket
        self._key = key
        self._part_size = part_size
        self._concurrency = concurrency
        self._algorithm = checksum_algorithm
        self._progress = progress
        self._upload_id = ""

    def run(
        self,
        path: Path,
        size: int,
        digest: str,
        args: dict[str, Any],
        conditional: _ConditionalWrites,
        condition: dict[str, str],
    ) -> tuple[int, dict[str, Any]]:
        """Upload ``path`` (``size`` bytes hashing to ``digest``).

        Returns the part count and S3's answer to the completion, which is sent with
        ``condition`` (through ``conditional``). While it runs, the upload ID is in
        ``UPLOADS_IN_FLIGHT`` so that no reconcile takes it for abandoned. On any
        exception, including ``BaseException``s such as ``KeyboardInterrupt``, the
        upload is aborted after every in-flight part has finished, then the exception
        propagates.
        """
        create_args = dict(args)
        if self._algorithm:
            create_args["ChecksumAlgorithm"] = self._algorithm
        response = self._client.create_multipart_upload(
            Bucket=self._bucket, Key=self._key, **create_args
        )
        self._upload_id = response["UploadId"]
        UPLOADS_IN_FLIGHT.add(self._upload_id)
        try:
            parts = self._upload_parts(path, size, digest)

            def complete(**extra: str) -> dict[str, Any]:
                completed: dict[str, Any] = self._client.complete_multipart_upload(
                    Bucket=self._bucket,
                    Key=self._key,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": parts},
                    **extra,
                )
                return completed

            written: dict[str, Any] = conditional.send(complete, condition)
        except BaseException:
            self._abort()
            raise
        finally:
            UPLOADS_IN_FLIGHT.discard(self._upload_id)
        return len(parts), written

    def _upload_parts(self, path: Path, size: int, digest: str) -> list[dict[str, Any]]:
        """Read, re-hash and send every part; return the parts for completion."""
        hasher = hashlib.sha256()
        with path.open("rb") as handle:
            return pump_parts(
                handle,
                size,
                part_size=self._part_size,
                concurrency=self._concurrency,
                upload_part=self._upload_part,
                name=self._key,
                thread_name_prefix="s3_glacier_part",
                hash_part=hasher.update,
                after_read=partial(self._check_unchanged, handle, hasher, digest),
                progress=self._progress,
            )

    def _check_unchanged(self, handle: IO[bytes], hasher: Any, digest: str) -> None:
        """After the last part: raise if the file grew or its bytes differ from pass one."""
        if handle.read(1) or hasher.hexdigest() != digest:
            raise ChecksumMismatchError("file changed while it was being archived", key=self._key)

    def _upload_part(self, number: int, _offset: int, data: PartData) -> dict[str, Any]:
        """Upload one part (in a worker thread); return it as the completion lists it."""
        return upload_part(
            self._client, self._bucket, self._key, self._upload_id, self._algorithm, number, data
        )

    def _abort(self) -> None:
        """Abort the upload so S3 drops (and stops billing) its parts."""
        abort_upload(self._client, self._bucket, self._key, self._upload_id)


def upload_part(
    client: Any,
    bucket: str,
    key: str,
    upload_id: str,
    algorithm: str | None,
    number: int,
    data: PartData,
) -> dict[str, Any]:
    """Send part ``number`` of a multipart upload; return it as the completion lists it.

    A part too large to hold (``FilePart``) is streamed from its file.
    """
    body: bytes | VerifiedFileBody
    if isinstance(data, FilePart):
        extra = _integrity_args(algorithm, data.chunks())
        body = data.body()
    else:
        extra = _integrity_args(algorithm, [data])
        body = data
    response = client.upload_part(
        Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body, **extra
    )
    part = {"PartNumber": number, "ETag": response["ETag"]}
    checksum_field = f"Checksum{algorithm}"
    if algorithm and response.get(checksum_field):
        part[checksum_field] = response[checksum_field]
    return part


def abort_upload(client: Any, bucket: str, key: str, upload_id: str) -> None:
    """Abort a multipart upload so S3 drops (and stops billing) its parts; never raises."""
    try:
        client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    except (ClientError, BotoCoreError) as err:
        _LOGGER.warning(
            "Could not abort the multipart upload of %s (%s); its parts stay billed until a"
            " reconcile aborts it (after 7 days) or a lifecycle rule removes them",
            key,
            err,
        )


# -- module helpers --------------------------------------------------------------------


def _object_args(options: TransferOptions, digest: str) -> dict[str, Any]:
    """Arguments every new object is written with: class, checksum, encryption."""
    args: dict[str, Any] = {
        "StorageClass": str(options.storage_class),
        "Metadata": {SHA256_METADATA: digest},
    }
    if options.encryption is ServerSideEncryption.AES256:
        args["ServerSideEncryption"] = "AES256"
    elif options.encryption is ServerSideEncryption.KMS:
        args["ServerSideEncryption"] = "aws:kms"
        if options.kms_key_id:
            args["SSEKMSKeyId"] = options.kms_key_id
    return args


@contextmanager
def _write_conflicts(key: str, *, overwrite: bool) -> Iterator[None]:
    """Turn a failed write condition into the error that says who got there first."""
    try:
        yield
    except ClientError as err:
        if error_code(err) not in _CONFLICT_CODES:
            raise
        if overwrite:
            raise ObjectChangedError(error_code(err), key=key) from err
        raise ObjectExistsError(key, key=key) from err


def _not_implemented(err: ClientError) -> bool:
    """Whether the service said it does not implement (a header of) the request."""
    status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return error_code(err) == "NotImplemented" or status == 501


def _same_version(written: dict[str, Any], stored: dict[str, Any]) -> bool | None:
    """Whether ``stored`` (a HEAD) is the object ``written`` (a write's answer) created.

    ``None`` when the write's answer carries no ETag to compare.
    """
    if not written.get("ETag"):
        return None
    if _strip_etag(written["ETag"]) != _strip_etag(stored.get("ETag")):
        return False
    # Unversioned buckets report no version, or "null" (moto, suspended versioning).
    versions = {_version_id(written), _version_id(stored)}
    return None in versions or len(versions) == 1


def _version_id(response: dict[str, Any]) -> str | None:
    """The version ID of a write's or HEAD's answer; ``None`` when unversioned."""
    version = response.get("VersionId")
    return None if not version or version == "null" else str(version)


def _file_chunks(path: Path) -> Iterator[bytes]:
    """The file in ``CHUNK_SIZE`` pieces."""
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            yield chunk


def _stored_sha256(response: dict[str, Any]) -> str | None:
    """Return the ``sha256`` user metadata of a head/get response, if any."""
    metadata = response.get("Metadata") or {}
    value = metadata.get(SHA256_METADATA)
    return value.lower() if isinstance(value, str) else None


def _storage_class(value: str | None) -> StorageClass:
    """Return the storage class S3 reports; absent means STANDARD.

    Classes this integration does not offer (REDUCED_REDUNDANCY, EXPRESS_ONEZONE,
    OUTPOSTS, ...) are all readable without a restore, so they count as STANDARD.
    """
    if not value:
        return StorageClass.STANDARD
    try:
        storage_class = StorageClass(value)
    except ValueError:
        return StorageClass.STANDARD
    return StorageClass.STANDARD if storage_class is StorageClass.VAULT else storage_class


def _skip_reason(
    existing: dict[str, Any],
    digest: str,
    size: int,
    options: TransferOptions,
    *,
    overwrite: bool,
) -> str | None:
    """Why an upload over ``existing`` (a head response) is not needed, if it is not.

    Identical means the same bytes in the same class. The same bytes in another class
    are reported (``identical_other_class``) rather than moved, unless ``overwrite``
    asks for the file to be stored again in the requested class: changing the class
    may cost an early deletion, and an archived object cannot be copied unrestored.
    """
    if _stored_sha256(existing) != digest or existing.get("ContentLength") != size:
        return None
    if _storage_class(existing.get("StorageClass")) is options.storage_class:
        return "identical"
    return None if overwrite else "identical_other_class"


def _archive_status(value: str | None) -> ArchiveStatus | None:
    """Return HEAD's ``ArchiveStatus`` (INTELLIGENT_TIERING archive tiers), if known."""
    try:
        return ArchiveStatus(value) if value else None
    except ValueError:
        return None


def _parse_http_date(value: str) -> datetime | None:
    """Parse an RFC 1123 date as aware UTC; ``None`` if it cannot be read."""
    try:
        return utc(parsedate_to_datetime(value))
    except (TypeError, ValueError, IndexError):
        return None


def _strip_etag(etag: str | None) -> str | None:
    """Return the ETag without the quotes S3 puts around it."""
    return etag.strip('"') if etag else None


def _object_from_response(
    key: str,
    response: dict[str, Any],
    *,
    size: int | None = None,
    sha256: str | None = None,
) -> ArchivedObject:
    """Build an ``ArchivedObject`` from a head_object or get_object response.

    ``restore_state`` is the raw restore header: ``NONE`` for objects never restored,
    whatever their class (``S3Target.restore_state`` answers "can I read it").
    """
    state, expiry = parse_restore_header(response.get("Restore"))
    return ArchivedObject(
        key=key,
        size=size if size is not None else int(response.get("ContentLength", 0)),
        storage_class=_storage_class(response.get("StorageClass")),
        last_modified=utc(response["LastModified"]),
        etag=_strip_etag(response.get("ETag")),
        sha256=sha256 or _stored_sha256(response),
        restore_state=state,
        restore_expiry=expiry,
        archive_status=_archive_status(response.get("ArchiveStatus")),
    )


def _object_from_listing(item: dict[str, Any]) -> ArchivedObject:
    """Build an ``ArchivedObject`` from one ``Contents`` entry of a listing.

    Listings do not report INTELLIGENT_TIERING's ``ArchiveStatus``: only a HEAD does.
    """
    state, expiry = RestoreState.NONE, None
    restore = item.get("RestoreStatus")
    if restore:
        if restore.get("IsRestoreInProgress"):
            state = RestoreState.IN_PROGRESS
        else:
            state = RestoreState.RESTORED
            raw_expiry = restore.get("RestoreExpiryDate")
            expiry = utc(raw_expiry) if isinstance(raw_expiry, datetime) else None
    return ArchivedObject(
        key=item["Key"],
        size=int(item.get("Size", 0)),
        storage_class=_storage_class(item.get("StorageClass")),
        last_modified=utc(item["LastModified"]),
        etag=_strip_etag(item.get("ETag")),
        restore_state=state,
        restore_expiry=expiry,
    )


def _copy_stream(body: Any, out: IO[bytes], progress: ProgressCallback | None) -> tuple[str, int]:
    """Copy a response body to ``out`` in 1 MiB chunks; return its SHA-256 and size."""
    hasher = hashlib.sha256()
    size = 0
    reported: int | None = None
    for chunk in body.iter_chunks(CHUNK_SIZE):
        out.write(chunk)
        hasher.update(chunk)
        size += len(chunk)
        if progress is not None and size - (reported or 0) >= GET_PROGRESS_STEP:
            progress(size)
            reported = size
    if progress is not None and reported != size:
        progress(size)
    return hasher.hexdigest(), size


def _check_download(key: str, response: dict[str, Any], digest: str, size: int) -> None:
    """Raise ``ChecksumMismatchError`` if the bytes received are not the stored ones."""
    expected_size = response.get("ContentLength")
    if expected_size is not None and size != expected_size:
        raise ChecksumMismatchError("downloaded size differs from the stored size", key=key)
    expected_digest = _stored_sha256(response)
    if expected_digest is not None and digest != expected_digest:
        raise ChecksumMismatchError("downloaded bytes differ from the archived file", key=key)


def _integrity_args(algorithm: str | None, data: Iterable[bytes]) -> dict[str, str]:
    """Ask the service to check what it received: a CRC on AWS, else Content-MD5.

    S3-compatible endpoints get no CRC (many reject it), but every S3 implementation
    checks Content-MD5, so the bytes stored are the bytes hashed. ``data`` is read
    only for the MD5.
    """
    if algorithm:
        return {"ChecksumAlgorithm": algorithm}
    hasher = hashlib.md5(usedforsecurity=False)
    for chunk in data:
        hasher.update(chunk)
    return {"ContentMD5": base64.b64encode(hasher.digest()).decode("ascii")}
