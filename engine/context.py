"""What a running task sees: its identity, its cancel flag, its deadline and a way to report.

Every workload receives a :class:`TaskContext` and calls :meth:`TaskContext.progress` (or
:meth:`TaskContext.check`) every few milliseconds of work. That single call records progress and
raises :class:`TaskCancelled` or :class:`TaskTimedOut` when the task should stop.

How a cancel reaches a task depends on where it runs:

* in this process (sequential, threads, asyncio): a flag on the context, plus a
  :class:`threading.Event` so that :meth:`TaskContext.sleep` wakes at once;
* in a worker process: a slot in a shared-memory array that holds the id of the task to cancel
  (see :class:`SharedFlagContext`); reading it costs about 0.1 µs.

Neither can stop a thread that never calls back into its context: Python has no safe way to
kill a thread. Such a task stays in ``cancel_requested`` until it returns. Process tasks can be
force-cancelled instead, which kills their worker.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from .clock import NS_PER_MS, now_ns
from .events import Event, Kind


class TaskCancelled(BaseException):
    """Raised inside a task whose cancellation was requested.

    A ``BaseException`` like :class:`asyncio.CancelledError`, so that ``except Exception`` in a
    workload does not swallow it by accident.
    """


class TaskTimedOut(BaseException):
    """Raised inside a task that ran past its deadline."""


def _load_sched_getcpu() -> Callable[[], int]:
    """``sched_getcpu()`` from libc where it exists (Linux), else a function returning -1."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        fn = libc.sched_getcpu
        fn.restype = ctypes.c_int
        fn.argtypes = []
        if fn() >= 0:
            return fn
    except (OSError, AttributeError):
        pass
    return lambda: -1


#: The CPU core the calling thread is running on now, or -1 where the OS cannot tell.
current_core: Callable[[], int] = _load_sched_getcpu()

#: This process's id, read once (and again in a forked child), not by a system call per task.
_pid = os.getpid()


def _forked() -> None:
    global _pid
    _pid = os.getpid()


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_forked)

_PROGRESS = Kind.PROGRESS

#: Builds an :class:`Event` from a full tuple of its fields: what ``Event(...)`` does, without
#: the namedtuple's Python-level ``__new__`` (0.2 µs instead of 0.5, twice a task).
_new_event = tuple.__new__


def current_task_name() -> str:
    """The name of the running asyncio task, or "" outside one."""
    loop = asyncio._get_running_loop()  # noqa: SLF001 - asyncio exports it; None, no raise
    if loop is None:  # a worker thread: no exception raised and caught per task (0.8 µs)
        return ""
    task = asyncio.current_task(loop)
    return task.get_name() if task is not None else ""


class EventBuffer:
    """Events waiting to be shipped in a batch.

    Producers (any thread) call :meth:`put`; ``deque.append`` and ``popleft`` are atomic, so no
    lock is needed. A flusher calls :meth:`take` and ships the batch.
    """

    __slots__ = ("_q", "dozing", "sleeping", "wake")

    def __init__(self, wake: threading.Event | None = None) -> None:
        self._q: deque[Event] = deque()
        #: Set by a flusher that sleeps until the next event; ``put`` then sets ``wake``.
        self.sleeping = False
        #: Set by a flusher that sleeps long while events only trickle in; ``put`` sets
        #: ``wake`` for any event but progress (a task that starts or ends shows at once).
        self.dozing = False
        self.wake = wake

    def put(self, ev: Event) -> None:
        self._q.append(ev)
        if (self.sleeping or (self.dozing and ev.kind != _PROGRESS)) and self.wake is not None:
            self.wake.set()

    def urgent(self) -> bool:
        """Whether an event other than progress is waiting (a flusher about to doze checks)."""
        return any(ev.kind != _PROGRESS for ev in list(self._q))

    def __len__(self) -> int:
        return len(self._q)

    def take(self) -> list[Event]:
        q = self._q
        n = len(q)
        return [q.popleft() for _ in range(n)]


