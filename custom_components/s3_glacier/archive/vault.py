"""VaultTarget: put, get, restore, delete and list the archives of a legacy Glacier vault.

Plain boto3, synchronous. One ``VaultTarget`` may be used from several threads at
once: boto3 clients are thread-safe and the target keeps no per-call state on
``self``.

A vault knows its archives only by the ID it returns on upload (listing them takes
an inventory job of several hours), so the caller must record every ID ``put``
returns. Integrity is end to end with the SHA-256 tree hash: computed while the file
is read, sent with every request, checked against what the service answers, and
checked again on the bytes downloaded.

Archive descriptions (printable ASCII, at most 1024 characters) carry what is needed
to recognise an archive from an inventory alone, in this form::

    s3_glacier/1;uploaded=2026-05-01T12:00:00Z;sha256=<64 hex>;name=<file name>

``sha256`` is left out when it is not known before the upload starts (a multipart
upload of a file whose SHA-256 the caller did not pass in: the description is sent
first and the file is read once). The name is percent-encoded as UTF-8 (bytes that
are not UTF-8, held as surrogate escapes, round-trip too); every printable ASCII
character except ``%`` stays as it is. A name that does not fit is cut at a character
boundary and written as ``name*=`` so the reader knows it is a prefix.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
import hashlib
import io
import json
import logging
import os
from pathlib import Path
import re
from typing import IO, Any
from urllib.parse import quote, unquote

from botocore.exceptions import BotoCoreError, ClientError

from .errors import (
    ArchiveError,
    CannotConnectError,
    ChecksumMismatchError,
    FileTooLargeError,
    JobNotFoundError,
    NotFoundError,
    VaultNotFoundError,
    aws_errors,
    error_code,
    map_botocore_error,
)
from .models import GIB, MIB, ArchivedObject, RestoreState, RestoreTier, StorageClass
from .transfer import (
    CHUNK_SIZE,
    GET_PROGRESS_STEP,
    FilePart,
    PartData,
    ProgressCallback,
    VerifiedFileBody,
    ceil_div,
    check_destination,
    part_length,
    pump_parts,
    utc,
    write_into_place,
)
from .treehash import TreeHasher, combine

_LOGGER = logging.getLogger(__name__)

MIN_PART_SIZE = MIB
MAX_PART_SIZE = 4 * GIB
MAX_PARTS = 10_000
MAX_DESCRIPTION_LENGTH = 1024
DESCRIPTION_PREFIX = "s3_glacier/1"

# A download range whose stream is cut is asked for again this many times in all.
_RANGE_ATTEMPTS = 3

# "Not found" as Glacier says it; moto answers a missing vault with "VaultNotFound".
_MISSING_CODES = frozenset({"ResourceNotFoundException", "VaultNotFound", "404"})

_JOB_STATES = {
    "InProgress": RestoreState.IN_PROGRESS,
    "Succeeded": RestoreState.RESTORED,
    "Failed": RestoreState.NONE,
}

# quote() keeps letters, digits and "_.-~"; keep every other printable ASCII
# character too, except "%" which starts an escape.
_NAME_SAFE = "".join(
    chr(c) for c in range(32, 127) if not chr(c).isalnum() and chr(c) not in "%_.-~"
)
_DESCRIPTION_RE = re.compile(
    re.escape(DESCRIPTION_PREFIX)
    + r";uploaded=(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)"
    + r"(?:;sha256=([0-9a-f]{64}))?"
    + r";name(\*?)=(.*)",
    re.DOTALL,
)
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


# -- descriptions ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class DescriptionInfo:
    """What ``parse_description`` recovers from one of our archive descriptions.

    ``truncated`` is true when ``name`` is only the start of the file name (the full
    name did not fit in 1024 characters). ``sha256`` is ``None`` when the upload did
    not know it in advance.
    """

    name: str
    sha256: str | None
    uploaded: datetime
    truncated: bool = False


def _quote_name(name: str) -> str:
    """Percent-encode ``name`` (UTF-8, surrogate escapes kept as their bytes)."""
    return quote(name, safe=_NAME_SAFE, encoding="utf-8", errors="surrogateescape")


def build_description(name: str, sha256: str | None, uploaded: datetime) -> str:
    """Build the archive description for a file (see the module docstring).

    The result is printable ASCII of at most 1024 characters; the SHA-256 and the
    time are always kept whole, only the name is shortened. ``uploaded`` is written
    in UTC to the second (a naive value is taken to be UTC).
    """
    if sha256 is not None and not _SHA256_RE.fullmatch(sha256):
        raise ValueError("sha256 must be 64 lowercase hex digits")
    fixed = f"{DESCRIPTION_PREFIX};uploaded={utc(uploaded).strftime(_TIME_FORMAT)}"
    if sha256 is not None:
        fixed += f";sha256={sha256}"
    encoded = _quote_name(name)
    if len(fixed) + len(";name=") + len(encoded) <= MAX_DESCRIPTION_LENGTH:
        return f"{fixed};name={encoded}"
    budget = MAX_DESCRIPTION_LENGTH - len(fixed) - len(";name*=")
    pieces: list[str] = []
    for char in name:
        piece = _quote_name(char)
        budget -= len(piece)
        if budget < 0:
            break
        pieces.append(piece)
    return f"{fixed};name*={''.join(pieces)}"


def parse_description(text: str | None) -> DescriptionInfo | None:
    """Read back a description written by ``build_description``; ``None`` if not ours."""
    if not text:
        return None
    match = _DESCRIPTION_RE.fullmatch(text)
    if match is None:
        return None
    try:
        uploaded = datetime.strptime(match.group(1), _TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None
    return DescriptionInfo(
        name=unquote(match.group(4), encoding="utf-8", errors="surrogateescape"),
        sha256=match.group(2),
        uploaded=uploaded,
        truncated=bool(match.group(3)),
    )


def check_description(text: str) -> str:
    """Return ``text`` if Glacier accepts it as a description, else raise ``ValueError``."""
    if len(text) > MAX_DESCRIPTION_LENGTH:
        raise ValueError("an archive description holds at most 1024 characters")
    if any(not 32 <= ord(char) <= 126 for char in text):
        raise ValueError("an archive description must be printable ASCII")
    return text


# -- inventory -------------------------------------------------------------------------


def parse_inventory(document: bytes | str | Mapping[str, Any]) -> list[ArchivedObject]:
    """Parse a JSON vault inventory (the output of an inventory-retrieval job).

    Each ``ArchiveList`` entry becomes an ``ArchivedObject`` keyed by its archive ID,
    with the service's size, creation date and tree hash, the raw description, and
    the SHA-256 recovered from the description when it is one of ours.
    """
    if isinstance(document, (bytes, str)):
        data = document.encode() if isinstance(document, str) else document
        return list(iter_inventory(io.BytesIO(data).read))
    try:
        return [_object_from_inventory(item) for item in document["ArchiveList"]]
    except (ValueError, TypeError, KeyError) as err:
        raise ArchiveError(f"malformed vault inventory: {type(err).__name__}") from err


def iter_inventory(read: Callable[[int], bytes]) -> Iterator[ArchivedObject]:
    """Parse a JSON vault inventory as it is read, one ``ArchiveList`` entry at a time.

    ``read(n)`` returns up to ``n`` more bytes (b"" at the end), as a response body's
    ``read`` does. Memory holds one chunk and one entry, whatever the vault's size.
    Objects are yielded as ``parse_inventory`` builds them; a malformed document
    raises ``ArchiveError`` where the damage is met, after the entries before it.
    """
    stream = _JsonStream(read)
    listed = False
    try:
        stream.expect("{")
        more = stream.peek() != "}"
        while more:
            name = stream.name()
            stream.expect(":")
            if name == "ArchiveList":
                listed = True
                stream.expect("[")
                entries = stream.peek() != "]"
                while entries:
                    yield _object_from_inventory(stream.value())
                    entries = stream.separator("]")
                stream.expect("]")
            else:
                stream.value()
            more = stream.separator("}")
        stream.expect("}")
        stream.expect("")
    except (ValueError, TypeError, KeyError) as err:
        raise ArchiveError(f"malformed vault inventory: {type(err).__name__}") from err
    if not listed:
        raise ArchiveError("malformed vault inventory: no ArchiveList")


class _JsonStream:
    """JSON text read in chunks from a byte stream, with a cursor for a streaming parser.

    Values are decoded with the standard library's ``raw_decode``; one that the
    buffer cuts short is decoded again once more text has been read.
    """

    _CHUNK = 64 * 1024
    _DECODER = json.JSONDecoder()
    _SPACE = " \t\n\r"

    def __init__(self, read: Callable[[int], bytes]) -> None:
        self._read = read
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self._text = ""
        self._pos = 0
        self._ended = False

    def peek(self) -> str:
        """The next character that is not white space ("" at the end), not consumed."""
        while True:
            text, pos = self._text, self._pos
            while pos < len(text) and text[pos] in self._SPACE:
                pos += 1
            self._pos = pos
            if pos < len(text):
                return text[pos]
            if not self._more():
                return ""

    def expect(self, char: str) -> None:
        """Consume ``char`` (after white space; "" for the end), or raise ``ValueError``."""
        if self.peek() != char:
            raise ValueError(f"expected {char!r}")
        self._pos += len(char)

    def separator(self, closing: str) -> bool:
        """Consume a comma and return True, or return False before ``closing``."""
        if self.peek() == closing:
            return False
        self.expect(",")
        return True

    def name(self) -> str:
        """Decode and consume the name of an object's member."""
        name = self.value()
        if not isinstance(name, str):
            raise TypeError("a member name that is not a string")
        return name

    def value(self) -> Any:
        """Decode and consume the next JSON value."""
        self.peek()
        while True:
            try:
                value, end = self._DECODER.raw_decode(self._text, self._pos)
            except json.JSONDecodeError:
                if self._more():
                    continue
                raise
            # A number at the end of the buffer may go on in the next chunk.
            if end == len(self._text) and self._more():
                continue
            self._pos = end
            return value

    def _more(self) -> bool:
        """Append the next chunk to what is not consumed yet; False at the end."""
        if self._ended:
            return False
        chunk = self._read(self._CHUNK)
        self._ended = not chunk
        self._text = self._text[self._pos :] + self._utf8.decode(chunk, final=self._ended)
        self._pos = 0
        return True


