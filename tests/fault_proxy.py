"""A TCP proxy on 127.0.0.1 that injects faults, for tests over real sockets.

One thread serves every connection (``selectors``), so stopping it is a single join.
Every knob can change while it runs; each applies per connection and direction
("upstream": client to server, "downstream": server to client):

- ``cut_upstream`` / ``cut_downstream``: a connection that carries more bytes than this
  is reset (RST) at that point: small requests pass, large transfers are cut mid-way.
- ``stall_upstream`` / ``stall_downstream``: past this many bytes the data is silently
  dropped and the connection kept open, so the peer waits until its timeout.
- ``rate``: at most this many bytes per second in each direction (a slow link).
- ``throttle(count, methods)``: the next ``count`` HTTP requests (of those methods)
  are answered by the proxy itself with S3's ``503 SlowDown`` instead of being
  forwarded; the request is read in full first, then the connection is closed.
- ``set_listening(False)`` closes the listening socket (connections are refused, as
  by a server that is down); ``set_listening(True)`` listens on the same port again.

The client-to-server stream is followed as HTTP/1.1 (request line, headers,
``Content-Length`` body) so that requests can be counted (``requests``) and answered;
a request with a chunked body switches its connection to plain forwarding.
"""

from __future__ import annotations

from collections.abc import Iterable
import contextlib
from dataclasses import dataclass, field
import selectors
import socket
import struct
import threading
import time

_CHUNK = 64 * 1024
_MAX_HEAD = 64 * 1024
_MAX_LOG = 10_000
_TICK = 0.05

_SLOWDOWN_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message>"
    b"<RequestId>FAULTPROXY</RequestId></Error>"
)


