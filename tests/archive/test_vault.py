"""Tests for archive/vault.py.

Single uploads, jobs, job output, inventory and errors run against moto in process.
moto has no multipart calls and ignores ranges, so multipart uploads and ranged
downloads run against ``FakeGlacier``: a small Glacier answering at the HTTP level
(botocore ``before-send``), so the engine's real client serialises every request and
parses every response. The fake checks what real Glacier checks (tree hashes of
parts and of the archive, content ranges, part sizes) and answers tree hashes it
computes itself with ``botocore.utils.calculate_tree_hash``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
import hashlib
import io
import json
import os
from pathlib import Path
import re
import threading
import time
from typing import Any
from urllib.parse import unquote, urlsplit

from botocore.awsrequest import AWSResponse
from botocore.utils import calculate_tree_hash
from freezegun import freeze_time
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.botocore_stubber import MockRawResponse
from moto.core.models import botocore_stubber
from moto.glacier.models import glacier_backends
import pytest
from urllib3.exceptions import ProtocolError

from custom_components.s3_glacier.archive import transfer as transfer_module, vault as vault_module
from custom_components.s3_glacier.archive.client import make_client
from custom_components.s3_glacier.archive.errors import (
    AccessDeniedError,
    ArchiveError,
    CannotConnectError,
    ChecksumMismatchError,
    FileTooLargeError,
    JobNotFoundError,
    NotFoundError,
    ServiceUnavailableError,
    VaultNotFoundError,
)
from custom_components.s3_glacier.archive.models import (
    GIB,
    MIB,
    ArchivedObject,
    Credentials,
    RestoreState,
    RestoreTier,
    StorageClass,
)
from custom_components.s3_glacier.archive.transfer import CHUNK_SIZE, FilePart, PartPump
from custom_components.s3_glacier.archive.vault import (
    MAX_DESCRIPTION_LENGTH,
    DescriptionInfo,
    VaultTarget,
    build_description,
    check_description,
    check_part_size,
    iter_inventory,
    parse_description,
    parse_inventory,
    plan_part_size,
)

from .read_sizes import record_reads

VAULT = "engine-vault"
REGION = "us-east-1"
CREDENTIALS = Credentials(access_key_id="x", secret_access_key="y", region=REGION)
SHA = "ab" * 32
WHEN = datetime(2026, 5, 1, 12, 30, 45, tzinfo=UTC)


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations() -> None:
    """Override the project's autouse fixture: these tests need no Home Assistant."""


# -- helpers ----------------------------------------------------------------------------


def write_file(path: Path, size: int) -> Path:
    """Random bytes (moto names archives by MD5, so equal bytes would collide)."""
    path.write_bytes(os.urandom(size))
    return path


def tree_hash(data: bytes) -> str:
    return calculate_tree_hash(io.BytesIO(data))


def part_start(headers: dict[str, str]) -> int:
    """Where a part starts, from its ``Content-Range: bytes a-b/*``."""
    return int(headers["content-range"].removeprefix("bytes ").split("-")[0])


def part_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.part"))


def service_error(code: str, status: int) -> tuple[AWSResponse, dict[str, Any]]:
    """A before-call response that botocore turns into ClientError(code)."""
    parsed = {
        "Error": {"Code": code, "Message": code},
        "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": {}},
    }
    return AWSResponse(f"https://glacier.{REGION}.amazonaws.com", status, {}, None), parsed


def parsed_response(**parsed: Any) -> tuple[AWSResponse, dict[str, Any]]:
    """A before-call response that botocore returns as the call's result."""
    parsed["ResponseMetadata"] = {"HTTPStatusCode": 200, "HTTPHeaders": {}}
    return AWSResponse(f"https://glacier.{REGION}.amazonaws.com", 200, {}, None), parsed


def moto_archives() -> dict[str, dict[str, Any]]:
    return glacier_backends[DEFAULT_ACCOUNT_ID][REGION].vaults[VAULT].archives


class Hooks:
    """botocore event handlers on a client, removed after each test."""

    def __init__(self, client: Any) -> None:
        self._events = client.meta.events
        self._registered: list[tuple[str, Callable[..., Any]]] = []

    def on(self, event: str, handler: Callable[..., Any], *, first: bool = False) -> None:
        register = self._events.register_first if first else self._events.register
        register(event, handler)
        self._registered.append((event, handler))

    def before_call(self, operation: str, handler: Callable[..., Any]) -> None:
        """Run ``handler`` before each call; a (response, parsed) return replaces the call."""
        self.on(f"before-call.glacier.{operation}", handler)

    def remove_all(self) -> None:
        for event, handler in self._registered:
            self._events.unregister(event, handler)
        self._registered.clear()


@dataclass
class Recorder:
    """The Glacier operations a client made, with their parameters (bodies left out)."""

    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        with self.lock:
            self.calls.append((model.name, {k: v for k, v in params.items() if k != "body"}))

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def params(self, name: str) -> list[dict[str, Any]]:
        return [params for op, params in self.calls if op == name]


# -- moto fixtures ----------------------------------------------------------------------


# moto and the client live for the whole module: building a client reads botocore's
# Glacier model from disk.
@pytest.fixture(scope="module")
def moto_client() -> Iterator[Any]:
    """The engine's client (archive.client.make_client), intercepted by moto."""
    with mock_aws():
        client = make_client("glacier", CREDENTIALS)
        client.create_vault(vaultName=VAULT)
        yield client


@pytest.fixture
def client(moto_client: Any) -> Any:
    return moto_client


@pytest.fixture
def hooks(client: Any) -> Iterator[Hooks]:
    hooks = Hooks(client)
    yield hooks
    hooks.remove_all()


@pytest.fixture
def recorder(hooks: Hooks) -> Recorder:
    recorder = Recorder()
    hooks.on("provide-client-params.glacier", recorder)
    return recorder


@pytest.fixture
def target(client: Any) -> VaultTarget:
    return VaultTarget(client, VAULT, part_size=MIB)


@dataclass
class Jobs:
    """Archives and the jobs started on them, shared by the tests that need finished jobs."""

    small: ArchivedObject
    small_bytes: bytes
    small_job: str
    large_bytes: bytes
    large_job: str
    inventory_job: str
    first_state: RestoreState


def assert_done(target: VaultTarget, job_id: str) -> None:
    """The job has finished: its output can be downloaded."""
    assert target.job_state(job_id) == (RestoreState.RESTORED, None)


@pytest.fixture(scope="module")
def jobs(moto_client: Any, tmp_path_factory: pytest.TempPathFactory) -> Jobs:
    """Start every job on a frozen clock, then move it past moto's 2 s (5 s) job time."""
    with freeze_time(datetime(2026, 11, 21, 12, 0, tzinfo=UTC)) as clock:
        target = VaultTarget(moto_client, VAULT, part_size=MIB)
        path = write_file(tmp_path_factory.mktemp("jobs") / "Grüße \u2013 1 MiB.bin", MIB)
        # Exactly 1 MiB: moto's plain SHA-256 is then also the tree hash, so put succeeds.
        small = target.put(path)
        large_bytes = os.urandom(3 * MIB + 5)
        large_id = moto_client.upload_archive(vaultName=VAULT, body=large_bytes)["archiveId"]
        small_job = target.request_restore(small.key, RestoreTier.EXPEDITED)
        large_job = target.request_restore(large_id, RestoreTier.EXPEDITED)
        inventory_job = target.request_inventory()
        first_state, _ = target.job_state(small_job)
        clock.tick(timedelta(seconds=6))
        assert_done(target, small_job)
        assert_done(target, large_job)
        assert_done(target, inventory_job)
    return Jobs(
        small=small,
        small_bytes=path.read_bytes(),
        small_job=small_job,
        large_bytes=large_bytes,
        large_job=large_job,
        inventory_job=inventory_job,
        first_state=first_state,
    )


# -- FakeGlacier ------------------------------------------------------------------------


class CutRaw(MockRawResponse):
    """A response body whose connection breaks after ``cut`` bytes."""

    def __init__(self, data: bytes, cut: int) -> None:
        super().__init__(data)
        self._cut = cut

    def read(self, amt: int | None = None) -> bytes:  # type: ignore[override]
        if self.tell() >= self._cut:
            raise ProtocolError("connection broken")
        limit = self._cut - self.tell()
        return super().read(limit if amt is None else min(amt, limit))


@dataclass
class Sent:
    """One request FakeGlacier answered."""

    op: str
    headers: dict[str, str]
    size: int
    target: str = ""


