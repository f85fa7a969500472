"""What runs inside each sub-interpreter: the guarded call, the task, its events and its flag.

This module is imported inside every worker interpreter of an ``interpreters`` run. Keep its
imports light, and only of modules that load in a sub-interpreter (psutil and NumPy do not).

* :func:`call` is the only function the pool is ever given: bytes in, bytes out, whatever
  happens (see :mod:`engine.models.interpreters` for why).
* :func:`hello` is each interpreter's first call: it takes its slot, its pipe and the run's
  cancel flags, adds the engine's ``sys.path`` entries it lacks (what the main interpreter
  added at run time is not seen here), waits until every interpreter of the pool has said
  hello (so each takes exactly one), and says who it is.
* :func:`run_task` runs one engine task through the same
  :func:`~engine.models.execute.run_blocking` every model uses.

Events go out through this interpreter's own pipe as length-prefixed pickled batches, written
from the task's thread (a sub-interpreter cannot have daemon threads, and needs no flusher): a
start, a cancel request and an ending at once, progress at most every ``FLUSH_S``, a flood at
``MAX_BATCH``. One writer per pipe, so batches never interleave.
"""

from __future__ import annotations

import ctypes
import os
import pickle
import struct
import sys
import threading
import time
from typing import Any

from ...context import SharedFlagContext
from ...events import Event, Kind
from ..execute import TaskOrder, run_blocking

#: Progress waits at most this long in the buffer (a start or an ending goes at once).
FLUSH_S = 0.05
MAX_BATCH = 2048
#: How long the interpreters of a pool wait for each other to say hello.
HELLO_TIMEOUT_S = 60.0
FRAME = struct.Struct("<I")


def _one_line(e: BaseException) -> str:
    """``Type: message`` on one line. A multi-line message (NumPy's import error is 25 lines)
    gives its line about sub-interpreters if it has one, else its first."""
    try:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    except Exception:  # noqa: BLE001 - a hostile __str__
        lines = []
    line = next((ln for ln in lines if "interpreter" in ln), lines[0] if lines else "")
    return f"{type(e).__name__}: {line}" if line else type(e).__name__


def call(blob: bytes) -> bytes:
    """The guard: run ``fn(*args)`` from ``blob`` (pickled ``(fn, args)``) and return the
    pickled ``(ok, value)``: the result, or the exception (with its traceback as text, which
    pickling drops). Never raises, and never returns anything but bytes."""
    try:
        fn, args = pickle.loads(blob)
        out: tuple[bool, Any] = (True, fn(*args))
    except BaseException as e:  # noqa: BLE001 - everything goes back as data
        try:
            import traceback

            e.taskscope_traceback = "".join(traceback.format_exception(e))  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001
            pass
        out = (False, e)
    try:
        return pickle.dumps(out, pickle.HIGHEST_PROTOCOL)
    except BaseException as e:  # noqa: BLE001 - an unpicklable result or exception
        what = "result" if out[0] else "exception"
        try:
            shown = repr(out[1])
        except Exception:  # noqa: BLE001
            shown = f"<{type(out[1]).__name__}>"
        return pickle.dumps((False, RuntimeError(
            f"the task's {what} could not be pickled to leave its sub-interpreter: "
            f"{_one_line(e)}; it was {shown[:200]}")), pickle.HIGHEST_PROTOCOL)


class _Interp:
    """This interpreter's worker state (one per interpreter; its tasks run one at a time)."""

    def __init__(self, slot: int, fd: int, flags: Any, lane: str) -> None:
        self.slot = slot
        self.fd = fd
        self.flags = flags
        self.lane = lane
        self.buffer: list[Event] = []
        self.flushed = time.monotonic()

    def put(self, ev: Event) -> None:
        self.buffer.append(ev)
        if (ev.kind != Kind.PROGRESS or len(self.buffer) >= MAX_BATCH
                or time.monotonic() - self.flushed >= FLUSH_S):
            self.flush()

    def flush(self) -> None:
        self.flushed = time.monotonic()
        if not self.buffer:
            return
        batch, self.buffer = self.buffer, []
        blob = pickle.dumps(batch, pickle.HIGHEST_PROTOCOL)
        data = memoryview(FRAME.pack(len(blob)) + blob)
        while data:  # a blocking pipe: os.write returns short only if interrupted
            data = data[os.write(self.fd, data):]


_me: _Interp | None = None


class InterpContext(SharedFlagContext):
    """A task's context in a sub-interpreter: its cancel flag is its own byte of the run's
    flags (set by the engine; read at every check, about 0.1 µs), and its lane is named after
    its interpreter (``threading.current_thread()`` here is a new dummy for every call)."""

    __slots__ = ("lane",)

    def __init__(self, *args: Any, lane: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lane = lane

    def bind(self) -> None:
        super().bind()
        self._thread = self.lane

    def cancelled(self) -> bool:
        return self._flags[self.index] != 0


def hello(slot: int, fd: int, flags_addr: int, n_flags: int, seen_addr: int, n: int,
          paths: list[str]) -> tuple[int, int]:
    """This interpreter's first call (see the module docstring): ``(native thread id,
    interpreter id)``. ``seen_addr``: ``n`` bytes, one per interpreter, set as each says hello."""
    global _me
    for p in paths:
        if p not in sys.path:
            sys.path.append(p)
    from . import interpreters_module

    iid = int(interpreters_module().get_current().id)
    flags = (ctypes.c_ubyte * n_flags).from_address(flags_addr)
    _me = _Interp(slot, fd, flags, f"interp-{iid}")
    seen = (ctypes.c_ubyte * n).from_address(seen_addr)
    seen[slot] = 1
    end = time.monotonic() + HELLO_TIMEOUT_S
    while not all(seen):
        if time.monotonic() > end:
            raise TimeoutError(f"only {sum(seen)} of {n} interpreters started within "
                               f"{HELLO_TIMEOUT_S:g} s")
        time.sleep(0.001)
    return threading.get_native_id(), iid


def run_task(order: TaskOrder) -> str:
    """Run one engine task in this interpreter; return its terminal kind (its events, the
    terminal one included, are written to the pipe before this returns)."""
    me = _me
    assert me is not None, "run_task runs only in an interpreter that said hello"
    deadline = None
    if order.timeout_s is not None:
        deadline = time.monotonic_ns() + int(order.timeout_s * 1e9)
    ctx = InterpContext(order.run_id, order.task_id, me.put, deadline, order.task_name,
                        order.index, flags=me.flags, slot=me.slot, lane=me.lane)
    try:
        return run_blocking(ctx, order)
    finally:
        me.flush()
