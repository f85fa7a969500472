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
#: native id of the thread that runs it; for an ending, minus the task id, when it ended and
#: its kind's place in :data:`ENDINGS`.
START = struct.Struct("<qqq")
#: The endings a start log notes, by place.
ENDINGS = ("finished", "failed", "cancelled", "timed_out")
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
    _log(channel, task_id, t_ns, thread_id)


def record_end(channel: str, task_id: int, t_ns: int, kind: str) -> None:
    """Note in this worker process's start log that ``task_id`` ended (``kind``, one of
    :data:`ENDINGS`): its ending event leaves with the worker's next batch, and a worker that
    dies before that took it along, so the engine took a task that finished for one that died
    with its worker (see :meth:`EventServer.logged`)."""
    if kind in ENDINGS:
        _log(channel, -task_id, t_ns, ENDINGS.index(kind))


def _log(channel: str, a: int, b: int, c: int) -> None:
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
            os.write(fd, START.pack(a, b, c))  # one small append: whole or not at all
        except OSError:
            pass

#: Unix sockets as asyncio serves them (not on Windows: workers use the event log there).
SUPPORTED = sys.platform != "win32" and hasattr(asyncio.AbstractEventLoop, "create_unix_server")


class _Reader(asyncio.Protocol):
    """One worker's connection: split the stream into batches, hand each on. It learns its
    worker's address from the batches (``on_batch`` returns it) for :meth:`EventServer.
    after_drained`."""

    def __init__(self, on_batch: Callable[[bytes], str | None], live: set[Any],
                 by_address: dict[str, _Reader]) -> None:
        self._on_batch = on_batch
        self._buf = bytearray()
        self._live = live
        self._by_address = by_address
        self._transport: Any = None
        self.address: str | None = None
        #: Called once this connection has closed: everything its worker sent has been read.
        self.on_close: list[Callable[[], None]] = []

    def connection_made(self, transport: Any) -> None:
        self._transport = transport
        self._live.add(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._live.discard(self._transport)
        if self.address is not None and self._by_address.get(self.address) is self:
            del self._by_address[self.address]
        waiting, self.on_close = self.on_close, []
        for fn in waiting:
            fn()

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
                address = self._on_batch(payload)
            except Exception:  # noqa: BLE001 - one bad batch must not close the channel
                address = None
            if address is not None and address != self.address:
                self.address = address
                self._by_address[address] = self
        if at:
            del buf[:at]


class EventServer:
    """The engine's end: a Unix socket served on the client's event loop (see the module
    docstring). :meth:`open` and :meth:`close` are called from any thread but that loop."""

    #: How long :meth:`after_drained` waits at most for a lost worker's connection to close.
    DRAIN_S = 1.0

    def __init__(self, client: Any, on_batch: Callable[[bytes], str | None]) -> None:
        self._client = client
        self._on_batch = on_batch
        self._dir: str | None = None
        self._server: asyncio.AbstractServer | None = None
        self._live: set[Any] = set()  # the workers' open connections (the loop's thread)
        self._by_address: dict[str, _Reader] = {}  # worker address -> its connection
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
            return await loop.create_unix_server(
                lambda: _Reader(self._on_batch, self._live, self._by_address), path)

        try:
            self._server = self._client.sync(serve)
        except Exception:  # noqa: BLE001 - e.g. a path too long for a Unix socket
            shutil.rmtree(d, ignore_errors=True)
            return None
        self._dir = d
        self.address = f"unix:{path}"
        return self.address

    def after_drained(self, address: str, fn: Callable[[], None]) -> None:
        """Call ``fn`` once everything the worker at ``address`` wrote on its connection has
        been read: at once if it has none open, else when it closes (a dead worker's closes at
        once), after ``DRAIN_S`` at most. On the client's loop thread. Dask tells the engine
        a worker is gone over the scheduler's connection, and the worker's last batch comes
        over this one: the two race, and a task whose ending was in that batch was taken for
        one that died with its worker (and its own ending then came as a second one)."""
        reader = self._by_address.get(address)
        if reader is None:
            fn()
            return
        done = False

        def once() -> None:
            nonlocal done
            if not done:
                done = True
                fn()

        reader.on_close.append(once)
        asyncio.get_running_loop().call_later(self.DRAIN_S, once)

    def logged(self, task_id: int) -> tuple[tuple[int, int, int] | None,
                                            tuple[int, int, str] | None]:
        """What the start logs of this machine's workers say of ``task_id``: its start,
        ``(pid, t_ns, thread id)``, and its ending, ``(pid, t_ns, kind)``, each None when no
        log has it (:func:`record_start`, :func:`record_end`). Read only when Dask says a
        worker died: rare, and each log is 48 bytes a task."""
        start = end = None
        d = self._dir
        if d is None:
            return None, None
        try:
            names = [n for n in os.listdir(d) if n.startswith(START_LOG)]
        except OSError:
            return None, None
        for name in names:
            try:
                pid = int(name[len(START_LOG):])
                with open(os.path.join(d, name), "rb") as f:
                    data = f.read()
            except (OSError, ValueError):
                continue
            whole = len(data) - len(data) % START.size
            for a, t_ns, c in START.iter_unpack(data[:whole]):
                if a == task_id:
                    start = (pid, t_ns, c)
                elif a == -task_id and 0 <= c < len(ENDINGS):
                    end = (pid, t_ns, ENDINGS[c])
        return start, end

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
