"""Tests for archive/s3.py against moto in process (no Home Assistant, no MagicMock)."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
import hashlib
import io
import os
from pathlib import Path
import threading
import time
from typing import Any
import zlib

import boto3
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ConnectionClosedError, EndpointConnectionError
from botocore.stub import Stubber
from freezegun import freeze_time
from moto import mock_aws
from moto.moto_api import state_manager
import pytest

from custom_components.s3_glacier.archive import s3 as s3_module, transfer as transfer_module
from custom_components.s3_glacier.archive.client import make_client
from custom_components.s3_glacier.archive.errors import (
    AccessDeniedError,
    ArchiveError,
    BucketNotFoundError,
    CannotConnectError,
    ChecksumMismatchError,
    FileTooLargeError,
    NotFoundError,
    NotRestoredError,
    ObjectChangedError,
    ObjectExistsError,
)
from custom_components.s3_glacier.archive.models import (
    GIB,
    MIB,
    S3_STORAGE_CLASSES,
    ArchiveStatus,
    Credentials,
    RestoreState,
    RestoreTier,
    ServerSideEncryption,
    StorageClass,
    TransferOptions,
    available_tiers,
    typical_restore_time,
)
from custom_components.s3_glacier.archive.s3 import (
    MAX_OBJECT_SIZE,
    MAX_PARTS,
    PutResult,
    S3Target,
    normalise_prefix,
    parse_restore_header,
    plan_part_size,
    sha256_file,
)
from custom_components.s3_glacier.archive.stream_upload import upload_stream
from custom_components.s3_glacier.archive.transfer import CHUNK_SIZE, PartPump

from .read_sizes import record_reads

BUCKET = "engine-test"
REGION = "us-east-1"
PREFIX = "archive"
SMALL = TransferOptions(part_size=5 * MIB, concurrency=2)


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations() -> None:
    """Override the project's autouse fixture: these tests need no Home Assistant."""


@dataclass
class Recorder:
    """The S3 operations a client made, with their parameters (bodies left out)."""

    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    part_sizes: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        with self.lock:
            self.calls.append((model.name, {k: v for k, v in params.items() if k != "Body"}))
            if model.name == "UploadPart":
                body = params["Body"]
                # A part streamed from the file (a file-like body) counts as -1.
                self.part_sizes.append(len(body) if isinstance(body, bytes) else -1)

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def clear(self) -> None:
        self.calls.clear()
        self.part_sizes.clear()


class Hooks:
    """botocore event handlers on the shared engine client, removed after each test."""

    def __init__(self, client: Any) -> None:
        self._events = client.meta.events
        self._registered: list[tuple[str, Callable[..., Any]]] = []

    def on(self, event: str, handler: Callable[..., Any], *, first: bool = False) -> None:
        register = self._events.register_first if first else self._events.register
        register(event, handler)
        self._registered.append((event, handler))

    def before_call(self, operation: str, handler: Callable[..., Any]) -> None:
        """Run ``handler`` before each call; a (response, parsed) return replaces the call."""
        self.on(f"before-call.s3.{operation}", handler)

    def after_call(self, operation: str, handler: Callable[..., Any]) -> None:
        """Run ``handler(parsed=...)`` after each call; it may edit the parsed response."""
        self.on(f"after-call.s3.{operation}", handler)

    def remove_all(self) -> None:
        for event, handler in self._registered:
            self._events.unregister(event, handler)
        self._registered.clear()


# moto and the clients live for the whole module: building a client reads botocore's
# S3 model from disk, which would dominate the run time if done per test.
@pytest.fixture(scope="module")
def moto_s3() -> Iterator[Any]:
    """In-process moto with the test bucket; a plain client for arranging and asserting."""
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket=BUCKET)
        yield client


@pytest.fixture(scope="module")
def engine_client(moto_s3: Any) -> Any:
    """The engine's client (archive.client.make_client), intercepted by moto."""
    credentials = Credentials(access_key_id="testing", secret_access_key="testing", region=REGION)
    return make_client("s3", credentials)


@pytest.fixture
def s3(moto_s3: Any) -> Any:
    """The arranging client, with the bucket emptied (objects and uploads) first."""
    for page in moto_s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for item in page.get("Contents", ()):
            moto_s3.delete_object(Bucket=BUCKET, Key=item["Key"])
    for upload in moto_s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", ()):
        moto_s3.abort_multipart_upload(
            Bucket=BUCKET, Key=upload["Key"], UploadId=upload["UploadId"]
        )
    return moto_s3


@pytest.fixture
def client(engine_client: Any, s3: Any) -> Any:
    return engine_client


@pytest.fixture
def hooks(client: Any) -> Iterator[Hooks]:
    hooks = Hooks(client)
    yield hooks
    hooks.remove_all()


@pytest.fixture
def target(client: Any) -> S3Target:
    return S3Target(client, BUCKET, PREFIX)


@pytest.fixture
def recorder(hooks: Hooks) -> Recorder:
    recorder = Recorder()
    hooks.on("provide-client-params.s3", recorder)
    return recorder


@pytest.fixture
def manual_restore() -> Iterator[None]:
    """Restores stay in progress until the key has been read once more."""
    state_manager.set_transition(
        model_name="s3::keyrestore", transition={"progression": "manual", "times": 1}
    )
    yield
    state_manager.unset_transition("s3::keyrestore")


def write_file(path: Path, size: int) -> Path:
    """Random bytes, written in bounded chunks."""
    with path.open("wb") as handle:
        remaining = size
        while remaining:
            chunk = min(remaining, MIB)
            handle.write(os.urandom(chunk))
            remaining -= chunk
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def crc32(data: bytes) -> str:
    """A CRC32 as S3 reports it: base64 of the four big-endian bytes."""
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode("ascii")


def service_error(code: str, status: int) -> tuple[AWSResponse, dict[str, Any]]:
    """A before-call response that botocore turns into ClientError(code)."""
    parsed = {
        "Error": {"Code": code, "Message": code},
        "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": {}},
    }
    return AWSResponse(f"https://{BUCKET}.s3.amazonaws.com", status, {}, None), parsed


def part_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.part"))


def no_uploads(s3: Any) -> bool:
    return not s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads")


def key_exists(s3: Any, key: str) -> bool:
    return "Contents" in s3.list_objects_v2(Bucket=BUCKET, Prefix=key)


# -- pure functions ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", ""),
        ("/", ""),
        ("a", "a/"),
        ("/a", "a/"),
        ("a/", "a/"),
        ("//a/b", "a/b/"),
        ("/XA", "XA/"),  # only slashes are stripped
    ],
)
def test_normalise_prefix(raw: str, expected: str) -> None:
    assert normalise_prefix(raw) == expected
    assert S3Target(None, BUCKET, raw).prefix == expected


def test_target_without_a_prefix_lists_the_whole_bucket() -> None:
    assert S3Target(None, BUCKET).prefix == ""


def test_plan_part_size() -> None:
    assert plan_part_size(100 * MIB, 16 * MIB) == 16 * MIB
    assert plan_part_size(100 * MIB, 1 * MIB) == 5 * MIB  # S3 minimum
    assert plan_part_size(100 * MIB, 8 * GIB) == 5 * GIB  # S3 maximum
    # 10,000 parts of 5 MiB plus one byte: grow to the next whole MiB.
    assert plan_part_size(MAX_PARTS * 5 * MIB + 1, 5 * MIB) == 6 * MIB
    # Exactly 10,000 parts fit: the part size asked for is kept, even off a MiB boundary.
    assert plan_part_size(MAX_PARTS * (5 * MIB + 1), 5 * MIB + 1) == 5 * MIB + 1
    big = 100 * GIB
    part = plan_part_size(big, 8 * MIB)
    assert part % MIB == 0
    assert -(-big // part) <= MAX_PARTS
    assert -(-big // (part - MIB)) > MAX_PARTS  # the smallest MiB multiple that fits
    # AWS's 50 TB object limit (decimal: below 10,000 parts of 5 GiB).
    assert MAX_OBJECT_SIZE == 50 * 10**12
    assert -(-MAX_OBJECT_SIZE // plan_part_size(MAX_OBJECT_SIZE, 8 * MIB)) <= MAX_PARTS
    with pytest.raises(FileTooLargeError) as info:
        plan_part_size(MAX_OBJECT_SIZE + 1, 8 * MIB)
    assert info.value.translation_key == "file_too_large"
    assert str(info.value) == "file is larger than the 50 TB S3 object limit"
    assert info.value.placeholders == {"limit": "50 TB"}


def test_sha256_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_file(tmp_path / "f", 3 * MIB + 7)
    expected = sha256(path)
    sizes = record_reads(monkeypatch, path)
    assert sha256_file(path) == (expected, 3 * MIB + 7)
    assert sizes == [CHUNK_SIZE] * 5  # in chunks (four, then the end), never whole


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, (RestoreState.NONE, None)),
        ("", (RestoreState.NONE, None)),
        ("   ", (RestoreState.NONE, None)),
        ('ongoing-request="true"', (RestoreState.IN_PROGRESS, None)),
        (
            'ongoing-request="false", expiry-date="Fri, 21 Dec 2012 00:00:00 GMT"',
            (RestoreState.RESTORED, datetime(2012, 12, 21, tzinfo=UTC)),
        ),
        (
            'ongoing-request = "FALSE" ,expiry-date="Sat, 01 Mar 2025 13:45:10 GMT"',
            (RestoreState.RESTORED, datetime(2025, 3, 1, 13, 45, 10, tzinfo=UTC)),
        ),
        # An offset is converted to UTC.
        (
            'ongoing-request="false", expiry-date="Fri, 21 Dec 2012 02:00:00 +0200"',
            (RestoreState.RESTORED, datetime(2012, 12, 21, tzinfo=UTC)),
        ),
        ('ongoing-request="false", expiry-date="not a date"', (RestoreState.RESTORED, None)),
        ('ongoing-request="false"', (RestoreState.RESTORED, None)),
        ("something else", (RestoreState.NONE, None)),
    ],
)
def test_parse_restore_header(
    header: str | None, expected: tuple[RestoreState, datetime | None]
) -> None:
    state, expiry = parse_restore_header(header)
    assert (state, expiry) == expected
    if expiry is not None:
        assert expiry.tzinfo is UTC


# -- check / head -----------------------------------------------------------------------


