"""What a front end may ask of a session: the :class:`SessionAPI` protocol, one for both sessions.

Two classes run the engine for a front end: :class:`engine.Session` in the caller's own process
(the CLI), and :class:`engine.remote.RemoteSession`, which runs a Session in a process of its
own and mirrors its store (the window). Both satisfy :class:`SessionAPI`, so the window, compare
and the CLI are written once against it and never probe for a method: what is here, both have,
with one signature (a test checks both classes, member by member).

Where a session has nothing to do for a member, its answer is the honest empty one, never a
pretence: an in-process session cannot be gone (:attr:`SessionAPI.gone_reason` is None), and its
store needs no folding, so :meth:`SessionAPI.pump` only reports what changed in it.

This module names the types the protocol speaks in (:class:`Pumped`, :class:`ShutdownReport`)
and holds the one part both sessions implement alike (:class:`FrontLoopLag`); it imports
neither session.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from .probes import LagProbe, ProbeTimer

if TYPE_CHECKING:
    from .compare.request import CompareRequest
    from .compare.results import CompareProgress, CompareResult
    from .sampler import Sampler
    from .spec import RunSpec
    from .store import EventStore, RunRecord

__all__ = ["CompareJobAPI", "FrontLoopLag", "Pumped", "RunHandle", "SessionAPI",
           "ShutdownReport"]


@dataclass
class Pumped:
    """What one :meth:`SessionAPI.pump` brought: tasks whose records changed, events the
    engine recorded meanwhile, events the engine's ring dropped before they were read."""

    changed: set[int] = field(default_factory=set)
    events: int = 0
    dropped: int = 0
    backlog: int = 0  # changed records still waiting in the engine process


@dataclass
class ShutdownReport:
    """What :meth:`SessionAPI.shutdown` left behind (normally nothing)."""

    seconds: float
    #: Tasks that had not stopped by the deadline: thread tasks that never check their context.
    stuck_tasks: list[int] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.stuck_tasks


@runtime_checkable
class RunHandle(Protocol):
    """A started run, as :meth:`SessionAPI.start` returns it. Its state is in the store."""

    run_id: int
    spec: RunSpec
    first_task_id: int

    @property
    def task_ids(self) -> range: ...

    @property
    def record(self) -> RunRecord:
        """The run's record in the session's store."""
        ...

    @property
    def ended(self) -> bool:
        """Every task has its terminal state (as far as the session's store knows)."""
        ...

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run ended (and, in the engine's own process, its workers were
        released); True if it did within ``timeout``."""
        ...


@runtime_checkable
class CompareJobAPI(Protocol):
    """A comparison running in the background (:func:`engine.compare.start_compare`)."""

    #: The latest progress (None before the first).
    progress: CompareProgress | None
    #: The result once :attr:`done` (None if it failed).
    result: CompareResult | None
    #: An unexpected failure inside the comparison, kept for the front end.
    error: BaseException | None

    @property
    def done(self) -> bool: ...

    def cancel(self) -> None:
        """Stop the running model and skip the rest (returns at once)."""
        ...

    def wait(self, timeout: float | None = None) -> bool: ...


@runtime_checkable
class SessionAPI(Protocol):
    """Start runs and comparisons, cancel, read state, probe the front end's loop, shut down."""

    #: Where runs, task records and samples are read (a mirror, for a remote session).
    store: EventStore
    #: The sampler writing samples into :attr:`store` from this process; None if there is none
    #: here (a remote session's samples are taken in the engine process and mirrored).
    sampler: Sampler | None

    # -- runs ------------------------------------------------------------------------------------
    def start(self, spec: RunSpec, *, loop: asyncio.AbstractEventLoop | None = None) -> RunHandle:
        """Start a validated run and return at once (SpecError: nothing started). ``loop``:
        run the asyncio model's coroutines on this caller's loop instead of the engine's."""
        ...

    def run(self, run_id: int) -> RunHandle | None: ...

    def start_compare(self, request: CompareRequest,
                      on_progress: Callable[[CompareProgress], None] | None = None, *,
                      settle_s: float = 0.5, monitor_interval_s: float = 0.1) -> CompareJobAPI:
        """:func:`engine.compare.start_compare` on this session: validate now (SpecError),
        run the models one after another in the background."""
        ...

    # -- cancellation ----------------------------------------------------------------------------
    def cancel_task(self, task_id: int, force: bool = False, reason: str = "cancelled") -> bool:
        ...

    def cancel_run(self, run_id: int, force: bool = False, reason: str = "cancelled") -> bool:
        ...

    def cancel_all(self, force: bool = False, reason: str = "cancel all") -> int: ...

    def worker_pids(self) -> list[int]:
        """Pids of the worker processes alive now (never the session's own process)."""
        ...

    # -- state for a front end -------------------------------------------------------------------
    def pump(self, budget_s: float = 0.010) -> Pumped:
        """Bring :attr:`store` up to date and say what changed since the last pump; never
        blocks. Meant for one thread: the window's frame tick."""
        ...

    @property
    def gone_reason(self) -> str | None:
        """Why the engine stopped under the front end (None while it runs)."""
        ...

    @property
    def engine_pid(self) -> int:
        """The process the engine runs in (the caller's own, for an in-process session)."""
        ...

    # -- the front end's own loop ----------------------------------------------------------------
    def attach_loop(self, loop: asyncio.AbstractEventLoop, interval_s: float = 0.02,
                    idle_interval_s: float | None = 0.25,
                    timer: ProbeTimer | None = None) -> None:
        """Probe this (the front end's) loop's lag; samples carry it as ``lag_ms["gui"]``.
        ``timer``: the probe's timer on that loop (default: its ``call_later``)."""
        ...

    def set_loop_idle(self, idle: bool) -> None:
        """The front end idles (the probe fires at its idle interval) or is busy again."""
        ...

    def detach_loop(self) -> None: ...

    @property
    def loop_probe(self) -> LagProbe | None:
        """The attached loop's probe (its ``history`` of firings), None when detached."""
        ...

    def gui_lag(self, window_s: float = 1.0) -> dict[str, float] | None:
        """p50/p99/max lateness (ms) of the attached loop over the last ``window_s``."""
        ...

    # -- the end ---------------------------------------------------------------------------------
    def shutdown(self, timeout: float = 2.0) -> ShutdownReport:
        """Cancel everything, release every worker; within about ``timeout`` seconds."""
        ...