def _object_from_inventory(item: Mapping[str, Any]) -> ArchivedObject:
    """One ``ArchiveList`` entry as an ``ArchivedObject``."""
    archive_id = str(item["ArchiveId"])
    description = item.get("ArchiveDescription") or None
    info = parse_description(description)
    tree_hash = item.get("SHA256TreeHash")
    return ArchivedObject(
        key=archive_id,
        archive_id=archive_id,
        size=int(item["Size"]),
        storage_class=StorageClass.VAULT,
        last_modified=utc(datetime.fromisoformat(str(item["CreationDate"]))),
        sha256=info.sha256 if info else None,
        description=description,
        tree_hash=str(tree_hash).lower() if tree_hash else None,
    )


# -- the target ------------------------------------------------------------------------


def plan_part_size(size: int, part_size: int) -> int:
    """Return the part size for a multipart upload of ``size`` bytes.

    ``part_size`` is doubled until the upload needs at most 10,000 parts; raises
    ``FileTooLargeError`` if even 4 GiB parts are not enough (about 40 TiB).
    """
    check_part_size(part_size)
    if size > MAX_PARTS * MAX_PART_SIZE:
        raise FileTooLargeError("file is larger than a vault archive can be", limit="40 TiB")
    while ceil_div(size, part_size) > MAX_PARTS:
        part_size *= 2
    return part_size


