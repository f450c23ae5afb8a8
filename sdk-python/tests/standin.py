"""Stand-ins for a newer server, which does not exist yet: an HTTP server
that answers with given JSON, and a WebSocket endpoint that speaks the
worker protocol frame by frame as the test says (RFC 6455, text frames
only: all the worker protocol uses). The SDK under test is real."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterator, Tuple
from contextlib import contextmanager

Route = Callable[[str, str], Tuple[int, Any]]


@contextmanager
def http_stand_in(route: Route) -> Iterator[str]:
    """An HTTP server answering ``route(method, path)``'s ``(status, json)``;
    yields its URL."""

    class Answer(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            status, body = route(self.command, self.path)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _answer  # noqa: N815 - http.server's names

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


class WsStandIn:
    """A WebSocket endpoint for one worker connection: ``accept()`` it, then
    ``next()`` reads the worker's frames and ``send()`` sends one."""

    def __init__(self) -> None:
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen()
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._conn: socket.socket | None = None
        self._buffer = b""

    def accept(self, timeout: float = 15) -> None:
        self._listener.settimeout(timeout)
        conn, _ = self._listener.accept()
        conn.settimeout(timeout)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = conn.recv(4096)
            assert chunk, "the worker closed before upgrading"
            head += chunk
        head, self._buffer = head.split(b"\r\n\r\n", 1)
        headers = dict(
            line.split(": ", 1) for line in head.decode().split("\r\n")[1:] if ": " in line)
        key = {k.lower(): v for k, v in headers.items()}["sec-websocket-key"]
        accept = base64.b64encode(
            hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        conn.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n").encode())
        self._conn = conn

    def _read(self, n: int) -> bytes:
        assert self._conn is not None
        while len(self._buffer) < n:
            chunk = self._conn.recv(65536)
            assert chunk, "the worker closed the connection"
            self._buffer += chunk
        data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data

    def _frame(self, opcode: int, payload: bytes) -> bytes:
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
        return head + payload

    def next(self) -> Any:
        """The worker's next text frame, as JSON."""
        assert self._conn is not None
        while True:
            first, second = self._read(2)
            opcode, length = first & 0x0F, second & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", self._read(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", self._read(8))
            mask = self._read(4)  # client frames are masked
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(self._read(length)))
            if opcode == 1:
                return json.loads(payload)
            if opcode == 8:
                self._conn.sendall(self._frame(8, payload))
                raise AssertionError("the worker closed the connection")
            if opcode == 9:
                self._conn.sendall(self._frame(10, payload))

    def send(self, frame: Any) -> None:
        assert self._conn is not None
        self._conn.sendall(self._frame(1, json.dumps(frame).encode()))

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._listener.close()
