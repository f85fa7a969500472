"""The front end's side of the engine process: :class:`RemoteSession` and the store it mirrors.

:class:`RemoteSession` is :class:`engine.Session`'s front-end API
(:class:`~engine.api.SessionAPI`) with the session in a process of its own. Commands go to it
one at a time (one :class:`~engine.remote.wire.Op` each, see :meth:`RemoteSession._call`); its
state comes back as updates that :meth:`RemoteSession.pump` folds into :class:`MirrorStore`
on the window's frame tick, never blocking.

The mirror is an :class:`~engine.store.EventStore` with the same reader API (runs, tasks,
samples, counters), holding exact copies of the engine's records; it keeps no event log (the
engine process has it). Queued records are created here from the run's id range (same clock,
same fields), so starting a 1M-task run does not ship 1M rows.
"""

from __future__ import annotations

import atexit
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..api import FrontLoopLag, Pumped, ShutdownReport
from ..errors import SpecError
from ..events import Event, State
from ..spec import RunSpec
from ..store import EventStore, RunRecord, TaskRecord
from .process import engine_dir, spawn_engine
from .wire import (
    Ack,
    Command,
    CompareDone,
    CompareProgressed,
    Fatal,
    Ok,
    Op,
    Raised,
    Ready,
    RemoteError,
    RunSummary,
    Update,
    fold_tasks,
    readable,
)

if TYPE_CHECKING:
    import asyncio

    from ..compare import CompareProgress, CompareRequest, CompareResult
    from ..session import Session

__all__ = ["EngineGone", "MirrorStore", "Pumped", "RemoteCompareJob", "RemoteError", "RemoteRun",
           "RemoteSession"]

READY_TIMEOUT_S = 60.0
CALL_TIMEOUT_S = 30.0


class EngineGone(RuntimeError):
    """The engine process is not running (it crashed, or was shut down)."""


class MirrorStore(EventStore):
    """The front end's copy of the engine's store, filled by :meth:`apply` (see the module
    docstring). Read it like any EventStore. ``read_events`` returns nothing: there is no event
    log here. Local runs (a front end's own run, started through a local Session with this
    store) are appended with the normal EventStore methods."""

    def __init__(self) -> None:
        super().__init__(max_events=1)
        self._local_changed: set[int] = set()

    def append(self, batch: Iterable[Event]) -> list[tuple[int, int, State]]:
        batch = list(batch)
        ended = super().append(batch)
        with self._lock:
            self._local_changed.update(ev.task_id for ev in batch)
        return ended

    def take_local_changes(self) -> set[int]:
        with self._lock:
            out, self._local_changed = self._local_changed, set()
        return out

    def read_events(self, cursor: int = 0, limit: int | None = None) -> tuple[list[Any], int, int]:
        return [], self._event_seq, 0

    def apply(self, upd: Update, samples: bool = True) -> set[int]:
        """Fold one update in; return the ids of the tasks whose records changed.
        ``samples``: keep its samples too (see ``RemoteSession.keep_samples``)."""
        with self._lock:
            for run in upd.runs:
                self._summary_locked(run)
            changed = fold_tasks(self._tasks, upd.tasks)
            if upd.samples and samples:
                self._samples.extend(upd.samples)
                self._sample_seq += len(upd.samples)
            self._event_seq += upd.events
            self.duplicate_terminals = upd.duplicates
            self.unknown_events = upd.unknown
        return changed

    def add_summary(self, run: RunSummary) -> None:
        """A run's summary alone (a run this front end has just started)."""
        with self._lock:
            self._summary_locked(run)

    def _summary_locked(self, s: RunSummary) -> None:
        rec = self._runs.get(s.run_id)
        if rec is not None:
            rec.end_ns = s.end_ns
            rec.counts = s.counts
            if s.info is not None:
                rec.info = s.info
            return
        if s.spec is None:
            return  # evicted here already
        ids = range(s.first_task_id, s.first_task_id + s.n_tasks)
        self._runs[s.run_id] = RunRecord(s.run_id, s.spec, ids, s.start_ns, s.end_ns, s.counts,
                                         s.info or {})
        tasks = self._tasks
        for i, tid in enumerate(ids):
            tasks[tid] = TaskRecord(tid, s.run_id, i, queued_ns=s.start_ns)
        self._evict_locked()


