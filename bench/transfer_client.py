"""Uploads or downloads in a process of their own, for bench_transfer.py.

Not a test. One process per kind of transfer, kept for all the rounds, so that its
imports and client creation are paid once (and reported as its start-up):

    transfer_client.py KIND [--bucket B] [--part-mib 16] [--concurrency 4]

KIND: engine-put, engine-get, boto3-put, boto3-get; engine-upload (engine-put with the
file's digest computed before the clock starts: its second, uploading pass alone);
hashlib-sha256 (the engine's first pass alone: read and hash the file).

It prints ``{"ready": true, "startup_s": ...}``, then reads one JSON request per line
(``{"file": ..., "key": ...}``) and answers each with one JSON line: the transfer's
seconds, the RSS when it started and the peak RSS during it. The peak is Linux's VmHWM
after resetting it (``/proc/self/clear_refs``) just before the transfer. End of input
ends the process. The endpoint and keys come from the environment (common.Endpoint.env).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
import gc
import json
import os
from pathlib import Path
import sys
import time
from typing import Any

STARTED = time.perf_counter()
ROOT = Path(__file__).resolve().parents[1]
ENGINE = ROOT / "custom_components" / "s3_glacier"

type Transfer = Callable[[Path, str], Any]


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise KeyError(field)


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where that is not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5", encoding="ascii")
    except OSError:
        return False
    return True


def _engine(op: str, args: argparse.Namespace) -> Transfer:
    sys.path.insert(0, str(ENGINE))
    from archive import s3  # noqa: PLC0415
    from archive.client import make_client  # noqa: PLC0415
    from archive.models import (  # noqa: PLC0415
        MIB,
        Credentials,
        ServerSideEncryption,
        StorageClass,
        TransferOptions,
    )

    credentials = Credentials(
        access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        region=os.environ["AWS_DEFAULT_REGION"],
        endpoint_url=os.environ["S3_GLACIER_BENCH_ENDPOINT"],
    )
    # As helpers.connect_bucket builds it for a config entry.
    target = s3.S3Target(make_client("s3", credentials), args.bucket)
    options = TransferOptions(
        storage_class=StorageClass(args.storage_class),
        encryption=ServerSideEncryption(args.encryption),
        part_size=args.part_mib * MIB,
        concurrency=args.concurrency,
    )
    if op == "get":
        return lambda path, key: target.get(key, path, overwrite=True)
    if op == "put":
        return lambda path, key: target.put(path, key, options, overwrite=True)
    real_sha256_file = s3.sha256_file
    digests: dict[Path, tuple[str, int]] = {}

    def known_digest(path: Path) -> tuple[str, int]:
        return digests[path]

    def upload(path: Path, key: str) -> Any:
        return target.put(path, key, options, overwrite=True)

    def prepare(path: Path) -> None:
        digests[path] = real_sha256_file(path)

    s3.sha256_file = known_digest
    upload.prepare = prepare  # type: ignore[attr-defined]
    return upload


def _boto3(op: str, args: argparse.Namespace) -> Transfer:
    import boto3  # noqa: PLC0415
    from botocore.config import Config  # noqa: PLC0415

    # What a user would write: defaults, path-style for an S3-compatible endpoint.
    client = boto3.client(
        "s3",
        endpoint_url=os.environ["S3_GLACIER_BENCH_ENDPOINT"],
        config=Config(s3={"addressing_style": "path"}),
    )
    if op == "put":
        return lambda path, key: client.upload_file(str(path), args.bucket, key)
    return lambda path, key: client.download_file(args.bucket, key, str(path))


def _hashlib() -> Transfer:
    import hashlib  # noqa: PLC0415

    def digest(path: Path, _key: str) -> str:
        hasher = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(1024 * 1024):
                hasher.update(chunk)
        return hasher.hexdigest()

    return digest


def _measure(transfer: Transfer, path: Path, key: str) -> dict[str, Any]:
    if prepare := getattr(transfer, "prepare", None):
        prepare(path)
    gc.collect()
    rss_start = _status_kib("VmRSS")
    reset = _reset_peak()
    started = time.perf_counter()
    transfer(path, key)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "rss_start_kib": rss_start,
        "rss_peak_kib": _status_kib("VmHWM"),
        "peak_reset": reset,
    }


def main() -> None:
    """Build the client, say so, then serve requests until the end of input."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "kind",
        choices=[
            "engine-put",
            "engine-get",
            "engine-upload",
            "boto3-put",
            "boto3-get",
            "hashlib-sha256",
        ],
    )
    parser.add_argument("--bucket", default="bench")
    parser.add_argument("--storage-class", default="STANDARD")
    parser.add_argument("--encryption", default="none")
    parser.add_argument("--part-mib", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()

    library, op = args.kind.split("-")
    if library == "engine":
        transfer = _engine(op, args)
    elif library == "boto3":
        transfer = _boto3(op, args)
    else:
        transfer = _hashlib()
    print(json.dumps({"ready": True, "startup_s": time.perf_counter() - STARTED}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        result = _measure(transfer, Path(request["file"]), request["key"])
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
