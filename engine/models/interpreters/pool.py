"""The engine's side of the sub-interpreters: a guarded pool, its lanes, its pipes, its flags.

:class:`InterpreterPool` wraps one ``InterpreterPoolExecutor`` of ``n`` interpreters for one
run. Starting it (:meth:`InterpreterPool.start`) checks that the guard's module imports in a
fresh interpreter (once per process), then has every interpreter say hello at once, so that
all of them exist before the run's first task, each with its slot, its pipe and the run's
flags. :meth:`InterpreterPool.submit` sends ``fn(*args)`` through the guard
(:func:`~engine.models.interpreters.inside.call`) and gives a Future of its result or
exception, unpickled here, apart: one that cannot be rebuilt fails its own call, with a
message.

One reader thread takes every interpreter's event batches from their pipes (length-prefixed
pickles) and hands them to ``on_events``.
"""

from __future__ import annotations

import ctypes
import os
import pickle
import selectors
import sys
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import Any

from ...errors import SpecError
from ...events import Event
from . import executor_class, interpreters_module
from . import inside as _inside

#: How long starting the interpreters may take before the run fails (a loaded 2-core machine
#: starts four in well under 2 s).
START_TIMEOUT_S = 60.0

_checked: str | None = None  # "" once the guard's module imported in a fresh interpreter
_check_lock = threading.Lock()


def _exec_fresh(code: str) -> str:
    """Run ``code`` in a fresh interpreter; "" if it ran, else why not, in one line."""
    interp = interpreters_module().create()
    try:
        interp.exec(code)
    except Exception as e:  # noqa: BLE001 - ExecutionFailed: its exception's snapshot
        info = getattr(e, "excinfo", None)
        if info is None:
            return _inside._one_line(e)
        msg = str(getattr(info, "msg", "") or "")
        return f"{info.type.__name__}: {msg}" if msg else info.type.__name__
    finally:
        interp.close()
    return ""


def _syncing_paths(code: str) -> str:
    """``code`` preceded by adding this interpreter's ``sys.path`` entries that a fresh one
    lacks (runtime additions here are not seen there)."""
    return f"import sys\nfor _p in {list(sys.path)!r}:\n    _p in sys.path or sys.path.append(_p)\n{code}"


def check_guard() -> None:
    """Raise RuntimeError if the guard's module does not import in a sub-interpreter (through
    the pool it would hang it, not fail). Checked once per process."""
    global _checked
    with _check_lock:
        if _checked is None:
            _checked = _exec_fresh(_syncing_paths(f"import {_inside.__name__}"))
    if _checked:
        raise RuntimeError(f"the engine does not import in a sub-interpreter: {_checked}")


def check_function(params: Mapping[str, Any]) -> None:
    """A custom function must import in a sub-interpreter: SpecError on ``params.function``
    with the reason in one line, before the run starts."""
    ref, root = params.get("function"), params.get("root")
    # An import that fails says its own telling line (NumPy's error is 25 lines long).
    code = _syncing_paths(
        "from engine.custom import load\n"
        "from engine.errors import SpecError\n"
        f"from {_inside.__name__} import _one_line\n"
        "try:\n"
        f"    load({ref!r}, {root!r})\n"
        "except SpecError as e:\n"
        "    cause, msg = e.__context__, e.message\n"
        "    if cause is not None and msg.startswith('importing '):\n"
        "        msg = 'its module does not import there: ' + _one_line(cause)\n"
        "    raise RuntimeError(msg) from None\n")
    why = _exec_fresh(code)
    if why:
        why = why.removeprefix("RuntimeError: ")
        target, _, name = str(ref).rpartition(":")
        shown = f"{os.path.basename(target) if target.endswith('.py') else target}:{name}"
        raise SpecError("params.function", f"{shown} cannot run in a sub-interpreter: {why}")