@dataclass
class RemoteRun:
    """A run started through a :class:`RemoteSession` (ids only; its state is in the store)."""

    run_id: int
    spec: RunSpec
    first_task_id: int
    session: RemoteSession = field(repr=False, compare=False)

    @property
    def task_ids(self) -> range:
        return range(self.first_task_id, self.first_task_id + self.spec.tasks)

    @property
    def record(self) -> RunRecord:
        rec = self.session.store.run(self.run_id)
        assert rec is not None
        return rec

    @property
    def ended(self) -> bool:
        """The mirror has the run's end (every task's terminal state came with it)."""
        rec = self.session.store.run(self.run_id)
        return rec is not None and rec.done

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the mirror shows the run ended, folding the engine's updates meanwhile
        (what they change still reaches the next :meth:`RemoteSession.pump`). False if the
        engine process stopped first, or at ``timeout``."""
        return self.session._wait_run(self.run_id, timeout)


class RemoteCompareJob:
    """:class:`engine.compare.CompareJob`'s interface, for a comparison running in the engine
    process. Its progress arrives with the updates (so it moves on the front end's pump)."""

    def __init__(self, session: RemoteSession,
                 on_progress: Callable[[CompareProgress], None] | None) -> None:
        self._session = session
        self._cb = on_progress
        self.progress: CompareProgress | None = None
        self.done = False
        self.result: CompareResult | None = None
        self.error: BaseException | None = None

    def _feed(self, item: CompareProgressed | CompareDone) -> None:
        if isinstance(item, CompareProgressed):
            self.progress = item.progress
            if self._cb is not None:
                self._cb(item.progress)
        else:
            self.result = item.result
            if item.result is not None:  # the mirror keeps it with its runs, as the engine does
                self._session.store.add_comparison(item.result)
            if item.error is not None:
                self.error = RemoteError(*item.error)
            self.done = True

    def cancel(self) -> None:
        if not self.done:
            try:
                self._session._call(Op.COMPARE_CANCEL)
            except EngineGone:
                self.done = True

    def wait(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.done:
            if deadline is not None and time.monotonic() >= deadline:
                break
            self._session._fold()
            time.sleep(0.01)
        return self.done


class RemoteSession(FrontLoopLag):
    """:class:`engine.Session`'s front-end API (:class:`~engine.api.SessionAPI`), with the
    session in a process of its own.

    Create it before the front end starts any GUI toolkit (spawn is used regardless, so nothing
    forks a process that has GUI threads). Call :meth:`pump` often (the window calls it on its
    frame tick): it folds the engine's updates into :attr:`store`, without blocking.
    """

    #: No sampler in this process: the engine process samples, and its samples are mirrored.
    sampler = None

    def __init__(self, sample_hz: float | None = 10.0, *, max_events: int | None = None,
                 nice: int = 0, python: str | None = None, store: MirrorStore | None = None,
                 id_base: int = 0) -> None:
        """``max_events``: the engine store's event ring (default: EventStore's 1,000,000).
        ``nice``: added to the engine process's niceness (Unix), which its workers inherit:
        the window passes a small positive value so that, on cores its runs saturate, the
        window's own few milliseconds of work per frame are not queued behind them. Every
        model runs under the same value, so a comparison stays fair.
        ``python``: the executable to run the engine process on (default: this interpreter;
        for another one, its prepared environment's python: ``engine.pythons.engine_python``).
        ``store`` and ``id_base``: engine processes on several interpreters mirrored into one
        store, their ids apart (see :class:`engine.Session`)."""
        if sample_hz is not None:
            from ..sampler import check_hz

            check_hz(sample_hz)
        if max_events is not None and (isinstance(max_events, bool)
                                       or not isinstance(max_events, int) or max_events < 1):
            raise SpecError("max_events", f"expected a positive whole number, got {max_events!r}")
        if isinstance(nice, bool) or not isinstance(nice, int) or not 0 <= nice <= 19:
            raise SpecError("nice", f"expected 0 to 19, got {nice!r}")
        self.nice = nice
        self.python_path = python
        self._cmd, self._upd, self._proc = spawn_engine(sample_hz, max_events, nice,
                                                        python=python, id_base=id_base)
        self.store = store if store is not None else MirrorStore()
        self._hello: Ready | None = None
        #: Fold the engine's samples into the store (several engines sharing one store keep
        #: one engine's: see engine.remote.multi).
        self.keep_samples = True
        self._call_lock = threading.Lock()
        self._pump_lock = threading.Lock()
        self._ready = False
        self._poller: Callable[[], bool] | None = None  # see _update_waiting
        self._gone: str | None = None
        self._closed = False
        self._folded = Pumped()  # folded into the store, not yet claimed by a pump
        self._local: Session | None = None  # for a front end's own run (lazy)
        self._runs: dict[int, RemoteRun] = {}
        self.compare_job: RemoteCompareJob | None = None
        atexit.register(self._kill)

    # -- the engine process --------------------------------------------------------------------
    @property
    def engine_pid(self) -> int:
        """The engine process's pid."""
        return self._proc.pid

    @property
    def alive(self) -> bool:
        return self._gone is None and self._proc.is_alive()

    @property
    def gone_reason(self) -> str | None:
        """Why the engine process is not running any more (None while it is)."""
        if self._gone is None and not self._proc.is_alive() and not self._closed:
            self._gone = self._proc.exit_text
            self._proc.reap()
        return self._gone

    def _wait_ready(self) -> None:
        if self._ready:
            return
        msg = self._reply(READY_TIMEOUT_S, "did not start")
        if not isinstance(msg, Ready):
            self._gone = msg.message if isinstance(msg, Fatal) else "failed to start"
            raise EngineGone(f"the engine process did not start: {self._gone}")
        mine = engine_dir()
        if msg.engine and msg.engine != mine:
            self._gone = f"it runs the engine in {msg.engine}, not this TaskScope's ({mine})"
            self._proc.stop(1.0)
            raise EngineGone(f"the engine process on {self.python_path} {self._gone}; run: "
                             f"taskscope pythons add {self.python_path}")
        self._hello = msg
        self._ready = True

    def _reply(self, timeout: float, failing: str) -> Any:
        """The engine's next message on the command pipe, waiting at most ``timeout``; raise
        EngineGone ("the engine process <failing> …") if it dies or stays silent."""
        deadline = time.monotonic() + timeout
        while not self._cmd.poll(0.05):
            if not self._proc.is_alive():
                self._gone = self._proc.exit_text
                raise EngineGone(f"the engine process {failing} ({self._gone})")
            if time.monotonic() > deadline:
                raise EngineGone(f"the engine process {failing} within {timeout:.0f} s")
        try:
            return self._cmd.recv()
        except (EOFError, OSError) as e:
            self._gone = self._gone or self._proc.exit_text or str(e)
            raise EngineGone(f"the engine process stopped ({self._gone})") from None

    def _call(self, op: Op, *args: Any, timeout: float = CALL_TIMEOUT_S) -> Any:
        """Send one command and wait for its reply: its value, or what it raised there raised
        here (SpecError, RuntimeError, TypeError as themselves, else RemoteError)."""
        with self._call_lock:
            if self._gone is not None:
                raise EngineGone(f"the engine process stopped ({self._gone})")
            self._wait_ready()
            try:
                self._cmd.send(Command(op, args))
            except (BrokenPipeError, OSError):
                self._gone = self._proc.exit_text or "its pipe closed"
                raise EngineGone(f"the engine process stopped ({self._gone})") from None
            name = op.value if isinstance(op, Op) else op
            reply = self._reply(timeout, f"did not answer {name!r}")
        if isinstance(reply, Ok):
            return reply.value
        if isinstance(reply, Raised):
            raise reply.exception()
        # Fatal: the command loop itself failed, and the engine process is exiting.
        self._gone = reply.message if isinstance(reply, Fatal) else f"it sent {reply!r:.80}"
        raise EngineGone(f"the engine process stopped ({self._gone})")

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Block until the engine process runs (it starts in the background)."""
        with self._call_lock:
            self._wait_ready()

    @property
    def python(self) -> dict[str, Any]:
        """The interpreter the engine process runs on: its ``python`` block (waits until the
        engine process runs)."""
        self.wait_ready()
        assert self._hello is not None
        return dict(self._hello.python or {})

    def models(self) -> dict[str, Any]:
        """The models as the engine process's interpreter has them: name ->
        ``engine.models.ModelInfo`` (for ``make_spec(..., models=...)``)."""
        self.wait_ready()
        assert self._hello is not None
        return {m.name: m for m in self._hello.models or []}

    # -- runs ----------------------------------------------------------------------------------
    def start(self, spec: RunSpec, *,
              loop: asyncio.AbstractEventLoop | None = None) -> RemoteRun:
        """Start a run in the engine process and return at once; its records appear in
        :attr:`store` on a following :meth:`pump`.

        ``loop``: run the asyncio model's coroutines on this (the caller's) loop, in this
        process: the window's "coroutines on the GUI loop" lesson. The engine reserves the ids
        so that they never clash; the run's events go straight into :attr:`store`.
        """
        if not isinstance(spec, RunSpec):
            raise TypeError("start takes a RunSpec; build one with engine.make_spec")
        if loop is not None:
            return self._start_local(spec, loop)
        run_id, first, start_ns = self._call(Op.START, spec)
        # Registered here at once (queued, as in the engine's store): a caller sees its run
        # the moment start returns, as with a local Session.
        self.store.add_summary(RunSummary(run_id, spec, first, spec.tasks, start_ns, None,
                                          {"queued": spec.tasks}))
        r = RemoteRun(run_id, spec, first, self)
        self._runs[run_id] = r
        return r

    def _start_local(self, spec: RunSpec, loop: asyncio.AbstractEventLoop) -> RemoteRun:
        from ..models import all_models, model_info
        from ..session import Session

        if not model_info(spec.model).caller_loop:
            runs = [m.name for m in all_models() if m.caller_loop]
            raise SpecError("loop", f"a caller's loop can only run {', '.join(runs)}")
        if self._local is None:
            self._local = Session(self.store, warm=False, sample_hz=None)
        ids = self._call(Op.RESERVE, spec.tasks)
        run = self._local.start(spec, loop=loop, ids=ids)
        r = RemoteRun(run.run_id, spec, run.first_task_id, self)
        self._runs[run.run_id] = r
        return r

    def _is_local(self, run_id: int) -> bool:
        return self._local is not None and self._local.run(run_id) is not None

    def run(self, run_id: int) -> RemoteRun | None:
        return self._runs.get(run_id)

    def _wait_run(self, run_id: int, timeout: float | None) -> bool:
        local = self._local.run(run_id) if self._local is not None else None
        if local is not None:
            return local.wait(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self._fold()
            rec = self.store.run(run_id)
            if rec is not None and rec.done:
                return True
            if self.gone_reason is not None or self._closed:
                return False
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.01)

    def cancel_task(self, task_id: int, force: bool = False, reason: str = "cancelled") -> bool:
        rec = self.store.task(task_id)
        if rec is not None and self._is_local(rec.run_id):
            return self._local.cancel_task(task_id, force, reason)
        return bool(self._call(Op.CANCEL_TASK, task_id, force, reason))

    def cancel_run(self, run_id: int, force: bool = False, reason: str = "cancelled") -> bool:
        if self._is_local(run_id):
            return self._local.cancel_run(run_id, force, reason)
        return bool(self._call(Op.CANCEL_RUN, run_id, force, reason))

    def cancel_all(self, force: bool = False, reason: str = "cancel all") -> int:
        n = self._local.cancel_all(force, reason) if self._local is not None else 0
        return n + int(self._call(Op.CANCEL_ALL, force, reason))

    def worker_pids(self) -> list[int]:
        """Pids of the engine's worker processes alive now (not the engine process itself)."""
        if self._gone is not None or self._closed:
            return []
        return list(self._call(Op.WORKER_PIDS))

    def start_compare(self, request: CompareRequest,
                      on_progress: Callable[[CompareProgress], None] | None = None, *,
                      settle_s: float = 0.5, monitor_interval_s: float = 0.1) -> RemoteCompareJob:
        """:func:`engine.compare.start_compare` in the engine process (validation errors are
        raised here, as SpecError)."""
        job = RemoteCompareJob(self, on_progress)
        self.compare_job = job
        try:
            self._call(Op.COMPARE, request,
                       {"settle_s": settle_s, "monitor_interval_s": monitor_interval_s})
        except BaseException:
            self.compare_job = None
            raise
        return job

    # -- updates -------------------------------------------------------------------------------
    # (attach_loop, set_loop_idle, detach_loop, gui_lag: FrontLoopLag. The probe's worst
    # lateness since the last acknowledgement goes to the engine with the next one.)

    def pump(self, budget_s: float = 0.010) -> Pumped:
        """Fold the updates that arrived into :attr:`store`; never blocks. Returns what
        changed since the last pump (thread-safe, but meant for one thread: the window's frame
        tick; what another thread folded meanwhile, :meth:`_fold`, comes with it)."""
        if not self._pump_lock.acquire(blocking=False):
            # Another thread is folding (shutdown draining the last updates, a waiter): what
            # it folds is claimed by the next pump.
            return Pumped(self.store.take_local_changes())
        try:
            if self._gone is None and not self._closed:
                self._pump(self._folded, budget_s, ack=True)
            out, self._folded = self._folded, Pumped()
        finally:
            self._pump_lock.release()
        out.changed |= self.store.take_local_changes()
        return out

    def _fold(self, budget_s: float = 0.010) -> None:
        """Fold the updates that arrived into :attr:`store` without claiming what changed
        (the next :meth:`pump` reports it): for a thread that waits on the store."""
        if self._pump_lock.acquire(blocking=False):
            try:
                if self._gone is None and not self._closed:
                    self._pump(self._folded, budget_s, ack=True)
            finally:
                self._pump_lock.release()

    def _update_waiting(self) -> bool:
        """Is an update waiting? (:func:`wire.readable`, made on first use; under the pump
        lock.)"""
        if self._poller is None:
            self._poller = readable(self._upd)
        return self._poller()

    def _pump(self, out: Pumped, budget_s: float, ack: bool) -> None:
        t0 = time.perf_counter()
        conn = self._upd
        read = 0
        try:
            while self._update_waiting():
                upd = conn.recv()
                if type(upd) is not Update:
                    continue
                read += 1
                out.changed |= self.store.apply(upd, self.keep_samples)
                out.events += upd.events
                out.dropped += upd.dropped
                out.backlog = upd.backlog
                if upd.compare and self.compare_job is not None:
                    for item in upd.compare:
                        self.compare_job._feed(item)
                if time.perf_counter() - t0 > budget_s:
                    break
            if ack and read:
                # One acknowledgement for every update this pump read (the publisher frees
                # that many of its IN_FLIGHT slots): one message back per frame, not one per
                # update.
                lag = self._lag_probe.take() if self._lag_probe is not None else None
                conn.send(Ack(lag, read))
        except (EOFError, OSError):
            if ack:
                self._proc.join(0.2)
                self._gone = self._proc.exit_text or "its pipe closed"
                self._proc.reap()

    # -- shutdown ------------------------------------------------------------------------------
    def shutdown(self, timeout: float = 2.0) -> ShutdownReport:
        """Cancel everything, stop the engine process and its workers; within about
        ``timeout`` seconds (plus the process's exit)."""
        if self._closed:
            return ShutdownReport(0.0)
        t0 = time.monotonic()
        self.detach_loop()
        report = ShutdownReport(0.0)
        if self._local is not None:
            report = self._local.shutdown(timeout=min(timeout, 1.0))
        remote = ShutdownReport(0.0)
        if self._gone is None and self._proc.is_alive():
            with self._pump_lock:
                try:
                    remote = self._call(Op.SHUTDOWN, timeout, timeout=timeout + 3.0)
                except (EngineGone, RemoteError):
                    pass
                # The engine sent every task's final state before its reply: fold it in.
                if self._gone is None:
                    self._pump(self._folded, float("inf"), ack=False)
        self._closed = True
        self._proc.join(max(0.5, timeout + 1.0 - (time.monotonic() - t0)))
        self._kill()
        for c in (self._cmd, self._upd):
            c.close()
        stuck = list(report.stuck_tasks) + list(remote.stuck_tasks)
        return ShutdownReport(time.monotonic() - t0, stuck)

    def _kill(self) -> None:
        self._proc.stop(1.0)
        self._closed = True
        atexit.unregister(self._kill)