def test_check(target: S3Target, client: Any, s3: Any) -> None:
    """The check answers with the bucket's own region, whatever the client's is."""
    assert target.check() == REGION
    s3.create_bucket(
        Bucket="engine-test-eu", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    try:
        assert S3Target(client, "engine-test-eu").check() == "eu-west-1"
    finally:
        s3.delete_bucket(Bucket="engine-test-eu")
    with pytest.raises(BucketNotFoundError) as missing:
        S3Target(client, "no-such-bucket").check()
    assert missing.value.placeholders == {"bucket": "no-such-bucket"}
    assert str(missing.value) == "404"


def test_check_without_a_region_and_refused(target: S3Target, hooks: Hooks) -> None:
    """A service that names no region; then keys that may not use the bucket."""

    def no_region(parsed: dict[str, Any], **_: Any) -> None:
        parsed.pop("BucketRegion", None)

    hooks.after_call("HeadBucket", no_region)
    assert target.check() is None
    hooks.before_call("HeadBucket", lambda **_: service_error("AccessDenied", 403))
    with pytest.raises(AccessDeniedError):
        target.check()
    hooks.before_call("RestoreObject", lambda **_: service_error("AccessDenied", 403))
    with pytest.raises(AccessDeniedError):
        target.request_restore("archive/f", 1, RestoreTier.BULK)


@pytest.mark.parametrize("operation", ["HeadBucket", "HeadObject", "RestoreObject"])
def test_check_and_restore_when_the_service_is_unreachable(
    target: S3Target, hooks: Hooks, operation: str
) -> None:
    def unreachable(**_: Any) -> None:
        raise EndpointConnectionError(endpoint_url="https://s3.amazonaws.com")

    hooks.before_call(operation, unreachable)
    call = {
        "HeadBucket": target.check,
        "HeadObject": lambda: target.head("archive/f"),
        "RestoreObject": lambda: target.request_restore("archive/f", 1, RestoreTier.BULK),
    }[operation]
    with pytest.raises(CannotConnectError) as err:
        call()
    assert str(err.value) == "EndpointConnectionError"


def test_head(target: S3Target, tmp_path: Path) -> None:
    assert target.head("archive/missing") is None
    path = write_file(tmp_path / "a.bin", 1000)
    target.put(path, "archive/a.bin", SMALL)
    obj = target.head("archive/a.bin")
    assert obj is not None
    assert (obj.key, obj.size, obj.sha256) == ("archive/a.bin", 1000, sha256(path))
    assert obj.storage_class is StorageClass.GLACIER_IR
    assert obj.last_modified.tzinfo is UTC
    assert obj.etag
    assert '"' not in obj.etag


# -- put --------------------------------------------------------------------------------


def test_put_single(target: S3Target, s3: Any, recorder: Recorder, tmp_path: Path) -> None:
    path = write_file(tmp_path / "small.bin", 100_000)
    progress: list[int] = []
    result = target.put(path, "archive/small.bin", SMALL, progress=progress.append)

    assert isinstance(result, PutResult)
    assert (result.skipped, result.reason, result.parts) == (False, None, 0)
    assert result.object.key == "archive/small.bin"
    assert result.object.size == 100_000
    assert result.object.sha256 == sha256(path)
    assert result.object.storage_class is StorageClass.GLACIER_IR
    assert result.object.last_modified.tzinfo is UTC
    assert progress == [100_000]
    assert recorder.names().count("PutObject") == 1
    assert "CreateMultipartUpload" not in recorder.names()

    head = s3.head_object(Bucket=BUCKET, Key="archive/small.bin")
    assert head["Metadata"] == {"sha256": sha256(path)}
    assert head["StorageClass"] == "GLACIER_IR"
    assert head["ServerSideEncryption"] == "AES256"


def test_put_empty_file(target: S3Target, s3: Any, tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.write_bytes(b"")
    result = target.put(path, "archive/empty", SMALL)
    assert result.object.size == 0
    assert result.object.sha256 == hashlib.sha256(b"").hexdigest()


@pytest.mark.parametrize("storage_class", S3_STORAGE_CLASSES)
def test_put_storage_classes(
    target: S3Target, s3: Any, tmp_path: Path, storage_class: StorageClass
) -> None:
    path = write_file(tmp_path / "f", 2048)
    options = TransferOptions(storage_class=storage_class)
    result = target.put(path, "archive/f", options)
    assert result.object.storage_class is storage_class
    head = s3.head_object(Bucket=BUCKET, Key="archive/f")
    # S3 leaves StorageClass out for STANDARD objects.
    assert head.get("StorageClass", "STANDARD") == storage_class.value


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            TransferOptions(encryption=ServerSideEncryption.AES256),
            {"ServerSideEncryption": "AES256"},
        ),
        (TransferOptions(encryption=ServerSideEncryption.NONE), {}),
        (
            TransferOptions(encryption=ServerSideEncryption.KMS, kms_key_id="alias/archive"),
            {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "alias/archive"},
        ),
        (TransferOptions(encryption=ServerSideEncryption.KMS), {"ServerSideEncryption": "aws:kms"}),
    ],
    ids=["aes256", "none", "kms-key", "kms-default"],
)
def test_put_encryption(
    target: S3Target,
    s3: Any,
    recorder: Recorder,
    tmp_path: Path,
    options: TransferOptions,
    expected: dict[str, str],
) -> None:
    path = write_file(tmp_path / "f", 4096)
    target.put(path, "archive/f", options)
    [(_, params)] = [call for call in recorder.calls if call[0] == "PutObject"]
    sent = {k: params[k] for k in ("ServerSideEncryption", "SSEKMSKeyId") if k in params}
    assert sent == expected
    head = s3.head_object(Bucket=BUCKET, Key="archive/f")
    assert head.get("ServerSideEncryption") == expected.get("ServerSideEncryption")