class FakeGlacier:
    """Multipart uploads, single uploads, deletes and ranged job output, over HTTP."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.sent: list[Sent] = []
        self.uploads: dict[str, dict[str, Any]] = {}
        self.archives: dict[str, bytes] = {}
        self.descriptions: dict[str, str] = {}
        self.jobs: dict[str, str] = {}
        self.in_flight = 0
        self.most_in_flight = 0
        self.parts_done = 0
        self.counter = 0
        # Knobs a test turns.
        self.wait_for_overlap = False
        self.part_delay = 0.0
        self.fail: Callable[[str, dict[str, str]], tuple[str, int] | None] = lambda op, h: None
        self.before_part: Callable[[int], None] | None = None
        self.wrong_part_checksum_at: int | None = None
        self.wrong_archive_checksum = False
        self.range_checksums = True
        self.wrong_range_checksum_at: int | None = None
        self.corrupt_range_at: int | None = None
        self.cut_ranges: dict[int, int] = {}

    # -- plumbing --------------------------------------------------------------------

    def __call__(self, request: Any, **_: Any) -> AWSResponse:
        method = request.method
        path = unquote(urlsplit(request.url).path)
        headers = {
            k.lower(): v if isinstance(v, str) else v.decode() for k, v in request.headers.items()
        }
        body = request.body or b""
        if hasattr(body, "read"):
            body = body.read()
        parts = path.strip("/").split("/")  # "-", "vaults", name, ...
        assert parts[:3] == ["-", "vaults", VAULT], path
        rest = parts[3:]
        op = {
            ("POST", 1, "multipart-uploads"): "initiate",
            ("PUT", 2, "multipart-uploads"): "part",
            ("POST", 2, "multipart-uploads"): "complete",
            ("DELETE", 2, "multipart-uploads"): "abort",
            ("POST", 1, "archives"): "upload",
            ("DELETE", 2, "archives"): "delete",
            ("GET", 3, "jobs"): "output",
        }[(method, len(rest), rest[0])]
        name = rest[1] if len(rest) > 1 else ""
        error = self.fail(op, headers)
        if error is not None:
            self.record(op, headers, len(body), name)
            return self.error(request, *error)
        return getattr(self, op)(request, headers, body, name)

    def record(self, op: str, headers: dict[str, str], size: int, name: str = "") -> None:
        with self.cond:
            self.sent.append(Sent(op, headers, size, name))

    def ops(self) -> list[str]:
        return [sent.op for sent in self.sent]

    def of(self, op: str) -> list[Sent]:
        return [sent for sent in self.sent if sent.op == op]

    @staticmethod
    def respond(
        request: Any, status: int, headers: dict[str, str], body: bytes = b"", raw: Any = None
    ) -> AWSResponse:
        return AWSResponse(request.url, status, headers, raw or MockRawResponse(body))

    def error(self, request: Any, code: str, status: int) -> AWSResponse:
        body = json.dumps({"code": code, "message": code, "type": "Client"}).encode()
        headers = {"content-type": "application/json", "x-amzn-errortype": code}
        return self.respond(request, status, headers, body)

    # -- operations ------------------------------------------------------------------

    def initiate(self, request: Any, headers: dict[str, str], body: bytes, name: str) -> Any:
        self.record("initiate", headers, len(body))
        with self.cond:
            self.counter += 1
            upload_id = f"upload-{self.counter}"
            self.uploads[upload_id] = {
                "part_size": int(headers["x-amz-part-size"]),
                "description": headers.get("x-amz-archive-description", ""),
                "parts": {},
            }
        location = f"/{DEFAULT_ACCOUNT_ID}/vaults/{VAULT}/multipart-uploads/{upload_id}"
        return self.respond(
            request, 201, {"location": location, "x-amz-multipart-upload-id": upload_id}
        )

    def part(self, request: Any, headers: dict[str, str], body: bytes, name: str) -> Any:
        match = re.fullmatch(r"bytes (\d+)-(\d+)/\*", headers["content-range"])
        assert match, headers["content-range"]
        start, end = int(match.group(1)), int(match.group(2))
        with self.cond:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            self.cond.notify_all()
            if self.wait_for_overlap and self.most_in_flight < 2:
                self.cond.wait_for(lambda: self.in_flight >= 2, timeout=2)
        try:
            if self.before_part is not None:
                self.before_part(start)
            time.sleep(self.part_delay)
            self.record("part", headers, len(body), name)
            upload = self.uploads[name]
            assert end - start + 1 == len(body)
            assert start % upload["part_size"] == 0
            assert len(body) <= upload["part_size"]
            assert headers["x-amz-content-sha256"] == hashlib.sha256(body).hexdigest()
            checksum = tree_hash(body)
            if headers["x-amz-sha256-tree-hash"] != checksum:
                return self.error(request, "InvalidParameterValueException", 400)
            with self.cond:
                upload["parts"][start] = body
            if start == self.wrong_part_checksum_at:
                checksum = "0" * 64
            return self.respond(request, 204, {"x-amz-sha256-tree-hash": checksum})
        finally:
            with self.cond:
                self.in_flight -= 1
                self.parts_done += 1

    def complete(self, request: Any, headers: dict[str, str], body: bytes, name: str) -> Any:
        self.record("complete", headers, len(body), name)
        upload = self.uploads.pop(name)
        starts = sorted(upload["parts"])
        data = b"".join(upload["parts"][start] for start in starts)
        assert starts == list(range(0, len(data), upload["part_size"]))
        assert len(data) == int(headers["x-amz-archive-size"])
        checksum = tree_hash(data)
        if headers["x-amz-sha256-tree-hash"] != checksum:
            return self.error(request, "InvalidParameterValueException", 400)
        archive_id = self.store(data, upload["description"])
        if self.wrong_archive_checksum:
            checksum = "0" * 64
        return self.respond(
            request,
            201,
            {
                "x-amz-archive-id": archive_id,
                "x-amz-sha256-tree-hash": checksum,
                "location": f"/{DEFAULT_ACCOUNT_ID}/vaults/{VAULT}/archives/{archive_id}",
            },
        )

    def abort(self, request: Any, headers: dict[str, str], body: bytes, name: str) -> Any:
        self.record("abort", headers, len(body), name)
        self.uploads.pop(name)
        return self.respond(request, 204, {})

    def upload(self, request: Any, headers: dict[str, str], body: bytes, name: str) -> Any:
        self.record("upload", headers, len(body))
        checksum = tree_hash(body)
        if headers["x-amz-sha256-tree-hash"] != checksum:
            return self.error(request, "InvalidParameterValueException", 400)
        archive_id = self.store(body, headers.get("x-amz-archive-description", ""))
        return self.respond(
            request, 201, {"x-amz-archive-id": archive_id, "x-amz-sha256-tree-hash": checksum}
        )

    def delete(self, request: Any, headers: dict[str, str], body: bytes, name: str) -> Any:
        self.record("delete", headers, len(body), name)
        if self.archives.pop(name, None) is None:
            return self.error(request, "ResourceNotFoundException", 404)
        return self.respond(request, 204, {})

    def output(self, request: Any, headers: dict[str, str], body: bytes, name: str) -> Any:
        self.record("output", headers, 0, name)
        if name not in self.jobs:
            return self.error(request, "ResourceNotFoundException", 404)
        archive = self.archives[self.jobs[name]]
        answer: dict[str, str] = {"content-type": "application/octet-stream"}
        if "range" in headers:
            match = re.fullmatch(r"bytes=(\d+)-(\d+)", headers["range"])
            assert match, headers["range"]
            start, end = int(match.group(1)), int(match.group(2))
            data, status = archive[start : end + 1], 206
            answer["content-range"] = f"bytes {start}-{end}/{len(archive)}"
        else:
            start, data, status = 0, archive, 200
        if self.range_checksums:
            answer["x-amz-sha256-tree-hash"] = tree_hash(data)
            if start == self.wrong_range_checksum_at:
                answer["x-amz-sha256-tree-hash"] = "0" * 64
        if start == self.corrupt_range_at:
            data = bytes([data[0] ^ 1]) + data[1:]
        answer["content-length"] = str(len(data))
        raw = None
        if self.cut_ranges.get(start):
            self.cut_ranges[start] -= 1
            raw = CutRaw(data, len(data) // 2)
        return self.respond(request, status, answer, data, raw)

    def store(self, data: bytes, description: str) -> str:
        with self.cond:
            self.counter += 1
            archive_id = f"archive-{self.counter}"
            self.archives[archive_id] = data
            self.descriptions[archive_id] = description
        return archive_id


@pytest.fixture(scope="module")
def fake_client() -> Any:
    """An engine client that FakeGlacier answers and moto never sees.

    botocore calls every before-send handler and takes the first answer, so moto's
    handler (on every client) is removed; it would otherwise act on each request too.
    """
    client = make_client("glacier", CREDENTIALS)
    client.meta.events.unregister("before-send", botocore_stubber)
    return client


@pytest.fixture
def fake(fake_client: Any) -> Iterator[FakeGlacier]:
    fake = FakeGlacier()
    fake_client.meta.events.register_first("before-send.glacier", fake)
    yield fake
    fake_client.meta.events.unregister("before-send.glacier", fake)


def fake_target(fake_client: Any, part_mib: int = 1, concurrency: int = 3) -> VaultTarget:
    return VaultTarget(fake_client, VAULT, part_size=part_mib * MIB, concurrency=concurrency)


# -- descriptions -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "backup.tar",
        "Grüße aus Köln \u2013 日本語 🎉.tar.gz",
        "100% done; name=x;sha256=y %41 \\ ~ `",
        "tab\tnew\nline\x7f\x00",
        "undecodable-\udcff\udcfe.bin",
        "",
        " leading and trailing ",
    ],
)
def test_description_round_trip(name: str) -> None:
    text = build_description(name, SHA, WHEN)
    assert check_description(text) == text
    assert text.startswith("s3_glacier/1;uploaded=2026-05-01T12:30:45Z;sha256=")
    assert parse_description(text) == DescriptionInfo(name=name, sha256=SHA, uploaded=WHEN)


def test_description_escapes_only_what_it_must() -> None:
    text = build_description("a b;c=d%e/é.txt", SHA, WHEN)
    assert text.endswith(";name=a b;c=d%25e/%C3%A9.txt")


def test_description_without_sha256_and_times() -> None:
    naive = datetime(2026, 5, 1, 12, 30, 45, 999_999)  # noqa: DTZ001 - naive means UTC
    text = build_description("f", None, naive)
    assert text == "s3_glacier/1;uploaded=2026-05-01T12:30:45Z;name=f"
    assert parse_description(text) == DescriptionInfo(name="f", sha256=None, uploaded=WHEN)
    other_zone = WHEN.astimezone(timezone(timedelta(hours=-7)))
    assert build_description("f", None, other_zone) == text


@pytest.mark.parametrize("char", ["a", "é", "日", "🎉", "\udcff"])
def test_description_long_names_are_cut(char: str) -> None:
    name = char * 3000
    text = build_description(name, SHA, WHEN)
    assert len(text) <= MAX_DESCRIPTION_LENGTH
    assert len(text) > MAX_DESCRIPTION_LENGTH - 12  # cut as late as a whole character allows
    check_description(text)
    info = parse_description(text)
    assert info is not None
    assert info.truncated
    assert info.sha256 == SHA
    assert info.uploaded == WHEN
    assert info.name
    assert name.startswith(info.name)


def test_description_longest_name_that_fits_is_whole() -> None:
    fixed = len(build_description("", SHA, WHEN))
    name = "n" * (MAX_DESCRIPTION_LENGTH - fixed)
    info = parse_description(build_description(name, SHA, WHEN))
    assert info is not None
    assert (info.name, info.truncated) == (name, False)
    info = parse_description(build_description(name + "n", SHA, WHEN))
    assert info is not None
    assert (info.name, info.truncated) == (name[:-1], True)


def test_build_description_rejects_bad_sha256() -> None:
    with pytest.raises(ValueError, match=r"^sha256 must be 64 lowercase hex digits$"):
        build_description("f", "ABCD", WHEN)


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "my holiday photos",
        "s3_glacier/1;uploaded=2026-13-01T00:00:00Z;name=f",
        "s3_glacier/1;uploaded=2026-05-01T12:30:45Z;sha256=xyz;name=f",
        "s3_glacier/2;uploaded=2026-05-01T12:30:45Z;name=f",
        "s3_glacier/1;uploaded=2026-05-01T12:30:45Z",
    ],
)
def test_parse_description_foreign(text: str | None) -> None:
    assert parse_description(text) is None


def test_check_description() -> None:
    assert check_description("x" * MAX_DESCRIPTION_LENGTH)
    printable = "".join(chr(code) for code in range(32, 127))
    assert check_description(printable) == printable
    with pytest.raises(ValueError, match=r"^an archive description holds at most 1024 characters$"):
        check_description("x" * (MAX_DESCRIPTION_LENGTH + 1))
    # é, a line break and DEL (127), just past the printable range
    for text in ("café", "line\nbreak", "del\x7f"):
        with pytest.raises(ValueError, match=r"^an archive description must be printable ASCII$"):
            check_description(text)


# -- inventory parsing, part sizes ---------------------------------------------------


def test_parse_inventory_document() -> None:
    """A document in the format of AWS's inventory-retrieval output."""
    ours = build_description("photos 2024.tar", SHA, WHEN)
    document = {
        "VaultARN": f"arn:aws:glacier:{REGION}:{DEFAULT_ACCOUNT_ID}:vaults/{VAULT}",
        "InventoryDate": "2026-05-02T01:00:00Z",
        "ArchiveList": [
            {
                "ArchiveId": "id-ours",
                "ArchiveDescription": ours,
                "CreationDate": "2026-05-01T12:31:02Z",
                "Size": 5 * MIB,
                "SHA256TreeHash": "CD" * 32,
            },
            {
                "ArchiveId": "id-foreign",
                "ArchiveDescription": "made by another tool",
                "CreationDate": "2020-01-02T03:04:05.000Z",
                "Size": 1,
                "SHA256TreeHash": "ef" * 32,
            },
            {
                "ArchiveId": "id-bare",
                "ArchiveDescription": "",
                "CreationDate": "2020-01-02T03:04:05Z",
                "Size": 0,
                "SHA256TreeHash": "01" * 32,
            },
        ],
    }
    for form in (document, json.dumps(document), json.dumps(document).encode()):
        objects = parse_inventory(form)
        assert [obj.key for obj in objects] == ["id-ours", "id-foreign", "id-bare"]
        first = objects[0]
        assert first == ArchivedObject(
            key="id-ours",
            archive_id="id-ours",
            size=5 * MIB,
            storage_class=StorageClass.VAULT,
            last_modified=datetime(2026, 5, 1, 12, 31, 2, tzinfo=UTC),
            sha256=SHA,
            description=ours,
            tree_hash="cd" * 32,
        )
        assert objects[1].sha256 is None
        assert objects[1].description == "made by another tool"
        assert objects[1].last_modified == datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)
        assert objects[2].description is None


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ('{"VaultARN": "x"}', "no ArchiveList"),
        ("{}", "no ArchiveList"),
        ('{"ArchiveList": [{"Size": 1}]}', "KeyError"),
        ('{"ArchiveList": [}', "JSONDecodeError"),
    ],
)
def test_malformed_inventory_says_what_is_wrong(document: str, reason: str) -> None:
    for parse in (lambda: list(iter_inventory(_trickle(document.encode(), 3))),
                  lambda: parse_inventory(document)):  # fmt: skip
        with pytest.raises(ArchiveError) as err:
            parse()
        assert str(err.value) == f"malformed vault inventory: {reason}"


