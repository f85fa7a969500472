"""The engine in a process of its own, for a front end that must stay responsive.

Why: a window that hosts the engine shares one GIL with it. With the engine in the window's
process, ``taskscope bench`` measured GUI-loop lag p99 of 178 ms while 10,000 coroutines ran on
the engine loop, and 237 ms while worker processes flooded the event pipeline, although each
frame took ~3 ms: the engine's Python threads (the loop, the pool readers unpickling batches,
the store's ingest) held the GIL 35-57% of the time, and the GUI thread queued for it on every
timer. Here the engine runs in a spawned process (Qt-free, like the engine itself), so nothing
the engine does can hold the window's GIL; and threads runs in that process behave exactly as
headless ones, with no GUI thread competing with them.

Shape::

    front end process                         engine process (spawned)
    RemoteSession ── commands, one pipe ──▶   command loop (main thread) → Session
    MirrorStore  ◀── updates, another ────    publisher thread
                 ── acks (+ front-end loop lag) ──▶

*Updates are state, not events.* The publisher reads the engine store's event log with its own
cursor only to learn *which* tasks changed, and sends those tasks' current records (plus run
records, new samples and the event count). Many events for one task between two updates become
one record, so the front end's cost follows what it shows, not the event rate. At most
``MAX_RECORDS`` records go per update and at most ``IN_FLIGHT`` updates are unacknowledged: a
front end that is slow to read gets fuller, rarer updates, never a backlog in the pipe. (Updates
that carry only samples, a few hundred bytes each, may be ``SAMPLE_SLACK`` more: an idle window
that reads 5 times a second still gets every sample as it is taken.) A reader that fell
behind the engine's event ring (it overwrote events before we read them) resends every record
of every active run, so the mirror is never left wrong.

*Nothing polls.* The engine's store tells the publisher of every change, so an idle engine
sends one update per sample, from the sampler's own thread, and wakes no thread for it; the
front end's loop lag in the acknowledgements is read just before each sample takes it.

The mirror (:class:`MirrorStore`) is an :class:`~engine.store.EventStore` with the same reader
API (runs, tasks, samples, counters), holding exact copies of the engine's records; it keeps no
event log (the engine process has it). Queued records are created on the front end's side from
the run's id range (same clock, same fields), so starting a 1M-task run does not ship 1M rows.

Clean exits: the engine process shuts its session down (workers and all) on the ``shutdown``
command, when the front end's pipe closes (the front end died) or on SIGTERM; on Linux it also
asks the kernel for SIGTERM when its parent dies.
"""

from __future__ import annotations

import atexit
import copyreg
import io
import os
import pickle
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from multiprocessing.connection import Connection
from multiprocessing.reduction import ForkingPickler
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from .api import Pumped, ShutdownReport
from .events import Kind, State
from .probes import FrontLoopLag
from .samples import Sample, WorkerSample
from .spec import RunSpec, SpecError
from .store import EventStore, RunRecord, TaskRecord

if TYPE_CHECKING:
    from .compare import CompareProgress, CompareRequest

__all__ = ["MirrorStore", "Pumped", "RemoteCompareJob", "RemoteRun", "RemoteSession"]

#: Records per update at most (about 1 ms to apply 1,000 on the front end's side).
MAX_RECORDS = 4000
#: Updates sent but not yet acknowledged, at most.
IN_FLIGHT = 2
#: Shortest gap between two updates while things change (changes meanwhile are coalesced).
BUSY_GAP_S = 0.012
#: The publisher sleeps until the engine's store changes (a sample, events, a run), a
#: comparison reports, or it stops; this is only a safety net for a wake-up it missed.
IDLE_WAKE_S = 1.0
READY_TIMEOUT_S = 60.0
CALL_TIMEOUT_S = 30.0

_STATES = list(State)
_STATE_INDEX = {s: i for i, s in enumerate(_STATES)}


class EngineGone(RuntimeError):
    """The engine process is not running (it crashed, or was shut down)."""