def test_put_multipart(
    target: S3Target,
    s3: Any,
    hooks: Hooks,
    recorder: Recorder,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    size = 12 * MIB + 123
    path = write_file(tmp_path / "big.bin", size)
    progress: list[int] = []
    options = TransferOptions(
        storage_class=StorageClass.DEEP_ARCHIVE, part_size=5 * MIB, concurrency=3
    )
    data = path.read_bytes()
    threads: list[str] = []

    def part_thread(**_: Any) -> None:
        threads.append(threading.current_thread().name)

    hooks.before_call("UploadPart", part_thread)
    sizes = record_reads(monkeypatch, path)
    result = target.put(path, "archive/big.bin", options, progress=progress.append)

    assert result.parts == 3
    # Hashed in chunks (13, then the end), read again part by part; after the last
    # part, one byte tells a grown file (however much it grew, nothing more is read).
    assert sizes == [CHUNK_SIZE] * 14 + [5 * MIB, 5 * MIB, 2 * MIB + 123, 1]
    # Parts are sent from the pool's named threads.
    assert len(threads) == 3
    assert all(name.startswith("s3_glacier_part_") for name in threads), threads
    # Each part asks for a CRC32 (AWS), and the completion lists the one S3 answered.
    uploads = [params for name, params in recorder.calls if name == "UploadPart"]
    assert [(p.get("ChecksumAlgorithm"), "ContentMD5" in p) for p in uploads] == [
        ("CRC32", False)
    ] * 3
    [(_, complete)] = [c for c in recorder.calls if c[0] == "CompleteMultipartUpload"]
    listed = {
        part["PartNumber"]: part["ChecksumCRC32"] for part in complete["MultipartUpload"]["Parts"]
    }
    assert listed == {
        number: crc32(data[(number - 1) * 5 * MIB : number * 5 * MIB]) for number in (1, 2, 3)
    }
    assert complete["UploadId"] not in s3_module.UPLOADS_IN_FLIGHT
    assert recorder.part_sizes.count(5 * MIB) == 2
    assert sorted(recorder.part_sizes) == [2 * MIB + 123, 5 * MIB, 5 * MIB]
    assert "PutObject" not in recorder.names()
    [(_, create)] = [c for c in recorder.calls if c[0] == "CreateMultipartUpload"]
    assert create["StorageClass"] == "DEEP_ARCHIVE"
    assert create["Metadata"] == {"sha256": sha256(path)}
    assert create["ServerSideEncryption"] == "AES256"
    assert progress == sorted(progress)
    assert progress[-1] == size
    assert len(progress) == 3

    head = s3.head_object(Bucket=BUCKET, Key="archive/big.bin")
    assert head["ContentLength"] == size
    assert head["StorageClass"] == "DEEP_ARCHIVE"
    assert head["Metadata"]["sha256"] == sha256(path)
    assert result.object.sha256 == sha256(path)
    assert no_uploads(s3)


def test_put_multipart_bounded_concurrency(target: S3Target, hooks: Hooks, tmp_path: Path) -> None:
    path = write_file(tmp_path / "big.bin", 26 * MIB)
    lock = threading.Lock()
    in_flight = [0, 0]  # current, maximum

    def start(**_: Any) -> None:
        with lock:
            in_flight[0] += 1
            in_flight[1] = max(in_flight)
        time.sleep(0.05)  # give the other workers a chance to overlap

    def finish(**_: Any) -> None:
        with lock:
            in_flight[0] -= 1

    hooks.before_call("UploadPart", start)
    hooks.after_call("UploadPart", finish)
    result = target.put(path, "archive/big.bin", TransferOptions(part_size=5 * MIB, concurrency=2))
    assert result.parts == 6
    assert in_flight[1] == 2


def test_put_multipart_bounded_read_ahead(
    target: S3Target, hooks: Hooks, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reader never holds more than ``concurrency`` parts that are not yet sent."""
    path = write_file(tmp_path / "big.bin", 30 * MIB)
    lock = threading.Lock()
    counts = {"read": 0, "sent": 0, "most_held": 0}
    read_part = PartPump._read_part

    def counting_read(self: PartPump[Any], *args: Any) -> bytes:
        data = read_part(self, *args)
        with lock:
            counts["read"] += 1
            counts["most_held"] = max(counts["most_held"], counts["read"] - counts["sent"])
        return data

    def slow_send(**_: Any) -> None:
        time.sleep(0.05)  # a slow uplink: an unbounded reader would race ahead

    def sent(**_: Any) -> None:
        with lock:
            counts["sent"] += 1

    monkeypatch.setattr(PartPump, "_read_part", counting_read)
    hooks.before_call("UploadPart", slow_send)
    hooks.after_call("UploadPart", sent)
    target.put(path, "archive/big.bin", TransferOptions(part_size=5 * MIB, concurrency=2))
    assert counts["read"] == 6
    assert counts["most_held"] <= 2


def test_put_from_several_threads(target: S3Target, s3: Any, tmp_path: Path) -> None:
    """One target serves concurrent uploads (the shell calls it from executor threads)."""
    sizes = [1000, 6 * MIB, 20_000, 11 * MIB]
    paths = [write_file(tmp_path / f"f{i}", size) for i, size in enumerate(sizes)]
    results: dict[int, PutResult] = {}
    errors: list[BaseException] = []

    def upload(i: int) -> None:
        try:
            results[i] = target.put(paths[i], f"archive/f{i}", SMALL)
        except BaseException as err:  # noqa: BLE001 - reported by the assertion below
            errors.append(err)

    threads = [threading.Thread(target=upload, args=(i,)) for i in range(len(paths))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for i, path in enumerate(paths):
        assert results[i].object.sha256 == sha256(path)
        head = s3.head_object(Bucket=BUCKET, Key=f"archive/f{i}")
        assert head["ContentLength"] == sizes[i]
    assert no_uploads(s3)


def test_put_identical_is_skipped(target: S3Target, recorder: Recorder, tmp_path: Path) -> None:
    small = write_file(tmp_path / "small", 10_000)
    big = write_file(tmp_path / "big", 11 * MIB)
    first_small = target.put(small, "archive/small", SMALL)
    target.put(big, "archive/big", SMALL)
    recorder.clear()

    again = target.put(small, "archive/small", SMALL)
    target.put(big, "archive/big", SMALL, overwrite=True)

    assert again.skipped
    assert again.reason == "identical"
    assert again.parts == 0
    assert again.object.key == "archive/small"
    assert again.object.sha256 == first_small.object.sha256
    assert set(recorder.names()) == {"HeadObject"}


def test_put_existing_key(target: S3Target, s3: Any, tmp_path: Path) -> None:
    first = write_file(tmp_path / "first", 5000)
    second = write_file(tmp_path / "second", 6000)
    target.put(first, "archive/f", SMALL)

    with pytest.raises(ObjectExistsError) as info:
        target.put(second, "archive/f", SMALL)
    assert str(info.value) == "archive/f"
    assert info.value.placeholders == {"key": "archive/f"}
    assert s3.head_object(Bucket=BUCKET, Key="archive/f")["Metadata"]["sha256"] == sha256(first)

    result = target.put(second, "archive/f", SMALL, overwrite=True)
    assert not result.skipped
    assert result.replaced is not None
    assert (result.replaced.key, result.replaced.size) == ("archive/f", 5000)
    assert result.replaced.sha256 == sha256(first)
    assert s3.head_object(Bucket=BUCKET, Key="archive/f")["Metadata"]["sha256"] == sha256(second)


def test_put_existing_without_checksum(target: S3Target, s3: Any, tmp_path: Path) -> None:
    """A foreign object (no sha256 metadata) is never taken as identical."""
    path = write_file(tmp_path / "f", 100)
    s3.put_object(Bucket=BUCKET, Key="archive/f", Body=path.read_bytes())
    with pytest.raises(ObjectExistsError):
        target.put(path, "archive/f", SMALL)


def test_put_part_failure_aborts(target: S3Target, hooks: Hooks, s3: Any, tmp_path: Path) -> None:
    path = write_file(tmp_path / "big", 16 * MIB)
    lock = threading.Lock()
    count = [0]

    def fail_second(**_: Any) -> None:
        with lock:
            count[0] += 1
            if count[0] == 2:
                raise EndpointConnectionError(endpoint_url="https://s3.amazonaws.com")

    hooks.before_call("UploadPart", fail_second)
    with pytest.raises(CannotConnectError):
        target.put(path, "archive/big", SMALL)
    assert no_uploads(s3)
    assert not key_exists(s3, "archive/big")
    assert count[0] <= 4  # the reader stopped feeding parts after the failure
    assert not [t for t in threading.enumerate() if t.name.startswith("s3_glacier_part")]


def test_put_service_error_is_mapped(target: S3Target, hooks: Hooks, tmp_path: Path) -> None:
    path = write_file(tmp_path / "big", 11 * MIB)
    hooks.before_call("CompleteMultipartUpload", lambda **_: service_error("InternalError", 500))
    with pytest.raises(ArchiveError) as info:
        target.put(path, "archive/big", SMALL)
    # No narrower kind fits a 500 InternalError: not throttling, not the keys, not gone.
    assert type(info.value) is ArchiveError
    assert (str(info.value), info.value.translation_key) == ("InternalError", "unknown")


class Interrupted(BaseException):
    """Stands in for KeyboardInterrupt / SystemExit inside a worker."""


def test_put_base_exception_aborts(target: S3Target, hooks: Hooks, s3: Any, tmp_path: Path) -> None:
    path = write_file(tmp_path / "big", 11 * MIB)

    def interrupt(**_: Any) -> None:
        raise Interrupted

    hooks.before_call("UploadPart", interrupt)
    with pytest.raises(Interrupted):
        target.put(path, "archive/big", SMALL)
    assert no_uploads(s3)


def test_put_progress_error_aborts(target: S3Target, s3: Any, tmp_path: Path) -> None:
    path = write_file(tmp_path / "big", 11 * MIB)

    def progress(done: int) -> None:
        raise RuntimeError("consumer gone")

    with pytest.raises(RuntimeError):
        target.put(path, "archive/big", SMALL, progress=progress)
    assert no_uploads(s3)
    assert not key_exists(s3, "archive/big")


@pytest.mark.parametrize("size", [50_000, 11 * MIB], ids=["single", "multipart"])
@pytest.mark.parametrize("change", ["rewrite", "append", "truncate"])
def test_put_file_changed_between_passes(
    target: S3Target, hooks: Hooks, s3: Any, tmp_path: Path, size: int, change: str
) -> None:
    path = write_file(tmp_path / "f", size)

    def change_file(**_: Any) -> None:
        # HeadObject (the existence check) runs between hashing and sending.
        with path.open("r+b") as handle:
            if change == "rewrite":
                handle.seek(size // 2)
                handle.write(b"\x00" * 16 if handle.read(16) != b"\x00" * 16 else b"\x01" * 16)
            elif change == "append":
                handle.seek(0, os.SEEK_END)
                handle.write(b"more")
            else:
                handle.truncate(size - 1)

    hooks.on("before-call.s3.HeadObject", change_file, first=True)
    with pytest.raises(ChecksumMismatchError) as err:
        target.put(path, "archive/f", SMALL)
    verb = "shrank" if change == "truncate" else "changed"
    assert str(err.value) == f"file {verb} while it was being archived"
    assert err.value.placeholders == {"key": "archive/f"}
    assert no_uploads(s3)
    assert not key_exists(s3, "archive/f")


def test_put_verification_failure_deletes_new_object(
    target: S3Target, hooks: Hooks, s3: Any, tmp_path: Path
) -> None:
    path = write_file(tmp_path / "f", 1000)

    def tamper(parsed: dict[str, Any], **_: Any) -> None:
        if "Metadata" in parsed:
            parsed["Metadata"] = {"sha256": "0" * 64}

    hooks.after_call("HeadObject", tamper)
    with pytest.raises(ChecksumMismatchError) as err:
        target.put(path, "archive/f", SMALL)
    assert str(err.value) == "stored object does not match the file"
    assert err.value.placeholders == {"key": "archive/f"}
    assert not key_exists(s3, "archive/f")


def test_put_verification_failure_keeps_overwritten_object(
    target: S3Target, hooks: Hooks, s3: Any, tmp_path: Path
) -> None:
    s3.put_object(Bucket=BUCKET, Key="archive/f", Body=b"old")
    path = write_file(tmp_path / "f", 1000)
    heads = [0]

    def tamper(parsed: dict[str, Any], **_: Any) -> None:
        heads[0] += 1
        if heads[0] == 2:  # the check after the upload
            parsed["ContentLength"] = 1

    hooks.after_call("HeadObject", tamper)
    with pytest.raises(ChecksumMismatchError):
        target.put(path, "archive/f", SMALL, overwrite=True)
    assert s3.head_object(Bucket=BUCKET, Key="archive/f")["ContentLength"] == 1000


def test_put_rejects_vault_class(target: S3Target, tmp_path: Path) -> None:
    path = write_file(tmp_path / "f", 10)
    with pytest.raises(ValueError) as err:
        target.put(path, "archive/f", TransferOptions(storage_class=StorageClass.VAULT))
    assert str(err.value) == "VAULT is not an S3 storage class"


# -- get --------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 70_000, 11 * MIB], ids=["empty", "single", "multipart"])
def test_get_round_trip(target: S3Target, tmp_path: Path, size: int) -> None:
    source = write_file(tmp_path / "source", size)
    target.put(source, "archive/f", SMALL)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    progress: list[int] = []

    obj = target.get("archive/f", out_dir / "restored", progress=progress.append)

    assert (out_dir / "restored").read_bytes() == source.read_bytes()
    assert obj.sha256 == sha256(source)
    assert obj.size == size
    assert obj.key == "archive/f"
    assert obj.storage_class is StorageClass.GLACIER_IR
    assert progress[-1] == size
    assert progress == sorted(progress)
    assert [p.name for p in out_dir.iterdir()] == ["restored"]


def test_get_refuses_existing_destination(
    target: S3Target, recorder: Recorder, s3: Any, tmp_path: Path
) -> None:
    s3.put_object(Bucket=BUCKET, Key="archive/f", Body=b"new")
    destination = tmp_path / "dest"
    destination.write_bytes(b"old")
    recorder.clear()

    with pytest.raises(FileExistsError):
        target.get("archive/f", destination)
    assert recorder.calls == []
    assert destination.read_bytes() == b"old"

    target.get("archive/f", destination, overwrite=True)
    assert destination.read_bytes() == b"new"
    assert part_files(tmp_path) == []


def test_get_wrong_checksum(target: S3Target, s3: Any, tmp_path: Path) -> None:
    s3.put_object(Bucket=BUCKET, Key="archive/f", Body=b"payload", Metadata={"sha256": "0" * 64})
    destination = tmp_path / "dest"
    with pytest.raises(ChecksumMismatchError) as err:
        target.get("archive/f", destination)
    assert str(err.value) == "downloaded bytes differ from the archived file"
    assert err.value.placeholders == {"key": "archive/f"}
    assert not destination.exists()
    assert list(tmp_path.iterdir()) == []

    destination.write_bytes(b"keep me")
    with pytest.raises(ChecksumMismatchError):
        target.get("archive/f", destination, overwrite=True)
    assert destination.read_bytes() == b"keep me"
    assert part_files(tmp_path) == []


def test_get_without_checksum_metadata(target: S3Target, s3: Any, tmp_path: Path) -> None:
    s3.put_object(Bucket=BUCKET, Key="archive/foreign", Body=b"foreign bytes")
    obj = target.get("archive/foreign", tmp_path / "dest")
    assert (tmp_path / "dest").read_bytes() == b"foreign bytes"
    assert obj.sha256 == hashlib.sha256(b"foreign bytes").hexdigest()
    assert obj.storage_class is StorageClass.STANDARD


def test_get_size_differs_from_the_stored_size(
    target: S3Target, s3: Any, hooks: Hooks, tmp_path: Path
) -> None:
    """The size S3 states is checked too (an object without our SHA-256 metadata)."""
    s3.put_object(Bucket=BUCKET, Key="archive/f", Body=b"payload")

    def claim_more(parsed: dict[str, Any], **_: Any) -> None:
        parsed["ContentLength"] += 1

    hooks.after_call("GetObject", claim_more)
    with pytest.raises(ChecksumMismatchError) as err:
        target.get("archive/f", tmp_path / "dest")
    assert str(err.value) == "downloaded size differs from the stored size"
    assert err.value.placeholders == {"key": "archive/f"}
    assert list(tmp_path.iterdir()) == []


def test_get_reports_progress_every_8_mib_and_sizes_an_unsized_answer(
    target: S3Target, s3: Any, hooks: Hooks, tmp_path: Path
) -> None:
    data = os.urandom(16 * MIB + 5)
    s3.put_object(Bucket=BUCKET, Key="archive/big", Body=data)
    progress: list[int] = []
    target.get("archive/big", tmp_path / "with", progress=progress.append)
    assert progress == [8 * MIB, 16 * MIB, 16 * MIB + 5]

    def unsized(parsed: dict[str, Any], **_: Any) -> None:  # chunked transfer encoding
        parsed.pop("ContentLength")

    hooks.after_call("GetObject", unsized)
    obj = target.get("archive/big", tmp_path / "without")
    assert (tmp_path / "without").read_bytes() == data
    assert obj.size == len(data)


def test_get_failure_midway_removes_temp(target: S3Target, s3: Any, tmp_path: Path) -> None:
    s3.put_object(Bucket=BUCKET, Key="archive/f", Body=os.urandom(20 * MIB))
    seen: list[Path] = []

    def progress(done: int) -> None:
        seen.extend(part_files(tmp_path))
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError):
        target.get("archive/f", tmp_path / "dest", progress=progress)
    assert seen
    assert seen[0].name.startswith(".dest.")
    assert part_files(tmp_path) == []
    assert not (tmp_path / "dest").exists()


def test_get_missing_key(target: S3Target, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError) as err:
        target.get("archive/missing", tmp_path / "dest")
    assert (type(err.value), str(err.value)) == (NotFoundError, "NoSuchKey")  # not the bucket
    assert list(tmp_path.iterdir()) == []


def test_get_file_mode_follows_umask(target: S3Target, s3: Any, tmp_path: Path) -> None:
    s3.put_object(Bucket=BUCKET, Key="archive/f", Body=b"x")
    target.get("archive/f", tmp_path / "dest")
    umask = os.umask(0o022)
    os.umask(umask)
    assert (tmp_path / "dest").stat().st_mode & 0o777 == 0o666 & ~umask


# -- restore ----------------------------------------------------------------------------


def glacier(storage_class: StorageClass = StorageClass.GLACIER) -> TransferOptions:
    return TransferOptions(storage_class=storage_class)


@pytest.mark.parametrize("storage_class", [StorageClass.GLACIER, StorageClass.DEEP_ARCHIVE])
def test_restore_cycle(target: S3Target, tmp_path: Path, storage_class: StorageClass) -> None:
    source = write_file(tmp_path / "source", 4000)
    target.put(source, "archive/cold", glacier(storage_class))
    assert target.restore_state("archive/cold") == (RestoreState.NONE, None)
    with pytest.raises(NotRestoredError):
        target.get("archive/cold", tmp_path / "dest")
    assert part_files(tmp_path) == []
    assert not (tmp_path / "dest").exists()

    # moto answers 202 for a first request and finishes restores at once by default.
    assert target.request_restore("archive/cold", 3, RestoreTier.BULK) is RestoreState.IN_PROGRESS
    state, expiry = target.restore_state("archive/cold")
    assert state is RestoreState.RESTORED
    assert expiry is not None
    assert expiry.tzinfo is UTC
    assert timedelta(days=2) < expiry - datetime.now(UTC) <= timedelta(days=3)
    head = target.head("archive/cold")
    assert head is not None
    assert (head.restore_state, head.restore_expiry) == (state, expiry)

    target.get("archive/cold", tmp_path / "dest")
    assert (tmp_path / "dest").read_bytes() == source.read_bytes()

    # A restored copy exists: S3 answers 200 and extends it.
    assert target.request_restore("archive/cold", 5, RestoreTier.STANDARD) is RestoreState.RESTORED


@pytest.mark.usefixtures("manual_restore")
def test_restore_in_progress(target: S3Target, tmp_path: Path) -> None:
    source = write_file(tmp_path / "source", 4000)
    target.put(source, "archive/cold", glacier())
    state = target.request_restore("archive/cold", 1, RestoreTier.STANDARD)
    assert state is RestoreState.IN_PROGRESS
    assert target.restore_state("archive/cold") == (RestoreState.IN_PROGRESS, None)
    head = target.head("archive/cold")
    assert head is not None
    assert head.storage_class is StorageClass.GLACIER
    # moto's manual progression moves on after a read of the key; poll as the shell does.
    for _ in range(3):
        state, expiry = target.restore_state("archive/cold")
        if state is RestoreState.RESTORED:
            break
    assert state is RestoreState.RESTORED
    assert expiry is not None
    target.get("archive/cold", tmp_path / "dest")
    assert (tmp_path / "dest").read_bytes() == source.read_bytes()


@pytest.mark.usefixtures("manual_restore")
def test_get_while_restore_in_progress(target: S3Target, tmp_path: Path) -> None:
    source = write_file(tmp_path / "source", 4000)
    target.put(source, "archive/cold", glacier())
    target.request_restore("archive/cold", 1, RestoreTier.STANDARD)
    with pytest.raises(NotRestoredError):
        target.get("archive/cold", tmp_path / "dest")
    assert list(tmp_path.iterdir()) == [source]


def test_restore_already_in_progress(target: S3Target, hooks: Hooks, tmp_path: Path) -> None:
    target.put(write_file(tmp_path / "f", 10), "archive/cold", glacier())
    # moto never answers 409; real S3 does while a restore runs.
    hooks.before_call("RestoreObject", lambda **_: service_error("RestoreAlreadyInProgress", 409))
    assert target.request_restore("archive/cold", 1, RestoreTier.BULK) is RestoreState.IN_PROGRESS


def test_request_restore_sends_days_and_tier(
    target: S3Target, recorder: Recorder, tmp_path: Path
) -> None:
    target.put(write_file(tmp_path / "f", 10), "archive/cold", glacier())
    target.request_restore("archive/cold", 7, RestoreTier.EXPEDITED)
    [(_, params)] = [c for c in recorder.calls if c[0] == "RestoreObject"]
    assert params["RestoreRequest"] == {"Days": 7, "GlacierJobParameters": {"Tier": "Expedited"}}


def test_request_restore_errors(target: S3Target, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError) as missing:
        target.request_restore("archive/missing", 1, RestoreTier.BULK)
    assert (type(missing.value), str(missing.value)) == (NotFoundError, "NoSuchKey")
    target.put(write_file(tmp_path / "f", 10), "archive/warm", TransferOptions())
    # S3 refuses to restore a class that is not archived (InvalidObjectState).
    with pytest.raises(NotRestoredError) as refused:
        target.request_restore("archive/warm", 1, RestoreTier.BULK)
    assert str(refused.value) == "InvalidObjectState"


@pytest.mark.parametrize(
    "storage_class",
    [c for c in S3_STORAGE_CLASSES if not c.needs_restore],
)
def test_restore_state_readable_classes(
    target: S3Target, tmp_path: Path, storage_class: StorageClass
) -> None:
    target.put(write_file(tmp_path / "f", 10), "archive/f", glacier(storage_class))
    assert target.restore_state("archive/f") == (RestoreState.RESTORED, None)


def test_restore_state_intelligent_tiering_archive(
    target: S3Target, hooks: Hooks, tmp_path: Path
) -> None:
    """INTELLIGENT_TIERING's opt-in archive tiers need a restore like GLACIER."""
    options = glacier(StorageClass.INTELLIGENT_TIERING)
    target.put(write_file(tmp_path / "f", 10), "archive/f", options)

    def archived(parsed: dict[str, Any], **_: Any) -> None:
        parsed["ArchiveStatus"] = "DEEP_ARCHIVE_ACCESS"

    hooks.after_call("HeadObject", archived)
    assert target.restore_state("archive/f") == (RestoreState.NONE, None)


# INTELLIGENT_TIERING's archive tiers: moto knows nothing of them, so these requests
# are answered by botocore's Stubber on a real engine client.


@pytest.fixture
def stubbed() -> Iterator[tuple[S3Target, Stubber]]:
    """A target whose client is answered by a Stubber (every response must be queued)."""
    credentials = Credentials(access_key_id="testing", secret_access_key="testing", region=REGION)
    client = make_client("s3", credentials)
    with Stubber(client) as stubber:
        yield S3Target(client, BUCKET, PREFIX), stubber
        stubber.assert_no_pending_responses()
    client.close()


def _head(storage_class: str, **extra: Any) -> dict[str, Any]:
    return {
        "ContentLength": 10,
        "LastModified": datetime(2026, 1, 2, tzinfo=UTC),
        "ETag": '"abc"',
        "StorageClass": storage_class,
        "Metadata": {"sha256": "00" * 32},
        **extra,
    }


def test_head_reads_archive_status(stubbed: tuple[S3Target, Stubber]) -> None:
    """ArchiveStatus makes an INTELLIGENT_TIERING object one that needs a restore."""
    target, stubber = stubbed
    key_args = {"Bucket": BUCKET, "Key": "archive/it"}
    stubber.add_response(
        "head_object", _head("INTELLIGENT_TIERING", ArchiveStatus="DEEP_ARCHIVE_ACCESS"), key_args
    )
    stubber.add_response("head_object", _head("INTELLIGENT_TIERING"), key_args)
    stubber.add_response(
        "head_object",
        _head(
            "INTELLIGENT_TIERING",
            ArchiveStatus="ARCHIVE_ACCESS",
            Restore='ongoing-request="true"',
        ),
        key_args,
    )

    archived = target.head("archive/it")
    assert archived is not None
    assert archived.archive_status is ArchiveStatus.DEEP_ARCHIVE_ACCESS
    assert archived.needs_restore
    assert archived.restore_source is ArchiveStatus.DEEP_ARCHIVE_ACCESS
    assert available_tiers(archived.restore_source) == (RestoreTier.STANDARD, RestoreTier.BULK)
    assert typical_restore_time(archived.restore_source, RestoreTier.BULK) == timedelta(hours=48)

    frequent = target.head("archive/it")
    assert frequent is not None
    assert (frequent.archive_status, frequent.needs_restore) == (None, False)
    assert frequent.restore_source is StorageClass.INTELLIGENT_TIERING

    assert target.restore_state("archive/it") == (RestoreState.IN_PROGRESS, None)


def test_request_restore_of_archive_tier_sends_no_days(stubbed: tuple[S3Target, Stubber]) -> None:
    """S3 refuses Days for the archive tiers: the request carries only the tier."""
    target, stubber = stubbed
    stubber.add_response(
        "restore_object",
        {"ResponseMetadata": {"HTTPStatusCode": 202}},
        {
            "Bucket": BUCKET,
            "Key": "archive/it",
            "RestoreRequest": {"GlacierJobParameters": {"Tier": "Bulk"}},
        },
    )
    assert target.request_restore("archive/it", None, RestoreTier.BULK) is RestoreState.IN_PROGRESS


def test_request_restore_of_active_tier_is_readable(stubbed: tuple[S3Target, Stubber]) -> None:
    """ObjectAlreadyInActiveTierError (403) means readable now, not refused keys."""
    target, stubber = stubbed
    stubber.add_client_error(
        "restore_object", "ObjectAlreadyInActiveTierError", http_status_code=403
    )
    assert target.request_restore("archive/it", None, RestoreTier.STANDARD) is (
        RestoreState.RESTORED
    )


def test_put_same_bytes_other_class(target: S3Target, recorder: Recorder, tmp_path: Path) -> None:
    """Identical is same bytes AND same class; another class is reported, or re-stored."""
    path = write_file(tmp_path / "f", 10_000)
    first = target.put(path, "archive/f", TransferOptions(storage_class=StorageClass.GLACIER_IR))
    recorder.clear()

    other = target.put(path, "archive/f", TransferOptions(storage_class=StorageClass.STANDARD))
    assert (other.skipped, other.reason) == (True, "identical_other_class")
    assert other.object.storage_class is StorageClass.GLACIER_IR
    assert recorder.names() == ["HeadObject"]

    moved = target.put(
        path, "archive/f", TransferOptions(storage_class=StorageClass.STANDARD), overwrite=True
    )
    assert not moved.skipped
    assert moved.object.storage_class is StorageClass.STANDARD
    assert moved.replaced is not None
    assert moved.replaced.storage_class is StorageClass.GLACIER_IR
    assert moved.replaced.last_modified == first.object.last_modified

    same = target.put(path, "archive/f", TransferOptions(storage_class=StorageClass.STANDARD))
    assert (same.skipped, same.reason, same.replaced) == (True, "identical", None)


def test_restore_state_missing(target: S3Target) -> None:
    with pytest.raises(NotFoundError) as err:
        target.restore_state("archive/missing")
    assert type(err.value) is NotFoundError
    assert err.value.placeholders == {"key": "archive/missing"}
    assert str(err.value) == "archive/missing"


# -- delete -----------------------------------------------------------------------------


def test_delete(target: S3Target, tmp_path: Path) -> None:
    target.put(write_file(tmp_path / "f", 10), "archive/f", SMALL)
    target.delete("archive/f")
    assert target.head("archive/f") is None
    with pytest.raises(NotFoundError) as info:
        target.delete("archive/f")
    assert info.value.placeholders == {"key": "archive/f"}
    assert str(info.value) == "archive/f"


# -- iterate ----------------------------------------------------------------------------


def test_iterate_pages(target: S3Target, s3: Any, recorder: Recorder) -> None:
    keys = [f"archive/{i:03d}" for i in range(30)]
    for key in keys:
        s3.put_object(Bucket=BUCKET, Key=key, Body=key.encode(), StorageClass="GLACIER")
    s3.put_object(Bucket=BUCKET, Key="elsewhere/x", Body=b"x")
    recorder.clear()

    objects = list(target.iterate(page_size=10))

    assert [o.key for o in objects] == keys
    listings = [params for name, params in recorder.calls if name == "ListObjectsV2"]
    assert len(listings) == 3
    assert all(p["MaxKeys"] == 10 for p in listings)
    assert all(p["Prefix"] == "archive/" for p in listings)
    assert all(p["OptionalObjectAttributes"] == ["RestoreStatus"] for p in listings)
    first = objects[0]
    assert first.size == len(b"archive/000")
    assert first.storage_class is StorageClass.GLACIER
    assert first.etag == hashlib.md5(b"archive/000").hexdigest()
    assert first.last_modified.tzinfo is UTC
    assert first.sha256 is None
    assert first.restore_state is RestoreState.NONE

    assert [o.key for o in target.iterate(prefix="")] == [*keys, "elsewhere/x"]
    standard = next(iter(target.iterate(prefix="elsewhere/")))
    assert standard.storage_class is StorageClass.STANDARD


def test_iterate_top_level_only(target: S3Target, s3: Any, recorder: Recorder) -> None:
    """``top_level`` leaves out what is in the prefix's "folders" (the backup agent's view)."""
    for key in ("archive/a", "archive/sub/b", "archive/z"):
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"x")
    recorder.clear()
    assert [o.key for o in target.iterate(top_level=True)] == ["archive/a", "archive/z"]
    assert [o.key for o in target.iterate()] == ["archive/a", "archive/sub/b", "archive/z"]
    top, everything = [p for name, p in recorder.calls if name == "ListObjectsV2"]
    assert (top["Delimiter"], "Delimiter" in everything) == ("/", False)
    assert "MaxKeys" not in everything  # no page size asked: S3's default


def test_iterate_empty(target: S3Target) -> None:
    assert list(target.iterate()) == []


def test_iterate_restore_status(target: S3Target, hooks: Hooks, s3: Any) -> None:
    """Real S3 reports RestoreStatus in listings (moto does not: it is injected here)."""
    for name in ("a", "b", "c"):
        s3.put_object(Bucket=BUCKET, Key=f"archive/{name}", Body=b"x", StorageClass="GLACIER")
    expiry = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)

    def add_status(parsed: dict[str, Any], **_: Any) -> None:
        contents = parsed["Contents"]
        contents[0]["RestoreStatus"] = {"IsRestoreInProgress": True}
        contents[1]["RestoreStatus"] = {"IsRestoreInProgress": False, "RestoreExpiryDate": expiry}

    hooks.after_call("ListObjectsV2", add_status)
    states = [(o.restore_state, o.restore_expiry) for o in target.iterate()]
    assert states == [
        (RestoreState.IN_PROGRESS, None),
        (RestoreState.RESTORED, expiry),
        (RestoreState.NONE, None),
    ]