def test_malformed_inventory_document_as_a_mapping() -> None:
    with pytest.raises(ArchiveError) as err:
        parse_inventory({"VaultARN": "x"})
    assert str(err.value) == "malformed vault inventory: KeyError"


def test_empty_inventory_and_an_archive_without_tree_hash() -> None:
    assert list(iter_inventory(_trickle(b'{"VaultARN": "x", "ArchiveList": []}', 5))) == []
    entry = '{"ArchiveId": "a", "Size": 1, "CreationDate": "2026-05-01T12:31:02Z"}'
    document = '{"ArchiveList": [' + entry + "]}"
    [listed] = list(iter_inventory(_trickle(document.encode(), 5)))
    assert (listed.key, listed.size, listed.tree_hash) == ("a", 1, None)


def test_inventory_is_read_in_bounded_chunks() -> None:
    """A vault's inventory can be large: it is never asked for whole."""
    asked: list[int] = []
    read = _trickle(_inventory_text(3000).encode(), 64 * 1024)

    def recording(amount: int) -> bytes:
        asked.append(amount)
        return read(amount)

    assert len(list(iter_inventory(recording))) == 3000
    assert set(asked) == {64 * 1024}


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        (b"not json", "ValueError"),
        ("{}", "no ArchiveList"),
        ({"ArchiveList": [{"ArchiveId": "x"}]}, "KeyError"),
        ({"ArchiveList": None}, "TypeError"),
    ],
)
def test_parse_inventory_malformed(document: Any, problem: str) -> None:
    with pytest.raises(ArchiveError) as err:
        parse_inventory(document)
    # The plain kind: not "not found" (the vault is there) nor a checksum mismatch.
    assert type(err.value) is ArchiveError
    assert str(err.value) == f"malformed vault inventory: {problem}"


