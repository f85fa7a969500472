"""The engine's front door: a :class:`Session` starts runs, cancels tasks, and shuts down.

A session owns:

* the :class:`~engine.store.EventStore` front ends read from;
* the engine's own asyncio loop, in its own thread (coroutine workloads run there, never on a
  GUI loop, unless a caller passes its own loop on purpose);
* a :class:`~engine.batcher.Batcher`: in-process workers put events in a lock-free buffer that
  one flusher thread moves into the store; worker processes send their own batches;
* one runner per active run, and whatever workers those runners started.

Every public method is thread-safe and returns quickly; work happens on the workers.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from . import build
from .api import FrontLoopLag, Pumped, ShutdownReport
from .batcher import Batcher
from .clock import now_ns
from .engine_loop import EngineLoop
from .events import Event, Kind, State
from .models import registry
from .models.execute import TaskOrder
from .models.protocol import Launch, Runner
from .spec import RunSpec, SpecError
from .store import EventStore, RunRecord

if TYPE_CHECKING:
    from .compare import CompareJob, CompareProgress, CompareRequest
    from .probes import LagProbe

_new_order = tuple.__new__  # see Run.order

#: Ids apart between sessions of different ``id_base`` (see Session): a session would need a
#: million runs, or a million runs of a million tasks, to reach the next one's.
RUN_ID_STRIDE = 1_000_000
TASK_ID_STRIDE = 1_000_000_000_000


class _Sink:
    """The part of a session a runner may use (:class:`~engine.models.protocol.RunSink`):
    put an event, flush what was put, ingest a batch, look up a task, note facts about its
    run."""

    __slots__ = ("flush", "ingest", "put", "run_info", "task")

    def __init__(self, session: Session) -> None:
        self.put = session._put
        self.flush = session._batcher.flush
        self.ingest = session.ingest
        self.task = session.store.task
        self.run_info = session.store.run_info


class Run:
    """A run in progress (or done). Obtain one from :meth:`Session.start`."""

    def __init__(self, session: Session, run_id: int, spec: RunSpec, first_task_id: int,
                 calib: dict[str, float], params: dict[str, Any]) -> None:
        self._session = session
        #: Where the run's runner reports (see :class:`~engine.models.protocol.RunSink`).
        self.sink = session._sink
        self.run_id = run_id
        self.spec = spec
        self.n = spec.tasks
        self.first_task_id = first_task_id
        self.calib = calib
        self.params = params
        self._order_rest = (spec.workload, spec.size_s, params, calib, spec.timeout_s, "")
        self.runner: Runner | None = None
        self.server: Any = None
        self._ended = 0
        self._lock = threading.Lock()
        self._fail_fast_fired = False
        self._closed = threading.Event()  # set when the run ended and its workers are released
        #: Engine clock when the last task's terminal event reached the store: from then on the
        #: caller can read every result (None until then). The run's own ``end_ns`` is the last
        #: task's end on its worker's clock, which leaves out handing that result back;
        #: :meth:`wait` returns later still, once the workers are released.
        self.ended_ns: int | None = None
        #: Set once ``runner.start()`` returned. A cancel can end every task of a run before
        #: that (it is cancellable from the moment it is registered); closing it must still
        #: wait, or the runner would start workers after they were released, and leak them.
        self._started = threading.Event()
        #: Its runner asked for the engine's loop (its tasks run or wait there).
        self.on_engine_loop = False

    @property
    def task_ids(self) -> range:
        return range(self.first_task_id, self.first_task_id + self.n)

    def order(self, index: int) -> TaskOrder:
        # The fields every task of the run shares are one tuple, made once: built through
        # TaskOrder(...) each time, an order cost 0.6 µs (its namedtuple __new__), once a task.
        return _new_order(TaskOrder, (self.run_id, self.first_task_id + index, index)
                          + self._order_rest)

    def deadline_ns(self) -> int | None:
        t = self.spec.timeout_s
        return None if t is None else now_ns() + int(t * 1e9)

    @property
    def record(self) -> RunRecord:
        rec = self._session.store.run(self.run_id)
        assert rec is not None
        return rec

    @property
    def ended(self) -> bool:
        """Every task has its terminal event."""
        return self._ended >= self.n

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run ended and its workers were released. True if it did."""
        return self._closed.wait(timeout)

    def _on_terminal(self, ended: list[tuple[int, State]]) -> None:
        """Tasks of this run reached their terminal state: ``(task_id, state)`` each, from
        one batch (one lock for the batch, not one a task)."""
        task_id = -1
        with self._lock:
            self._ended += len(ended)
            done = self._ended >= self.n
            if not done and not self._fail_fast_fired and self.spec.policy == "fail-fast":
                task_id = next((tid for tid, st in ended if st is State.FAILED), -1)
                self._fail_fast_fired = task_id >= 0
        if task_id >= 0:
            rec = self._session.store.task(task_id)
            idx = rec.index if rec is not None else task_id
            self._session.cancel_run(self.run_id, reason=f"fail-fast: task {idx} failed")
        if done:
            if self.ended_ns is None:
                self.ended_ns = now_ns()
            session = self._session
            tasks = session.store.tasks(self.run_id)
            end = max((t.end_ns or 0 for t in tasks), default=now_ns())
            session.store.end_run(self.run_id, end)
            session._retire(self)
            session._sampler_busy()