class InterpreterPool:
    """``n`` sub-interpreters for one run (see the module docstring). ``n_flags``: one cancel
    byte per task of the run, set with :meth:`flag`."""

    def __init__(self, n: int, n_flags: int, on_events: Callable[[list[Event]], None],
                 name: str = "taskscope") -> None:
        self.n = n
        self.name = name
        self._on_events = on_events
        self._flags = (ctypes.c_ubyte * max(1, n_flags))()
        self._seen = (ctypes.c_ubyte * n)()
        self._pipes: list[tuple[int, int]] = []
        self._pool: Any = None
        self._reader: threading.Thread | None = None
        #: Per interpreter, in slot order: ``{"id": interpreter id, "thread_id": native id}``.
        self.lanes: list[dict[str, int]] = []
        self.startup_s = 0.0
        #: Batches from the pipes that could not be unpickled here (normally 0).
        self.lost_batches = 0

    # -- starting ---------------------------------------------------------------------------
    def start(self) -> None:
        """Start every interpreter and wait until each has said hello; raise RuntimeError
        (with the reason in one line) if they cannot start."""
        t0 = time.perf_counter()
        check_guard()
        for _ in range(self.n):
            self._pipes.append(os.pipe())
        self._reader = threading.Thread(target=self._read_loop, name=f"{self.name}-reader",
                                        daemon=True)
        self._reader.start()
        self._pool = executor_class()(max_workers=self.n, thread_name_prefix=f"{self.name}-interp")
        paths = list(sys.path)
        hellos = [self.submit(_inside.hello, i, self._pipes[i][1],
                              ctypes.addressof(self._flags), len(self._flags),
                              ctypes.addressof(self._seen), self.n, paths)
                  for i in range(self.n)]
        lanes: dict[int, dict[str, int]] = {}
        for i, fut in enumerate(hellos):
            try:
                tid, iid = fut.result(timeout=START_TIMEOUT_S)
            except Exception as e:  # noqa: BLE001 - TimeoutError, or the hello's own error
                raise RuntimeError(f"sub-interpreter {i} did not start: "
                                   f"{_inside._one_line(e)}") from None
            lanes[i] = {"id": iid, "thread_id": tid}
        self.lanes = [lanes[i] for i in range(self.n)]
        # The main interpreter names each worker thread after its interpreter too.
        by_tid = {lane["thread_id"]: lane["id"] for lane in self.lanes}
        for th in list(self._pool._threads):  # noqa: SLF001
            iid = by_tid.get(th.native_id)
            if iid is not None:
                th.name = f"interp-{iid}"
        self.startup_s = time.perf_counter() - t0

    # -- calls ------------------------------------------------------------------------------
    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        """``fn(*args)`` in one of the interpreters, through the guard: a Future of its
        result or its exception. ``fn`` must be importable (a module's top-level function)."""
        out: Future = Future()
        try:
            blob = pickle.dumps((fn, args), pickle.HIGHEST_PROTOCOL)
        except Exception as e:  # noqa: BLE001 - an argument that cannot cross
            out.set_exception(RuntimeError(f"the call could not be pickled to enter a "
                                           f"sub-interpreter: {_inside._one_line(e)}"))
            return out
        inner = self._pool.submit(_inside.call, blob)

        def done(f: Future) -> None:
            if f.cancelled():
                out.cancel()
                return
            ok: bool
            value: Any
            try:
                blob = f.result()
            except BaseException as e:  # noqa: BLE001 - the pool itself broke
                ok, value = False, RuntimeError(f"the sub-interpreter pool failed: "
                                                f"{_inside._one_line(e)}")
            else:
                try:
                    ok, value = pickle.loads(blob)
                except BaseException as e:  # noqa: BLE001 - whatever its __reduce__ raises
                    ok, value = False, RuntimeError(
                        "the call's outcome was pickled in its sub-interpreter but could not "
                        f"be rebuilt here: {_inside._one_line(e)}")
            if out.set_running_or_notify_cancel():
                if ok:
                    out.set_result(value)
                else:
                    out.set_exception(value if isinstance(value, BaseException)
                                      else RuntimeError(str(value)))

        inner.add_done_callback(done)
        return out

    def flag(self, index: int) -> None:
        """Ask the run's task ``index`` to stop (it reads its byte at its next check)."""
        if 0 <= index < len(self._flags):
            self._flags[index] = 1

    # -- events -----------------------------------------------------------------------------
    def _read_loop(self) -> None:
        sel = selectors.DefaultSelector()
        bufs: dict[int, bytearray] = {}
        for r, _w in self._pipes:
            sel.register(r, selectors.EVENT_READ)
            bufs[r] = bytearray()
        frame = _inside.FRAME
        try:
            while bufs:
                for key, _ in sel.select(timeout=1.0):
                    fd = key.fd
                    chunk = os.read(fd, 1 << 16)
                    if not chunk:  # every writer closed it
                        sel.unregister(fd)
                        del bufs[fd]
                        continue
                    buf = bufs[fd]
                    buf += chunk
                    while len(buf) >= frame.size:
                        (size,) = frame.unpack_from(buf)
                        if len(buf) < frame.size + size:
                            break
                        blob = bytes(buf[frame.size:frame.size + size])
                        del buf[:frame.size + size]
                        try:
                            batch = pickle.loads(blob)
                        except Exception:  # noqa: BLE001 - never kill the reader
                            self.lost_batches += 1
                            continue
                        self._on_events(batch)
        finally:
            sel.close()
            for r, _w in self._pipes:
                try:
                    os.close(r)
                except OSError:
                    pass

    # -- shutting down ----------------------------------------------------------------------
    def threads(self) -> list[threading.Thread]:
        return list(self._pool._threads) if self._pool is not None else []  # noqa: SLF001

    def shutdown(self, timeout: float) -> list[threading.Thread]:
        """Cancel what is queued, wait up to ``timeout`` for the interpreters' threads to
        end; return those still running (a task that ignores its flag cannot be stopped).

        A pipe is closed only once its interpreter's thread has ended: its number could
        otherwise be reused by another file while the interpreter still writes to it. So are
        the flags freed (they are read by address)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        end = time.monotonic() + timeout
        threads = self.threads()
        for th in threads:
            th.join(max(0.0, end - time.monotonic()))
        stuck = [th for th in threads if th.is_alive()]
        if stuck:
            # Close the rest when the last stuck thread ends (this keeps the flags alive).
            threading.Thread(target=self._close_when_done, args=(stuck,), daemon=True,
                             name=f"{self.name}-closer").start()
        else:
            self._close_pipes()
        return stuck

    def _close_when_done(self, stuck: list[threading.Thread]) -> None:
        for th in stuck:
            th.join()
        self._close_pipes()

    def _close_pipes(self) -> None:
        for _r, w in self._pipes:
            try:
                os.close(w)
            except OSError:
                pass
        if self._reader is not None:
            self._reader.join(2.0)  # it drains what is left, then sees every pipe's end