def test_iterate_entries_missing_optional_fields(target: S3Target, hooks: Hooks, s3: Any) -> None:
    """A restored copy without an expiry date, an entry without a size (some services)."""
    s3.put_object(Bucket=BUCKET, Key="archive/a", Body=b"xyz", StorageClass="GLACIER")

    def strip(parsed: dict[str, Any], **_: Any) -> None:
        [entry] = parsed["Contents"]
        entry["RestoreStatus"] = {"IsRestoreInProgress": False}
        del entry["Size"]

    hooks.after_call("ListObjectsV2", strip)
    [listed] = target.iterate()
    assert (listed.restore_state, listed.restore_expiry, listed.size) == (
        RestoreState.RESTORED,
        None,
        0,
    )


def test_iterate_without_optional_attributes(
    target: S3Target, hooks: Hooks, s3: Any, recorder: Recorder
) -> None:
    """A service that rejects OptionalObjectAttributes is listed without it."""
    for i in range(5):
        s3.put_object(Bucket=BUCKET, Key=f"archive/{i}", Body=b"x")

    def reject(params: dict[str, Any], **_: Any) -> Any:
        if "x-amz-optional-object-attributes" in params["headers"]:
            return service_error("InvalidArgument", 400)
        return None

    hooks.before_call("ListObjectsV2", reject)
    assert len(list(target.iterate(page_size=2))) == 5
    assert len(list(target.iterate(page_size=2))) == 5
    listings = [params for name, params in recorder.calls if name == "ListObjectsV2"]
    # One rejected attempt, then three pages per listing without the attribute.
    assert len(listings) == 7
    assert all("OptionalObjectAttributes" not in p for p in listings[1:])