def _slowdown_response(head_request: bool) -> bytes:
    """S3's 503 SlowDown; a HEAD answer carries no body."""
    body = b"" if head_request else _SLOWDOWN_BODY
    return (
        b"HTTP/1.1 503 Slow Down\r\n"
        b"Content-Type: application/xml\r\n"
        b"x-amz-request-id: FAULTPROXY\r\n"
        b"Connection: close\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )


@dataclass(eq=False)
class _Link:
    """One proxied connection: the client's socket, the server's, and their state."""

    client: socket.socket
    server: socket.socket
    sent: dict[str, int] = field(default_factory=lambda: {"up": 0, "down": 0})
    # When each direction may send again (slow mode), in time.monotonic() seconds.
    ready_at: dict[str, float] = field(default_factory=lambda: {"up": 0.0, "down": 0.0})
    # HTTP request parsing of the upstream stream.
    head: bytearray = field(default_factory=bytearray)
    body_left: int = 0
    raw: bool = False  # stopped parsing: forward everything as it comes
    answering: bool = False  # the current request is swallowed and answered here
    head_request: bool = False
    draining: bool = False  # answered: read and drop whatever the client still sends


class FaultProxy:
    """Forward 127.0.0.1:<port> to an upstream port, injecting faults on demand."""

    def __init__(self, upstream_port: int) -> None:
        """Listen at once on a free loopback port; call ``start`` to serve."""
        self.upstream = ("127.0.0.1", upstream_port)
        self.cut_upstream: int | None = None
        self.cut_downstream: int | None = None
        self.stall_upstream: int | None = None
        self.stall_downstream: int | None = None
        self.rate: float | None = None
        self.cuts = 0
        self.stalls = 0
        # Bytes paced at ``rate``: their transfer took at least paced / rate seconds.
        self.paced = 0
        # "METHOD target" of every request seen, and of those answered with 503.
        self.requests: list[str] = []
        self.throttled: list[str] = []
        self._throttle_left = 0
        self._throttle_methods: frozenset[str] | None = None
        self._lock = threading.Lock()
        self._listener: socket.socket | None = socket.create_server(("127.0.0.1", 0))
        self._listener.setblocking(False)
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._selector = selectors.DefaultSelector()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="fault-proxy", daemon=True)
        self._links: dict[socket.socket, tuple[_Link, str]] = {}
        self._paused: dict[socket.socket, float] = {}
        self._want_listening = True
        self._listening_applied = threading.Event()

    # -- control (any thread) -----------------------------------------------------------

    def start(self) -> None:
        """Serve in a background thread."""
        assert self._listener is not None
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving, close every socket, and join the thread."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        for sock in [*self._links, *([self._listener] if self._listener else [])]:
            with contextlib.suppress(OSError):
                sock.close()
        self._links.clear()
        self._paused.clear()
        self._listener = None
        self._selector.close()

    def throttle(self, count: int, methods: Iterable[str] | None = None) -> None:
        """Answer the next ``count`` requests (whose method is in ``methods``) with 503."""
        with self._lock:
            self._throttle_left = count
            self._throttle_methods = (
                None if methods is None else frozenset(m.upper() for m in methods)
            )

    def set_listening(self, listening: bool, timeout: float = 5) -> None:
        """Refuse new connections (close the listener) or accept them again (same port)."""
        self._listening_applied.clear()
        self._want_listening = listening
        if not self._thread.is_alive():
            self._apply_listening()
            return
        if not self._listening_applied.wait(timeout):
            raise TimeoutError("the proxy did not change its listener in time")

    # -- the serving thread ---------------------------------------------------------------

    def _serve(self) -> None:
        while not self._stop.is_set():
            self._apply_listening()
            now = time.monotonic()
            for sock, due in list(self._paused.items()):
                if due <= now:
                    del self._paused[sock]
                    self._selector.register(sock, selectors.EVENT_READ)
            timeout = _TICK
            if self._paused:
                timeout = max(0.0, min(_TICK, min(self._paused.values()) - now))
            for key, _ in self._selector.select(timeout=timeout):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if sock is self._listener:
                    self._accept()
                elif sock in self._links:
                    self._pump(sock)

    def _apply_listening(self) -> None:
        if self._want_listening and self._listener is None:
            try:
                self._listener = socket.create_server(("127.0.0.1", self.port))
            except OSError:
                return  # the port is taken meanwhile: set_listening times out
            self._listener.setblocking(False)
            if self._thread.is_alive():
                self._selector.register(self._listener, selectors.EVENT_READ)
        elif not self._want_listening and self._listener is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(self._listener)
            self._listener.close()
            self._listener = None
        self._listening_applied.set()

    def _accept(self) -> None:
        assert self._listener is not None
        try:
            client, _ = self._listener.accept()
        except BlockingIOError:
            return
        try:
            server = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            client.close()
            return
        link = _Link(client, server)
        self._links[client] = (link, "up")
        self._links[server] = (link, "down")
        for sock in (client, server):
            sock.setblocking(True)
            self._selector.register(sock, selectors.EVENT_READ)

    def _pump(self, sock: socket.socket) -> None:
        link, direction = self._links[sock]
        try:
            data = sock.recv(_CHUNK)
        except OSError:
            data = b""
        if not data:
            self._close(link, reset=False)
            return
        if link.draining:
            return
        limit = self.cut_upstream if direction == "up" else self.cut_downstream
        if limit is not None and link.sent[direction] + len(data) > limit:
            self.cuts += 1
            self._close(link, reset=True)
            return
        if direction == "up" and not link.raw:
            data = self._follow_requests(link, data)
            if link.draining:
                return
        data = self._apply_stall(link, direction, data)
        link.sent[direction] += len(data)
        if data:
            peer = link.server if direction == "up" else link.client
            try:
                peer.sendall(data)
            except OSError:
                self._close(link, reset=True)
                return
        self._apply_rate(link, direction, sock, len(data))

    def _apply_stall(self, link: _Link, direction: str, data: bytes) -> bytes:
        """Drop what goes past the stall budget of this direction."""
        stall = self.stall_upstream if direction == "up" else self.stall_downstream
        if stall is None:
            return data
        room = max(0, stall - link.sent[direction])
        if room < len(data):
            self.stalls += 1
            return data[:room]
        return data

    def _apply_rate(self, link: _Link, direction: str, sock: socket.socket, sent: int) -> None:
        """In slow mode, stop reading this socket until its bytes have 'gone through'."""
        rate = self.rate
        if not rate or sent == 0:
            return
        self.paced += sent
        now = time.monotonic()
        link.ready_at[direction] = max(link.ready_at[direction], now) + sent / rate
        if link.ready_at[direction] > now and sock in self._links:
            self._selector.unregister(sock)
            self._paused[sock] = link.ready_at[direction]

    def _follow_requests(self, link: _Link, data: bytes) -> bytes:
        """Track request boundaries; return the bytes to forward upstream.

        A request chosen for throttling is read (and dropped) in full, then answered
        with 503 SlowDown and the connection closed; its bytes never reach the server.
        """
        forward = bytearray()
        view = memoryview(data)
        while view:
            if link.body_left:
                taken = min(link.body_left, len(view))
                if not link.answering:
                    forward += view[:taken]
                link.body_left -= taken
                view = view[taken:]
                if link.body_left == 0 and link.answering:
                    self._answer_slowdown(link)
                    return bytes(forward)
                continue
            link.head += view
            view = view[len(view) :]
            end = link.head.find(b"\r\n\r\n")
            if end < 0:
                if len(link.head) > _MAX_HEAD:  # not HTTP as we know it: stop parsing
                    link.raw = True
                    forward += link.head
                    link.head.clear()
                break
            head, rest = bytes(link.head[: end + 4]), bytes(link.head[end + 4 :])
            link.head.clear()
            if not self._start_request(link, head):
                forward += head + rest
                break
            if not link.answering:
                forward += head
            if link.answering and link.body_left == 0:
                self._answer_slowdown(link)
                return bytes(forward)
            view = memoryview(rest)
        return bytes(forward)

    def _start_request(self, link: _Link, head: bytes) -> bool:
        """Read a request head; decide whether to answer it here. False: stop parsing."""
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            link.raw = True
            return False
        method, target = parts[0].upper(), parts[1]
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        line = f"{method} {target}"
        if len(self.requests) < _MAX_LOG:
            self.requests.append(line)
        try:
            link.body_left = int(headers.get("content-length", "0") or 0)
        except ValueError:
            link.body_left = 0
            link.raw = True
        if "chunked" in headers.get("transfer-encoding", "").lower():
            link.raw = True
        if link.raw:
            link.body_left = 0
            return False
        with self._lock:
            answer = self._throttle_left > 0 and (
                self._throttle_methods is None or method in self._throttle_methods
            )
            if answer:
                self._throttle_left -= 1
        if answer:
            self.throttled.append(line)
            link.answering = True
            link.head_request = method == "HEAD"
            if headers.get("expect", "").lower() == "100-continue":
                # The client waits for our answer before sending the body.
                link.body_left = 0
        return True

    def _answer_slowdown(self, link: _Link) -> None:
        """Send 503 SlowDown to the client, drop the server side, drain the client."""
        link.answering = False
        link.draining = True
        with contextlib.suppress(OSError):
            link.client.sendall(_slowdown_response(link.head_request))
        self._forget(link.server)
        with contextlib.suppress(OSError):
            link.server.close()

    def _forget(self, sock: socket.socket) -> None:
        self._links.pop(sock, None)
        self._paused.pop(sock, None)
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(sock)

    def _close(self, link: _Link, *, reset: bool) -> None:
        for sock in (link.client, link.server):
            self._forget(sock)
            with contextlib.suppress(OSError):
                if reset:  # linger 0: the close sends RST, like a dropped link
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()
