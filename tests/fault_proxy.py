"""A TCP proxy on 127.0.0.1 that cuts connections, for fault tests over real sockets.

One thread serves every connection (``selectors``), so stopping it is a single join.
A connection that carries more than ``cut_upstream`` bytes to the server, or more than
``cut_downstream`` bytes back to the client, is reset (RST) at that point: small
requests pass, large transfers are cut mid-way. Limits can change while it runs.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import struct
import threading

_CHUNK = 64 * 1024


class FaultProxy:
    """Forward 127.0.0.1:<port> to an upstream port, cutting large transfers on demand."""

    def __init__(self, upstream_port: int) -> None:
        """Listen at once on a free loopback port; call ``start`` to serve."""
        self.upstream = ("127.0.0.1", upstream_port)
        self.cut_upstream: int | None = None
        self.cut_downstream: int | None = None
        self.cuts = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.setblocking(False)
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._selector = selectors.DefaultSelector()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="fault-proxy", daemon=True)
        # socket -> (peer socket, direction key, pair record)
        self._links: dict[socket.socket, tuple[socket.socket, str, dict[str, int]]] = {}

    def start(self) -> None:
        """Serve in a background thread."""
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving, close every socket, and join the thread."""
        self._stop.set()
        self._thread.join(timeout=10)
        for sock in [*self._links, self._listener]:
            with contextlib.suppress(OSError):
                sock.close()
        self._links.clear()
        self._selector.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            for key, _ in self._selector.select(timeout=0.05):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if sock is self._listener:
                    self._accept()
                elif sock in self._links:
                    self._pump(sock)

    def _accept(self) -> None:
        try:
            client, _ = self._listener.accept()
        except BlockingIOError:
            return
        try:
            server = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            client.close()
            return
        counts = {"up": 0, "down": 0}
        self._links[client] = (server, "up", counts)
        self._links[server] = (client, "down", counts)
        for sock in (client, server):
            sock.setblocking(True)
            self._selector.register(sock, selectors.EVENT_READ)

    def _pump(self, sock: socket.socket) -> None:
        peer, direction, counts = self._links[sock]
        try:
            data = sock.recv(_CHUNK)
        except OSError:
            data = b""
        if not data:
            self._close(sock, peer, reset=False)
            return
        counts[direction] += len(data)
        limit = self.cut_upstream if direction == "up" else self.cut_downstream
        if limit is not None and counts[direction] > limit:
            self.cuts += 1
            self._close(sock, peer, reset=True)
            return
        try:
            peer.sendall(data)
        except OSError:
            self._close(sock, peer, reset=True)

    def _close(self, sock: socket.socket, peer: socket.socket, *, reset: bool) -> None:
        for each in (sock, peer):
            self._links.pop(each, None)
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(each)
            with contextlib.suppress(OSError):
                if reset:  # linger 0: the close sends RST, like a dropped link
                    each.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                each.close()