def _inventory_text(count: int) -> str:
    """An inventory of ``count`` archives, with top-level fields before and after the list."""
    archives = [
        {
            "ArchiveId": f"id-{i:04d}",
            "ArchiveDescription": build_description(f"file {i}.bin", SHA, WHEN),
            "CreationDate": "2026-05-01T12:31:02Z",
            "Size": 5_242_880 + i,
            "SHA256TreeHash": f"{i:064x}",
        }
        for i in range(count)
    ]
    return json.dumps(
        {
            "VaultARN": f"arn:aws:glacier:{REGION}:{DEFAULT_ACCOUNT_ID}:vaults/Grüße",
            "InventoryDate": "2026-05-02T01:00:00Z",
            "ArchiveList": archives,
            "Trailing": [1, {"x": 12345678}],
            "Count": 1234567890,
        },
        indent=1,
        ensure_ascii=False,
    )


def _trickle(data: bytes, size: int, fail_after: int | None = None) -> Callable[[int], bytes]:
    """A body's ``read`` that answers at most ``size`` bytes a call, as a socket may."""
    stream = io.BytesIO(data)

    def read(_wanted: int) -> bytes:
        if fail_after is not None and stream.tell() >= fail_after:
            raise ProtocolError("connection reset")
        return stream.read(size)

    return read


@pytest.mark.parametrize("size", [1, 7, 4096])
def test_inventory_parsed_as_it_is_read(size: int) -> None:
    """Chunks cut values, numbers and UTF-8 characters anywhere: same result as a whole parse."""
    text = _inventory_text(50)
    expected = parse_inventory(json.loads(text))
    assert list(iter_inventory(_trickle(text.encode(), size))) == expected
    assert parse_inventory(text) == expected
    assert expected[49].size == 5_242_929


