"""An S3 endpoint on 127.0.0.1 that keeps no object data, for bench_memory.py.

Not a test. It answers what ``S3Target.put`` sends (HEAD, PUT, the multipart calls)
and reads every body to the end but keeps none of it: only each object's size, ETag
and metadata, so that the engine's checks pass. Signatures and checksums are not
checked. ``If-None-Match: *`` and ``If-Match`` are honoured like S3 does.

    python bench/discard_server.py PORT     (prints "ready" once it listens)
"""

from __future__ import annotations

from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import sys
import threading
from typing import Any
from urllib.parse import parse_qs, urlsplit
import uuid

_CHUNK = 1024 * 1024
_LOCK = threading.Lock()
_OBJECTS: dict[str, dict[str, Any]] = {}
_UPLOADS: dict[str, dict[str, Any]] = {}


class Handler(BaseHTTPRequestHandler):
    """One request; HTTP/1.1 with keep-alive (and ``Expect: 100-continue``)."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Quiet."""

    def _target(self) -> tuple[str, dict[str, list[str]]]:
        parts = urlsplit(self.path)
        return parts.path, parse_qs(parts.query, keep_blank_values=True)

    def _discard_body(self) -> int:
        remaining = int(self.headers.get("Content-Length", "0"))
        total = remaining
        while remaining:
            chunk = self.rfile.read(min(_CHUNK, remaining))
            if not chunk:
                raise ConnectionError("body cut short")
            remaining -= len(chunk)
        return total

    def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.command != "HEAD" or "Content-Length" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _metadata(self) -> dict[str, str]:
        return {k: v for k, v in self.headers.items() if k.lower().startswith("x-amz-meta-")}

    def _precondition_fails(self, key: str) -> bool:
        existing = _OBJECTS.get(key)
        if self.headers.get("If-None-Match") == "*" and existing is not None:
            return True
        wanted = self.headers.get("If-Match")
        return wanted is not None and (existing is None or existing["etag"] != wanted)

    def do_HEAD(self) -> None:
        """An object's size, ETag and metadata, or 404."""
        key, _ = self._target()
        with _LOCK:
            obj = _OBJECTS.get(key)
        if obj is None:
            self._reply(404)
            return
        self._reply(
            200,
            headers={
                "Content-Length": str(obj["size"]),
                "ETag": obj["etag"],
                "Last-Modified": formatdate(obj["time"], usegmt=True),
                **obj["metadata"],
            },
        )

    def do_PUT(self) -> None:
        """A single PUT or a part: the body is read and dropped."""
        key, query = self._target()
        size = self._discard_body()
        etag = f'"{uuid.uuid4().hex}"'
        if "uploadId" in query:
            with _LOCK:
                _UPLOADS[query["uploadId"][0]]["size"] += size
            self._reply(200, headers={"ETag": etag})
            return
        with _LOCK:
            if self._precondition_fails(key):
                self._reply(412, b"<Error><Code>PreconditionFailed</Code></Error>")
                return
            _OBJECTS[key] = _object(size, etag, self._metadata())
        self._reply(200, headers={"ETag": etag})

    def do_POST(self) -> None:
        """Start (``?uploads``) or complete (``?uploadId=``) a multipart upload."""
        key, query = self._target()
        self._discard_body()
        if "uploads" in query:
            upload_id = uuid.uuid4().hex
            with _LOCK:
                _UPLOADS[upload_id] = {"size": 0, "metadata": self._metadata()}
            body = (
                "<InitiateMultipartUploadResult><Bucket>bench</Bucket>"
                f"<Key>{key}</Key><UploadId>{upload_id}</UploadId>"
                "</InitiateMultipartUploadResult>"
            )
            self._reply(200, body.encode())
            return
        etag = f'"{uuid.uuid4().hex}-1"'
        with _LOCK:
            if self._precondition_fails(key):
                self._reply(412, b"<Error><Code>PreconditionFailed</Code></Error>")
                return
            upload = _UPLOADS.pop(query["uploadId"][0])
            _OBJECTS[key] = _object(upload["size"], etag, upload["metadata"])
        body = f"<CompleteMultipartUploadResult><ETag>{etag}</ETag></CompleteMultipartUploadResult>"
        self._reply(200, body.encode())

    def do_DELETE(self) -> None:
        """Abort an upload or delete an object."""
        key, query = self._target()
        with _LOCK:
            if "uploadId" in query:
                _UPLOADS.pop(query["uploadId"][0], None)
            else:
                _OBJECTS.pop(key, None)
        self._reply(204)


def _object(size: int, etag: str, metadata: dict[str, str]) -> dict[str, Any]:
    import time  # noqa: PLC0415

    return {"size": size, "etag": etag, "metadata": metadata, "time": time.time()}


def main() -> None:
    """Serve on 127.0.0.1:PORT until killed."""
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    server.daemon_threads = True
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