# == the front end's side =============================================================================
class MirrorStore(EventStore):
    """The front end's copy of the engine's store, filled by :meth:`apply` (see the module
    docstring). Read it like any EventStore. ``read_events`` returns nothing: there is no event
    log here. Local runs (a front end's own run, started through a local Session with this
    store) are appended with the normal EventStore methods."""

    def __init__(self) -> None:
        super().__init__(max_events=1)
        self._local_changed: set[int] = set()

    def append(self, batch: Iterable[Any]) -> list[tuple[int, int, State]]:
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

    def apply(self, runs: list[tuple], recs: list[tuple], samples: list[Any], n_events: int,
              duplicates: int, unknown: int) -> set[int]:
        """Fold one update in; return the ids of the tasks whose records changed."""
        changed: set[int] = set()
        with self._lock:
            tasks = self._tasks
            for rid, spec, first, n, start_ns, end_ns, counts in runs:
                run = self._runs.get(rid)
                if run is None:
                    if spec is None:
                        continue  # evicted here already
                    ids = range(first, first + n)
                    self._runs[rid] = RunRecord(rid, spec, ids, start_ns, end_ns, counts)
                    for i, tid in enumerate(ids):
                        tasks[tid] = TaskRecord(tid, rid, i, queued_ns=start_ns)
                    self._evict_locked()
                else:
                    run.end_ns = end_ns
                    run.counts = counts
            states = _STATES
            for t in recs:
                rec = tasks.get(t[0])
                if rec is None:
                    continue
                (_, st, rec.start_ns, rec.end_ns, rec.cancel_requested_ns, rec.pid, rec.tid,
                 rec.thread, rec.task_name, rec.core, rec.progress, rec.error, rec.reason) = t
                rec.state = states[st]
                changed.add(t[0])
            if samples:
                self._samples.extend(samples)
                self._sample_seq += len(samples)
            self._event_seq += n_events
            self.duplicate_terminals = duplicates
            self.unknown_events = unknown
        return changed


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
                 on_progress: Callable[[Any], None] | None) -> None:
        self._session = session
        self._cb = on_progress
        self.progress: Any = None
        self.done = False
        self.result: Any = None
        self.error: BaseException | None = None

    def _feed(self, item: tuple) -> None:
        kind = item[0]
        if kind == "progress":
            self.progress = item[1]
            if self._cb is not None:
                self._cb(item[1])
        elif kind == "done":
            self.result = item[1]
            if item[2] is not None:
                self.error = RemoteError(*item[2])
            self.done = True

    def cancel(self) -> None:
        if not self.done:
            try:
                self._session._call("compare_cancel")
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


