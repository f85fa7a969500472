"""The Dask worker's side of the ``dask`` model: the task function, its events and its flags.

This module runs inside Dask worker processes (it is imported there when the first task
arrives, by reference from the pickled function). Keep its imports light and Qt-free: a worker
must never import Qt.

* :func:`run_task` is what the engine submits. It builds the task's context on the worker,
  claims the task's start under this process's lock (see below), runs the workload through
  the same :func:`~engine.models.execute.run_blocking` every model uses, and returns the
  terminal kind.
* Events go back **batched**: on the engine's own socket when this worker can reach it (it
  runs on the engine's machine, :mod:`~engine.models.dask.channel`), else over the worker
  event log, ``Worker.log_event(topic, batch)``, which the engine's client receives through
  ``Client.subscribe_topic``. A batch leaves from the worker's own event loop at once when
  none left in the last ``FLUSH_S``, else ``FLUSH_S`` after the last one: a task that starts on an idle worker shows running about
  1 ms later, as before, and a stream of short tasks costs one message per ``FLUSH_S`` per
  worker instead of two per task. Each message cost the worker about 150 µs of CPU and the
  scheduler's process about 110 µs (a no-op Dask task that logs two events against one that
  logs none, on 2 local workers); the events keep the times they were stamped with. A batch
  travels as one ``bytes`` value (:func:`pack`). What this gives up: an ending may now reach
  the engine a few ms after Dask's own "task finished" (the runner waits ``LOST_ENDING_S``), and
  a worker that dies within ``FLUSH_S`` of a task's start, right after another task's events
  left, takes that start with it (and an ending just before it). On the engine's machine a
  task's start and ending are also written to this process's start log
  (:func:`~engine.models.dask.channel.record_start`, ``record_end``), which the engine reads
  when Dask says the worker died: a task that started is not submitted again, and one that
  ended is not reported as dying with its worker. A worker on another machine has no start
  log, and that corner stays there.
* Cancel flags live here, per worker process, keyed by task id. :func:`set_flags` (run on
  every worker by ``Client.run``) flags a running task's context (the task stops at its next
  check) or records the flag for a task this worker has not started; a task whose flag is
  already set when it comes to start ends **silently**, because the engine reported it
  cancelled (the engine does so only when no worker said it had started it; both sides decide
  under this process's lock, as the process pool's claim lock does).
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from typing import Any

from msgpack import packb as _packb
from msgpack import unpackb as _unpackb

from ...clock import now_ns
from ...context import FlagContext
from ...events import Event
from ..execute import TaskOrder, run_blocking
from .channel import HEAD, SUPPORTED, record_end, record_start

#: At most one batch per this long per worker process (the first one at once).
FLUSH_S = 0.005
#: Events per message at most: the scheduler keeps the last messages of a topic in memory
#: (``distributed.admin.low-level-log-length``), so a message must stay small.
MAX_BATCH = 256

_lock = threading.Lock()
#: Task id -> reason: a cancel that reached this worker before the task started here.
_flags: dict[int, str] = {}
#: Task id -> its context, while it runs here.
_running: dict[int, FlagContext] = {}
#: Run id -> ids of the tasks that started here (answers "did it start?" after it ended).
_started: dict[int, set[int]] = {}
#: Event topic -> this process's outbox for it (one topic per engine session).
_outboxes: dict[str, _Outbox] = {}


class DaskContext(FlagContext):
    """A task context on a Dask worker: its lane names the worker's address with the thread."""

    __slots__ = ("address",)

    def __init__(self, *args: Any, address: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.address = address

    def bind(self) -> None:
        super().bind()
        self._thread = f"{self.address} {self._thread}"


class _Outbox:
    """This worker process's pending events for one topic, shipped in batches from the
    worker's own event loop: at once when nothing was shipped in the last ``FLUSH_S``, else
    ``FLUSH_S`` after the last shipment (see the module docstring for why)."""

    def __init__(self, worker: Any, topic: str, channel: str | None = None) -> None:
        self.worker = worker
        self.topic = topic
        self.address: str = worker.address
        self._loop = worker.loop
        self._q: deque[Event] = deque()
        self._armed = False  # a flush is scheduled on the loop (or running)
        self._arm_lock = threading.Lock()
        self._last = 0.0  # when the last batch left (the loop's thread only)
        #: The engine's own socket (:mod:`~engine.models.dask.channel`) once connected; None
        #: while connecting (``_connecting``) and when batches go over the event log.
        self._transport: Any = None
        self._connecting = False
        if channel is not None and channel.startswith("unix:") and SUPPORTED:
            self._connecting = True
            try:
                self._loop.add_callback(self._connect, channel[len("unix:"):])
            except RuntimeError:
                self._connecting = False

    async def _connect(self, path: str) -> None:
        """On the loop: reach the engine's socket; on any failure keep the event log."""
        import asyncio

        box = self

        class Link(asyncio.Protocol):
            def connection_lost(self, exc: Exception | None) -> None:
                box._transport = None  # the engine closed it: back to the event log

        try:
            transport, _ = await asyncio.get_running_loop().create_unix_connection(Link, path)
        except Exception:  # noqa: BLE001 - not this machine's engine, no permission, ...
            transport = None
        self._transport = transport
        self._connecting = False
        if self._q:
            self.flush()

    def put(self, ev: Event) -> None:
        """Queue an event (any thread); the first of a batch schedules its flush."""
        self._q.append(ev)
        if self._armed:
            return
        with self._arm_lock:
            if self._armed:
                return
            self._armed = True
        try:
            self._loop.add_callback(self._schedule)
        except RuntimeError:  # the worker's loop is closed: it is going away, and so is this
            pass

    def _schedule(self) -> None:
        """On the loop: flush now, or when ``FLUSH_S`` has passed since the last batch."""
        wait = self._last + FLUSH_S - time.monotonic()
        if wait <= 0:
            self.flush()
        else:
            self._loop.call_later(wait, self.flush)

    def flush(self) -> None:
        """On the loop: ship everything queued (a batch is one message on the worker's stream
        to the scheduler, which already carries Dask's own messages in batches)."""
        self._armed = False  # before draining: an event put from now on schedules a flush
        if self._connecting:
            return  # _connect flushes when it is done
        q = self._q
        try:
            while q:
                n = min(len(q), MAX_BATCH)
                batch = [q.popleft() for _ in range(n)]
                data = pack(self.address, batch)
                t = self._transport
                if t is not None and not t.is_closing():
                    t.write(HEAD.pack(len(data)) + data)
                else:
                    self.worker.log_event(self.topic, data)
        except Exception:  # noqa: BLE001 - the worker is closing; nothing to ship to
            q.clear()
        self._last = time.monotonic()


def pack(address: str, batch: list[Event]) -> bytes:
    """One batch as one ``bytes`` value, msgpack of ``(address, [event tuple, ...])``: Dask
    carries a bytes value as it is, where a list of tuples was walked element by element on
    the worker (``log_event``'s msgpack check, then ``sizeof`` of every message its stream
    writes) and again in the scheduler on the way to the client. Through that path in one
    process (the worker's check, ``sizeof`` and ``dumps``; the scheduler's ``loads``,
    ``sizeof`` and ``dumps``; the client's ``loads`` and ``Event(*e)``), a batch of 3 events,
    a no-op task's usual, took 180 µs as tuples and 45 µs as bytes; 100 events 856 and 174 µs
    (best of 5 x 3000 on the 2-core VM). An info dict that msgpack cannot carry goes as its
    repr (see :func:`_plain`)."""
    try:
        return _packb((address, batch))
    except TypeError:
        return _packb((address, [_plain(e) for e in batch]))


def unpack(data: bytes) -> tuple[str, list[tuple]]:
    """``(address, [event tuple, ...])`` from :func:`pack`'s bytes (as Dask's own msgpack
    decoding reads them: arrays as tuples, any map key)."""
    return _unpackb(data, use_list=False, strict_map_key=False)


def _plain(ev: tuple) -> tuple:
    info = ev[-1]
    if info is None:
        return ev
    return (*ev[:-1], {str(k): v if isinstance(v, (str, int, float, bool, type(None))) else repr(v)
                       for k, v in info.items()})


def _outbox_for(topic: str, channel: str | None) -> _Outbox:
    box = _outboxes.get(topic)
    if box is None:
        from distributed import get_worker

        with _lock:
            box = _outboxes.get(topic)
            if box is None:
                box = _outboxes[topic] = _Outbox(get_worker(), topic, channel)
    return box


def run_task(order: TaskOrder, topic: str, channel: str | None = None) -> str:
    """Run one engine task on this Dask worker; return its terminal kind ("" if it was
    cancelled before it started: the engine has reported that already). Its events go to
    ``channel`` (the engine's own socket) when this worker can reach it, else to ``topic``
    on the worker event log."""
    box = _outbox_for(topic, channel)
    deadline = None
    if order.timeout_s is not None:
        deadline = time.monotonic_ns() + int(order.timeout_s * 1e9)
    tid = order.task_id
    ctx = DaskContext(order.run_id, tid, box.put, deadline, "", order.index, address=box.address)
    with _lock:
        if _flags.pop(tid, None) is not None:
            return ""
        _running[tid] = ctx
        _started.setdefault(order.run_id, set()).add(tid)
        if channel is not None:  # outlives this process (see record_start)
            record_start(channel, tid, now_ns(), threading.get_native_id())
    try:
        kind = run_blocking(ctx, order)
        if channel is not None:  # its ending, as its start (see record_end)
            record_end(channel, tid, now_ns(), kind)
        return kind
    finally:
        with _lock:
            _running.pop(tid, None)


def set_flags(task_ids: list[int], reason: str) -> list[int]:
    """Cancel these tasks on this worker: flag the running ones, remember the rest. Returns
    the ids that started here (running or already ended), for which the flag is too late to
    keep them from starting."""
    started = []
    with _lock:
        for tid in task_ids:
            ctx = _running.get(tid)
            if ctx is not None:
                ctx.request_cancel(reason)
                started.append(tid)
            elif any(tid in s for s in _started.values()):
                started.append(tid)
            else:
                _flags[tid] = reason
    return started


def forget_run(run_id: int, first: int, n: int) -> None:
    """Drop what this worker keeps about a run that ended (its flags and started ids)."""
    with _lock:
        _started.pop(run_id, None)
        for tid in [t for t in _flags if first <= t < first + n]:
            del _flags[tid]


def identify() -> dict[str, Any]:
    """Who this worker is: its pid and process start time (to tell whether the engine can
    read it with psutil, i.e. it runs on this machine in this pid namespace), its boot id
    (same boot id: same CLOCK_MONOTONIC), and its host name."""
    import socket

    import psutil

    boot = ""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            boot = f.read().strip()
    except OSError:
        pass
    return {"pid": os.getpid(), "created": psutil.Process().create_time(), "boot_id": boot,
            "host": socket.gethostname()}


def clock() -> int:
    """This worker's monotonic clock (for the engine's offset measurement)."""
    return time.monotonic_ns()


def modules_loaded(names: list[str]) -> list[str]:
    """Which of these modules this worker process has imported (tests: no Qt in workers)."""
    import sys

    return [n for n in names if n in sys.modules]
