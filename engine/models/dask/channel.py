"""The engine's own channel for event batches from Dask workers on this machine: a Unix socket.

Over the worker event log (``Worker.log_event`` -> the scheduler -> ``Client.subscribe_topic``)
each batch is a message on Dask's own streams: the worker's comm frames and writes it, the
scheduler reads it, handles its op, stores it in the topic's log and frames it again for the
client, whose loop reads and dispatches it. Workers on this machine instead write each batch
(:func:`~engine.models.dask.worker.pack`'s bytes behind a 4-byte length) on a Unix stream
socket the engine listens on, in a directory only this user can enter; the engine reads it on
its client's own event loop, so batches are still handled on the thread that handles the
scheduler's events (worker joins and losses), in the order each worker wrote them.

Measured on the 2-core VM at load 5 (other work running), 1000 no-op tasks a round, 12
rounds alternating raw ``client.map`` + ``client.gather``, an engine run over the event log
and one over this socket, one LocalCluster of 2 workers, CPU of the workers and of the
engine's process (where the scheduler runs) per task, medians: workers 1720 µs over the event
log, 1565 over the socket (raw Dask 1390); engine process 1390 and 1285 (raw 970); per round,
the socket saved a median 155 µs of the workers' CPU and 145 µs of the engine's. At load 2 the
same comparison showed no CPU saving (workers 1395 and 1450 µs, engine 1125 and 1165, raw 1215
and 915: there most batches shared a write with Dask's own messages anyway); what the socket
gives at any load is the start's trip: ``pipeline.dask.started_latency`` 0.3-0.4 ms median
against 1.0-1.4 ms over the event log (``taskscope bench``'s Dask figures, 3 runs each).

A worker that cannot reach the socket (another machine or container, another user, no Unix
sockets on the platform) keeps the event log; so does one whose connection broke.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import struct
import sys
import tempfile
from collections.abc import Callable
from typing import Any

#: Length of one batch's bytes, before them.
HEAD = struct.Struct("!I")
#: One entry of a worker process's start log (see :func:`record_start`): the task id, when it
#: started (``engine.clock.now_ns``, the clock every process on this machine shares) and the
#: native id of the thread that runs it.
START = struct.Struct("<qqq")
#: A worker process's start log, in the channel's directory (the pid after the dash).
START_LOG = "started-"

_start_logs: dict[str, int] = {}  # the channel's directory -> this process's log, open


def record_start(channel: str, task_id: int, t_ns: int, thread_id: int) -> None:
    """Note in this worker process's start log, beside the channel's socket, that it starts
    ``task_id``: one ``write`` to a file, done before the task runs, so it outlives a process
    that dies at once. A start otherwise reaches the engine with the worker's next batch, up to
    ``FLUSH_S`` later, and a worker that died in between took it along: the engine took the
    task for one the worker never started and ran it again (see
    :meth:`EventServer.started_by`). Best effort: no directory (another machine), no log.
    Called under the worker's task lock."""
    if not channel.startswith("unix:"):
        return
    d = os.path.dirname(channel[len("unix:"):])
    fd = _start_logs.get(d)
    if fd is None:
        try:
            fd = os.open(os.path.join(d, f"{START_LOG}{os.getpid()}"),
                         os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError:
            fd = -1
        _start_logs[d] = fd
    if fd >= 0:
        try:
            os.write(fd, START.pack(task_id, t_ns, thread_id))  # one small append: whole
        except OSError:
            pass

#: Unix sockets as asyncio serves them (not on Windows: workers use the event log there).
SUPPORTED = sys.platform != "win32" and hasattr(asyncio.AbstractEventLoop, "create_unix_server")


class _Reader(asyncio.Protocol):
    """One worker's connection: split the stream into batches, hand each on."""

    def __init__(self, on_batch: Callable[[bytes], None], live: set[Any]) -> None:
        self._on_batch = on_batch
        self._buf = bytearray()
        self._live = live
        self._transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self._transport = transport
        self._live.add(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._live.discard(self._transport)

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        at = 0
        end = len(buf)
        while end - at >= 4:
            (n,) = HEAD.unpack_from(buf, at)
            if end - at - 4 < n:
                break
            payload = bytes(buf[at + 4:at + 4 + n])
            at += 4 + n
            try:
                self._on_batch(payload)
            except Exception:  # noqa: BLE001 - one bad batch must not close the channel
                pass
        if at:
            del buf[:at]


class EventServer:
    """The engine's end: a Unix socket served on the client's event loop (see the module
    docstring). :meth:`open` and :meth:`close` are called from any thread but that loop."""

    def __init__(self, client: Any, on_batch: Callable[[bytes], None]) -> None:
        self._client = client
        self._on_batch = on_batch
        self._dir: str | None = None
        self._server: asyncio.AbstractServer | None = None
        self._live: set[Any] = set()  # the workers' open connections (the loop's thread)
        #: ``unix:PATH`` for workers, or None when there is no channel.
        self.address: str | None = None

    def open(self) -> str | None:
        """Start serving; the address to give workers, or None (the event log only)."""
        if not SUPPORTED:
            return None
        d = tempfile.mkdtemp(prefix="taskscope-dask-")  # 0700: only this user gets in
        path = os.path.join(d, "events")

        async def serve() -> asyncio.AbstractServer:
            loop = asyncio.get_running_loop()
            return await loop.create_unix_server(lambda: _Reader(self._on_batch, self._live), path)

        try:
            self._server = self._client.sync(serve)
        except Exception:  # noqa: BLE001 - e.g. a path too long for a Unix socket
            shutil.rmtree(d, ignore_errors=True)
            return None
        self._dir = d
        self.address = f"unix:{path}"
        return self.address

    def started_by(self, task_id: int) -> tuple[int, int, int] | None:
        """``(pid, t_ns, thread id)`` of a worker process on this machine that noted it started
        ``task_id`` (:func:`record_start`), or None. Read only when Dask says a task's worker
        died before the engine heard it start: rare, and each log is 24 bytes a task."""
        d = self._dir
        if d is None:
            return None
        try:
            names = [n for n in os.listdir(d) if n.startswith(START_LOG)]
        except OSError:
            return None
        for name in names:
            try:
                pid = int(name[len(START_LOG):])
                with open(os.path.join(d, name), "rb") as f:
                    data = f.read()
            except (OSError, ValueError):
                continue
            for tid, t_ns, thread_id in START.iter_unpack(data[:len(data) - len(data) % START.size]):
                if tid == task_id:
                    return pid, t_ns, thread_id
        return None

    def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            async def stop() -> None:
                server.close()
                for t in list(self._live):
                    t.close()

            try:
                self._client.sync(stop)
            except Exception:  # noqa: BLE001 - the loop is gone; the socket goes with it
                pass
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