class RemoteError(RuntimeError):
    """An unexpected error raised in the engine process: its type name and message."""

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name
        self.message = message


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
                 nice: int = 0) -> None:
        """``max_events``: the engine store's event ring (default: EventStore's 1,000,000).
        ``nice``: added to the engine process's niceness (Unix), which its workers inherit:
        the window passes a small positive value so that, on cores its runs saturate, the
        window's own few milliseconds of work per frame are not queued behind them. Every
        model runs under the same value, so a comparison stays fair."""
        if sample_hz is not None:
            from .sampler import check_hz

            check_hz(sample_hz)
        if max_events is not None and (isinstance(max_events, bool)
                                       or not isinstance(max_events, int) or max_events < 1):
            raise SpecError("max_events", f"expected a positive whole number, got {max_events!r}")
        if isinstance(nice, bool) or not isinstance(nice, int) or not 0 <= nice <= 19:
            raise SpecError("nice", f"expected 0 to 19, got {nice!r}")
        self.nice = nice
        self._cmd, self._upd, self._proc = _spawn_engine(sample_hz, max_events, nice)
        self.store = MirrorStore()
        self._call_lock = threading.Lock()
        self._pump_lock = threading.Lock()
        self._ready = False
        self._gone: str | None = None
        self._closed = False
        self._folded = Pumped()  # folded into the store, not yet claimed by a pump
        self._local: Any = None  # a local Session for a front end's own run (lazy)
        self._runs: dict[int, RemoteRun] = {}
        self.compare_job: RemoteCompareJob | None = None
        atexit.register(self._kill)

    # -- the engine process --------------------------------------------------------------------
    @property
    def engine_pid(self) -> int | None:
        return self._proc.pid

    @property
    def alive(self) -> bool:
        return self._gone is None and self._proc.is_alive()

    @property
    def gone_reason(self) -> str | None:
        """Why the engine process is not running any more (None while it is)."""
        if self._gone is None and not self._proc.is_alive() and not self._closed:
            self._gone = _exit_text(self._proc.exitcode)
            self._reap()
        return self._gone

    def _wait_ready(self) -> None:
        if self._ready:
            return
        msg = self._reply(READY_TIMEOUT_S, "did not start")
        if msg[0] != "ready":
            self._gone = str(msg[1]) if len(msg) > 1 else "failed to start"
            raise EngineGone(f"the engine process did not start: {self._gone}")
        self._ready = True

    def _reply(self, timeout: float, failing: str) -> tuple:
        """The engine's next message on the command pipe, waiting at most ``timeout``; raise
        EngineGone ("the engine process <failing> …") if it dies or stays silent."""
        deadline = time.monotonic() + timeout
        while not self._cmd.poll(0.05):
            if not self._proc.is_alive():
                self._gone = _exit_text(self._proc.exitcode)
                raise EngineGone(f"the engine process {failing} ({self._gone})")
            if time.monotonic() > deadline:
                raise EngineGone(f"the engine process {failing} within {timeout:.0f} s")
        try:
            return self._cmd.recv()
        except (EOFError, OSError) as e:
            self._gone = self._gone or _exit_text(self._proc.exitcode) or str(e)
            raise EngineGone(f"the engine process stopped ({self._gone})") from None

    def _call(self, op: str, *args: Any, timeout: float = CALL_TIMEOUT_S) -> Any:
        with self._call_lock:
            if self._gone is not None:
                raise EngineGone(f"the engine process stopped ({self._gone})")
            self._wait_ready()
            try:
                self._cmd.send((op, args))
            except (BrokenPipeError, OSError):
                self._gone = _exit_text(self._proc.exitcode) or "its pipe closed"
                raise EngineGone(f"the engine process stopped ({self._gone})") from None
            reply = self._reply(timeout, f"did not answer {op!r}")
        if reply[0] == "ok":
            return reply[1]
        if reply[0] == "spec":
            raise SpecError(reply[1], reply[2])
        if reply[0] == "runtime":
            raise RuntimeError(reply[1])
        if reply[0] == "type":
            raise TypeError(reply[1])
        raise RemoteError(reply[1], reply[2])

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Block until the engine process runs (it starts in the background)."""
        with self._call_lock:
            self._wait_ready()

    # -- runs ----------------------------------------------------------------------------------
    def start(self, spec: RunSpec, *, loop: Any = None) -> RemoteRun:
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
        run_id, first, start_ns = self._call("start", spec)
        # Registered here at once (queued, as in the engine's store): a caller sees its run
        # the moment start returns, as with a local Session.
        self.store.apply([(run_id, spec, first, spec.tasks, start_ns, None,
                           {"queued": spec.tasks})], [], [], 0,
                         self.store.duplicate_terminals, self.store.unknown_events)
        r = RemoteRun(run_id, spec, first, self)
        self._runs[run_id] = r
        return r

    def _start_local(self, spec: RunSpec, loop: Any) -> RemoteRun:
        from .session import Session

        if spec.model != "asyncio":
            raise SpecError("loop", "a caller's loop can only run the asyncio model")
        if self._local is None:
            self._local = Session(self.store, warm=False, sample_hz=None)
        ids = self._call("reserve", spec.tasks)
        run = self._local.start(spec, loop=loop, ids=ids)
        r = RemoteRun(run.run_id, spec, run.first_task_id, self)
        self._runs[run.run_id] = r
        return r

    def _is_local(self, run_id: int) -> bool:
        return self._local is not None and self._local.run(run_id) is not None

    def run(self, run_id: int) -> RemoteRun | None:
        return self._runs.get(run_id)

    def _wait_run(self, run_id: int, timeout: float | None) -> bool:
        if self._is_local(run_id):
            return self._local.run(run_id).wait(timeout)
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
        return bool(self._call("cancel_task", task_id, force, reason))

    def cancel_run(self, run_id: int, force: bool = False, reason: str = "cancelled") -> bool:
        if self._is_local(run_id):
            return self._local.cancel_run(run_id, force, reason)
        return bool(self._call("cancel_run", run_id, force, reason))

    def cancel_all(self, force: bool = False, reason: str = "cancel all") -> int:
        n = self._local.cancel_all(force, reason) if self._local is not None else 0
        return n + int(self._call("cancel_all", force, reason))

    def worker_pids(self) -> list[int]:
        """Pids of the engine's worker processes alive now (not the engine process itself)."""
        if self._gone is not None or self._closed:
            return []
        return list(self._call("worker_pids"))

    def start_compare(self, request: CompareRequest,
                      on_progress: Callable[[CompareProgress], None] | None = None, *,
                      settle_s: float = 0.5, monitor_interval_s: float = 0.1) -> RemoteCompareJob:
        """:func:`engine.compare.start_compare` in the engine process (validation errors are
        raised here, as SpecError)."""
        job = RemoteCompareJob(self, on_progress)
        self.compare_job = job
        try:
            self._call("compare", request,
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

    def _pump(self, out: Pumped, budget_s: float, ack: bool) -> None:
        t0 = time.perf_counter()
        conn = self._upd
        try:
            while conn.poll(0):
                msg = conn.recv()
                if msg[0] != "u":
                    continue
                _, runs, recs, samples, n_ev, dropped, dup, unknown, compare, backlog = msg
                out.changed |= self.store.apply(runs, recs, samples, n_ev, dup, unknown)
                out.events += n_ev
                out.dropped += dropped
                out.backlog = backlog
                if compare and self.compare_job is not None:
                    for item in compare:
                        self.compare_job._feed(item)
                if ack:
                    lag = self._lag_probe.take() if self._lag_probe is not None else None
                    conn.send(("ack", lag))
                if time.perf_counter() - t0 > budget_s:
                    break
        except (EOFError, OSError):
            if ack:
                self._proc.join(0.2)
                self._gone = _exit_text(self._proc.exitcode) or "its pipe closed"
                self._reap()

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
                    remote = self._call("shutdown", timeout, timeout=timeout + 3.0)
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
        p = self._proc
        if p.is_alive():
            p.terminate()
            p.join(1.0)
            if p.is_alive():
                p.kill()
                p.join(1.0)
        self._reap()
        self._closed = True
        atexit.unregister(self._kill)

    def _reap(self) -> None:
        """Once the engine process is gone: kill whatever is left in its process group (its
        workers, if it was killed before it could stop them)."""
        if self._proc.is_alive() or not self._proc.pid:
            return
        try:
            os.killpg(self._proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError, OSError):
            pass


class _Child:
    """The engine process, with the few calls of multiprocessing.Process that we use."""

    def __init__(self, popen: subprocess.Popen) -> None:
        self._p = popen
        self.pid = popen.pid

    def is_alive(self) -> bool:
        return self._p.poll() is None

    @property
    def exitcode(self) -> int | None:
        return self._p.poll()

    def join(self, timeout: float | None = None) -> None:
        try:
            self._p.wait(timeout)
        except subprocess.TimeoutExpired:
            pass

    def terminate(self) -> None:
        if self.is_alive():
            self._p.terminate()

    def kill(self) -> None:
        if self.is_alive():
            self._p.kill()


def _spawn_engine(sample_hz: float | None, max_events: int | None,
                  nice: int = 0) -> tuple[Connection, Connection, _Child]:
    """Start ``python -m engine._engine_proc`` with two socket pairs as its pipes.

    A fresh interpreter (fork + exec right away: safe in a process that already runs GUI
    threads), which imports the engine only: not the front end's ``__main__`` (as
    multiprocessing's spawn would), and never Qt."""
    cmd_parent, cmd_child = socket.socketpair()
    upd_parent, upd_child = socket.socketpair()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    args = [sys.executable, "-m", "engine._engine_proc", str(cmd_child.fileno()),
            str(upd_child.fileno()), "" if sample_hz is None else repr(sample_hz),
            str(os.getpid()), str(max_events or ""), str(nice)]
    try:
        popen = subprocess.Popen(args, pass_fds=(cmd_child.fileno(), upd_child.fileno()),
                                 env=env, stdin=subprocess.DEVNULL, close_fds=True)
    finally:
        cmd_child.close()
        upd_child.close()
    return Connection(cmd_parent.detach()), Connection(upd_parent.detach()), _Child(popen)


def _exit_text(code: int | None) -> str:
    if code is None:
        return ""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


# == the engine process's side =========================================================================
class _EngineStore(EventStore):
    """The engine process's store: it tells the publisher of each change, so the publisher
    sleeps until there is something to send instead of polling: ``on_change`` for a run
    added or ended and for events, ``on_sample`` for samples (see :meth:`_Publisher.sampled`)."""

    def __init__(self, max_events: int | None = None) -> None:
        if max_events:
            super().__init__(max_events=max_events)
        else:
            super().__init__()
        self.on_change: Callable[[], None] | None = None
        self.on_sample: Callable[[], None] | None = None
        #: end_run calls so far: a run's summary changes there without an event.
        self.runs_ended = 0

    def _changed(self) -> None:
        cb = self.on_change
        if cb is not None:
            cb()

    def add_run(self, run_id: int, spec: Any, first_task_id: int, n_tasks: int,
                t_ns: int) -> None:
        super().add_run(run_id, spec, first_task_id, n_tasks, t_ns)
        self._changed()

    def append(self, batch: Iterable[Any]) -> list[tuple[int, int, State]]:
        ended = super().append(batch)
        self._changed()
        return ended

    def end_run(self, run_id: int, t_ns: int) -> None:
        super().end_run(run_id, t_ns)
        self.runs_ended += 1
        self._changed()

    def add_samples(self, samples: Iterable[Any]) -> None:
        super().add_samples(samples)
        self._changed()

    def add_sample(self, sample: Any) -> None:
        super().add_sample(sample)
        cb = self.on_sample or self.on_change
        if cb is not None:
            cb()


#: Updates that carry nothing but samples (a few hundred bytes each) may be this many more
#: unacknowledged than ``IN_FLIGHT``: a front end that reads less often than the sampler
#: samples (an idle window pumps at 5 Hz) still gets each sample as it is taken. They also
#: stop while the updates in flight total ``DIRECT_MAX_BYTES``, far below a socket buffer,
#: so sending one can never block the sampler's thread.
SAMPLE_SLACK = 2
DIRECT_MAX_BYTES = 32 * 1024


def _by_fields(cls: type) -> dict[type, Callable[[Any], tuple]]:
    """{cls: reduce cls to (cls, its fields' values)}: its constructor's arguments, when
    every field is one (else nothing: it pickles the usual way)."""
    fs = fields(cls)
    if any(not f.init for f in fs):  # pragma: no cover - not so today
        return {}
    get = attrgetter(*(f.name for f in fs))
    return {cls: lambda obj: (cls, get(obj))}


class _UpdatePickler(pickle.Pickler):
    """What ``Connection.send`` pickles with (ForkingPickler's reducers), plus one shortcut:
    a Sample (and a WorkerSample) pickles as its constructor's arguments. A dataclass with
    slots otherwise goes through a Python ``__getstate__`` that lists its fields on every
    call: most of an idle update's cost. The front end unpickles it as before (``recv``)."""

    dispatch_table = {**copyreg.dispatch_table,
                      **getattr(ForkingPickler, "_extra_reducers", {}),
                      **_by_fields(Sample), **_by_fields(WorkerSample)}

    @classmethod
    def dumps(cls, obj: Any) -> memoryview:
        buf = io.BytesIO()
        cls(buf, pickle.HIGHEST_PROTOCOL).dump(obj)
        return buf.getbuffer()


class _Publisher:
    """Sends state updates to the front end (see the module docstring).

    No polling. The publisher thread sleeps on :attr:`wake` until something changed: the
    engine's store calls :meth:`kick` when runs or events change (see :class:`_EngineStore`),
    as do comparison reports and :meth:`close`. A new sample with nothing else to send goes
    out from the thread that stored it (the sampler's, :meth:`sampled`), so an idle engine
    wakes no thread of its own for it: one update per sample, the moment it is taken.
    A store that does not notify (a plain EventStore) is polled every ``BUSY_GAP_S``.

    One lock (:attr:`_lock`) covers building, sending, and reading acknowledgements: the
    sampler's thread only ever tries it, so it never waits for the publisher.
    """

    def __init__(self, session: Any, conn: Any, lag: Any) -> None:
        self.session = session
        self.store: EventStore = session.store
        self.conn = conn
        self.lag = lag  # ExternalLag for "gui", or None
        self.ev_cursor = 0
        self.sample_cursor = 0
        self.pending: set[int] = set()
        self.sent_runs: set[int] = set()
        self.final_runs: set[int] = set()
        self.run_sig: dict[int, tuple] = {}
        self.compare: deque[tuple] = deque()
        self.stop = threading.Event()
        self.wake = threading.Event()
        self._lock = threading.Lock()
        #: Sizes (bytes) of the updates sent and not yet acknowledged, oldest first.
        self.inflight: deque[int] = deque()
        self._inflight_bytes = 0
        self.last_send = -1.0
        self._runs_ended_seen = -1
        # Is an ack waiting? One poll(2) on a poll object made once (Connection.poll builds
        # a selector for each call). Used under _lock only: a poll object is single-threaded.
        fd = conn.fileno()
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            self._ack_ready: Callable[[], bool] = lambda: bool(poller.poll(0))
        else:  # pragma: no cover - no poll(2)
            self._ack_ready = lambda: conn.poll(0)
        self._notified = isinstance(self.store, _EngineStore)
        if self._notified:
            self.store.on_change = self.kick  # type: ignore[attr-defined]
            self.store.on_sample = self.sampled  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self._main, name="taskscope-publisher",
                                       daemon=True)

    def kick(self) -> None:
        """Something changed: wake the publisher thread (cheap when it is awake already)."""
        if not self.wake.is_set():
            self.wake.set()

    def push_compare(self, item: tuple) -> None:
        self.compare.append(item)
        self.kick()

    def close(self) -> None:
        """Stop the publisher thread (see :meth:`final` for what is still unsent)."""
        self.stop.set()
        self.wake.set()

    def sampled(self) -> None:
        """A sample was stored (called in the storing thread, the sampler's). If nothing but
        samples waits to be sent and the publisher thread is not at work, send it from here;
        else wake the publisher thread."""
        if not self._send_sample_here():
            self.kick()

    def _samples_only(self) -> bool:
        """Only samples wait (and maybe run summaries: a few hundred bytes), and the pipe has
        room for them: no records, events or comparison reports, few bytes in flight."""
        return not (self.pending or self.compare or self.store.event_count != self.ev_cursor
                    or len(self.inflight) >= IN_FLIGHT + SAMPLE_SLACK
                    or self._inflight_bytes >= DIRECT_MAX_BYTES)

    def _send_sample_here(self) -> bool:
        if self.wake.is_set() or self.stop.is_set() or not self._samples_only():
            return False
        if not self._lock.acquire(blocking=False):
            return False
        try:
            if not self._samples_only():  # again, now that nothing else can send
                return False
            upd = self._build()
            if upd is not None:
                self._send_locked(upd)
            return True
        except (EOFError, OSError):
            return True  # the front end went away; the command loop sees it
        finally:
            self._lock.release()

    def read_acks(self) -> None:
        """Take the acknowledgements that arrived (and the front end's loop lag with them),
        without waiting. The sampler calls this right before each sample reads the "gui"
        lag, so a lateness the front end reported counts in the sample whose interval it
        arrived in. Skipped while the publisher thread is at work or has work waiting (it
        may be waiting on the pipe for these very acks: it reads them itself)."""
        if self.wake.is_set() or not self._lock.acquire(blocking=False):
            return
        try:
            self._acks_locked()
        except (EOFError, OSError):
            pass  # the front end went away; the command loop sees it
        finally:
            self._lock.release()

    def _acks_locked(self) -> None:
        conn = self.conn
        ready = self._ack_ready
        while ready():
            msg = conn.recv()
            if msg[0] == "ack":
                if self.inflight:
                    self._inflight_bytes -= self.inflight.popleft()
                if msg[1] is not None and self.lag is not None:
                    try:
                        self.lag.report(msg[1])
                    except (TypeError, ValueError):
                        pass  # not a finite number: dropped, the publisher goes on

    def _send_locked(self, upd: tuple) -> None:
        buf = _UpdatePickler.dumps(upd)  # what Connection.send does, with its size known
        self.conn.send_bytes(buf)
        n = len(buf)
        self.inflight.append(n)
        self._inflight_bytes += n
        self.last_send = time.monotonic()

    def _main(self) -> None:
        stop = self.stop
        wake = self.wake
        lock = self._lock
        try:
            while not stop.is_set():
                with lock:
                    self._acks_locked()
                    can_send = len(self.inflight) < IN_FLIGHT
                    if can_send:
                        wake.clear()  # a change from here on wakes the wait below
                        upd = self._build()
                        if upd is not None:
                            self._send_locked(upd)
                        if self.pending:  # more than MAX_RECORDS changed: the rest next
                            wake.set()
                if not can_send and wake.is_set():
                    # Something to send, and the front end has IN_FLIGHT updates to read:
                    # wait for its next acknowledgement.
                    self.conn.poll(0.1)
                    continue
                # Sleep until something changes (it may have already: then at once).
                wake.wait(IDLE_WAKE_S if self._notified else BUSY_GAP_S)
                # Changes that come quickly go out together, at most one update per gap.
                gap = self.last_send + BUSY_GAP_S - time.monotonic()
                if gap > 0:
                    stop.wait(gap)
        except (EOFError, OSError, BrokenPipeError):
            pass  # the front end went away; the command loop sees it too

    def final(self) -> None:
        """After shutdown: send everything still unsent, whatever is in flight."""
        try:
            with self._lock:
                while (upd := self._build()) is not None:
                    self._send_locked(upd)
        except OSError:
            pass

    def _build(self) -> tuple | None:
        st = self.store
        if st.event_count != self.ev_cursor:
            events, self.ev_cursor, dropped = st.read_events(self.ev_cursor)
        else:
            events, dropped = [], 0
        pending = self.pending
        if events:
            queued = Kind.QUEUED
            pending.update(ev[1] for ev in events if ev[2] != queued)
        if dropped:
            # We fell behind the ring: resend every record of every run whose final state the
            # front end has not had yet (a run that ended in the events we missed included).
            for rec in st.runs():
                if rec.run_id not in self.final_runs:
                    pending.update(rec.task_ids)
        # A run's summary changes with its events (counts) and when it ends (end_ns): with
        # neither since the last look, the runs need no scan.
        scan = bool(events or dropped) or not self._notified
        ended = getattr(st, "runs_ended", 0)
        if ended != self._runs_ended_seen:
            self._runs_ended_seen = ended
            scan = True
        runs: list[tuple] = []
        for rec in st.runs() if scan else ():
            rid = rec.run_id
            if rid in self.final_runs:
                continue
            counts = dict(rec.counts)
            sig = (rec.end_ns, tuple(sorted(counts.items())))
            if self.run_sig.get(rid) == sig:
                continue
            self.run_sig[rid] = sig
            first = rid not in self.sent_runs
            self.sent_runs.add(rid)
            runs.append((rid, rec.spec if first else None, rec.task_ids.start,
                         len(rec.task_ids), rec.start_ns, rec.end_ns, counts))
            if rec.end_ns is not None:
                self.final_runs.add(rid)
                self.run_sig.pop(rid, None)
        recs: list[tuple] = []
        if pending:
            take = [pending.pop() for _ in range(min(MAX_RECORDS, len(pending)))]
            si = _STATE_INDEX
            for r in st.records(take):
                recs.append((r.task_id, si[r.state], r.start_ns, r.end_ns,
                             r.cancel_requested_ns, r.pid, r.tid, r.thread, r.task_name, r.core,
                             r.progress, r.error, r.reason))
        samples, self.sample_cursor = st.read_samples(self.sample_cursor)
        compare = []
        while self.compare:
            compare.append(self.compare.popleft())
        if not (runs or recs or samples or compare or events or dropped):
            return None
        return ("u", runs, recs, samples, len(events), dropped, st.duplicate_terminals,
                st.unknown_events, compare, len(pending))


