"""The worker process's side of :class:`~engine.models.procpool.ProcPool`.

Keep this module's imports light: it is what a worker process loads at start (it is preloaded
into the forkserver), and a worker must never import Qt or pyqtgraph.

Protocol on the worker's duplex connection (pickled tuples):

* parent -> worker: ``(job_id, fn, args)`` to run ``fn(*args)``; ``None`` to exit.
* worker -> parent: ``("hello", t_ns)`` once, when it is up and waiting for jobs (the pool's
  start-up ends when every first worker has said it);
  ``("ev", [Event, ...])`` a batch of task events;
  ``("done", job_id, ok, value, [Event, ...])`` the job's outcome plus the events still pending;
  ``value`` is the pickled result or exception, as bytes (the parent unpickles it apart).

Events are batched: a flusher thread ships whatever is pending every ``FLUSH_S``; a task's
``started`` event goes out at once so a long task shows as running straight away.
"""

from __future__ import annotations

import os
import pickle
import threading
import time
from typing import Any

from ..context import EventBuffer, SharedFlagContext
from ..events import Event, Kind
from .execute import TaskOrder, run_blocking

#: Only progress waits for the flusher (a start goes at once, an end with the job's result,
#: a flood at MAX_BATCH), so it may sleep long: each of its turns takes the GIL from the task
#: on the main thread, which costs a CPU-bound task 0.1-0.6 ms of wall time on a 2-core VM
#: (see engine.batcher.TRICKLE_FLUSH_S); every 10 ms that was a few percent of every task.
FLUSH_S = 0.05
MAX_BATCH = 2048


class _Worker:
    """This process's worker state (one per process)."""

    def __init__(self, conn: Any, flags: Any, slot: int) -> None:
        self.conn = conn
        self.flags = flags
        self.slot = slot
        self.buffer = EventBuffer()
        self.send_lock = threading.Lock()
        self.alive = True
        #: ``(lock, started)`` shared with the parent: see :func:`run_task`.
        self.claim: Any = None
        self.job_id = 0  # the job being run now

    def put(self, ev: Event) -> None:
        self.buffer.put(ev)
        if ev.kind == Kind.STARTED or len(self.buffer) >= MAX_BATCH:
            self.flush()

    def flush(self) -> None:
        with self.send_lock:
            batch = self.buffer.take()
            if batch:
                self.conn.send(("ev", batch))

    def flusher(self) -> None:
        while self.alive:
            time.sleep(FLUSH_S)
            if len(self.buffer):
                try:
                    self.flush()
                except (OSError, EOFError, ValueError):
                    return

    def send_done(self, job_id: int, ok: bool, value: Any) -> None:
        # The value travels pickled on its own (bytes inside the message), so that a value
        # that pickles here but cannot be rebuilt in the parent (an exception whose __init__
        # takes other arguments than its args, a class the parent lacks) fails only this job,
        # there, with a clear message: the parent unpickles it separately (see ProcPool).
        with self.send_lock:
            batch = self.buffer.take()
            try:
                blob = pickle.dumps(value, pickle.HIGHEST_PROTOCOL)
            except Exception as e:  # noqa: BLE001 - an unpicklable result or exception
                value = RuntimeError(
                    f"the task's {'result' if ok else 'exception'} could not be pickled: "
                    f"{_one_line(e)}; it was {_safe_repr(value)}"
                )
                ok = False
                blob = pickle.dumps(value, pickle.HIGHEST_PROTOCOL)
            payload = pickle.dumps(("done", job_id, ok, blob, batch), pickle.HIGHEST_PROTOCOL)
            self.conn.send_bytes(payload)


def _one_line(e: BaseException) -> str:
    try:
        text = str(e)
    except Exception:  # noqa: BLE001
        text = ""
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _safe_repr(value: Any) -> str:
    try:
        r = repr(value)
    except Exception:  # noqa: BLE001
        r = f"<{type(value).__name__}>"
    return r if len(r) < 300 else r[:297] + "..."


_worker: _Worker | None = None


def run_task(order: TaskOrder) -> str:
    """Run one engine task in this worker process; return its terminal kind."""
    w = _worker
    assert w is not None, "run_task runs only inside a ProcPool worker"
    deadline = None
    if order.timeout_s is not None:
        deadline = time.monotonic_ns() + int(order.timeout_s * 1e9)
    ctx = SharedFlagContext(
        order.run_id,
        order.task_id,
        w.put,
        deadline,
        order.task_name,
        order.index,
        flags=w.flags,
        slot=w.slot,
    )
    if w.claim is not None:
        # Claim the task under the lock the parent holds when it cancels a job it sent us: if
        # the cancel came first, the parent has already reported it cancelled (it never
        # started), and we must say nothing more about it.
        lock, started = w.claim
        with lock:
            if ctx.cancelled():
                return Kind.CANCELLED
            started[w.slot] = w.job_id
    elif ctx.cancelled():
        # Cancelled while it waited in this worker's pipe (prefetched): it never starts.
        ctx.bind()
        ctx.event(Kind.CANCELLED, info={"reason": "cancelled before it started"})
        return Kind.CANCELLED
    return run_blocking(ctx, order)


def worker_main(conn: Any, flags: Any, slot: int, claim: Any = None) -> None:
    """Entry point of a worker process. ``claim``: ``(lock, started)`` (see :func:`run_task`)."""
    global _worker
    w = _Worker(conn, flags, slot)
    w.claim = claim
    _worker = w
    t = threading.Thread(target=w.flusher, name="taskscope-flusher", daemon=True)
    t.start()
    try:
        with w.send_lock:
            conn.send(("hello", time.monotonic_ns()))
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                break
            if msg is None:
                break
            job_id, fn, args = msg
            w.job_id = job_id
            if fn is not run_task and w.claim is not None:
                # A plain job is claimed as it starts, like an engine task (run_task claims
                # its own, checking for a cancel): the parent tells from the claim whether a
                # worker that died was running this job or had not reached it.
                lock, started = w.claim
                with lock:
                    started[w.slot] = job_id
            try:
                value = fn(*args)
                ok = True
            except BaseException as e:  # noqa: BLE001 - reported to the parent
                value, ok = e, False
            w.send_done(job_id, ok, value)
    finally:
        w.alive = False
        try:
            w.flush()
        except (OSError, EOFError, ValueError):
            pass
        os._exit(0)  # skip atexit handlers and non-daemon thread joins of user code