def check_part_size(part_size: int) -> int:
    """Return ``part_size`` if it is 1 MiB times a power of two up to 4 GiB."""
    if (
        not isinstance(part_size, int)
        or part_size < MIN_PART_SIZE
        or part_size > MAX_PART_SIZE
        or part_size % MIB
        or (part_size // MIB) & (part_size // MIB - 1)
    ):
        raise ValueError("part_size must be 1 MiB times a power of two, at most 4 GiB")
    return part_size


@dataclass(frozen=True, slots=True, kw_only=True)
class VaultGetResult:
    """What ``VaultTarget.get`` wrote: the final path and the digests of its bytes."""

    path: Path
    size: int
    sha256: str
    tree_hash: str


class VaultTarget:
    """One Glacier vault that files are archived to.

    ``part_size`` (1 MiB times a power of two, at most 4 GiB) is the largest file sent
    in one request, the part size of larger uploads, and the size of the ranges that
    job output is downloaded in. ``concurrency`` parts are uploaded at once.
    """

    def __init__(
        self,
        client: Any,
        vault_name: str,
        *,
        part_size: int = 8 * MIB,
        concurrency: int = 4,
    ) -> None:
        """Wrap a Glacier ``client`` (from ``client.make_client("glacier", ...)``)."""
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._client = client
        self.vault_name = vault_name
        self.part_size = check_part_size(part_size)
        self.concurrency = concurrency

    # -- vault -----------------------------------------------------------------------

    def close(self) -> None:
        """Close the client's connections (the target is not used afterwards)."""
        self._client.close()

    def check(self) -> None:
        """Verify that the vault exists and the credentials may use it.

        Raises ``VaultNotFoundError`` for a missing vault and ``ServiceUnavailableError``
        for an account that Glacier no longer serves.
        """
        with _errors(VaultNotFoundError, vault=self.vault_name):
            self._client.describe_vault(vaultName=self.vault_name)

    # -- upload ----------------------------------------------------------------------

    def put(
        self,
        path: Path,
        *,
        description: str | None = None,
        sha256: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> ArchivedObject:
        """Upload the file at ``path`` as a new archive and verify what was stored.

        Files up to ``part_size`` go in one request, read twice (hashed, then streamed
        from the file and checked again as they are sent); larger ones are read once,
        in a multipart upload with ``concurrency`` parts in flight and at most that
        many parts in memory (fewer for large parts: ``transfer.parallel_parts``). A
        file too large for a vault is refused before it is read. The tree hash and SHA-256 are
        computed while reading; the whole tree hash is joined from the parts' ones.

        ``description`` defaults to ``build_description`` of the file name, SHA-256
        and upload time (without SHA-256 for a multipart upload, unless ``sha256``
        is given). If ``sha256`` is given and the file does not hash to it, or the file
        changes size or modification time while it is read, ``ChecksumMismatchError``
        is raised and nothing is stored.

        Every failure of a multipart upload aborts it first, so no billed parts linger.
        If the tree hash the service reports for the archive is not ours, the archive
        is deleted (best effort) and ``ChecksumMismatchError`` raised.

        ``progress(bytes_done)`` is called after each part, possibly from a worker
        thread, with values that never decrease (a single upload reports once, after
        the check). An exception from it aborts the upload (a single upload's archive
        is deleted, as its ID would be lost).
        """
        path = Path(path)
        if description is not None:
            check_description(description)
        if sha256 is not None and not _SHA256_RE.fullmatch(sha256):
            raise ValueError("sha256 must be 64 lowercase hex digits")
        uploaded = datetime.now(UTC).replace(microsecond=0)
        with path.open("rb") as handle:
            before = os.fstat(handle.fileno())
            size = before.st_size
            multipart_part_size = plan_part_size(size, self.part_size)
            if size <= self.part_size:
                archive_id, returned, digest, tree, text = self._put_single(
                    path, handle, before, description, sha256, uploaded
                )
            else:
                text = (
                    description
                    if description is not None
                    else build_description(path.name, sha256, uploaded)
                )
                upload = _MultipartUpload(
                    self._client,
                    vault_name=self.vault_name,
                    name=path.name,
                    part_size=multipart_part_size,
                    concurrency=self.concurrency,
                    progress=progress,
                )
                with aws_errors():
                    archive_id, returned, digest, tree = upload.run(
                        handle, size, text, sha256, before
                    )
        try:
            _check_returned(returned, tree, path.name)
        except ChecksumMismatchError:
            self._delete_quietly(archive_id)
            raise
        if size <= self.part_size and progress is not None:
            try:
                progress(size)
            except BaseException:
                # The caller will not learn the archive ID: do not leave it behind.
                self._delete_quietly(archive_id)
                raise
        return ArchivedObject(
            key=archive_id,
            archive_id=archive_id,
            size=size,
            storage_class=StorageClass.VAULT,
            last_modified=uploaded,
            sha256=digest,
            tree_hash=tree,
            description=text,
        )

    def _put_single(
        self,
        path: Path,
        handle: IO[bytes],
        before: os.stat_result,
        description: str | None,
        sha256: str | None,
        uploaded: datetime,
    ) -> tuple[str, str | None, str, str, str]:
        """Send a file of at most one part size in one request.

        The file is hashed (SHA-256 and tree hash, which the request carries), then
        streamed: the body stops the request if the bytes differ from those hashed.
        Returns the archive ID, the tree hash the service reported, the file's SHA-256
        and tree hash, and the description sent.
        """
        hasher, tree_hasher = hashlib.sha256(), TreeHasher()
        read = 0
        while chunk := handle.read(CHUNK_SIZE):
            hasher.update(chunk)
            tree_hasher.update(chunk)
            read += len(chunk)
        _check_unchanged(handle, before, read, path.name)
        digest, tree = hasher.hexdigest(), tree_hasher.hexdigest()
        _check_sha256(digest, sha256, path.name)
        body = VerifiedFileBody(handle, before.st_size, digest, path.name)
        text = (
            description
            if description is not None
            else build_description(path.name, digest, uploaded)
        )
        with _errors(VaultNotFoundError, vault=self.vault_name):
            response = self._client.upload_archive(
                vaultName=self.vault_name, archiveDescription=text, checksum=tree, body=body
            )
        return response["archiveId"], response.get("checksum"), digest, tree, text

    # -- restore ---------------------------------------------------------------------

    def request_restore(self, archive_id: str, tier: RestoreTier) -> str:
        """Start an archive-retrieval job at ``tier``; return its job ID.

        ``models.typical_restore_time(StorageClass.VAULT, tier)`` says when to expect
        it. Raises ``NotFoundError`` for an unknown archive (or vault).
        """
        parameters = {"Type": "archive-retrieval", "ArchiveId": archive_id, "Tier": str(tier)}
        with _errors(NotFoundError, key=archive_id):
            response = self._client.initiate_job(
                vaultName=self.vault_name, jobParameters=parameters
            )
        return str(response["jobId"])

    def job_state(self, job_id: str) -> tuple[RestoreState, str | None]:
        """Where job ``job_id`` stands, and the service's message if it failed.

        ``IN_PROGRESS`` while it runs, ``RESTORED`` once its output can be downloaded,
        ``NONE`` (with the message) when it failed. Raises ``JobNotFoundError`` for an
        unknown job or one whose output expired.
        """
        with _errors(JobNotFoundError, job=job_id):
            response = self._client.describe_job(vaultName=self.vault_name, jobId=job_id)
        status = response.get("StatusCode")
        state = _JOB_STATES.get(str(status))
        if state is None:
            raise ArchiveError(f"unknown job status {status!r}", job=job_id)
        if state is RestoreState.NONE:
            return state, response.get("StatusMessage") or "Failed"
        return state, None

    # -- download --------------------------------------------------------------------

    def get(
        self,
        job_id: str,
        destination: Path,
        *,
        size: int,
        tree_hash: str | None,
        sha256: str | None = None,
        overwrite: bool = False,
        progress: ProgressCallback | None = None,
    ) -> VaultGetResult:
        """Download the output of archive-retrieval job ``job_id`` to ``destination``.

        ``size`` is the archive's size; ``tree_hash`` and ``sha256`` (when known) are
        what the bytes must hash to. The output is fetched in ``part_size`` ranges
        (each checked against the tree hash the service sends with it, when it does)
        into a hidden ``.<name>.<random>.part`` file next to ``destination``, then
        checked whole and renamed into place; on any failure the temporary file is
        removed and ``destination`` is untouched. A range whose stream is cut is
        asked for again (three attempts in all). A service that ignores the range and
        sends the whole output is accepted.

        Raises ``FileExistsError`` before any request if ``destination`` exists and
        not ``overwrite``; ``JobNotFoundError`` for an unknown or expired job;
        ``ChecksumMismatchError`` when the bytes are not the archive's.
        ``progress(bytes_done)`` is called every few MiB and at the end, from the
        calling thread.
        """
        destination = Path(destination)
        check_destination(destination, overwrite=overwrite)
        download = _Download(
            self._client,
            vault_name=self.vault_name,
            job_id=job_id,
            size=size,
            range_size=self.part_size,
            progress=progress,
        )

        def check(result: tuple[str, str]) -> None:
            digest, tree = result
            _check_download(job_id, (tree, tree_hash), (digest, sha256))

        digest, tree = write_into_place(destination, download.run, overwrite=overwrite, check=check)
        return VaultGetResult(path=destination, size=size, sha256=digest, tree_hash=tree)

    # -- delete and inventory --------------------------------------------------------

    def delete(self, archive_id: str) -> None:
        """Delete archive ``archive_id``; ``NotFoundError`` if the service says it is unknown.

        (AWS documents the call as idempotent, so deleting twice may also succeed.)
        """
        with _errors(NotFoundError, key=archive_id):
            self._client.delete_archive(vaultName=self.vault_name, archiveId=archive_id)

    def request_inventory(self) -> str:
        """Start an inventory-retrieval job (JSON); return its job ID.

        Glacier updates a vault's inventory about once a day and the job takes hours,
        so the list is a snapshot that can lag behind recent uploads and deletions.
        """
        parameters = {"Type": "inventory-retrieval", "Format": "JSON"}
        with _errors(VaultNotFoundError, vault=self.vault_name):
            response = self._client.initiate_job(
                vaultName=self.vault_name, jobParameters=parameters
            )
        return str(response["jobId"])

    def inventory(self, job_id: str) -> Iterator[ArchivedObject]:
        """The archives listed by the finished inventory-retrieval job ``job_id``.

        The job's output is requested now (an unknown job raises here) and parsed as
        it is read: iterate to the end, or close the iterator, to release the
        connection. Errors met while reading are raised by the iteration.
        """
        with _errors(JobNotFoundError, job=job_id):
            response = self._client.get_job_output(vaultName=self.vault_name, jobId=job_id)
        return self._read_inventory(response["body"], job_id)

    @staticmethod
    def _read_inventory(body: Any, job_id: str) -> Iterator[ArchivedObject]:
        try:
            with _errors(JobNotFoundError, job=job_id):
                yield from iter_inventory(body.read)
        finally:
            body.close()

    # -- helpers ---------------------------------------------------------------------

    def _delete_quietly(self, archive_id: str) -> None:
        """Best-effort delete while another error is being raised."""
        try:
            self._client.delete_archive(vaultName=self.vault_name, archiveId=archive_id)
        except (ClientError, BotoCoreError) as err:
            _LOGGER.warning("Could not delete mismatched archive %s: %s", archive_id, err)


class _MultipartUpload:
    """One multipart upload: ``pump_parts`` reads the parts and a bounded pool sends them.

    A part is read only once one of ``concurrency`` slots is free and the slot is held
    until its upload has finished, so at most ``concurrency`` parts are in memory.
    The reader hashes the whole file (SHA-256); each worker computes its part's tree
    hash, and the archive's tree hash is joined from those.
    """

    def __init__(
        self,
        client: Any,
        *,
        vault_name: str,
        name: str,
        part_size: int,
        concurrency: int,
        progress: ProgressCallback | None,
    ) -> None:
        """Prepare an upload of the file called ``name``; nothing is sent until ``run``."""
        self._client = client
        self._vault = vault_name
        self._name = name
        self._part_size = part_size
        self._concurrency = concurrency
        self._progress = progress
        self._upload_id = ""

    def run(
        self,
        handle: IO[bytes],
        size: int,
        description: str,
        sha256: str | None,
        before: os.stat_result,
    ) -> tuple[str, str | None, str, str]:
        """Upload ``size`` bytes from ``handle``.

        Returns the archive ID, the tree hash the service reported, and the SHA-256
        and tree hash of the bytes read. On any exception, including
        ``BaseException``s such as ``KeyboardInterrupt``, the upload is aborted after
        every in-flight part has finished, then the exception propagates.
        """
        with _errors(VaultNotFoundError, vault=self._vault):
            response = self._client.initiate_multipart_upload(
                vaultName=self._vault,
                archiveDescription=description,
                partSize=str(self._part_size),
            )
        self._upload_id = response["uploadId"]
        try:
            digest, part_digests = self._upload_parts(handle, size, sha256, before)
            tree = combine(part_digests).hex()
            completed = self._client.complete_multipart_upload(
                vaultName=self._vault,
                uploadId=self._upload_id,
                archiveSize=str(size),
                checksum=tree,
            )
        except BaseException:
            self._abort()
            raise
        return completed["archiveId"], completed.get("checksum"), digest, tree

    def _upload_parts(
        self, handle: IO[bytes], size: int, sha256: str | None, before: os.stat_result
    ) -> tuple[str, list[bytes]]:
        """Read, hash and send every part; return the SHA-256 and the parts' tree hashes."""
        hasher = hashlib.sha256()
        part_digests = pump_parts(
            handle,
            size,
            part_size=self._part_size,
            concurrency=self._concurrency,
            upload_part=self._upload_part,
            name=self._name,
            thread_name_prefix="s3_glacier_vault_part",
            hash_part=hasher.update,
            after_read=partial(self._check_read, handle, hasher, size, sha256, before),
            progress=self._progress,
        )
        return hasher.hexdigest(), part_digests

    def _check_read(
        self,
        handle: IO[bytes],
        hasher: Any,
        size: int,
        sha256: str | None,
        before: os.stat_result,
    ) -> None:
        """After the last part: raise if the file changed or is not the expected one."""
        _check_unchanged(handle, before, size, self._name)
        _check_sha256(hasher.hexdigest(), sha256, self._name)

    def _upload_part(self, _number: int, start: int, data: PartData) -> bytes:
        """Upload one part (in a worker thread); return its tree hash (raw digest).

        Checks the tree hash the service reports for the part. A part too large to
        hold (``FilePart``) is read once for its tree hash, then streamed.
        """
        body: bytes | VerifiedFileBody
        if isinstance(data, FilePart):
            hasher = TreeHasher()
            for chunk in data.chunks():
                hasher.update(chunk)
            digest, body = hasher.digest(), data.body()
        else:
            digest, body = TreeHasher(data).digest(), data
        checksum = digest.hex()
        response = self._client.upload_multipart_part(
            vaultName=self._vault,
            uploadId=self._upload_id,
            range=f"bytes {start}-{start + part_length(data) - 1}/*",
            checksum=checksum,
            body=body,
        )
        _check_returned(response.get("checksum"), checksum, self._name)
        return digest

    def _abort(self) -> None:
        """Abort the upload so Glacier drops (and stops billing) its parts."""
        try:
            self._client.abort_multipart_upload(vaultName=self._vault, uploadId=self._upload_id)
        except (ClientError, BotoCoreError) as err:
            _LOGGER.warning(
                "Could not abort multipart upload %s to vault %s (%s); Glacier removes "
                "it after 24 hours",
                self._upload_id,
                self._vault,
                err,
            )


class _RangeCutError(CannotConnectError):
    """The stream of a job output range broke off; the range may be asked for again."""


class _Download:
    """The output of one archive-retrieval job, fetched range by range into a file."""

    def __init__(
        self,
        client: Any,
        *,
        vault_name: str,
        job_id: str,
        size: int,
        range_size: int,
        progress: ProgressCallback | None,
    ) -> None:
        """Prepare a download of ``size`` bytes in ``range_size`` ranges."""
        self._client = client
        self._vault = vault_name
        self._job_id = job_id
        self._size = size
        self._range_size = range_size
        self._progress = progress
        self._reported = 0

    def run(self, out: IO[bytes]) -> tuple[str, str]:
        """Write the whole output to ``out``; return its SHA-256 and tree hash (hex).

        Raises ``ChecksumMismatchError`` if the output is not ``size`` bytes or a
        range does not match the tree hash the service sent with it.
        """
        hasher = hashlib.sha256()
        digests: list[bytes] = []
        if self._size <= self._range_size:
            ranges: list[tuple[int, int | None]] = [(0, None)]
        else:
            ranges = [
                (start, min(start + self._range_size, self._size) - 1)
                for start in range(0, self._size, self._range_size)
            ]
        for start, end in ranges:
            saved = hasher.copy()
            for attempt in range(1, _RANGE_ATTEMPTS + 1):
                out.seek(start)
                out.truncate()
                try:
                    digest, whole = self._fetch(start, end, out, hasher)
                except _RangeCutError:
                    if attempt == _RANGE_ATTEMPTS:
                        raise
                    _LOGGER.debug("Range at %s of job %s cut; retrying", start, self._job_id)
                    hasher = saved.copy()
                    continue
                break
            digests.append(digest)
            if whole:
                break
        if self._progress is not None and self._reported != self._size:
            self._progress(self._size)
        return hasher.hexdigest(), combine(digests).hex()

    def _fetch(
        self, start: int, end: int | None, out: IO[bytes], whole_hasher: Any
    ) -> tuple[bytes, bool]:
        """Fetch one range (the whole output if ``end`` is ``None``) into ``out``.

        Returns the range's tree hash and whether the response held the whole output
        (a service may answer a range request with all of it, status 200).
        """
        extra = {"range": f"bytes={start}-{end}"} if end is not None else {}
        with _errors(JobNotFoundError, job=self._job_id):
            response = self._client.get_job_output(
                vaultName=self._vault, jobId=self._job_id, **extra
            )
        body = response["body"]
        try:
            whole = end is None or (
                response.get("status") == 200 and not response.get("contentRange")
            )
            if whole and start:
                raise ChecksumMismatchError("the vault ignored the byte range", job=self._job_id)
            expected = self._size if whole or end is None else end - start + 1
            hasher = TreeHasher()
            try:
                for chunk in body.iter_chunks(CHUNK_SIZE):
                    out.write(chunk)
                    hasher.update(chunk)
                    whole_hasher.update(chunk)
                    if hasher.size > expected:
                        break
                    self._report(start + hasher.size)
            except (ClientError, BotoCoreError) as err:
                mapped = map_botocore_error(err)
                if isinstance(mapped, CannotConnectError):
                    raise _RangeCutError(str(mapped), job=self._job_id) from err
                raise mapped from err
        finally:
            body.close()
        if hasher.size != expected:
            raise ChecksumMismatchError(
                f"job output has {'more' if hasher.size > expected else 'fewer'} bytes "
                "than the archive",
                job=self._job_id,
            )
        returned = response.get("checksum")
        if returned and returned.lower() != hasher.hexdigest():
            raise ChecksumMismatchError("a range differs from its tree hash", job=self._job_id)
        return hasher.digest(), whole

    def _report(self, done: int) -> None:
        """Tell the progress callback every few MiB (never a smaller value than before)."""
        if self._progress is not None and done - self._reported >= GET_PROGRESS_STEP:
            self._reported = done
            self._progress(done)


# -- module helpers --------------------------------------------------------------------


@contextmanager
def _errors(not_found: type[NotFoundError], **placeholders: Any) -> Iterator[None]:
    """Map botocore errors in the block; "not found" becomes ``not_found``."""
    try:
        yield
    except ClientError as err:
        code = error_code(err)
        if code in _MISSING_CODES:
            raise not_found(code, **placeholders) from err
        raise map_botocore_error(err) from err
    except BotoCoreError as err:
        raise map_botocore_error(err) from err


def _check_unchanged(handle: IO[bytes], before: os.stat_result, read: int, name: str) -> None:
    """Raise if the file was not read whole or changed while it was read.

    ``read`` is the number of bytes read; a change is a new size or modification time.
    """
    after = os.fstat(handle.fileno())
    if (
        read != before.st_size
        or after.st_size != before.st_size
        or after.st_mtime_ns != before.st_mtime_ns
    ):
        raise ChecksumMismatchError("file changed while it was being archived", key=name)


def _check_sha256(digest: str, expected: str | None, name: str) -> None:
    """Raise if the caller gave a SHA-256 for the file and it is not ``digest``."""
    if expected is not None and digest != expected:
        raise ChecksumMismatchError("file does not match the expected SHA-256", key=name)


def _check_returned(returned: str | None, tree: str, name: str) -> None:
    """Raise if the tree hash the service reports is missing or not ``tree``."""
    if returned is None or returned.lower() != tree:
        raise ChecksumMismatchError("the vault reports another tree hash", key=name)


def _check_download(job_id: str, *pairs: tuple[str, str | None]) -> None:
    """Raise if any (actual, expected) digest pair differs where one is expected."""
    for actual, expected in pairs:
        if expected is not None and actual != expected.lower():
            raise ChecksumMismatchError("downloaded bytes differ from the archive", job=job_id)