class _Terminate(BaseException):
    pass


def _on_sigterm(_sig: int, _frame: Any) -> None:
    raise _Terminate()


def _die_with_parent() -> None:
    """Linux: SIGTERM this process when its parent dies (any way, even SIGKILL)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def child_main(argv: list[str]) -> None:
    """``python -m engine._engine_proc CMD_FD UPD_FD HZ FRONT_PID`` (see :func:`_spawn_engine`)."""
    cmd = Connection(int(argv[0]))
    upd = Connection(int(argv[1]))
    hz = float(argv[2]) if argv[2] else None
    max_events = int(argv[4]) if len(argv) > 4 and argv[4] else None
    nice = int(argv[5]) if len(argv) > 5 and argv[5] else 0
    if nice and hasattr(os, "nice"):
        os.nice(nice)
    _engine_main(cmd, upd, hz, int(argv[3]), max_events)


def _engine_main(cmd: Any, upd: Any, sample_hz: float | None, front_pid: int,
                 max_events: int | None = None) -> None:
    """The engine process: one Session, commands on ``cmd``, updates on ``upd``."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is the front end's to handle
    # A process group of our own: every process under us (forkserver, resource tracker,
    # workers) joins it, so if this process is killed outright the front end can still end
    # them all with one killpg (RemoteSession._reap). It also keeps a terminal's Ctrl+C,
    # which the front end handles by shutting us down in order, away from the workers.
    try:
        os.setpgrp()
    except OSError:
        pass
    _die_with_parent()
    if os.getppid() != front_pid:  # the parent died before we asked
        return
    session = None
    try:
        from .session import Session

        store = _EngineStore(max_events)
        # The window's process is TaskScope too: "this app's CPU" counts both processes.
        session = Session(store, sample_hz=sample_hz, own_pids=lambda: (front_pid,))
        pub = _start_publisher(session, upd)
        cmd.send(("ready", os.getpid()))
        _serve(session, pub, cmd)
    except _Terminate:
        pass
    except (EOFError, OSError):
        pass  # the front end went away
    except BaseException as e:  # noqa: BLE001 - told to the front end, then we exit
        try:
            cmd.send(("fatal", f"{type(e).__name__}: {e}"))
        except OSError:
            pass
    finally:
        if session is not None:
            try:
                session.shutdown(timeout=1.5)
            except BaseException:  # noqa: BLE001 - exiting anyway
                pass