class TaskContext:
    """Identity, cancellation, deadline and reporting for one task run by one worker."""

    #: How often :meth:`progress` records an event, at most (the check itself always runs).
    PROGRESS_EVERY_NS = 10 * NS_PER_MS

    __slots__ = (
        "run_id",
        "task_id",
        "index",
        "deadline_ns",
        "task_name",
        "_put",
        "_pid",
        "_tid",
        "_thread",
        "_next_progress_ns",
        "cancel_reason",
    )

    def __init__(
        self,
        run_id: int,
        task_id: int,
        put: Callable[[Event], None],
        deadline_ns: int | None = None,
        task_name: str = "",
        index: int = 0,
    ) -> None:
        self.run_id = run_id
        self.task_id = task_id
        self.index = index
        self.deadline_ns = deadline_ns
        self.task_name = task_name
        self._put = put
        self._pid = 0
        self._tid = 0
        self._thread = ""
        self._next_progress_ns = 0
        self.cancel_reason = ""

    # -- identity ---------------------------------------------------------------------
    def bind(self) -> None:
        """Record the calling thread as this task's worker. Call it on the worker, at start."""
        self._pid = _pid
        self._tid = threading.get_native_id()
        self._thread = threading.current_thread().name
        if not self.task_name:
            self.task_name = current_task_name()

    def event(self, kind: str, value: float = 0.0, info: dict[str, Any] | None = None) -> Event:
        """Record an event stamped now, on this worker, and return it."""
        ev = _new_event(Event, (
            self.run_id,
            self.task_id,
            kind,
            now_ns(),
            self._pid,
            self._tid,
            self._thread,
            self.task_name,
            current_core(),
            value,
            info,
        ))
        self._put(ev)
        return ev

    # -- cancellation -----------------------------------------------------------------
    def cancelled(self) -> bool:  # pragma: no cover - overridden
        raise NotImplementedError

    def check(self) -> None:
        """Raise if the task should stop: cancelled, or past its deadline."""
        if self.cancelled():
            raise TaskCancelled(self.cancel_reason or "cancelled")
        d = self.deadline_ns
        if d is not None and now_ns() >= d:
            raise TaskTimedOut()

    def progress(self, fraction: float) -> None:
        """Report progress (0..1) and check for cancellation. Cheap enough to call every 1 ms."""
        self.check()
        t = now_ns()
        if t >= self._next_progress_ns:
            self._next_progress_ns = t + self.PROGRESS_EVERY_NS
            self.event(Kind.PROGRESS, min(1.0, max(0.0, fraction)))

    def remaining_s(self, seconds: float) -> tuple[float, bool]:
        """How long a wait of ``seconds`` may last before the deadline, and whether it is cut."""
        d = self.deadline_ns
        if d is None:
            return seconds, False
        left = (d - now_ns()) / 1e9
        if left < seconds:
            return max(0.0, left), True
        return seconds, False

    def sleep(self, seconds: float) -> None:
        """Block for ``seconds`` (a real ``time.sleep`` or wait), waking early to cancel."""
        raise NotImplementedError  # pragma: no cover - overridden

    async def asleep(self, seconds: float) -> None:
        """``asyncio.sleep`` that honours the context's own cancel flag and deadline too."""
        self.check()
        wait, cut = self.remaining_s(seconds)
        if wait > 0:
            await asyncio.sleep(wait)
        if cut:
            raise TaskTimedOut()
        self.check()


class FlagContext(TaskContext):
    """A context for tasks in this process: a plain flag plus an Event to wake sleepers."""

    __slots__ = ("_flag", "_wake")

    def __init__(
        self,
        run_id: int,
        task_id: int,
        put: Callable[[Event], None],
        deadline_ns: int | None = None,
        task_name: str = "",
        index: int = 0,
    ) -> None:
        # Its arguments spelled out, not forwarded as *args/**kwargs: one context a task,
        # and the forwarding cost 0.4 µs, half of building it.
        TaskContext.__init__(self, run_id, task_id, put, deadline_ns, task_name, index)
        self._flag = False
        # Created by the first long sleep only: most tasks never make one, and an Event costs
        # more than the rest of a no-op task's bookkeeping.
        self._wake: threading.Event | None = None

    def request_cancel(self, reason: str = "cancelled") -> None:
        self.cancel_reason = reason
        self._flag = True  # set before reading _wake; sleep() creates _wake before reading _flag
        wake = self._wake
        if wake is not None:
            wake.set()

    def cancelled(self) -> bool:
        return self._flag

    #: Waits up to this long are one plain ``time.sleep``; a cancel is seen when it ends (the
    #: bound a process task's sleep gives, :attr:`SharedFlagContext.SLICE_S`). Longer ones
    #: wait on an Event that a cancel sets. ``Event.wait`` overshot a 1 ms wait by 10-20 µs
    #: more than ``time.sleep`` (a Condition, a lock made per wait, Python on each wake),
    #: and making the Event cost 4 µs: measured on a 2-core VM, medians of 1,000 waits.
    SHORT_S = 0.004

    def sleep(self, seconds: float) -> None:
        self.check()
        wait, cut = self.remaining_s(seconds)
        if wait > self.SHORT_S:
            wake = self._wake
            if wake is None:
                wake = self._wake = threading.Event()
                # request_cancel sets the flag, then reads _wake: one that read None before
                # this line set no Event, but its flag shows here.
                self.check()
            if wake.wait(wait):
                self.check()
        elif wait > 0:
            time.sleep(wait)
        if cut:
            raise TaskTimedOut()
        self.check()


class SharedFlagContext(TaskContext):
    """A context for a task in a worker process.

    ``flags`` is a shared-memory array with two entries per worker. The parent writes a task
    id into one of this worker's entries to cancel that task; the worker compares both with
    its own id. A stale id (from a task that already ended) never matches another task.
    """

    __slots__ = ("_flags", "_slot")

    #: Longest single ``time.sleep`` inside :meth:`sleep`, so a cancel is seen within it.
    SLICE_S = 0.004

    def __init__(self, *args: Any, flags: Any, slot: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._flags = flags
        self._slot = slot

    def cancelled(self) -> bool:
        f = self._flags
        i = 2 * self._slot  # two entries per worker: see ProcPool
        tid = self.task_id
        return f[i] == tid or f[i + 1] == tid

    def sleep(self, seconds: float) -> None:
        self.check()
        wait, cut = self.remaining_s(seconds)
        end = time.monotonic() + wait
        while True:
            left = end - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(left, self.SLICE_S))
            if self.cancelled():
                raise TaskCancelled("cancelled")
        if cut:
            raise TaskTimedOut()
        self.check()


def error_info(exc: BaseException) -> dict[str, Any]:
    """The failure details an event carries: type, message, traceback (all plain strings)."""
    import traceback

    # Never raises: a hostile exception (its __str__ raises, say) must still end its task as
    # failed. Were this to raise, the task would get no terminal event at all.
    try:
        message = str(exc)
    except Exception as e:  # noqa: BLE001
        message = f"<str() of the exception failed: {type(e).__name__}>"
    try:
        tb = "".join(traceback.format_exception(exc))
    except Exception:  # noqa: BLE001
        tb = ""
    return {"type": type(exc).__qualname__, "message": message, "traceback": tb}
