"""One front end, engine processes on several interpreters, one store: :class:`Engines`.

The window runs its engine in a process of its own; that process can run on another Python
than the window's (a 3.13 with sub-interpreters, a 3.14t with threads free of a GIL). The
window's Interpreter selector picks which: :class:`Engines` keeps one engine process per
interpreter asked for (the window's own interpreter first, the others started on first use,
each from the environment ``taskscope pythons add`` prepared), and is to the window the one
session it already knows (:class:`~engine.api.SessionAPI`):

* every engine mirrors into **one store**, and numbers its runs and tasks apart (engine *k*
  from ``k * RUN_ID_STRIDE``, see :class:`engine.Session`), so the views show every run, and
  a cancel finds its engine by the id alone;
* :meth:`Engines.choose` says which interpreters the next run or comparison goes to: one runs
  it there; several make a comparison run every model on each, one engine after another
  (:class:`~engine.compare.CompareAcross`);
* the samples (CPU, threads, GIL, lags) shown are those of the engine whose run started last,
  so two engines never interleave their views of the same machine; the window's own loop
  probe goes with them (its lag reaches that engine's samples);
* :meth:`Engines.shutdown` ends every engine process, with its workers: none is left behind.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..api import FrontLoopLag, Pumped, ShutdownReport
from ..session import RUN_ID_STRIDE, TASK_ID_STRIDE
from .client import EngineGone, MirrorStore, RemoteSession

if TYPE_CHECKING:
    from ..api import CompareJobAPI, RunHandle
    from ..compare import CompareProgress, CompareRequest
    from ..probes import ProbeTimer
    from ..spec import RunSpec

__all__ = ["Engines"]


class Engines(FrontLoopLag):
    """Engine processes on several interpreters behind one session (see the module
    docstring). Interpreters are named by the executable that runs the engine there
    (``engine.pythons.engine_python``); this process's own is ``sys.executable``."""

    #: No sampler in this process: every engine samples in its own, and one is mirrored.
    sampler = None

    def __init__(self, sample_hz: float | None = 10.0, *, max_events: int | None = None,
                 nice: int = 0) -> None:
        self.store = MirrorStore()
        self._opts: dict[str, Any] = {"max_events": max_events, "nice": nice}
        self._hz = sample_hz
        self.home = RemoteSession(sample_hz, store=self.store, **self._opts)
        self._engines: list[RemoteSession] = [self.home]  # index: its id base
        self._by_python: dict[str, RemoteSession] = {sys.executable: self.home}
        self._chosen: list[str] = []
        self._sampling = self.home
        self._lock = threading.Lock()

    # -- the interpreters ------------------------------------------------------------------------
    def choose(self, pythons: Sequence[str]) -> None:
        """Where the next :meth:`start` and :meth:`start_compare` go: these interpreters (none:
        the home engine, on this process's interpreter). Their engines start now, in the
        background, so that they are ready when their turn comes."""
        self._chosen = list(dict.fromkeys(pythons))
        for p in self._chosen:
            self.engine(p)

    @property
    def chosen(self) -> list[str]:
        return list(self._chosen) or [sys.executable]

    def engine(self, python: str) -> RemoteSession:
        """The engine on ``python`` (started now if it is not running yet)."""
        with self._lock:
            e = self._by_python.get(python)
            if e is None:
                e = RemoteSession(self._hz, python=python, store=self.store,
                                  id_base=len(self._engines), **self._opts)
                e.keep_samples = False
                self._engines.append(e)
                self._by_python[python] = e
            return e

    def engines(self) -> list[RemoteSession]:
        with self._lock:
            return list(self._engines)

    def _of_run(self, run_id: int) -> RemoteSession | None:
        i = run_id // RUN_ID_STRIDE
        engines = self.engines()
        return engines[i] if 0 <= i < len(engines) else None

    def _of_task(self, task_id: int) -> RemoteSession | None:
        i = task_id // TASK_ID_STRIDE
        engines = self.engines()
        return engines[i] if 0 <= i < len(engines) else None

    def _sample_from(self, e: RemoteSession) -> None:
        """Show ``e``'s samples (and send it the window's loop lag) from now on."""
        if e is self._sampling:
            return
        for other in self.engines():
            other.keep_samples = other is e
            other._lag_probe = self._lag_probe if other is e else None
        self._sampling = e

    # -- runs ------------------------------------------------------------------------------------
    def start(self, spec: RunSpec, *, loop: asyncio.AbstractEventLoop | None = None) -> RunHandle:
        """Start a run on the chosen interpreter (the first, if several are chosen; a caller's
        loop runs in this process, with the home engine's ids)."""
        e = self.home if loop is not None else self.engine(self.chosen[0])
        run = e.start(spec, loop=loop)
        self._sample_from(e)
        return run

    def run(self, run_id: int) -> RunHandle | None:
        e = self._of_run(run_id)
        return e.run(run_id) if e is not None else None

    def start_compare(self, request: CompareRequest,
                      on_progress: Callable[[CompareProgress], None] | None = None, *,
                      settle_s: float = 0.5, monitor_interval_s: float = 0.1) -> CompareJobAPI:
        """A comparison on the chosen interpreter; on several, every model on each, one engine
        after another (:class:`~engine.compare.CompareAcross`)."""
        how = {"settle_s": settle_s, "monitor_interval_s": monitor_interval_s}
        chosen = self.chosen
        if len(chosen) == 1:
            e = self.engine(chosen[0])
            job = e.start_compare(request, on_progress, **how)
            self._sample_from(e)
            return job
        from ..compare import CompareAcross, Where

        request.plan(self._assumed())  # its fields, before any engine starts or runs

        def where(python: str) -> Callable[[], Where]:
            def make() -> Where:
                e = self.engine(python)
                self._sample_from(e)
                return Where(e, e.python, e.models())
            return make

        return CompareAcross([where(p) for p in chosen], request, on_progress, how)

    @staticmethod
    def _assumed() -> dict[str, Any]:
        from ..models.registry import assumed_available

        return assumed_available()

    # -- cancellation ----------------------------------------------------------------------------
    def cancel_task(self, task_id: int, force: bool = False, reason: str = "cancelled") -> bool:
        e = self._of_task(task_id)
        return e.cancel_task(task_id, force, reason) if e is not None else False

    def cancel_run(self, run_id: int, force: bool = False, reason: str = "cancelled") -> bool:
        e = self._of_run(run_id)
        return e.cancel_run(run_id, force, reason) if e is not None else False

    def cancel_all(self, force: bool = False, reason: str = "cancel all") -> int:
        n = 0
        for e in self.engines():
            if e.gone_reason is None:
                try:
                    n += e.cancel_all(force, reason)
                except EngineGone:
                    pass
        return n

    def worker_pids(self) -> list[int]:
        return [pid for e in self.engines() for pid in e.worker_pids()]

    # -- state -----------------------------------------------------------------------------------
    def pump(self, budget_s: float = 0.010) -> Pumped:
        """Fold every engine's updates into the store (the budget shared among them)."""
        engines = self.engines()
        out = Pumped()
        share = budget_s / len(engines)
        for e in engines:
            p = e.pump(share)
            out.changed |= p.changed
            out.events += p.events
            out.dropped += p.dropped
            out.backlog = max(out.backlog, p.backlog)
        return out

    @property
    def engine_pid(self) -> int:
        """The process of the engine whose samples are shown (the home engine's at first)."""
        return self._sampling.engine_pid

    @property
    def gone_reason(self) -> str | None:
        """Why the home engine stopped (None while it runs). Another interpreter's engine that
        stops fails its own calls (EngineGone), and the window says so there."""
        return self.home.gone_reason

    # -- the front end's loop: its probe goes with the samples shown ----------------------------
    def attach_loop(self, loop: asyncio.AbstractEventLoop, interval_s: float = 0.02,
                    idle_interval_s: float | None = 0.25,
                    timer: ProbeTimer | None = None) -> None:
        super().attach_loop(loop, interval_s, idle_interval_s, timer)
        self._sampling._lag_probe = self._lag_probe

    def detach_loop(self) -> None:
        for e in self.engines():
            e._lag_probe = None
        super().detach_loop()

    # -- the end ---------------------------------------------------------------------------------
    def shutdown(self, timeout: float = 2.0) -> ShutdownReport:
        """Shut every engine process down at once (each with its workers)."""
        self.detach_loop()
        engines = self.engines()
        reports: list[ShutdownReport] = [ShutdownReport(0.0)] * len(engines)

        def close(i: int, e: RemoteSession) -> None:
            reports[i] = e.shutdown(timeout)

        threads = [threading.Thread(target=close, args=(i, e), daemon=True,
                                    name="taskscope-engine-close") for i, e in enumerate(engines)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout + 5.0)
        return ShutdownReport(max(r.seconds for r in reports),
                              [t for r in reports for t in r.stuck_tasks])