def test_iterate_other_errors_are_mapped(target: S3Target, hooks: Hooks) -> None:
    hooks.before_call("ListObjectsV2", lambda **_: service_error("AccessDenied", 403))
    with pytest.raises(AccessDeniedError) as info:
        list(target.iterate())
    assert info.value.action == "s3:ListBucket"
    assert info.value.placeholders == {"action": "s3:ListBucket"}


# -- two writers, one key (conditional writes) ---------------------------------------------


class Paused:
    """Holds an upload in its progress callback (a worker thread) until released."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.release = threading.Event()

    def __call__(self, done: int) -> None:
        if not self.reached.is_set():
            self.reached.set()
            assert self.release.wait(30), "the test never released the upload"


def put_in_thread(
    target: S3Target, path: Path, key: str, options: TransferOptions, **kwargs: Any
) -> tuple[threading.Thread, dict[str, Any]]:
    """Start ``target.put`` in a thread; the dict gets its "result" or "error"."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = target.put(path, key, options, **kwargs)
        except BaseException as err:  # noqa: BLE001 - handed to the test
            outcome["error"] = err

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


ONE_AT_A_TIME = TransferOptions(part_size=5 * MIB, concurrency=1)


def test_two_writers_on_an_empty_key_keep_the_first_object(
    target: S3Target, client: Any, s3: Any, tmp_path: Path
) -> None:
    """A (large) and B (small) both see the key empty; B finishes first; A must not win.

    A's completion carries If-None-Match, so S3 refuses it: A fails with "exists", its
    multipart upload is aborted, and B's object stays whole.
    """
    large = write_file(tmp_path / "a.bin", 11 * MIB)
    small = write_file(tmp_path / "b.bin", 2000)
    paused = Paused()
    thread, outcome = put_in_thread(target, large, "archive/f", ONE_AT_A_TIME, progress=paused)
    assert paused.reached.wait(30)  # A has seen the key empty and sent its first part

    other = S3Target(client, BUCKET, PREFIX)  # another entry on the same bucket
    b_result = other.put(small, "archive/f", SMALL)
    paused.release.set()
    thread.join(30)

    assert isinstance(outcome.get("error"), ObjectExistsError), outcome
    assert outcome["error"].placeholders == {"key": "archive/f"}
    head = s3.head_object(Bucket=BUCKET, Key="archive/f")
    assert head["ContentLength"] == 2000
    assert head["Metadata"]["sha256"] == sha256(small) == b_result.object.sha256
    body = s3.get_object(Bucket=BUCKET, Key="archive/f")["Body"].read()
    assert body == small.read_bytes()
    assert no_uploads(s3)