class FrontLoopLag:
    """The front end's loop probe, for both sessions: :class:`SessionAPI`'s ``attach_loop``,
    ``set_loop_idle``, ``detach_loop`` and ``gui_lag``.

    The probe is a :class:`~engine.probes.LagProbe` on the front end's loop (the window's
    qasync loop), in the front end's process. Its figures reach the samples as
    ``lag_ms["gui"]``: a session with a sampler in this process hands the probe to it, and
    the sampler reads it like the engine loop's; a remote session (no sampler here) sends
    :meth:`LagProbe.take` to the engine process with each acknowledgement.
    """

    sampler: Sampler | None = None
    _lag_probe: LagProbe | None = None

    def attach_loop(self, loop: asyncio.AbstractEventLoop, interval_s: float = 0.02,
                    idle_interval_s: float | None = 0.25,
                    timer: ProbeTimer | None = None) -> None:
        """Probe this (the front end's) loop's lag; also readable here: :meth:`gui_lag`.
        ``idle_interval_s``: the probe's interval after :meth:`set_loop_idle` (True).
        ``timer``: the probe's timer on that loop (default: its ``call_later``)."""
        self.detach_loop()
        if self.sampler is not None:
            self._lag_probe = self.sampler.add_loop_probe("gui", loop, interval_s,
                                                          idle_interval_s=idle_interval_s,
                                                          timer=timer)
            return
        probe = LagProbe(loop, interval_s, idle_interval_s=idle_interval_s, timer=timer)
        probe.start()
        self._lag_probe = probe

    def set_loop_idle(self, idle: bool) -> None:
        """The front end is idle (nothing runs, nothing to draw) or busy again: the loop
        probe fires at its idle interval or at its normal one (see LagProbe.set_idle)."""
        if self._lag_probe is not None:
            self._lag_probe.set_idle(idle)

    def detach_loop(self) -> None:
        probe, self._lag_probe = self._lag_probe, None
        if probe is not None and (self.sampler is None
                                  or not self.sampler.remove_loop_probe("gui")):
            probe.stop()

    @property
    def loop_probe(self) -> LagProbe | None:
        """The attached loop's probe (its ``history`` of firings), None when detached."""
        return self._lag_probe

    def gui_lag(self, window_s: float = 1.0) -> dict[str, float] | None:
        """p50/p99/max lateness (ms) of the attached loop over the last ``window_s``."""
        return None if self._lag_probe is None else self._lag_probe.stats(window_s)