def _rates_now(measure: Callable[[], dict[str, float]]) -> dict[str, float]:
    """A workload's rates timed now, or none (the cached ones stand) where they cannot be
    timed: an unwritable temp directory fails the file tasks themselves, with the reason."""
    try:
        return measure()
    except OSError:
        return {}


class Session(FrontLoopLag):
    """Runs, cancellation and shutdown. Use it as a context manager, or call :meth:`shutdown`.

    It satisfies :class:`~engine.api.SessionAPI` (the front ends' one interface), as
    :class:`engine.remote.RemoteSession` does."""

    def __init__(self, store: EventStore | None = None, *, warm: bool = True,
                 sample_hz: float | None = 10.0,
                 own_pids: Callable[[], Iterable[int]] | None = None,
                 id_base: int = 0) -> None:
        """``own_pids``: other processes of TaskScope itself (the window's, when this session
        runs in an engine process), counted with this one in ``Sample.self_cpu``.
        ``id_base``: run ids start at ``1 + id_base * RUN_ID_STRIDE`` and task ids at
        ``1 + id_base * TASK_ID_STRIDE``, so that the sessions of one front end on several
        interpreters (one engine process each) never share an id, and their runs can be
        mirrored into one store."""
        if sample_hz is not None:  # sampler (issue 3): a bad rate fails before threads start
            from .sampler import check_hz

            check_hz(sample_hz)
        self.store = store or EventStore()
        if warm:
            from .models.procpool import warm_up

            warm_up()
        self._lock = threading.Lock()
        self._runs: dict[int, Run] = {}
        self._next_run = 1 + id_base * RUN_ID_STRIDE
        self._next_task = 1 + id_base * TASK_ID_STRIDE
        self._closing = False
        self._engine_loop: EngineLoop | None = None
        self._batcher = Batcher(self.ingest)
        self._put = self._batcher.put
        self._sink = _Sink(self)
        self._resources: dict[str, tuple[Any, Callable[[Any], None]]] = {}
        self._janitor_q: list[Run] = []
        self._janitor_cv = threading.Condition()
        self._janitor = threading.Thread(target=self._janitor_loop, name="taskscope-janitor",
                                         daemon=True)
        self._janitor.start()
        # -- sampler (issue 3) ------------------------------------------------------------------
        # Samples the machine, this process and our workers into the store at ``sample_hz``
        # (None: no sampler), and probes the engine loop's lag (so that loop starts now).
        from .sampler import Sampler

        self.sampler: Sampler | None = None
        self._engine_probe: LagProbe | None = None
        if sample_hz is not None:
            self.sampler = Sampler(self.store, self.worker_pids, sample_hz, own_pids=own_pids,
                                   remote_workers=self.remote_workers)
            # Between runs nothing runs on the engine loop: probe it 4 times a second then, and
            # pause the GIL probe (Sampler.set_busy); _sampler_busy() wakes both for a run (the
            # loop's probe only for a run whose tasks use that loop).
            self._engine_probe = self.sampler.add_loop_probe("engine", self.loop,
                                                             idle_interval_s=0.25)
            self.sampler.set_busy(False)
            self.sampler.start()
        # -- end sampler ------------------------------------------------------------------------

    # -- the engine loop --------------------------------------------------------------------
    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The engine's own asyncio loop (started on first use)."""
        with self._lock:
            if self._engine_loop is None:
                self._engine_loop = EngineLoop()
            return self._engine_loop.loop

    @property
    def loop_thread_id(self) -> int:
        self.loop  # noqa: B018 - make sure it runs
        assert self._engine_loop is not None
        return self._engine_loop.native_id

    # -- events -------------------------------------------------------------------------------
    def ingest(self, batch: list[Event]) -> None:
        """Add a batch of events to the store and act on tasks that ended."""
        ended = self.store.append(batch)
        if not ended:
            return
        by_run: dict[int, list[tuple[int, State]]] = {}
        for run_id, task_id, state in ended:
            of_run = by_run.get(run_id)
            if of_run is None:
                of_run = by_run[run_id] = []
            of_run.append((task_id, state))
        runs = self._runs
        for run_id, of_run in by_run.items():
            run = runs.get(run_id)
            if run is not None:
                run._on_terminal(of_run)

    # -- runs ------------------------------------------------------------------------------------
    def reserve_ids(self, n_tasks: int) -> tuple[int, int]:
        """Set aside a run id and ``n_tasks`` task ids that this session will never hand out;
        return ``(run_id, first_task_id)``. A front end that runs one run itself (the window's
        "coroutines on the GUI loop" lesson, next to an engine in another process) passes them
        to its own session's :meth:`start` so the two never share an id."""
        with self._lock:
            run_id, first = self._next_run, self._next_task
            self._next_run += 1
            self._next_task += n_tasks
        return run_id, first

    def start(self, spec: RunSpec, *, loop: asyncio.AbstractEventLoop | None = None,
              ids: tuple[int, int] | None = None,
              admitted: Callable[[Run, int], None] | None = None) -> Run:
        """Start a validated run and return at once.

        ``loop``: for the asyncio model, run the coroutines on this loop instead of the engine's
        (the caller owns it; used by the GUI's bounded "coroutines on the GUI loop" lesson).
        ``ids``: ``(run_id, first_task_id)`` from another session's :meth:`reserve_ids`.
        ``admitted(run, t_ns)``: called once the run is accepted (every check passed, ids
        given, ``t_ns`` its start time), before its tasks are registered and its workers
        start. The engine process answers its front end from there: registering 10,000 tasks
        and starting CPU-bound threads that then hold the GIL made the window wait 30-125 ms
        for the answer. If the workers cannot start after that, every task of the run fails
        with the error (no run is left half-started) and the error is not raised.
        """
        from .workloads import WORKLOADS
        from .workloads.calibrate import calibration

        if not isinstance(spec, RunSpec):
            raise TypeError("Session.start takes a RunSpec; build one with engine.make_spec")
        entry = registry.entry(spec.model)
        avail = entry.available()
        if not avail.ok:
            raise SpecError("model", f"{spec.model} is not available here: {avail.reason}")
        if loop is not None and not entry.caller_loop:
            callers = [n for n in registry.names() if registry.entry(n).caller_loop]
            raise SpecError("loop", f"a caller's loop can only run {' or '.join(callers)}")
        if entry.prepare is not None:
            entry.prepare(spec, self)  # e.g. a cluster's scheduler must answer; else SpecError
        wl = WORKLOADS[spec.workload]
        if wl.prepare is not None:
            wl.prepare()
        calib = calibration()
        if wl.rates_per_run is not None:
            # Before the run is queued: our timing of the disk (about 20 ms) is not part of
            # any model's wall. A front end waits for it (see ``admitted``), as it does for
            # the first calibration in a process.
            calib = {**calib, **_rates_now(wl.rates_per_run)}
        params = dict(spec.params)
        server = None
        if wl.needs_server:
            from .workloads.http import LoopbackServer

            server = LoopbackServer(fail_after=int(params.get("fail_after", 0)))
            params["url"] = server.url
        with self._lock:
            if self._closing:
                if server is not None:
                    server.close()
                raise RuntimeError("the session is shutting down")
            if ids is not None:
                run_id, first = ids
            else:
                run_id = self._next_run
                self._next_run += 1
                first = self._next_task
                self._next_task += spec.tasks
            run = Run(self, run_id, spec, first, calib, params)
            run.server = server
            self._runs[run_id] = run
        t_ns = now_ns()
        if admitted is not None:
            admitted(run, t_ns)
        self._sampler_busy()
        # Which interpreter runs it, said by the engine that runs it (issue 14).
        self.store.add_run(run_id, spec, first, spec.tasks, t_ns,
                           info={"python": build.python_block()})
        self._forget_evicted()
        try:
            run.runner = self._make_runner(run, loop)
            run.runner.start()
        except Exception as e:
            self._launch_failed(run, e)
            if admitted is None:
                raise
        finally:
            run._started.set()
        return run

    def _launch_failed(self, run: Run, exc: BaseException) -> None:
        """The run's workers could not start: each of its tasks fails with that error, so
        the run ends (recorded, not left queued) and the front end sees why."""
        from .context import error_info

        t = now_ns()
        info = error_info(exc)
        self.ingest([Event(run.run_id, tid, Kind.FAILED, t, info=info)
                     for tid in run.task_ids])

    def _sampler_busy(self) -> None:
        """Tell the sampler whether a run is active (its probes idle between runs), and the
        engine loop's probe whether an active run uses that loop.

        A run whose tasks never touch the engine loop (sequential, threads, processes) leaves
        its probe at the idle interval: every firing takes the GIL, and from a CPU-bound task
        thread that costs 0.1-0.6 ms of wall time a hand-over on a 2-core VM, 50 times a
        second at the busy interval (our probe's time, shown as the model's). The loop's lag
        is still sampled, 4 times a second; the GIL probe measures the contention itself."""
        if self.sampler is not None:
            with self._lock:
                active = [r for r in self._runs.values() if not r.ended]
                self.sampler.set_busy(bool(active))
                if self._engine_probe is not None:
                    self._engine_probe.set_idle(not any(r.on_engine_loop for r in active))

    def _forget_evicted(self) -> None:
        """Drop closed runs whose records the store evicted (its ``max_tasks`` limit): without
        this, every run ever started (its runner, pool, threads' objects) stayed in memory."""
        with self._lock:
            for run_id, run in list(self._runs.items()):  # oldest first
                if self.store.run(run_id) is not None or not run._closed.is_set():
                    break
                del self._runs[run_id]

    def _make_runner(self, run: Run, loop: asyncio.AbstractEventLoop | None) -> Runner:
        """The run's runner, from its model's registry entry."""
        def engine_loop() -> asyncio.AbstractEventLoop:
            if not run.on_engine_loop:
                run.on_engine_loop = True
                self._sampler_busy()  # its probe measures at full rate while the run lasts
            return self.loop

        launch = Launch(run.spec.effective_workers(),
                        (lambda: loop) if loop is not None else engine_loop, self)
        return registry.entry(run.spec.model).make_runner(run, launch)

    def get(self, key: str, make: Callable[[], Any], close: Callable[[Any], None]) -> Any:
        """A resource kept for the whole session (a model's cluster, say): made by ``make``
        on first use, closed by ``close`` at :meth:`shutdown` (see
        :class:`~engine.models.protocol.Resources`)."""
        with self._lock:
            held = self._resources.get(key)
            if held is not None:
                return held[0]
            if self._closing:
                raise RuntimeError("the session is shutting down")
        obj = make()
        with self._lock:
            held = self._resources.get(key)
            if held is None and not self._closing:
                self._resources[key] = (obj, close)
                return obj
        close(obj)  # made twice at once, or the session closed meanwhile: keep one
        if held is None:
            raise RuntimeError("the session is shutting down")
        return held[0]

    def run(self, run_id: int) -> Run | None:
        return self._runs.get(run_id)

    def runs(self) -> list[Run]:
        with self._lock:
            return list(self._runs.values())

    def active_runs(self) -> list[Run]:
        return [r for r in self.runs() if not r.ended]

    # -- cancellation ------------------------------------------------------------------------------
    def cancel_task(self, task_id: int, force: bool = False, reason: str = "cancelled") -> bool:
        """Cancel one task. ``force`` kills a process task's worker; other models ignore it
        (a thread cannot be killed) and cancel cooperatively. False if no such live task."""
        rec = self.store.task(task_id)
        if rec is None or rec.state.terminal:
            return False
        run = self._runs.get(rec.run_id)
        if run is None or run.runner is None:
            return False
        run.runner.cancel([task_id], force and registry.entry(run.spec.model).can_force, reason)
        return True

    def cancel_run(self, run_id: int, force: bool = False, reason: str = "cancelled") -> bool:
        """Cancel every task of a run that has not ended."""
        run = self._runs.get(run_id)
        if run is None or run.runner is None or run.ended:
            return False
        run.runner.cancel_all(reason, force and registry.entry(run.spec.model).can_force)
        return True

    def cancel_all(self, force: bool = False, reason: str = "cancel all") -> int:
        """Cancel every active run; return how many."""
        n = 0
        for run in self.active_runs():
            n += self.cancel_run(run.run_id, force, reason)
        return n

    # -- workers -------------------------------------------------------------------------------------
    def worker_pids(self) -> list[int]:
        """Pids of the worker processes this session's runs have alive now."""
        pids: list[int] = []
        for run in self.runs():
            if run.runner is not None and not run._closed.is_set():
                pids.extend(run.runner.worker_pids())
        return pids

    def remote_workers(self) -> dict[str, Any]:
        """Workers on other machines of this session's active runs: address -> their latest
        :class:`~engine.samples.WorkerSample` (their own figures, as their cluster reports)."""
        out: dict[str, Any] = {}
        for run in self.runs():
            if run.runner is not None and not run._closed.is_set():
                out.update(run.runner.remote_workers())
        return out

    # -- retiring finished runs ------------------------------------------------------------------------
    def _retire(self, run: Run) -> None:
        with self._janitor_cv:
            self._janitor_q.append(run)
            self._janitor_cv.notify()

    def _janitor_loop(self) -> None:
        while True:
            with self._janitor_cv:
                while not self._janitor_q:
                    self._janitor_cv.wait()
                run = self._janitor_q.pop(0)
            if run is None:
                return
            self._close_run(run, 2.0)

    def _close_run(self, run: Run, timeout: float) -> None:
        if run._closed.is_set():
            return
        run._started.wait(timeout)
        try:
            if run.runner is not None:
                run.runner.close(timeout)
        finally:
            if run.server is not None:
                run.server.close()
                run.server = None
            run._closed.set()

    # -- shutdown ----------------------------------------------------------------------------------------
    def shutdown(self, timeout: float = 2.0) -> ShutdownReport:
        """Cancel everything, release every worker, stop the engine's threads.

        Returns within about ``timeout`` seconds. Process workers still busy after a short
        grace are killed; thread tasks that never check their context cannot be, and are listed
        in the report's ``stuck_tasks``.
        """
        t0 = now_ns()
        deadline = t0 + int(timeout * 1e9)
        with self._lock:
            if self._closing:
                return ShutdownReport(0.0)
            self._closing = True
        runs = self.runs()
        for run in runs:
            if not run.ended:
                self.cancel_run(run.run_id, reason="shutdown")
        # Process pools: give cooperative cancels a moment, then kill (in parallel).
        closers = []
        for run in runs:
            if not run._closed.is_set():
                th = threading.Thread(target=self._close_run, args=(run, 0.3), daemon=True)
                th.start()
                closers.append(th)
        for th in closers:
            th.join(max(0.0, (deadline - now_ns()) / 1e9 - 0.2))
        # In-process tasks stop at their next check; wait for their terminal events.
        for run in runs:
            while not run.ended and now_ns() < deadline - 300_000_000:
                self._batcher.flush()
                threading.Event().wait(0.005)
        self._close_resources(max(0.1, (deadline - now_ns()) / 1e9 - 0.3))
        if self.sampler is not None:  # sampler (issue 3): stop it before the engine loop
            self.sampler.stop()
        if self._engine_loop is not None:
            self._engine_loop.stop(max(0.1, (deadline - now_ns()) / 1e9 - 0.1))
        self._batcher.stop(0.5)
        with self._janitor_cv:
            self._janitor_q.append(None)  # type: ignore[arg-type]
            self._janitor_cv.notify()
        self._janitor.join(0.2)
        stuck = [t.task_id for run in runs for t in self.store.tasks(run.run_id)
                 if not t.state.terminal]
        return ShutdownReport((now_ns() - t0) / 1e9, stuck)

    def _close_resources(self, timeout: float) -> None:
        """Close the session's resources (see :meth:`get`), in parallel, within ``timeout``."""
        with self._lock:
            held = list(self._resources.values())
            self._resources.clear()
        closers = [threading.Thread(target=close, args=(obj,), daemon=True,
                                    name="taskscope-resource-close") for obj, close in held]
        for th in closers:
            th.start()
        end = now_ns() + int(timeout * 1e9)
        for th in closers:
            th.join(max(0.0, (end - now_ns()) / 1e9))

    # -- for a front end (SessionAPI) --------------------------------------------------------------------
    def start_compare(self, request: CompareRequest,
                      on_progress: Callable[[CompareProgress], None] | None = None, *,
                      settle_s: float = 0.5, monitor_interval_s: float = 0.1) -> CompareJob:
        """:func:`engine.compare.start_compare` on this session (SpecError: nothing started)."""
        from .compare import start_compare

        return start_compare(self, request, on_progress, settle_s=settle_s,
                             monitor_interval_s=monitor_interval_s)

    _pump_cursor = 0  # this session's own cursor in its store's event log (see pump)

    def pump(self, budget_s: float = 0.010) -> Pumped:
        """What changed in :attr:`store` since the last pump. The store is this process's, so
        nothing needs folding: this reads its event log from the session's own cursor (a
        reader that fell behind the ring gets every task of every unfinished run). Meant for
        one thread (a front end's frame tick); ``budget_s`` is not needed here."""
        events, self._pump_cursor, dropped = self.store.read_events(self._pump_cursor)
        changed = {ev.task_id for ev in events}
        if dropped:
            for rec in self.store.runs():
                if not rec.done:
                    changed.update(rec.task_ids)
        return Pumped(changed, len(events), dropped)

    @property
    def gone_reason(self) -> str | None:
        """None: the engine runs in this very process, so it cannot be gone under its caller."""
        return None

    @property
    def engine_pid(self) -> int:
        """This process: the engine runs in its caller's process."""
        return os.getpid()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
