"""A real loopback HTTP server for the ``http`` workload, and the two clients that talk to it.

The server binds 127.0.0.1 on an ephemeral port, answers ``GET /delay?s=0.05`` after sleeping
that long, and is closed when its owner (the run) ends. Threads and processes use the blocking
``http.client``; coroutines use a small HTTP/1.1 client on ``asyncio.open_connection``.
"""

from __future__ import annotations

import asyncio
import http.client
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

MAX_DELAY_S = 60.0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "TaskScopeLoopback/1"

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without TCP_NODELAY, Nagle's algorithm
        # and the client's delayed ACK add about 40 ms to every response (measured).
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        url = urlsplit(self.path)
        if url.path != "/delay":
            self.send_error(404, "only /delay is served")
            return
        try:
            delay = float(parse_qs(url.query).get("s", ["0"])[0])
        except ValueError:
            self.send_error(400, "s must be a number of seconds")
            return
        delay = min(max(delay, 0.0), MAX_DELAY_S)
        owner: LoopbackServer = self.server.owner  # type: ignore[attr-defined]
        if owner.fail_after and owner.requests >= owner.fail_after:
            owner.failing = True
        owner.requests += 1
        if owner.failing:
            # Simulates a server that fails mid-run: the connection drops without a response.
            self.close_connection = True
            return
        if delay:
            time.sleep(delay)
        body = b"ok %.6f\n" % delay
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        owner.served += 1

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # a demo server must not spam the terminal


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        # A client that goes away mid-answer (its task was cancelled or timed out) is normal
        # here; socketserver would print a traceback to the terminal for each one.
        import sys

        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class LoopbackServer:
    """``ThreadingHTTPServer`` on 127.0.0.1, on a port the OS picks, in a daemon thread."""

    def __init__(self, fail_after: int = 0) -> None:
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.owner = self  # type: ignore[attr-defined]
        self.host, self.port = self._httpd.server_address[:2]
        self.served = 0
        self.requests = 0
        #: When True, requests are dropped without an answer (fault injection).
        self.failing = False
        #: Start failing once this many requests have arrived (0: never).
        self.fail_after = fail_after
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="taskscope-http-server",
            daemon=True,
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=2)


def parse_base(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.hostname is None or parts.port is None:
        raise ValueError(f"not a host:port URL: {url!r}")
    return parts.hostname, parts.port


class BlockingClient:
    """A keep-alive ``http.client`` connection to the loopback server."""

    def __init__(self, url: str, timeout: float = MAX_DELAY_S + 5) -> None:
        host, port = parse_base(url)
        self._conn = http.client.HTTPConnection(host, port, timeout=timeout)

    def get_delay(self, seconds: float) -> bytes:
        self._conn.request("GET", f"/delay?s={seconds:.6f}")
        resp = self._conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            raise OSError(f"HTTP {resp.status} from loopback server")
        return body

    def close(self) -> None:
        self._conn.close()


class AsyncClient:
    """A minimal HTTP/1.1 keep-alive client on ``asyncio.open_connection``."""

    def __init__(self, url: str) -> None:
        self.host, self.port = parse_base(url)
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def get_delay(self, seconds: float) -> bytes:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        req = (
            f"GET /delay?s={seconds:.6f} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            "Connection: keep-alive\r\n\r\n"
        ).encode()
        self._writer.write(req)
        await self._writer.drain()
        status_line = await self._reader.readline()
        if not status_line:
            raise ConnectionError("loopback server closed the connection without a response")
        parts = status_line.split()
        status = int(parts[1]) if len(parts) > 1 else 0
        length = 0
        while True:
            line = await self._reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        body = await self._reader.readexactly(length) if length else b""
        if status != 200:
            raise OSError(f"HTTP {status} from loopback server")
        return body

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            try:
                await self._writer.wait_closed()
            except (ConnectionError, OSError):
                pass
            self._writer = None