def test_inventory_entries_come_before_the_end_is_read() -> None:
    """Entries are handed over while the rest of the document is still unread."""
    text = _inventory_text(1000)
    data = text.encode()
    parsed = iter_inventory(_trickle(data, 4096, fail_after=len(data) // 2))
    received: list[ArchivedObject] = []
    with pytest.raises(ProtocolError):
        received.extend(parsed)
    # About half of the entries: those the first half of the bytes holds whole.
    assert 400 < len(received) < 600
    assert received == parse_inventory(text)[: len(received)]


@pytest.mark.parametrize(
    "document",
    [
        '{"ArchiveList": [{"ArchiveId": "a", "Size": 1, "CreationDate": "2026-05-01T12:31:02Z"}',
        '{"ArchiveList": []} trailing',
        '{"ArchiveList": [] "VaultARN": "x"}',
        '{"VaultARN": "x"}',
        '{"ArchiveList": [1]}',
        '{1: [], "ArchiveList": []}',
        "[]",
        "",
        b"\xff\xfe{}",
        b'{"ArchiveList": []}\xc3',  # cut inside a UTF-8 character
    ],
)
def test_streamed_inventory_malformed(document: str | bytes) -> None:
    data = document if isinstance(document, bytes) else document.encode()
    with pytest.raises(ArchiveError, match=r"^malformed vault inventory: ") as err:
        list(iter_inventory(_trickle(data, 3)))
    assert type(err.value) is ArchiveError


def test_part_sizes() -> None:
    for size in (MIB, 2 * MIB, 8 * MIB, 4 * GIB):
        assert check_part_size(size) == size
    for size in (0, MIB - 1, 3 * MIB, MIB + 1, 8 * GIB, 6 * MIB):
        with pytest.raises(ValueError) as err:
            check_part_size(size)
        assert str(err.value) == "part_size must be 1 MiB times a power of two, at most 4 GiB"
    with pytest.raises(ValueError):
        VaultTarget(None, VAULT, part_size=3 * MIB)
    with pytest.raises(ValueError) as err:
        VaultTarget(None, VAULT, concurrency=0)
    assert str(err.value) == "concurrency must be at least 1"
    # What an entry's target uses: 8 MiB parts, four at a time.
    default = VaultTarget(None, VAULT)
    assert (default.part_size, default.concurrency) == (8 * MIB, 4)
    assert plan_part_size(10_000 * MIB, MIB) == MIB
    assert plan_part_size(10_000 * MIB + 1, MIB) == 2 * MIB
    assert plan_part_size(100 * GIB, 8 * MIB) == 16 * MIB
    assert plan_part_size(10_000 * 4 * GIB, MIB) == 4 * GIB
    with pytest.raises(FileTooLargeError) as too_large:
        plan_part_size(10_000 * 4 * GIB + 1, MIB)
    assert str(too_large.value) == "file is larger than a vault archive can be"
    assert too_large.value.placeholders == {"limit": "40 TiB"}


# -- moto: vault, single uploads, jobs ----------------------------------------------


def test_check(target: VaultTarget, recorder: Recorder) -> None:
    """One DescribeVault of this vault: the only call the documented policy needs for it."""
    assert target.check() is None
    assert recorder.calls == [("DescribeVault", {"vaultName": VAULT})]


def test_check_missing_vault(client: Any, hooks: Hooks) -> None:
    # moto's answer ("VaultNotFound", 400) ...
    with pytest.raises(VaultNotFoundError) as err:
        VaultTarget(client, "no-such-vault").check()
    assert err.value.translation_key == "vault_not_found"
    assert err.value.placeholders == {"vault": "no-such-vault"}
    # ... and AWS's.
    hooks.before_call("DescribeVault", lambda **_: service_error("ResourceNotFoundException", 404))
    with pytest.raises(VaultNotFoundError):
        VaultTarget(client, VAULT).check()


def test_no_longer_supported(target: VaultTarget, hooks: Hooks, tmp_path: Path) -> None:
    """A new account hears NoLongerSupportedException from every call."""
    answer = lambda **_: service_error("NoLongerSupportedException", 400)  # noqa: E731
    hooks.before_call("DescribeVault", answer)
    hooks.before_call("UploadArchive", answer)
    with pytest.raises(ServiceUnavailableError) as err:
        target.check()
    assert err.value.translation_key == "vault_service_unavailable"
    with pytest.raises(ServiceUnavailableError):
        target.put(write_file(tmp_path / "f", 10))


def test_put_single(target: VaultTarget, recorder: Recorder, tmp_path: Path) -> None:
    path = write_file(tmp_path / "report é.pdf", 300_000)
    data = path.read_bytes()
    progress: list[int] = []
    before = datetime.now(UTC).replace(microsecond=0)
    obj = target.put(path, progress=progress.append)
    assert recorder.names() == ["UploadArchive"]
    params = recorder.params("UploadArchive")[0]
    assert params["checksum"] == tree_hash(data)
    assert params["archiveDescription"] == obj.description
    stored = moto_archives()[obj.key]
    assert stored["body"] == data
    assert stored["description"] == obj.description
    assert obj.archive_id == obj.key
    assert obj.size == len(data)
    assert obj.storage_class is StorageClass.VAULT
    assert obj.sha256 == hashlib.sha256(data).hexdigest()
    assert obj.tree_hash == tree_hash(data)
    assert before <= obj.last_modified <= datetime.now(UTC)
    assert obj.last_modified.tzinfo is UTC
    assert parse_description(obj.description) == DescriptionInfo(
        name="report é.pdf", sha256=obj.sha256, uploaded=obj.last_modified
    )
    assert progress == [len(data)]


def test_put_single_moto_tree_hash_is_caught(
    client: Any, recorder: Recorder, tmp_path: Path
) -> None:
    """moto answers a plain SHA-256, which is not the tree hash above 1 MiB: the check
    catches it and the archive is deleted."""
    target = VaultTarget(client, VAULT, part_size=4 * MIB)
    path = write_file(tmp_path / "f", 3 * MIB)
    count = len(moto_archives())
    with pytest.raises(ChecksumMismatchError) as err:
        target.put(path)
    assert str(err.value) == "the vault reports another tree hash"
    assert err.value.placeholders == {"key": "f"}
    assert recorder.names() == ["UploadArchive", "DeleteArchive"]
    assert len(moto_archives()) == count


def test_put_single_progress_error_deletes_archive(
    target: VaultTarget, recorder: Recorder, tmp_path: Path
) -> None:
    def progress(done: int) -> None:
        raise RuntimeError("listener broke")

    count = len(moto_archives())
    with pytest.raises(RuntimeError, match="listener broke"):
        target.put(write_file(tmp_path / "f", 10), progress=progress)
    assert recorder.names() == ["UploadArchive", "DeleteArchive"]
    assert len(moto_archives()) == count


def test_put_custom_description(target: VaultTarget, tmp_path: Path) -> None:
    obj = target.put(write_file(tmp_path / "f", 10), description="Tax papers 2025")
    assert obj.description == "Tax papers 2025"
    assert moto_archives()[obj.key]["description"] == "Tax papers 2025"


def test_put_rejects_bad_arguments(target: VaultTarget, recorder: Recorder, tmp_path: Path) -> None:
    path = write_file(tmp_path / "f", 10)
    with pytest.raises(ValueError):
        target.put(path, description="naïve")
    with pytest.raises(ValueError, match=r"^sha256 must be 64 lowercase hex digits$"):
        target.put(path, sha256="not a digest")
    with pytest.raises(ChecksumMismatchError) as err:
        target.put(path, sha256=SHA)
    assert str(err.value) == "file does not match the expected SHA-256"
    assert err.value.placeholders == {"key": "f"}
    with pytest.raises(FileNotFoundError):
        target.put(tmp_path / "missing")
    assert recorder.calls == []


def test_put_to_a_missing_vault(client: Any, tmp_path: Path) -> None:
    with pytest.raises(VaultNotFoundError) as err:
        VaultTarget(client, "no-such-vault").put(write_file(tmp_path / "f", 10))
    assert err.value.placeholders == {"vault": "no-such-vault"}


def test_put_single_file_changed_while_sent(
    target: VaultTarget, hooks: Hooks, tmp_path: Path
) -> None:
    """Bytes that differ from those hashed never complete the request."""
    path = write_file(tmp_path / "notes.txt", 1000)
    count = len(moto_archives())

    def change(**_: Any) -> None:
        path.write_bytes(bytes(1000) if path.read_bytes() != bytes(1000) else b"\x01" * 1000)

    hooks.before_call("UploadArchive", change)
    with pytest.raises(ChecksumMismatchError) as err:
        target.put(path)
    assert str(err.value) == "file changed while it was being archived"
    assert err.value.placeholders == {"key": "notes.txt"}
    assert len(moto_archives()) == count


def test_put_expected_sha256(target: VaultTarget, tmp_path: Path) -> None:
    path = write_file(tmp_path / "f", 10)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert target.put(path, sha256=digest).sha256 == digest


def test_put_missing_vault(client: Any, tmp_path: Path) -> None:
    with pytest.raises(VaultNotFoundError):
        VaultTarget(client, "no-such-vault").put(write_file(tmp_path / "f", 10))


def test_put_empty_file(target: VaultTarget, tmp_path: Path) -> None:
    obj = target.put(write_file(tmp_path / "empty", 0))
    assert obj.size == 0
    assert obj.tree_hash == hashlib.sha256(b"").hexdigest()


def test_delete(target: VaultTarget, hooks: Hooks, tmp_path: Path) -> None:
    obj = target.put(write_file(tmp_path / "f", 10))
    target.delete(obj.key)
    assert obj.key not in moto_archives()
    # moto fails a second delete with an internal KeyError; AWS documents the call as
    # idempotent but answers ResourceNotFoundException for IDs it does not know.
    hooks.before_call("DeleteArchive", lambda **_: service_error("ResourceNotFoundException", 404))
    with pytest.raises(NotFoundError) as err:
        target.delete(obj.key)
    assert err.value.placeholders == {"key": obj.key}


def test_request_restore(target: VaultTarget, recorder: Recorder, tmp_path: Path) -> None:
    obj = target.put(write_file(tmp_path / "f", 10))
    job_id = target.request_restore(obj.key, RestoreTier.BULK)
    assert recorder.params("InitiateJob")[0]["jobParameters"] == {
        "Type": "archive-retrieval",
        "ArchiveId": obj.key,
        "Tier": "Bulk",
    }
    assert target.job_state(job_id) == (RestoreState.IN_PROGRESS, None)


def test_request_restore_unknown_archive(target: VaultTarget, hooks: Hooks) -> None:
    hooks.before_call("InitiateJob", lambda **_: service_error("ResourceNotFoundException", 404))
    with pytest.raises(NotFoundError) as err:
        target.request_restore("nope", RestoreTier.STANDARD)
    assert err.value.placeholders == {"key": "nope"}


def test_job_state_failed_and_unknown(target: VaultTarget, hooks: Hooks) -> None:
    answers = iter(
        [
            parsed_response(StatusCode="Failed", StatusMessage="Archive was deleted"),
            parsed_response(StatusCode="Failed"),
            parsed_response(StatusCode="Pondering"),
            service_error("ResourceNotFoundException", 404),
        ]
    )
    hooks.before_call("DescribeJob", lambda **_: next(answers))
    assert target.job_state("j") == (RestoreState.NONE, "Archive was deleted")
    assert target.job_state("j") == (RestoreState.NONE, "Failed")
    with pytest.raises(ArchiveError) as unknown:
        target.job_state("j")
    assert type(unknown.value) is ArchiveError
    assert str(unknown.value) == "unknown job status 'Pondering'"
    assert unknown.value.placeholders == {"job": "j"}
    with pytest.raises(JobNotFoundError) as err:
        target.job_state("j")
    assert err.value.translation_key == "job_not_found"
    assert err.value.placeholders == {"job": "j"}


def test_job_state_progression(jobs: Jobs, target: VaultTarget) -> None:
    assert jobs.first_state is RestoreState.IN_PROGRESS
    assert target.job_state(jobs.small_job) == (RestoreState.RESTORED, None)


def test_get_round_trip(jobs: Jobs, target: VaultTarget, tmp_path: Path) -> None:
    destination = tmp_path / "restored.bin"
    progress: list[int] = []
    result = target.get(
        jobs.small_job,
        destination,
        size=jobs.small.size,
        tree_hash=jobs.small.tree_hash,
        sha256=jobs.small.sha256,
        progress=progress.append,
    )
    assert destination.read_bytes() == jobs.small_bytes
    assert result.path == destination
    assert result.size == MIB
    assert result.sha256 == jobs.small.sha256
    assert result.tree_hash == jobs.small.tree_hash == tree_hash(jobs.small_bytes)
    assert progress == [MIB]
    assert part_files(tmp_path) == []


def test_get_refuses_existing_destination(
    jobs: Jobs, target: VaultTarget, recorder: Recorder, tmp_path: Path
) -> None:
    destination = tmp_path / "restored.bin"
    destination.write_bytes(b"keep me")
    with pytest.raises(FileExistsError):
        target.get(jobs.small_job, destination, size=MIB, tree_hash=jobs.small.tree_hash)
    assert recorder.calls == []
    assert destination.read_bytes() == b"keep me"
    target.get(
        jobs.small_job, destination, size=MIB, tree_hash=jobs.small.tree_hash, overwrite=True
    )
    assert destination.read_bytes() == jobs.small_bytes


def test_get_wrong_tree_hash(jobs: Jobs, target: VaultTarget, tmp_path: Path) -> None:
    destination = tmp_path / "restored.bin"
    for tree, sha in (("0" * 64, None), (None, SHA)):
        with pytest.raises(ChecksumMismatchError) as err:
            target.get(jobs.small_job, destination, size=MIB, tree_hash=tree, sha256=sha)
        assert str(err.value) == "downloaded bytes differ from the archive"
        assert err.value.placeholders == {"job": jobs.small_job}
    for size, word in ((MIB + 1, "fewer"), (MIB - 1, "more")):
        with pytest.raises(ChecksumMismatchError) as err:
            target.get(jobs.small_job, destination, size=size, tree_hash=None)
        assert str(err.value) == f"job output has {word} bytes than the archive"
        assert err.value.placeholders == {"job": jobs.small_job}
    assert list(tmp_path.iterdir()) == []


def test_get_when_the_service_ignores_ranges(
    jobs: Jobs, target: VaultTarget, recorder: Recorder, tmp_path: Path
) -> None:
    """moto answers a range request with the whole output (200): that is accepted."""
    destination = tmp_path / "large.bin"
    result = target.get(
        jobs.large_job,
        destination,
        size=len(jobs.large_bytes),
        tree_hash=tree_hash(jobs.large_bytes),
    )
    assert destination.read_bytes() == jobs.large_bytes
    assert result.tree_hash == tree_hash(jobs.large_bytes)
    assert [params["range"] for params in recorder.params("GetJobOutput")] == ["bytes=0-1048575"]


def test_inventory(jobs: Jobs, target: VaultTarget) -> None:
    assert_done(target, jobs.inventory_job)
    objects = {obj.key: obj for obj in target.inventory(jobs.inventory_job)}
    listed = objects[jobs.small.key]
    assert listed.size == MIB
    assert listed.sha256 == jobs.small.sha256
    assert listed.tree_hash == jobs.small.tree_hash
    assert listed.description == jobs.small.description
    assert listed.storage_class is StorageClass.VAULT
    assert listed.last_modified.tzinfo is UTC
    info = parse_description(listed.description)
    assert info is not None
    assert info.name == "Grüße \u2013 1 MiB.bin"


def test_inventory_unknown_job(target: VaultTarget, hooks: Hooks) -> None:
    hooks.before_call("GetJobOutput", lambda **_: service_error("ResourceNotFoundException", 404))
    with pytest.raises(JobNotFoundError) as err:
        target.inventory("expired")
    assert err.value.placeholders == {"job": "expired"}


def test_request_inventory_asks_for_json(target: VaultTarget, recorder: Recorder) -> None:
    """Glacier's inventory formats are JSON and CSV: only JSON is parsed here."""
    target.request_inventory()
    assert recorder.params("InitiateJob") == [
        {
            "vaultName": VAULT,
            "jobParameters": {"Type": "inventory-retrieval", "Format": "JSON"},
        }
    ]


def test_request_inventory_of_a_missing_vault(client: Any) -> None:
    with pytest.raises(VaultNotFoundError) as err:
        VaultTarget(client, "no-such-vault").request_inventory()
    assert err.value.placeholders == {"vault": "no-such-vault"}


# -- FakeGlacier: multipart uploads -----------------------------------------------------


@pytest.mark.parametrize(
    ("part_mib", "size"),
    [(1, 6 * MIB + 123), (1, 4 * MIB), (2, 5 * MIB + 1), (2, 8 * MIB), (4, 9 * MIB + 7)],
)
def test_put_multipart(
    fake: FakeGlacier, fake_client: Any, tmp_path: Path, part_mib: int, size: int
) -> None:
    path = write_file(tmp_path / "big file ü.bin", size)
    data = path.read_bytes()
    part = part_mib * MIB
    obj = fake_target(fake_client, part_mib).put(path)

    assert fake.ops()[0] == "initiate"
    assert fake.ops()[-1] == "complete"
    initiate = fake.of("initiate")[0]
    assert initiate.headers["x-amz-part-size"] == str(part)
    info = parse_description(initiate.headers["x-amz-archive-description"])
    assert info is not None
    assert (info.name, info.sha256, info.uploaded) == ("big file ü.bin", None, obj.last_modified)

    parts = sorted(fake.of("part"), key=lambda sent: part_start(sent.headers))
    starts = list(range(0, size, part))
    assert len(parts) == len(starts)
    for sent, start in zip(parts, starts, strict=True):
        chunk = data[start : start + part]
        assert sent.headers["content-range"] == f"bytes {start}-{start + len(chunk) - 1}/*"
        assert sent.size == len(chunk)
        assert sent.headers["x-amz-sha256-tree-hash"] == tree_hash(chunk)

    complete = fake.of("complete")[0]
    assert complete.headers["x-amz-archive-size"] == str(size)
    assert complete.headers["x-amz-sha256-tree-hash"] == tree_hash(data)
    assert fake.archives[obj.key] == data
    assert obj.archive_id == obj.key
    assert obj.size == size
    assert obj.tree_hash == tree_hash(data)
    assert obj.sha256 == hashlib.sha256(data).hexdigest()
    assert obj.description == initiate.headers["x-amz-archive-description"]
    assert "abort" not in fake.ops()


def test_put_multipart_with_known_sha256(
    fake: FakeGlacier, fake_client: Any, tmp_path: Path
) -> None:
    path = write_file(tmp_path / "f", 3 * MIB)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    obj = fake_target(fake_client).put(path, sha256=digest)
    info = parse_description(fake.descriptions[obj.key])
    assert info is not None
    assert info.sha256 == digest

    with pytest.raises(ChecksumMismatchError) as err:
        fake_target(fake_client).put(path, sha256=SHA)
    assert err.value.placeholders == {"key": "f"}
    assert fake.ops().count("complete") == 1
    assert fake.ops()[-1] == "abort"
    assert fake.uploads == {}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("grows", "file changed while it was being archived"),
        ("shrinks", "file shrank while it was being archived"),
    ],
)
def test_put_multipart_of_a_file_changing_names_it(
    fake: FakeGlacier, fake_client: Any, tmp_path: Path, change: str, message: str
) -> None:
    """A file written to during its upload: the upload is aborted and the error names the file.

    The parts are sent from named worker threads (how a stack dump finds them).
    """
    path = write_file(tmp_path / "notes.bin", 4 * MIB)
    threads: list[str] = []

    def first_part(**_: Any) -> None:
        threads.append(threading.current_thread().name)
        if len(threads) == 1:
            with path.open("r+b") as handle:
                if change == "grows":
                    handle.seek(0, os.SEEK_END)
                    handle.write(b"more")
                else:
                    handle.truncate(MIB + MIB // 2)

    event = "before-call.glacier.UploadMultipartPart"
    fake_client.meta.events.register(event, first_part)
    try:
        with pytest.raises(ChecksumMismatchError) as err:
            fake_target(fake_client, concurrency=1).put(path)
    finally:
        fake_client.meta.events.unregister(event, first_part)
    assert str(err.value) == message
    assert err.value.placeholders == {"key": "notes.bin"}
    assert fake.ops()[-1] == "abort"
    assert fake.uploads == {}
    assert threads
    assert all(name.startswith("s3_glacier_vault_part") for name in threads)


def test_put_multipart_concurrency(fake: FakeGlacier, fake_client: Any, tmp_path: Path) -> None:
    fake.wait_for_overlap = True
    path = write_file(tmp_path / "f", 6 * MIB)
    fake_target(fake_client, concurrency=3).put(path)
    assert len(fake.of("part")) == 6
    assert 2 <= fake.most_in_flight <= 3


def test_put_multipart_bounded_read_ahead(
    fake: FakeGlacier, fake_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reader never holds more than ``concurrency`` parts that are not yet sent."""
    fake.part_delay = 0.02  # a slow uplink: an unbounded reader would race ahead
    path = write_file(tmp_path / "f", 12 * MIB)
    lock = threading.Lock()
    counts = {"read": 0, "most_held": 0}
    read_part = PartPump._read_part

    def counting_read(self: PartPump[Any], *args: Any) -> bytes:
        data = read_part(self, *args)
        with lock:
            counts["read"] += 1
            counts["most_held"] = max(counts["most_held"], counts["read"] - fake.parts_done)
        return data

    monkeypatch.setattr(PartPump, "_read_part", counting_read)
    fake_target(fake_client, concurrency=2).put(path)
    assert counts["read"] == 12
    assert counts["most_held"] <= 2
    assert fake.most_in_flight <= 2


def test_put_multipart_progress(fake: FakeGlacier, fake_client: Any, tmp_path: Path) -> None:
    path = write_file(tmp_path / "f", 5 * MIB + 3)
    progress: list[int] = []
    fake_target(fake_client).put(path, progress=progress.append)
    assert len(progress) == 6
    assert progress == sorted(progress)
    assert progress[-1] == 5 * MIB + 3


def test_a_file_of_exactly_one_part_goes_in_one_upload_and_reports_progress(
    fake: FakeGlacier, fake_client: Any, tmp_path: Path
) -> None:
    path = write_file(tmp_path / "f", 2 * MIB)
    progress: list[int] = []
    obj = fake_target(fake_client, part_mib=2).put(path, progress=progress.append)
    assert fake.ops() == ["upload"]
    assert progress == [2 * MIB]
    assert obj.size == 2 * MIB


def test_put_multipart_with_a_description_of_ones_own(
    fake: FakeGlacier, fake_client: Any, tmp_path: Path
) -> None:
    obj = fake_target(fake_client).put(
        write_file(tmp_path / "f", 3 * MIB), description="Tax papers 2025"
    )
    initiate = fake.of("initiate")[0]
    assert initiate.headers["x-amz-archive-description"] == "Tax papers 2025"
    assert obj.description == "Tax papers 2025"


def test_put_multipart_part_failure_aborts(
    fake: FakeGlacier, fake_client: Any, tmp_path: Path
) -> None:
    def fail(op: str, headers: dict[str, str]) -> tuple[str, int] | None:
        if op == "part" and part_start(headers) == 2 * MIB:
            return "AccessDeniedException", 403
        return None

    fake.fail = fail
    with pytest.raises(AccessDeniedError):
        fake_target(fake_client).put(write_file(tmp_path / "f", 6 * MIB))
    assert "complete" not in fake.ops()
    assert fake.ops()[-1] == "abort"
    assert fake.ops().count("abort") == 1
    assert fake.uploads == {}
    assert fake.archives == {}


def test_put_multipart_progress_error_aborts(
    fake: FakeGlacier, fake_client: Any, tmp_path: Path
) -> None:
    def progress(done: int) -> None:
        raise RuntimeError("listener broke")

    with pytest.raises(RuntimeError, match="listener broke"):
        fake_target(fake_client).put(write_file(tmp_path / "f", 3 * MIB), progress=progress)
    assert fake.ops()[-1] == "abort"
    assert "complete" not in fake.ops()


def test_put_multipart_wrong_part_checksum(
    fake: FakeGlacier, fake_client: Any, tmp_path: Path
) -> None:
    fake.wrong_part_checksum_at = MIB
    with pytest.raises(ChecksumMismatchError) as err:
        fake_target(fake_client).put(write_file(tmp_path / "f", 3 * MIB))
    assert str(err.value) == "the vault reports another tree hash"
    assert err.value.placeholders == {"key": "f"}
    assert fake.ops()[-1] == "abort"
    assert "complete" not in fake.ops()


def test_put_multipart_wrong_archive_checksum(
    fake: FakeGlacier, fake_client: Any, tmp_path: Path
) -> None:
    fake.wrong_archive_checksum = True
    with pytest.raises(ChecksumMismatchError):
        fake_target(fake_client).put(write_file(tmp_path / "f", 3 * MIB))
    deletes = fake.of("delete")
    assert [sent.target for sent in deletes] == ["archive-2"]
    assert fake.archives == {}


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [
        ("ResourceNotFoundException", 404, VaultNotFoundError),
        ("NoLongerSupportedException", 400, ServiceUnavailableError),
    ],
)
def test_put_multipart_initiate_errors(
    fake: FakeGlacier,
    fake_client: Any,
    tmp_path: Path,
    code: str,
    status: int,
    error: type[ArchiveError],
) -> None:
    fake.fail = lambda op, headers: (code, status) if op == "initiate" else None
    with pytest.raises(error) as err:
        fake_target(fake_client).put(write_file(tmp_path / "f", 3 * MIB))
    if error is VaultNotFoundError:
        assert err.value.placeholders == {"vault": VAULT}
    assert fake.ops() == ["initiate"]


def test_put_single_against_a_tree_hashing_service(
    fake: FakeGlacier, fake_client: Any, tmp_path: Path
) -> None:
    """Above 1 MiB a single upload verifies where the service answers a real tree hash."""
    path = write_file(tmp_path / "f", 3 * MIB + 1)
    obj = fake_target(fake_client, part_mib=4).put(path)
    assert fake.ops() == ["upload"]
    assert fake.archives[obj.key] == path.read_bytes()
    assert obj.tree_hash == tree_hash(path.read_bytes())


def test_put_from_several_threads(fake: FakeGlacier, fake_client: Any, tmp_path: Path) -> None:
    """One target serves concurrent uploads (the shell calls it from executor threads)."""
    target = fake_target(fake_client, concurrency=2)
    paths = [write_file(tmp_path / f"f{i}", size) for i, size in enumerate([5 * MIB, 10, 3 * MIB])]
    results: dict[Path, ArchivedObject] = {}

    def upload(path: Path) -> None:
        results[path] = target.put(path)

    threads = [threading.Thread(target=upload, args=(path,)) for path in paths]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 3
    for path, obj in results.items():
        assert fake.archives[obj.key] == path.read_bytes()


def test_single_upload_hashes_the_file_in_chunks(
    fake: FakeGlacier, fake_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A single upload may be gigabytes: it is hashed a chunk at a time, then streamed."""
    path = write_file(tmp_path / "one.bin", 2 * MIB + 5)
    sizes = record_reads(monkeypatch, path)
    obj = fake_target(fake_client, part_mib=4).put(path)
    assert sizes == [CHUNK_SIZE] * 4  # three chunks, then the read that finds the end
    assert obj.size == 2 * MIB + 5


@pytest.mark.parametrize("change", ["appended", "rewritten in place", "touched"])
def test_single_upload_of_a_file_changed_while_hashed_names_it(
    fake: FakeGlacier,
    fake_client: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    change: str,
) -> None:
    """Written to between the first and the second chunk hashed: nothing is sent.

    Rewritten in place, the size stays: the new modification time tells. Only touched,
    the bytes are the same, but a writer was at work: refused too (archive it again).
    """
    path = write_file(tmp_path / "diary.txt", 2 * MIB)
    stat_before = path.stat()

    def write_after_the_first_chunk(reads_so_far: int) -> None:
        if reads_so_far != 1:
            return
        if change != "touched":
            with path.open("ab" if change == "appended" else "r+b") as handle:
                handle.write(b"a late line")
        os.utime(path, ns=(stat_before.st_atime_ns, stat_before.st_mtime_ns + 1_000_000))

    record_reads(monkeypatch, path, write_after_the_first_chunk)
    with pytest.raises(ChecksumMismatchError) as err:
        fake_target(fake_client, part_mib=4).put(path)
    assert str(err.value) == "file changed while it was being archived"
    assert err.value.placeholders == {"key": "diary.txt"}
    assert fake.ops() == []


# -- FakeGlacier: ranged downloads ------------------------------------------------------


@pytest.fixture
def stored(fake: FakeGlacier) -> bytes:
    """A 5 MiB + 17 byte archive with a finished retrieval job "job-1"."""
    data = os.urandom(5 * MIB + 17)
    fake.archives["archive-x"] = data
    fake.jobs["job-1"] = "archive-x"
    return data


def test_get_in_ranges(fake: FakeGlacier, fake_client: Any, stored: bytes, tmp_path: Path) -> None:
    destination = tmp_path / "out.bin"
    progress: list[int] = []
    result = fake_target(fake_client, part_mib=2).get(
        "job-1",
        destination,
        size=len(stored),
        tree_hash=tree_hash(stored),
        sha256=hashlib.sha256(stored).hexdigest(),
        progress=progress.append,
    )
    assert destination.read_bytes() == stored
    assert result.tree_hash == tree_hash(stored)
    assert [sent.headers["range"] for sent in fake.of("output")] == [
        f"bytes=0-{2 * MIB - 1}",
        f"bytes={2 * MIB}-{4 * MIB - 1}",
        f"bytes={4 * MIB}-{5 * MIB + 16}",
    ]
    assert progress == [len(stored)]
    assert part_files(tmp_path) == []


def test_get_reports_progress_every_8_mib(
    fake: FakeGlacier, fake_client: Any, tmp_path: Path
) -> None:
    """Progress at each 8 MiB step (1 MiB chunks land exactly on it) and at the end."""
    data = os.urandom(16 * MIB + 5)
    fake.archives["big"] = data
    fake.jobs["job-big"] = "big"
    # ranges of 16 MiB: the 1 MiB chunks of the first one report 8 and 16 MiB
    target = fake_target(fake_client, part_mib=16)
    expected = {"size": len(data), "tree_hash": tree_hash(data)}
    progress: list[int] = []
    target.get("job-big", tmp_path / "with", **expected, progress=progress.append)
    assert progress == [8 * MIB, 16 * MIB, 16 * MIB + 5]
    target.get("job-big", tmp_path / "without", **expected)
    assert (tmp_path / "without").read_bytes() == data


def test_get_small_archive_in_one_request(
    fake: FakeGlacier, fake_client: Any, tmp_path: Path
) -> None:
    fake.archives["a"] = data = os.urandom(1000)
    fake.jobs["j"] = "a"
    fake_target(fake_client).get("j", tmp_path / "out", size=1000, tree_hash=tree_hash(data))
    assert (tmp_path / "out").read_bytes() == data
    assert "range" not in fake.of("output")[0].headers


def test_get_range_checksum_mismatch(
    fake: FakeGlacier, fake_client: Any, stored: bytes, tmp_path: Path
) -> None:
    """Each range is checked against the tree hash the service sends with it."""
    fake.wrong_range_checksum_at = 2 * MIB
    with pytest.raises(ChecksumMismatchError) as err:
        fake_target(fake_client, part_mib=2).get(
            "job-1", tmp_path / "out", size=len(stored), tree_hash=None
        )
    assert str(err.value) == "a range differs from its tree hash"
    assert err.value.placeholders == {"job": "job-1"}
    assert list(tmp_path.iterdir()) == []


def test_get_corrupted_bytes(
    fake: FakeGlacier, fake_client: Any, stored: bytes, tmp_path: Path
) -> None:
    fake.range_checksums = False
    fake.corrupt_range_at = 2 * MIB
    destination = tmp_path / "out"
    destination.write_bytes(b"keep me")
    with pytest.raises(ChecksumMismatchError):
        fake_target(fake_client, part_mib=2).get(
            "job-1", destination, size=len(stored), tree_hash=tree_hash(stored), overwrite=True
        )
    assert destination.read_bytes() == b"keep me"
    assert part_files(tmp_path) == []


def test_get_short_output(
    fake: FakeGlacier, fake_client: Any, stored: bytes, tmp_path: Path
) -> None:
    with pytest.raises(ChecksumMismatchError):
        fake_target(fake_client, part_mib=2).get(
            "job-1", tmp_path / "out", size=len(stored) + 1, tree_hash=None
        )
    assert list(tmp_path.iterdir()) == []


def test_get_cut_stream_is_retried(
    fake: FakeGlacier, fake_client: Any, stored: bytes, tmp_path: Path
) -> None:
    fake.cut_ranges = {2 * MIB: 2}
    progress: list[int] = []
    fake_target(fake_client, part_mib=2).get(
        "job-1",
        tmp_path / "out",
        size=len(stored),
        tree_hash=tree_hash(stored),
        sha256=hashlib.sha256(stored).hexdigest(),
        progress=progress.append,
    )
    assert (tmp_path / "out").read_bytes() == stored
    assert [sent.headers["range"].split("-")[0] for sent in fake.of("output")] == [
        "bytes=0",
        f"bytes={2 * MIB}",
        f"bytes={2 * MIB}",
        f"bytes={2 * MIB}",
        f"bytes={4 * MIB}",
    ]
    assert progress == sorted(progress)


def test_get_cut_stream_gives_up(
    fake: FakeGlacier, fake_client: Any, stored: bytes, tmp_path: Path
) -> None:
    fake.cut_ranges = {2 * MIB: 10}
    with pytest.raises(CannotConnectError) as err:
        fake_target(fake_client, part_mib=2).get(
            "job-1", tmp_path / "out", size=len(stored), tree_hash=None
        )
    assert err.value.placeholders == {"job": "job-1"}
    assert str(err.value) == "ResponseStreamingError"
    assert len(fake.of("output")) == 4
    assert list(tmp_path.iterdir()) == []


def _answer_ranges_with(fake_client: Any, **changes: Any) -> Hooks:
    """Edit every ranged GetJobOutput answer (after the first) as a quirky service would."""
    hooks = Hooks(fake_client)

    def edit(parsed: dict[str, Any], **_: Any) -> None:
        if not parsed.get("contentRange", "").startswith("bytes 0-"):
            parsed.update(changes)

    hooks.on("after-call.glacier.GetJobOutput", edit)
    return hooks


def test_get_refuses_a_whole_answer_to_a_later_range(
    fake: FakeGlacier, fake_client: Any, stored: bytes, tmp_path: Path
) -> None:
    """A 200 without Content-Range to the range at 2 MiB: the service ignored the range."""
    hooks = _answer_ranges_with(fake_client, status=200, contentRange=None)
    try:
        with pytest.raises(ChecksumMismatchError) as err:
            fake_target(fake_client, part_mib=2).get(
                "job-1", tmp_path / "out", size=len(stored), tree_hash=None
            )
    finally:
        hooks.remove_all()
    assert str(err.value) == "the vault ignored the byte range"
    assert err.value.placeholders == {"job": "job-1"}
    assert list(tmp_path.iterdir()) == []


def test_get_a_200_that_names_its_range_is_that_range(
    fake: FakeGlacier, fake_client: Any, stored: bytes, tmp_path: Path
) -> None:
    hooks = _answer_ranges_with(fake_client, status=200)
    try:
        fake_target(fake_client, part_mib=2).get(
            "job-1", tmp_path / "out", size=len(stored), tree_hash=tree_hash(stored)
        )
    finally:
        hooks.remove_all()
    assert (tmp_path / "out").read_bytes() == stored


def test_get_unknown_job(fake: FakeGlacier, fake_client: Any, tmp_path: Path) -> None:
    with pytest.raises(JobNotFoundError) as err:
        fake_target(fake_client).get("expired", tmp_path / "out", size=10, tree_hash=None)
    assert err.value.placeholders == {"job": "expired"}
    assert list(tmp_path.iterdir()) == []


def test_get_of_exactly_one_range_is_one_plain_request(
    fake: FakeGlacier, fake_client: Any, tmp_path: Path
) -> None:
    fake.archives["a"] = data = os.urandom(2 * MIB)
    fake.jobs["j"] = "a"
    target = fake_target(fake_client, part_mib=2)
    target.get("j", tmp_path / "out", size=len(data), tree_hash=tree_hash(data))
    assert (tmp_path / "out").read_bytes() == data
    assert ["range" in sent.headers for sent in fake.of("output")] == [False]


def test_get_partial_answers_without_content_range_are_ranges(
    fake: FakeGlacier, fake_client: Any, stored: bytes, tmp_path: Path
) -> None:
    """Only a 200 without Content-Range is the whole output; a bare 206 is the range asked."""
    hooks = Hooks(fake_client)
    hooks.on("after-call.glacier.GetJobOutput", lambda parsed, **_: parsed.pop("contentRange"))
    try:
        fake_target(fake_client, part_mib=2).get(
            "job-1", tmp_path / "out", size=len(stored), tree_hash=tree_hash(stored)
        )
    finally:
        hooks.remove_all()
    assert (tmp_path / "out").read_bytes() == stored
    assert len(fake.of("output")) == 3


# -- size and memory bounds --------------------------------------------------------------


def test_put_refuses_a_file_too_large_before_reading_it(
    target: VaultTarget, recorder: Recorder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sparse file over 10,000 parts of 4 GiB (lowered here: ext4 stops at 16 TiB)."""
    monkeypatch.setattr(vault_module, "MAX_PARTS", 1)
    path = tmp_path / "sparse"
    with path.open("wb") as handle:
        handle.truncate(4 * GIB + 1)
    with pytest.raises(FileTooLargeError) as info:
        target.put(path)
    assert info.value.placeholders == {"limit": "40 TiB"}
    assert recorder.names() == []


def test_put_single_streams_and_stops_on_a_changed_file(
    target: VaultTarget, hooks: Hooks, tmp_path: Path
) -> None:
    """The single request reads the file as it sends; bytes changed since hashing stop it."""
    path = write_file(tmp_path / "f", 300_000)
    count = len(moto_archives())

    def change_file(request: Any, **_: Any) -> None:
        with path.open("r+b") as handle:
            handle.seek(250_000)
            handle.write(b"\x00" * 16 if handle.read(16) != b"\x00" * 16 else b"\x01" * 16)

    hooks.on("before-send.glacier.UploadArchive", change_file, first=True)
    with pytest.raises(ChecksumMismatchError):
        target.put(path)
    assert len(moto_archives()) == count


def test_put_multipart_streams_parts_too_large_to_hold(
    fake: FakeGlacier, fake_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parts over the memory bound (lowered here) are streamed from the file, checked."""
    monkeypatch.setattr(transfer_module, "MAX_TRANSFER_MEMORY", MIB // 2)
    monkeypatch.setattr(transfer_module, "TRANSFER_OVERHEAD", 0)
    streamed: list[bool] = []
    upload_part = vault_module._MultipartUpload._upload_part

    def watch(self: Any, number: int, start: int, data: Any) -> bytes:
        streamed.append(isinstance(data, FilePart))
        return upload_part(self, number, start, data)

    monkeypatch.setattr(vault_module._MultipartUpload, "_upload_part", watch)
    path = write_file(tmp_path / "f", 3 * MIB + 100)
    data = path.read_bytes()
    obj = fake_target(fake_client, part_mib=1, concurrency=3).put(path)
    assert streamed == [True] * 4
    assert fake.archives[obj.key] == data
    assert obj.tree_hash == tree_hash(data)
    parts = sorted(fake.of("part"), key=lambda sent: part_start(sent.headers))
    assert [p.headers["x-amz-sha256-tree-hash"] for p in parts] == [
        tree_hash(data[start : start + MIB]) for start in range(0, len(data), MIB)
    ]
    assert fake.most_in_flight == 1