def enforce_if_match(s3: Any, key: str, seen: list[str]) -> Callable[..., Any]:
    """A before-call hook on CompleteMultipartUpload of ``key``: If-Match as AWS does it.

    moto 5.2.5 checks If-Match on PutObject but ignores it on CompleteMultipartUpload.
    """

    def hook(params: dict[str, Any], **_: Any) -> Any:
        expected = params["headers"].get("If-Match")
        if expected is None:
            return None
        seen.append(expected)
        try:
            current = s3.head_object(Bucket=BUCKET, Key=key)["ETag"]
        except s3.exceptions.ClientError:
            current = None
        return None if current == expected else service_error("PreconditionFailed", 412)

    return hook


@pytest.mark.parametrize("size", [3000, 11 * MIB], ids=["single", "multipart"])
def test_overwrite_replaces_only_the_version_seen(
    target: S3Target, hooks: Hooks, s3: Any, tmp_path: Path, size: int
) -> None:
    """Another writer replaces the object after our HEAD: the overwrite is refused."""
    old_etag = s3.put_object(Bucket=BUCKET, Key="archive/f", Body=b"old")["ETag"]
    path = write_file(tmp_path / "f", size)
    heads = [0]
    seen: list[str] = []

    def other_writer(**_: Any) -> None:
        heads[0] += 1
        if heads[0] == 1:
            s3.put_object(Bucket=BUCKET, Key="archive/f", Body=b"theirs")

    hooks.after_call("HeadObject", other_writer)
    hooks.before_call("CompleteMultipartUpload", enforce_if_match(s3, "archive/f", seen))
    with pytest.raises(ObjectChangedError) as info:
        target.put(path, "archive/f", SMALL, overwrite=True)
    assert info.value.translation_key == "object_changed"
    assert info.value.placeholders == {"key": "archive/f"}
    assert s3.get_object(Bucket=BUCKET, Key="archive/f")["Body"].read() == b"theirs"
    assert no_uploads(s3)
    assert seen == ([old_etag] if size > 5 * MIB else [])


@pytest.mark.parametrize(
    ("overwrite", "error"), [(False, ObjectExistsError), (True, ObjectChangedError)]
)
def test_single_put_on_a_key_taken_meanwhile(
    target: S3Target,
    hooks: Hooks,
    recorder: Recorder,
    s3: Any,
    tmp_path: Path,
    overwrite: bool,
    error: type[Exception],
) -> None:
    """The key is empty at our HEAD and taken before our PUT: If-None-Match refuses."""
    path = write_file(tmp_path / "f", 3000)

    def other_writer(**_: Any) -> None:
        s3.put_object(Bucket=BUCKET, Key="archive/f", Body=b"theirs")

    hooks.after_call("HeadObject", other_writer)
    with pytest.raises(error):
        target.put(path, "archive/f", SMALL, overwrite=overwrite)
    assert s3.get_object(Bucket=BUCKET, Key="archive/f")["Body"].read() == b"theirs"
    [(_, put)] = [c for c in recorder.calls if c[0] == "PutObject"]
    assert put["IfNoneMatch"] == "*"


@pytest.mark.parametrize("size", [3000, 11 * MIB], ids=["single", "multipart"])
def test_verification_never_deletes_another_writers_object(
    target: S3Target, hooks: Hooks, s3: Any, tmp_path: Path, size: int
) -> None:
    """An unconditional writer replaces our object before our check: theirs is kept."""
    path = write_file(tmp_path / "f", size)

    def other_writer(**_: Any) -> None:
        s3.put_object(Bucket=BUCKET, Key="archive/f", Body=b"theirs")

    operation = "PutObject" if size < 5 * MIB else "CompleteMultipartUpload"
    hooks.after_call(operation, other_writer)
    with pytest.raises(ObjectChangedError) as err:
        target.put(path, "archive/f", SMALL)
    assert str(err.value) == "another writer replaced the object"
    assert err.value.placeholders == {"key": "archive/f"}
    assert s3.get_object(Bucket=BUCKET, Key="archive/f")["Body"].read() == b"theirs"


def not_implemented_when(header: str, sent: list[str]) -> Callable[..., Any]:
    """A before-call hook: a request carrying ``header`` is answered 501 NotImplemented."""

    def hook(params: dict[str, Any], model: Any, **_: Any) -> Any:
        if header in params["headers"]:
            sent.append(model.name)
            return service_error("NotImplemented", 501)
        return None

    return hook