def _start_publisher(session: Any, conn: Any) -> _Publisher:
    """A publisher of ``session``'s state on ``conn``, running."""
    pub = _Publisher(session, conn, None)
    if session.sampler is not None:
        # The front end's loop lag comes with its acks: each sample reads those that arrived
        # in its interval, in the sampler's thread (the publisher may be asleep).
        pub.lag = session.sampler.add_external_lag("gui", poll=pub.read_acks)
    pub.thread.start()
    return pub


_REPLIED = object()  # a command that already sent its answer


def _serve(session: Any, pub: _Publisher, cmd: Any) -> None:
    job: Any = None
    reporter: threading.Thread | None = None
    while True:
        op, args = cmd.recv()
        try:
            if op == "start":
                spec = args[0]
                if spec.workload == "custom":
                    from .custom import refresh

                    refresh(str(spec.params.get("function", "")))
                replied: list[bool] = []

                def admitted(run: Any, t_ns: int, replied: list[bool] = replied) -> None:
                    # Answer now, before the tasks are registered and the workers start (see
                    # Session.start): the front end's thread is waiting for this.
                    cmd.send(("ok", (run.run_id, run.first_task_id, t_ns)))
                    replied.append(True)

                try:
                    session.start(spec, admitted=admitted)
                except Exception as e:
                    if not replied:
                        raise
                    # Answered already: a failure to launch the workers is recorded as the
                    # tasks' failure by Session.start; anything else can only be reported.
                    print(f"taskscope engine: run {spec.model} after its start: "
                          f"{type(e).__name__}: {e}", file=sys.stderr)
                result: Any = _REPLIED
            elif op == "reserve":
                result = session.reserve_ids(int(args[0]))
            elif op == "cancel_task":
                result = session.cancel_task(*args)
            elif op == "cancel_run":
                result = session.cancel_run(*args)
            elif op == "cancel_all":
                result = session.cancel_all(*args)
            elif op == "worker_pids":
                result = session.worker_pids()
            elif op == "compare":
                from .compare import start_compare

                if job is not None and not job.done:
                    raise RuntimeError("a comparison is already running")
                request, how = args
                job = start_compare(session, request,
                                    lambda p: pub.push_compare(("progress", p)), **how)
                reporter = threading.Thread(target=_compare_done, args=(job, pub), daemon=True,
                                            name="taskscope-compare-done")
                reporter.start()
                result = None
            elif op == "compare_cancel":
                if job is not None:
                    job.cancel()
                result = None
            elif op == "shutdown":
                timeout = float(args[0])
                if job is not None:
                    job.cancel()
                    job.wait(timeout)
                if reporter is not None:  # its "done" goes out with the final update
                    reporter.join(0.5)
                report = session.shutdown(timeout=timeout)
                pub.close()
                pub.thread.join(1.0)
                pub.final()  # every task's last state, before the reply
                cmd.send(("ok", report))
                return
            else:
                raise ValueError(f"unknown command {op!r}")
        except SpecError as e:
            cmd.send(("spec", e.field, e.message))
        except RuntimeError as e:
            cmd.send(("runtime", str(e)))
        except TypeError as e:
            cmd.send(("type", str(e)))
        except Exception as e:  # noqa: BLE001 - the front end shows it; we keep serving
            cmd.send(("error", type(e).__name__, str(e)))
        else:
            if result is not _REPLIED:
                cmd.send(("ok", result))


def _compare_done(job: Any, pub: _Publisher) -> None:
    job.wait()
    err = None if job.error is None else (type(job.error).__name__, str(job.error))
    pub.push_compare(("done", job.result, err))