def test_service_without_conditional_writes_falls_back_with_one_warning(
    client: Any, hooks: Hooks, s3: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """501 to If-None-Match: the write is sent again without it, and a warning logged once."""
    refused: list[str] = []
    hooks.before_call("PutObject", not_implemented_when("If-None-Match", refused))
    hooks.before_call("CompleteMultipartUpload", not_implemented_when("If-None-Match", refused))
    target = S3Target(client, BUCKET, PREFIX)
    small = write_file(tmp_path / "small", 3000)
    large = write_file(tmp_path / "large", 11 * MIB)

    with caplog.at_level("WARNING"):
        target.put(small, "archive/small", SMALL)
        target.put(large, "archive/large", SMALL)

    assert refused == ["PutObject"]  # no condition is sent once the service refused one
    warnings = [r for r in caplog.records if "conditional writes" in r.getMessage()]
    assert len(warnings) == 1
    assert BUCKET in warnings[0].getMessage()
    assert s3.head_object(Bucket=BUCKET, Key="archive/small")["ContentLength"] == 3000
    assert s3.head_object(Bucket=BUCKET, Key="archive/large")["ContentLength"] == 11 * MIB
    assert no_uploads(s3)


@pytest.mark.parametrize(
    ("code", "status"), [("501", 501), ("NotImplemented", 400)], ids=["bare-501", "code-only"]
)
def test_either_a_501_or_the_code_means_not_implemented(
    client: Any, hooks: Hooks, s3: Any, tmp_path: Path, code: str, status: int
) -> None:
    """Some S3-compatible services answer 501 with no code of their own, others the
    NotImplemented code with another status: either is a fallback."""
    refused: list[str] = []

    def not_implemented(params: dict[str, Any], model: Any, **_: Any) -> Any:
        if "If-None-Match" in params["headers"]:
            refused.append(model.name)
            return service_error(code, status)
        return None

    hooks.before_call("PutObject", not_implemented)
    target = S3Target(client, BUCKET, PREFIX)
    small = write_file(tmp_path / "small", 3000)
    target.put(small, "archive/small", SMALL)
    assert refused == ["PutObject"]
    assert s3.head_object(Bucket=BUCKET, Key="archive/small")["ContentLength"] == 3000


def test_multipart_completion_falls_back_on_501(
    client: Any, hooks: Hooks, s3: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A 501 to the conditional completion: completed again without the condition."""
    refused: list[str] = []
    hooks.before_call("CompleteMultipartUpload", not_implemented_when("If-None-Match", refused))
    target = S3Target(client, BUCKET, PREFIX)
    large = write_file(tmp_path / "large", 11 * MIB)
    with caplog.at_level("WARNING"):
        result = target.put(large, "archive/large", SMALL)
    assert refused == ["CompleteMultipartUpload"]
    assert result.parts == 3
    assert s3.head_object(Bucket=BUCKET, Key="archive/large")["Metadata"]["sha256"] == sha256(large)
    assert sum("conditional writes" in r.getMessage() for r in caplog.records) == 1
    assert no_uploads(s3)


# -- the stale-upload sweep and uploads in flight --------------------------------------------


def test_stale_upload_sweep_takes_only_old_uploads_under_the_prefix(
    target: S3Target, s3: Any, hooks: Hooks
) -> None:
    """Kept: an upload exactly 7 days old, a recent one, one outside the prefix."""
    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    started = {"archive/a": now - timedelta(days=7), "archive/b": now - timedelta(hours=1)}
    for key in ("archive/a", "archive/b", "archive/c", "archive/d", "elsewhere/x"):
        s3.create_multipart_upload(Bucket=BUCKET, Key=key)

    def dates(parsed: dict[str, Any], **_: Any) -> None:
        for upload in parsed.get("Uploads", []):  # moto dates every upload 2010
            upload["Initiated"] = started.get(upload["Key"], upload["Initiated"])

    hooks.after_call("ListMultipartUploads", dates)
    with freeze_time(now):
        assert target.abort_stale_uploads(timedelta(days=7)) == 2
    remaining = s3.list_multipart_uploads(Bucket=BUCKET)["Uploads"]
    assert sorted(u["Key"] for u in remaining) == ["archive/a", "archive/b", "elsewhere/x"]
    for upload in remaining:
        s3.abort_multipart_upload(Bucket=BUCKET, Key=upload["Key"], UploadId=upload["UploadId"])
    assert target.abort_stale_uploads(timedelta(days=7)) == 0


def test_stale_upload_sweep_spares_uploads_in_flight(
    target: S3Target, s3: Any, tmp_path: Path
) -> None:
    """A sweep during a multipart upload (moto dates it 2010) leaves it running."""
    abandoned = s3.create_multipart_upload(Bucket=BUCKET, Key="archive/crashed")["UploadId"]
    path = write_file(tmp_path / "big", 11 * MIB)
    paused = Paused()
    thread, outcome = put_in_thread(target, path, "archive/big", ONE_AT_A_TIME, progress=paused)
    assert paused.reached.wait(30)

    aborted = target.abort_stale_uploads(timedelta(days=7))
    paused.release.set()
    thread.join(30)

    assert aborted == 1
    assert "error" not in outcome, outcome
    assert outcome["result"].parts == 3
    assert s3.head_object(Bucket=BUCKET, Key="archive/big")["Metadata"]["sha256"] == sha256(path)
    remaining = s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
    assert abandoned not in [u["UploadId"] for u in remaining]
    assert remaining == []


# -- memory and size bounds ------------------------------------------------------------------


def test_file_over_the_object_limit_is_refused_before_hashing(
    target: S3Target,
    recorder: Recorder,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A sparse file just over the limit: refused at once, not read, nothing sent.

    (ext4 files stop at 16 TiB, so the limit is lowered for the test; the real one is
    checked in test_plan_part_size.)
    """
    limit = 3 * GIB
    monkeypatch.setattr(s3_module, "MAX_OBJECT_SIZE", limit)

    def no_hashing(path: Path) -> tuple[str, int]:
        raise AssertionError("the file was read")

    monkeypatch.setattr(s3_module, "sha256_file", no_hashing)
    path = tmp_path / "sparse"
    with path.open("wb") as handle:
        handle.truncate(limit + 1)
    with pytest.raises(FileTooLargeError) as info:
        target.put(path, "archive/huge", SMALL)
    assert info.value.placeholders == {"limit": "50 TB"}
    assert recorder.calls == []


def test_single_put_streams_and_survives_a_retry(
    target: S3Target, hooks: Hooks, s3: Any, tmp_path: Path
) -> None:
    """The PUT body is read from the file; a cut connection is retried from the start."""
    path = write_file(tmp_path / "f", 300_000)
    bodies: list[Any] = []

    def cut_first(request: Any, **_: Any) -> None:
        bodies.append(request.body)
        if len(bodies) == 1:
            request.body.read(1000)
            raise ConnectionClosedError(endpoint_url=request.url)

    hooks.on("before-send.s3.PutObject", cut_first, first=True)
    result = target.put(path, "archive/f", SMALL)
    assert len(bodies) == 2
    assert not isinstance(bodies[0], (bytes, bytearray))  # streamed, not held
    assert result.object.sha256 == sha256(path)
    assert s3.get_object(Bucket=BUCKET, Key="archive/f")["Body"].read() == path.read_bytes()


def test_single_put_file_changed_before_a_retry(
    target: S3Target, hooks: Hooks, s3: Any, tmp_path: Path
) -> None:
    """The file changes between a cut attempt and the retry: nothing is stored."""
    path = write_file(tmp_path / "f", 300_000)
    attempts = [0]

    def cut_and_change(request: Any, **_: Any) -> None:
        attempts[0] += 1
        if attempts[0] == 1:
            request.body.read(1000)
            with path.open("r+b") as handle:
                handle.seek(200_000)
                handle.write(b"\x00" * 16 if handle.read(16) != b"\x00" * 16 else b"\x01" * 16)
            raise ConnectionClosedError(endpoint_url=request.url)

    hooks.on("before-send.s3.PutObject", cut_and_change, first=True)
    with pytest.raises(ChecksumMismatchError) as err:
        target.put(path, "archive/f", SMALL)
    assert str(err.value) == "file changed while it was being archived"
    assert err.value.placeholders == {"key": "archive/f"}
    assert attempts[0] == 2
    assert not key_exists(s3, "archive/f")


@pytest.fixture
def tiny_memory_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lower the memory bound below moto's smallest part, so parts are streamed."""
    monkeypatch.setattr(transfer_module, "MAX_TRANSFER_MEMORY", 4 * MIB)
    monkeypatch.setattr(transfer_module, "TRANSFER_OVERHEAD", 0)


@pytest.mark.usefixtures("tiny_memory_bound")
@pytest.mark.parametrize("endpoint", [False, True], ids=["crc32", "content-md5"])
def test_put_multipart_streams_parts_too_large_to_hold(
    client: Any,
    hooks: Hooks,
    s3: Any,
    recorder: Recorder,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    endpoint: bool,
) -> None:
    """Parts over the bound are streamed from the file (bodies are not bytes), one at a time."""
    if endpoint:  # as for an S3-compatible endpoint: Content-MD5 instead of CRC32
        monkeypatch.setattr(S3Target, "_checksum_algorithm", lambda self: None)
    bodies: list[bool] = []
    hooks.on(
        "provide-client-params.s3.UploadPart",
        lambda params, **_: bodies.append(isinstance(params["Body"], bytes)),
    )
    target = S3Target(client, BUCKET, PREFIX)
    path = write_file(tmp_path / "big", 11 * MIB + 7)
    result = target.put(path, "archive/big", TransferOptions(part_size=5 * MIB, concurrency=4))
    assert result.parts == 3
    assert bodies == [False, False, False]
    [(_, part)] = [c for c in recorder.calls if c[0] == "UploadPart"][:1]
    assert ("ContentMD5" in part) is endpoint
    body = s3.get_object(Bucket=BUCKET, Key="archive/big")["Body"].read()
    assert body == path.read_bytes()


def test_single_put_to_an_s3_compatible_endpoint_carries_content_md5(
    client: Any, s3: Any, recorder: Recorder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without CRC checksums (S3-compatible endpoints) the PUT carries the whole file's MD5."""
    monkeypatch.setattr(S3Target, "_checksum_algorithm", lambda self: None)
    path = write_file(tmp_path / "f", 2 * MIB + 5)  # three reads of the file
    S3Target(client, BUCKET, PREFIX).put(path, "archive/f", SMALL)
    [put] = [params for name, params in recorder.calls if name == "PutObject"]
    md5 = base64.b64encode(hashlib.md5(path.read_bytes()).digest()).decode("ascii")
    assert put["ContentMD5"] == md5
    assert "ChecksumAlgorithm" not in put
    assert s3.get_object(Bucket=BUCKET, Key="archive/f")["Body"].read() == path.read_bytes()


def test_single_put_to_aws_asks_for_a_crc32_and_reads_the_file_once(
    client: Any, s3: Any, recorder: Recorder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On AWS S3 checks a CRC32 the SDK sends: no Content-MD5, so no second pass over the file."""
    path = write_file(tmp_path / "f", 2 * MIB + 5)
    sizes = record_reads(monkeypatch, path)
    S3Target(client, BUCKET, PREFIX).put(path, "archive/f", SMALL)
    assert sizes == [CHUNK_SIZE] * 4  # the SHA-256: three chunks, then the end
    [put] = [params for name, params in recorder.calls if name == "PutObject"]
    assert put["ChecksumAlgorithm"] == "CRC32"
    assert "ContentMD5" not in put


def test_content_md5_is_hashed_from_the_file_in_chunks(
    client: Any, s3: Any, recorder: Recorder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A single PUT may be gigabytes: its Content-MD5 is computed a chunk at a time."""
    monkeypatch.setattr(S3Target, "_checksum_algorithm", lambda self: None)
    path = write_file(tmp_path / "f", 2 * MIB + 5)
    sizes = record_reads(monkeypatch, path)
    S3Target(client, BUCKET, PREFIX).put(path, "archive/f", SMALL)
    # Hashed twice (SHA-256, then MD5), each time in chunks: never the whole file at once.
    assert len(sizes) == 8
    assert set(sizes) == {CHUNK_SIZE}
    [put] = [params for name, params in recorder.calls if name == "PutObject"]
    assert put["ContentMD5"] == base64.b64encode(hashlib.md5(path.read_bytes()).digest()).decode()


@pytest.mark.usefixtures("tiny_memory_bound")
def test_put_streamed_part_changed_after_hashing(
    target: S3Target, hooks: Hooks, s3: Any, tmp_path: Path
) -> None:
    """A part's bytes change between the reader's hash and the send: aborted, nothing kept."""
    path = write_file(tmp_path / "big", 11 * MIB)

    def change_part_two(params: dict[str, Any], **_: Any) -> None:
        if params["query_string"].get("partNumber") == 2:
            with path.open("r+b") as handle:
                handle.seek(6 * MIB)
                handle.write(b"\x00" * 16 if handle.read(16) != b"\x00" * 16 else b"\x01" * 16)

    hooks.before_call("UploadPart", change_part_two)
    with pytest.raises(ChecksumMismatchError) as err:
        target.put(path, "archive/big", SMALL)
    assert err.value.placeholders == {"key": "archive/big"}
    assert no_uploads(s3)
    assert not key_exists(s3, "archive/big")


def test_verification_failure_deletes_only_our_version(
    client: Any, hooks: Hooks, recorder: Recorder, s3: Any, tmp_path: Path
) -> None:
    """In a versioned bucket the mismatched object is deleted by the version ID we wrote."""
    bucket = "engine-versioned"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    target = S3Target(client, bucket, PREFIX)
    path = write_file(tmp_path / "f", 1000)

    def tamper(parsed: dict[str, Any], **_: Any) -> None:
        if "Metadata" in parsed:
            parsed["Metadata"] = {"sha256": "0" * 64}

    hooks.after_call("HeadObject", tamper)
    with pytest.raises(ChecksumMismatchError):
        target.put(path, "archive/f", SMALL)
    [(_, put)] = [c for c in recorder.calls if c[0] == "PutObject"]
    [(_, delete)] = [c for c in recorder.calls if c[0] == "DeleteObject"]
    versions = s3.list_object_versions(Bucket=bucket)
    assert "Versions" not in versions  # our version is gone, not hidden behind a marker
    assert "DeleteMarkers" not in versions
    assert delete["VersionId"]
    assert put["IfNoneMatch"] == "*"


def test_verification_failure_deletes_our_object_by_its_etag(
    target: S3Target, hooks: Hooks, recorder: Recorder, s3: Any, tmp_path: Path
) -> None:
    """Unversioned: the delete of the mismatched object carries If-Match with our ETag."""
    path = write_file(tmp_path / "f", 1000)
    hooks.after_call("HeadObject", _tamper_sha256)
    with pytest.raises(ChecksumMismatchError):
        target.put(path, "archive/f", SMALL)
    [(_, delete)] = [c for c in recorder.calls if c[0] == "DeleteObject"]
    assert delete["IfMatch"] == s3_etag(path.read_bytes())
    assert not key_exists(s3, "archive/f")


def test_verification_failure_without_conditional_writes_deletes_unconditionally(
    client: Any, hooks: Hooks, recorder: Recorder, s3: Any, tmp_path: Path
) -> None:
    """A service that refused If-None-Match gets no If-Match either: a plain delete."""
    refused: list[str] = []
    hooks.before_call("PutObject", not_implemented_when("If-None-Match", refused))
    hooks.after_call("HeadObject", _tamper_sha256)
    target = S3Target(client, BUCKET, PREFIX)
    path = write_file(tmp_path / "f", 1000)
    with pytest.raises(ChecksumMismatchError):
        target.put(path, "archive/f", SMALL)
    assert refused == ["PutObject"]
    [(_, delete)] = [c for c in recorder.calls if c[0] == "DeleteObject"]
    assert delete == {"Bucket": BUCKET, "Key": "archive/f"}
    assert not key_exists(s3, "archive/f")


def _tamper_sha256(parsed: dict[str, Any], **_: Any) -> None:
    """An after-call hook: the object's stored SHA-256 is not the file's."""
    if "Metadata" in parsed:
        parsed["Metadata"] = {"sha256": "0" * 64}


def s3_etag(data: bytes) -> str:
    """The ETag of a single-PUT object: the quoted MD5 of its bytes."""
    return '"' + hashlib.md5(data).hexdigest() + '"'


def test_stale_upload_sweep_spares_a_streamed_backup(target: S3Target, s3: Any) -> None:
    """A backup streamed in parts is an upload in flight too: a sweep during it (moto
    dates every upload 2010, so each looks abandoned) leaves it running."""
    size = 12 * MIB
    body = bytes(range(256)) * (size // 256)
    swept: list[int] = []

    class SweepingReader:
        """Hands out the body; half way, a reconcile's sweep runs."""

        def __init__(self) -> None:
            self._offset = 0

        def read(self, n: int = -1) -> bytes:
            if self._offset >= size // 2 and not swept:
                swept.append(target.abort_stale_uploads(timedelta(0)))
            end = size if n < 0 else min(size, self._offset + n)
            chunk = body[self._offset : end]
            self._offset = end
            return chunk

    options = TransferOptions(part_size=5 * MIB, concurrency=1)
    result = upload_stream(target, SweepingReader(), size, f"{PREFIX}/backup.tar", options)
    assert swept == [0]
    assert result.parts == 3
    stored = s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/backup.tar")["Body"].read()
    assert stored == body


def test_streamed_backup_falls_back_on_a_service_without_conditional_writes(
    client: Any, hooks: Hooks, s3: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A backup stream (single PUT and multipart) on a service answering 501 to
    If-None-Match is stored all the same, with the target's one warning."""
    refused: list[str] = []
    hooks.before_call("PutObject", not_implemented_when("If-None-Match", refused))
    hooks.before_call("CompleteMultipartUpload", not_implemented_when("If-None-Match", refused))
    target = S3Target(client, BUCKET, PREFIX)
    small, large = b"s" * 3000, b"l" * (11 * MIB)
    options = TransferOptions(part_size=5 * MIB, concurrency=2)
    with caplog.at_level("WARNING"):
        upload_stream(target, io.BytesIO(small), len(small), f"{PREFIX}/small.tar", options)
        upload_stream(target, io.BytesIO(large), len(large), f"{PREFIX}/large.tar", options)
    assert refused == ["PutObject"]  # no condition is sent once the service refused one
    assert sum("conditional writes" in r.getMessage() for r in caplog.records) == 1
    assert s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/small.tar")["Body"].read() == small
    assert s3.head_object(Bucket=BUCKET, Key=f"{PREFIX}/large.tar")["ContentLength"] == len(large)
    assert no_uploads(s3)


@pytest.mark.parametrize("size", [3000, 11 * MIB], ids=["single", "multipart"])
def test_streamed_backup_of_the_wrong_stored_size_is_deleted(
    target: S3Target, hooks: Hooks, recorder: Recorder, s3: Any, size: int
) -> None:
    """When the stored object's size is not the stream's, the object this upload wrote
    is deleted (If-Match on the ETag its write returned) before the error: no billed
    orphan stays behind."""
    key = f"{PREFIX}/wrong-size.tar"
    write = "PutObject" if size == 3000 else "CompleteMultipartUpload"
    written: list[str] = []

    def other_length(parsed: dict[str, Any], **_: Any) -> None:
        parsed["ContentLength"] = size - 1

    hooks.after_call(write, lambda parsed, **_: written.append(parsed["ETag"]))
    hooks.after_call("HeadObject", other_length)
    options = TransferOptions(part_size=5 * MIB, concurrency=2)
    with pytest.raises(ChecksumMismatchError):
        upload_stream(target, io.BytesIO(b"w" * size), size, key, options)
    assert recorder.names()[-3:] == [write, "HeadObject", "DeleteObject"]
    (_, delete) = recorder.calls[-1]
    assert delete["IfMatch"] == written[0]
    assert not key_exists(s3, key)
    assert no_uploads(s3)


def test_uploads_in_flight_registry() -> None:
    uploads = s3_module._UploadsInFlight()
    uploads.add("one")
    uploads.add("two")
    uploads.discard("one")
    uploads.discard("never added")
    assert ("one" in uploads, "two" in uploads) == (False, True)


# -- answers and races the upload paths must read exactly ------------------------------


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        # A service may leave out Content-Length and ETag on a HEAD.
        ({"ContentLength": None, "ETag": None}, (0, None, StorageClass.GLACIER_IR)),
        # ETags are opaque: only the quotes around them go. "VAULT" is no S3 class.
        ({"ETag": '"X0f-2X"', "StorageClass": "VAULT"}, (3, "X0f-2X", StorageClass.STANDARD)),
    ],
    ids=["bare", "odd"],
)
def test_head_reads_what_the_service_answers(
    target: S3Target,
    hooks: Hooks,
    s3: Any,
    edit: dict[str, Any],
    expected: tuple[int, str | None, StorageClass],
) -> None:
    s3.put_object(Bucket=BUCKET, Key="archive/f", Body=b"abc", StorageClass="GLACIER_IR")

    def answer(parsed: dict[str, Any], **_: Any) -> None:
        for name, value in edit.items():
            if value is None:
                del parsed[name]
            else:
                parsed[name] = value

    hooks.after_call("HeadObject", answer)
    obj = target.head("archive/f")
    assert obj is not None
    assert (obj.size, obj.etag, obj.storage_class) == expected


def test_put_of_exactly_one_part_is_a_single_put(
    target: S3Target, recorder: Recorder, tmp_path: Path
) -> None:
    path = write_file(tmp_path / "f", 5 * MIB)
    result = target.put(path, "archive/f", SMALL)
    assert (result.parts, result.object.size) == (0, 5 * MIB)
    assert recorder.names().count("PutObject") == 1
    assert "CreateMultipartUpload" not in recorder.names()


def test_object_removed_before_the_check_is_reported_changed(
    target: S3Target, hooks: Hooks, s3: Any, tmp_path: Path
) -> None:
    """Another program deletes our new object before we read it back."""
    path = write_file(tmp_path / "f", 3000)
    hooks.after_call("PutObject", lambda **_: s3.delete_object(Bucket=BUCKET, Key="archive/f"))
    with pytest.raises(ObjectChangedError) as err:
        target.put(path, "archive/f", SMALL)
    assert str(err.value) == "another writer replaced the object"
    assert err.value.placeholders == {"key": "archive/f"}


def test_same_bytes_stored_again_by_another_writer_is_not_ours(
    client: Any, hooks: Hooks, s3: Any, tmp_path: Path
) -> None:
    """Versioned: another writer stores the very same bytes over ours (same ETag).

    The version read back is not the one we wrote, so it is not taken for ours, and
    neither version is deleted.
    """
    bucket = "engine-versioned-same-bytes"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    path = write_file(tmp_path / "f", 3000)

    def same_bytes(**_: Any) -> None:
        s3.put_object(
            Bucket=bucket,
            Key="archive/f",
            Body=path.read_bytes(),
            Metadata={"sha256": sha256(path)},
        )

    hooks.after_call("PutObject", same_bytes)
    with pytest.raises(ObjectChangedError) as err:
        S3Target(client, bucket, PREFIX).put(path, "archive/f", SMALL)
    assert err.value.placeholders == {"key": "archive/f"}
    assert len(s3.list_object_versions(Bucket=bucket)["Versions"]) == 2


def test_overwrite_of_an_object_without_an_etag_is_unconditional(
    target: S3Target, hooks: Hooks, recorder: Recorder, s3: Any, tmp_path: Path
) -> None:
    """A HEAD without an ETag gives nothing to match: the overwrite is sent bare."""
    s3.put_object(Bucket=BUCKET, Key="archive/f", Body=b"old")
    path = write_file(tmp_path / "f", 3000)
    heads = [0]

    def no_etag(parsed: dict[str, Any], **_: Any) -> None:
        heads[0] += 1
        if heads[0] == 1:  # the existence check
            del parsed["ETag"]

    hooks.after_call("HeadObject", no_etag)
    result = target.put(path, "archive/f", SMALL, overwrite=True)
    assert result.object.sha256 == sha256(path)
    [(_, put)] = [c for c in recorder.calls if c[0] == "PutObject"]
    assert "IfNoneMatch" not in put
    assert "IfMatch" not in put
    assert s3.get_object(Bucket=BUCKET, Key="archive/f")["Body"].read() == path.read_bytes()


def test_parts_held_in_memory_carry_their_content_md5_without_a_crc(
    client: Any, recorder: Recorder, s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """S3-compatible endpoint, parts small enough to hold: each carries its own MD5."""
    monkeypatch.setattr(S3Target, "_checksum_algorithm", lambda self: None)
    path = write_file(tmp_path / "big", 11 * MIB)
    data = path.read_bytes()
    result = S3Target(client, BUCKET, PREFIX).put(path, "archive/big", SMALL)
    assert result.parts == 3
    uploads = [params for name, params in recorder.calls if name == "UploadPart"]
    assert {p["PartNumber"]: p["ContentMD5"] for p in uploads} == {
        number: base64.b64encode(
            hashlib.md5(data[(number - 1) * 5 * MIB : number * 5 * MIB]).digest()
        ).decode("ascii")
        for number in (1, 2, 3)
    }
    assert not [p for p in uploads if "ChecksumAlgorithm" in p]
    [(_, complete)] = [c for c in recorder.calls if c[0] == "CompleteMultipartUpload"]
    assert [set(part) for part in complete["MultipartUpload"]["Parts"]] == [
        {"PartNumber", "ETag"}
    ] * 3
    assert s3.get_object(Bucket=BUCKET, Key="archive/big")["Body"].read() == data


def test_parts_answered_without_a_checksum_complete_without_one(
    target: S3Target, hooks: Hooks, recorder: Recorder, s3: Any, tmp_path: Path
) -> None:
    """A service that checks the CRC32 but does not echo it: the completion lists ETags only."""
    path = write_file(tmp_path / "big", 11 * MIB)
    hooks.after_call("UploadPart", lambda parsed, **_: parsed.pop("ChecksumCRC32"))
    result = target.put(path, "archive/big", SMALL)
    assert result.parts == 3
    [(_, complete)] = [c for c in recorder.calls if c[0] == "CompleteMultipartUpload"]
    assert [set(part) for part in complete["MultipartUpload"]["Parts"]] == [
        {"PartNumber", "ETag"}
    ] * 3
    assert s3.get_object(Bucket=BUCKET, Key="archive/big")["Body"].read() == path.read_bytes()


def test_a_client_for_an_endpoint_url_sends_content_md5_not_a_crc(
    moto_s3: Any, s3: Any, tmp_path: Path
) -> None:
    """make_client with an endpoint URL computes checksums only when required: no CRC32."""
    credentials = Credentials(
        access_key_id="testing",
        secret_access_key="testing",
        region=REGION,
        endpoint_url=f"https://s3.{REGION}.amazonaws.com",
    )
    endpoint_client = make_client("s3", credentials)
    recorder = Recorder()
    endpoint_client.meta.events.register("provide-client-params.s3", recorder)
    path = write_file(tmp_path / "f", 3000)
    try:
        S3Target(endpoint_client, BUCKET, PREFIX).put(path, "archive/f", SMALL)
    finally:
        endpoint_client.close()
    [put] = [params for name, params in recorder.calls if name == "PutObject"]
    assert put["ContentMD5"] == base64.b64encode(hashlib.md5(path.read_bytes()).digest()).decode()
    assert "ChecksumAlgorithm" not in put
    assert s3.get_object(Bucket=BUCKET, Key="archive/f")["Body"].read() == path.read_bytes()
