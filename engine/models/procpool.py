"""A process pool that survives a killed worker.

``concurrent.futures.ProcessPoolExecutor`` cannot kill one task: ``Future.cancel()`` on a
running task returns False, and killing a worker breaks the whole pool (every in-flight and
queued future fails with ``BrokenProcessPool``). :class:`ProcPool` is an ``Executor`` with the
same ``submit`` interface (so ``loop.run_in_executor`` takes it) built for cancellation:

* each worker runs **one job at a time**; queued jobs wait in the parent, so cancelling a queued
  job is exact and instant, and killing a worker touches only the job it was running;
* cooperative cancel writes the task's id into the worker's slot of a shared-memory array,
  which the task's context reads (about 0.1 µs a check);
* force cancel kills the worker; the pool reports that task as cancelled (forced), starts a
  replacement in the same slot, and carries on with the queue;
* a worker that dies on its own (``os._exit``, a signal, a segfault) fails only its own task,
  with the exit code, and is replaced the same way;
* a job past its deadline that ignores its cooperative timeout is killed ``KILL_GRACE_S``
  later and reported as timed out.

Workers start with forkserver where the platform has it (spawn elsewhere), never fork: the GUI
process has Qt threads by then. Their entry point, :mod:`engine.models._procworker`, imports no
Qt.

Why one piece of about 600 lines: the job table, the worker slots and the kill-and-replace path
share one lock and one state per job (queued, sent, running, ended). A cancel can race a
worker's death or its result; each such race is settled in one place, under that lock, which a
split across modules would spread out.
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import multiprocessing.connection as mpc
import os
import pickle
import signal
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any

from ..clock import now_ns
from ..events import Event, Kind
from . import _procworker
from .execute import TaskOrder

KILL_GRACE_S = 0.5
_START_METHOD: str | None = None


def start_method() -> str:
    """forkserver where available (Linux, macOS), else spawn (Windows). Never fork."""
    global _START_METHOD
    if _START_METHOD is None:
        methods = mp.get_all_start_methods()
        _START_METHOD = "forkserver" if "forkserver" in methods else "spawn"
        if _START_METHOD == "forkserver":
            # Import the worker module (and NumPy, which two workloads use) once in the server,
            # so every forked worker starts warm. '__main__' is preloaded too: children then
            # skip re-running the main script (which under pytest or a console script would
            # import it again in every worker).
            mp.get_context("forkserver").set_forkserver_preload(
                ["__main__", "engine.models._procworker", "numpy"]
            )
    return _START_METHOD


def warm_up() -> None:
    """Start the forkserver now (in the background) so the first process run does not pay
    for it. Safe after Qt has started: the server is a fresh interpreter, not a fork."""
    if start_method() != "forkserver":
        return
    from multiprocessing import forkserver

    threading.Thread(target=forkserver.ensure_running, name="taskscope-forkserver-start",
                     daemon=True).start()


class WorkerDied(Exception):
    """The worker process running a job exited before finishing it."""


class TaskKilled(Exception):
    """The job's worker was killed on request (force cancel or a timeout it ignored)."""


#: Jobs sent to a worker ahead of the one it runs. One hides the parent<->worker round trip
#: between short tasks (measured: 1 ms tasks went from ~150-200 to well under 100 µs of
#: overhead each); more would only let one slow worker hoard the queue.
PREFETCH = 1
#: A job whose workers keep dying before they start it is failed after this many tries
#: (a worker that cannot even start would otherwise be replaced forever).
MAX_REQUEUES = 3


class _Job:
    __slots__ = ("job_id", "fn", "args", "future", "order", "slot", "parity", "killed",
                 "deadline_ns", "cancel_reason", "ended", "requeues", "ghost_of")

    def __init__(self, job_id: int, fn: Callable, args: tuple, future: Future) -> None:
        self.job_id = job_id
        self.fn = fn
        self.args = args
        self.future = future
        # An engine task (not an arbitrary function) reports its own events and can be
        # cancelled by task id.
        self.order: TaskOrder | None = (
            args[0] if fn is _procworker.run_task and args and isinstance(args[0], TaskOrder) else None
        )
        self.slot = -1  # the worker slot holding it, -1 while queued in the parent
        self.parity = 0  # which of the slot's two flag entries is this job's
        self.killed = ""  # why we killed its worker: "" (not killed), "cancel" or "timeout"
        self.deadline_ns: int | None = None
        self.cancel_reason = ""
        self.requeues = 0  # times its worker died before starting it
        #: Reported cancelled by the parent before its worker started it (the worker skips it).
        self.ended = False
        #: A placeholder for the task with this id, taken to another worker (see
        #: ProcPool._steal_locked); -1: a real job.
        self.ghost_of = -1


class _Slot:
    """One worker process and the jobs sent to it: ``jobs[0]`` runs, the rest wait in its pipe."""

    __slots__ = ("index", "proc", "conn", "jobs", "pid", "seq", "claim_lock", "ready")

    def __init__(self, index: int, proc: Any, conn: Any, claim_lock: Any = None) -> None:
        self.index = index
        self.proc = proc
        self.conn = conn
        self.jobs: deque[_Job] = deque()
        self.pid: int = proc.pid
        self.seq = 0
        self.ready = False  # the worker said hello: it takes a job at once
        #: Held by the worker while it claims its next job, and by the parent while it decides
        #: whether a cancel found that job unstarted (see ``_flag_locked``). One per worker:
        #: a worker killed while holding it takes it along, and nobody else waits on it.
        self.claim_lock = claim_lock


class ProcPool(Executor):
    """An ``Executor`` of ``n`` worker processes; each runs one job at a time.

    Cancel flags: two shared-memory entries per worker, ``flags[2*slot + parity]``. A worker
    holds at most two jobs (the running one and one prefetched), and consecutive jobs of a
    worker alternate parity, so a cancel written for one job never overwrites the other's.
    """

    def __init__(
        self,
        n: int,
        on_events: Callable[[list[Event]], None],
        name: str = "taskscope",
        on_ready: Callable[[int], None] | None = None,
    ) -> None:
        """``on_ready(t_ns)`` is called once, on the pool's reader thread, when every one of
        the first ``n`` workers has started and said so (``t_ns``: the last one's clock)."""
        if n < 1:
            raise ValueError("a process pool needs at least one worker")
        self.name = name
        self._on_events = on_events
        self._ctx = mp.get_context(start_method())
        self._flags = self._ctx.RawArray("q", 2 * n)
        #: ``started[slot]``: the job id the worker last claimed (started), under its lock.
        self._started = self._ctx.RawArray("q", n)
        self._lock = threading.RLock()
        self._queue: deque[_Job] = deque()
        self._by_task: dict[int, _Job] = {}
        self._ids = itertools.count(1)
        self._closed = False
        self._wake_r, self._wake_w = mp.Pipe(duplex=False)
        self.restarts = 0
        #: Messages from workers that could not be unpickled here (normally 0).
        self.lost_messages = 0
        self._on_ready = on_ready
        self._unready = set(range(n))  # slots whose first worker has not said hello yet
        #: When the last of the first workers said hello (engine clock), None until then.
        self.ready_ns: int | None = None
        self._slots: list[_Slot] = [self._spawn(i) for i in range(n)]
        self._reader = threading.Thread(target=self._read_loop, name=f"{name}-reader", daemon=True)
        self._reader.start()

    # -- workers ---------------------------------------------------------------------------
    def _spawn(self, index: int) -> _Slot:
        parent, child = self._ctx.Pipe(duplex=True)
        self._flags[2 * index] = 0
        self._flags[2 * index + 1] = 0
        self._started[index] = 0
        claim_lock = self._ctx.Lock()
        proc = self._ctx.Process(
            target=_procworker.worker_main,
            args=(child, self._flags, index, (claim_lock, self._started)),
            name=f"{self.name}-worker-{index}",
            daemon=True,
        )
        proc.start()
        child.close()
        return _Slot(index, proc, parent, claim_lock)

    def pids(self) -> list[int]:
        """The pids of the live workers (the sampler reads these)."""
        with self._lock:
            return [s.pid for s in self._slots if s.proc.is_alive()]

    @property
    def size(self) -> int:
        return len(self._slots)

    def _wake(self) -> None:
        try:
            self._wake_w.send_bytes(b"w")
        except OSError:
            pass

    # -- submitting ---------------------------------------------------------------------------
    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> Future:
        """Queue ``fn(*args)`` (top-level, picklable) to run in a worker."""
        if kwargs:
            raise TypeError("ProcPool.submit takes positional arguments only")
        fut: Future = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot submit to a closed ProcPool")
            job = _Job(next(self._ids), fn, args, fut)
            if job.order is not None:
                self._by_task[job.order.task_id] = job
            self._queue.append(job)
            self._dispatch_locked()
        return fut

    def _dispatch_locked(self) -> None:
        """Hand queued jobs to workers: first one to every idle worker, then one prefetch each;
        with none queued, an idle worker takes a job prefetched behind a busy one."""
        if self._closed:
            return
        for depth in range(PREFETCH + 1):
            for slot in self._slots:
                # A slot whose worker has yet to pass a placeholder waits (one behind a running
                # job fills the slot already: only one in front needs the check).
                if len(slot.jobs) != depth or (depth and slot.jobs[0].ghost_of >= 0):
                    continue
                job = self._next_job_locked()
                if job is None:
                    self._steal_locked()
                    return
                self._send(slot, job)

    def _steal_locked(self) -> None:
        """Move engine tasks prefetched behind a running one to workers that sit idle.

        A prefetched job waits in its worker's pipe until the job ahead of it ends. With
        nothing left in the queue, a worker that is idle (its last task ended, or it replaced
        one that crashed) would otherwise wait while that job waits for a busy one: preset 5's
        last task waited 0.27 s behind a running one while the worker replacing a crashed one
        sat idle (7 runs in 10), time the processes model was charged for our dispatch. A
        shared queue (``ProcessPoolExecutor``'s) gives the job to whichever worker asks first.

        The job is taken back only if its worker has not claimed it: under that worker's claim
        lock, as a cancel of an unstarted job is decided (see ``_flag_locked``), its flag is set
        so the worker skips it without a word, and a placeholder (``_ghost``) keeps its place
        in the slot until the worker has passed it, so the slot still holds at most two jobs
        and the flags' parities stay apart. That slot gets nothing new until then, and the flag
        is cleared as the placeholder passes: a worker skips any job with a flagged task id,
        and the task may come back to it (its new worker dying before it starts). Plain
        functions (no task order) cannot be skipped and stay where they are.
        """
        for idle in self._slots:
            if idle.jobs or not idle.ready or not idle.proc.is_alive():
                continue
            for busy in self._slots:
                if len(busy.jobs) < 2:
                    continue
                job = busy.jobs[1]
                if job.order is None or job.ended or job.killed:
                    continue
                lock = busy.claim_lock
                if lock is None or not lock.acquire(timeout=0.05):
                    continue
                tid = job.order.task_id
                try:
                    if self._started[busy.index] == job.job_id:
                        continue  # its worker has just started it
                    self._flags[2 * busy.index + job.parity] = tid
                finally:
                    lock.release()
                busy.jobs[1] = self._ghost(job, tid)
                job.job_id = next(self._ids)
                self._send(idle, job)
                break

    @staticmethod
    def _ghost(job: _Job, task_id: int) -> _Job:
        """A placeholder for ``job`` (task ``task_id``) in the slot it was taken from: same id
        and parity, no task, already ended (its worker's 'done' for it, or its death, ends
        nothing)."""
        fut: Future = Future()
        fut.cancel()
        ghost = _Job(job.job_id, _procworker.run_task, (), fut)
        ghost.slot, ghost.parity, ghost.ended = job.slot, job.parity, True
        ghost.ghost_of = task_id
        return ghost

    def _passed_ghost_locked(self, slot: _Slot, ghost: _Job) -> None:
        """The worker skipped the placeholder: clear the flag that made it skip, so the task, if
        it ever comes back to this worker (its new one died before starting it), runs."""
        i = 2 * slot.index + ghost.parity
        if self._flags[i] == ghost.ghost_of:
            self._flags[i] = 0

    def _next_job_locked(self) -> _Job | None:
        while self._queue:
            job = self._queue.popleft()
            # A job re-queued from a dead worker's pipe is already marked running.
            if job.future.running() or job.future.set_running_or_notify_cancel():
                return job
            # cancelled by its caller (e.g. run_in_executor's coroutine was cancelled)
            self._end_unstarted(job, job.cancel_reason or "cancelled")
        return None

    def _send(self, slot: _Slot, job: _Job) -> None:
        job.slot = slot.index
        job.parity = slot.seq & 1
        slot.seq += 1
        slot.jobs.append(job)
        try:
            slot.conn.send((job.job_id, job.fn, job.args))
        except (OSError, ValueError):
            pass  # the worker is gone; the reader thread sees its sentinel and handles the job
        except Exception as e:  # noqa: BLE001 - e.g. an argument that cannot be pickled
            slot.jobs.remove(job)
            job.slot = -1
            if job.order is not None:
                from ..context import error_info

                self._by_task.pop(job.order.task_id, None)
                self._emit_parent(job.order, Kind.FAILED, error_info(e))
            self._finish_job(job, False, e)

    def _note_started(self, slot: _Slot, batch: list[Event]) -> None:
        """Start the watchdog clock of the slot's running job when its 'started' arrives.

        The clock counts from the task's own start, as its cooperative deadline does in the
        worker, not from when the job was sent: a fresh worker can take a good part of a
        second to start on a busy machine, and that is not the task's time.
        """
        with self._lock:
            job = slot.jobs[0] if slot.jobs else None
            if (job is None or job.order is None or job.order.timeout_s is None
                    or job.deadline_ns is not None):
                return
            tid = job.order.task_id
            for ev in batch:
                if ev.task_id == tid and ev.kind == Kind.STARTED:
                    job.deadline_ns = ev.t_ns + int(job.order.timeout_s * 1e9)
                    return

    def _flag_locked(self, job: _Job) -> bool:
        """Set the cancel flag of a job a worker holds; return True if it has started there.

        A job that has not started is reported cancelled here and now, and its worker skips
        it without a word when it gets to it (a prefetched job may wait behind a long task).
        Both sides decide under the worker's claim lock, so exactly one of them reports it.
        """
        assert job.order is not None
        slot = self._slots[job.slot]
        tid = job.order.task_id
        lock = slot.claim_lock
        if lock is None or not lock.acquire(timeout=0.2):
            # No lock, or its worker died holding it (its death ends the job): flag only.
            self._flags[2 * job.slot + job.parity] = tid
            return True
        try:
            self._flags[2 * job.slot + job.parity] = tid
            # The worker runs its jobs in the order sent. If it claimed this job or one sent
            # after it (it may have moved on before we read its 'done'), this one started.
            claimed = self._started[job.slot]
            started = any(j.job_id == claimed
                          for j in itertools.dropwhile(lambda j: j is not job, slot.jobs))
        finally:
            lock.release()
        if not started and not job.ended:
            job.ended = True
            self._by_task.pop(tid, None)
            self._emit_parent(job.order, Kind.CANCELLED,
                              {"reason": job.cancel_reason or "cancelled"})
        return started

    def _end_unstarted(self, job: _Job, reason: str) -> None:
        if job.order is not None:
            self._by_task.pop(job.order.task_id, None)
            self._emit_parent(job.order, Kind.CANCELLED, {"reason": reason})

    def _emit_parent(self, order: TaskOrder, kind: str, info: dict | None) -> None:
        """An event about a task that no worker can report (never started, or its worker died)."""
        self._on_events([Event(order.run_id, order.task_id, kind, now_ns(), info=info)])

    # -- cancelling -----------------------------------------------------------------------------
    def cancel_task(self, task_id: int, force: bool = False, reason: str = "cancelled") -> bool:
        """Cancel an engine task: dequeue it, flag it, or (``force``) kill its worker.

        A job sent to a worker that has not started it yet (prefetched behind a long task) is
        reported cancelled at once; the worker skips it. Returns False if the pool does not (or
        no longer) hold that task.
        """
        with self._lock:
            job = self._by_task.get(task_id)
            if job is None:
                return False
            job.cancel_reason = reason
            if job.slot < 0:  # still queued here
                try:
                    self._queue.remove(job)
                except ValueError:
                    return False
                job.future.cancel()
                self._end_unstarted(job, reason)
                return True
            if self._flag_locked(job) and force:
                self._kill_locked(job, "cancel")
            return True

    def _kill_locked(self, job: _Job, why: str) -> None:
        """Kill the worker running ``job``, but never one that has moved on to a later job.

        The worker claims each job under its claim lock, so holding that lock while checking
        its claim and killing means the SIGKILL cannot land on the next task (a task that ends
        on its own just as a force cancel arrives would otherwise take its successor with it).
        """
        slot = self._slots[job.slot]
        if not (slot.jobs and slot.jobs[0] is job) or job.killed:
            return
        lock = slot.claim_lock
        held = lock is not None and lock.acquire(timeout=0.2)
        try:
            if held and self._started[slot.index] != job.job_id:
                return  # it ended and the worker went on: its 'done' is on the way
            job.killed = why
            try:
                os.kill(slot.pid, signal.SIGKILL if hasattr(signal, "SIGKILL") else signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass
        finally:
            if held:
                lock.release()

    # -- the reader thread ------------------------------------------------------------------------
    def _read_loop(self) -> None:
        while True:
            with self._lock:
                slots = list(self._slots)
                closed = self._closed
            if closed and not any(s.proc.is_alive() for s in slots):
                # Workers killed at shutdown may have died after the last wait: their jobs
                # still need their endings (and their futures a result) before we leave.
                for s in slots:
                    self._on_death(s)
                return
            conns = {s.conn: s for s in slots}
            sentinels = {s.proc.sentinel: s for s in slots}
            try:
                ready = mpc.wait([*conns, *sentinels, self._wake_r], timeout=0.1)
            except OSError:
                ready = []
            for r in ready:
                if r is self._wake_r:
                    try:
                        while self._wake_r.poll():
                            self._wake_r.recv_bytes()
                    except (OSError, EOFError):
                        pass
                elif r in conns:
                    self._drain(conns[r])
            for r in ready:
                if r in sentinels:
                    self._on_death(sentinels[r])
            self._watchdog()

    def _drain(self, slot: _Slot) -> None:
        conn = slot.conn
        try:
            while conn.poll():
                try:
                    msg = conn.recv()
                except (EOFError, OSError):
                    raise
                except Exception:  # noqa: BLE001 - a batch that cannot be rebuilt here must
                    self.lost_messages += 1  # not kill the reader thread (and the pool)
                    continue
                if msg[0] == "ev":
                    self._on_events(msg[1])
                    self._note_started(slot, msg[1])
                    continue
                if msg[0] == "hello":
                    self._hello(slot, msg[1])
                    continue
                _, job_id, ok, blob, batch = msg
                ok, value = _load_value(ok, blob)
                if batch:
                    self._on_events(batch)
                with self._lock:
                    job = slot.jobs[0] if slot.jobs else None
                    if job is None or job.job_id != job_id:
                        continue  # not ours any more (the slot was replaced)
                    slot.jobs.popleft()
                    if job.ghost_of >= 0:
                        self._passed_ghost_locked(slot, job)
                    if job.order is not None:
                        self._by_task.pop(job.order.task_id, None)
                    if self._closed:
                        if not slot.jobs:
                            try:
                                conn.send(None)  # no more work: let the worker exit
                            except (OSError, ValueError):
                                pass
                    else:
                        self._dispatch_locked()
                self._finish_job(job, ok, value)
        except (EOFError, OSError):
            pass  # the worker died; its sentinel fires and _on_death handles the job

    def _hello(self, slot: _Slot, t_ns: int) -> None:
        """A worker is up and waiting for jobs (an idle one may take a job prefetched behind a
        busy worker now, see ``_steal_locked``). Once every slot's worker has been (a worker
        killed before it said so counts once its replacement does), the pool is ready."""
        with self._lock:
            slot.ready = True
            if not slot.jobs:
                self._dispatch_locked()
            if not self._unready:
                return
            self._unready.discard(slot.index)
            if self._unready:
                return
            self.ready_ns = t_ns
        if self._on_ready is not None:
            self._on_ready(t_ns)

    def _finish_job(self, job: _Job, ok: bool, value: Any) -> None:
        if job.future.done():
            return
        if ok:
            job.future.set_result(value)
        else:
            job.future.set_exception(value if isinstance(value, BaseException) else RuntimeError(str(value)))

    def _on_death(self, slot: _Slot) -> None:
        self._drain(slot)  # whatever it sent before it died
        slot.proc.join(timeout=1)
        code = slot.proc.exitcode
        with self._lock:
            if self._slots[slot.index] is not slot:
                return
            job = slot.jobs.popleft() if slot.jobs else None
            if (job is not None and slot.claim_lock is not None and not job.killed
                    and self._started[slot.index] != job.job_id):
                # The worker never claimed it (it died between two jobs, e.g. just after
                # finishing the one a force cancel aimed at): it was not running, so it is
                # no victim. It goes back to the queue with the rest.
                job.requeues += 1
                if job.requeues <= MAX_REQUEUES:
                    slot.jobs.appendleft(job)
                    job = None
                # else: workers keep dying before they can start it; report it below
            waiting = list(slot.jobs)  # sent to the dead worker but never started there
            slot.jobs.clear()
            try:
                slot.conn.close()
            except OSError:
                pass
            if job is not None and job.order is not None:
                self._by_task.pop(job.order.task_id, None)
            for w in reversed(waiting):
                w.slot = -1
                w.deadline_ns = None
                if w.ended:  # already reported cancelled: nothing to re-run
                    self._finish_job(w, False, TaskKilled("cancelled before it started"))
                elif self._closed:
                    self._end_unstarted(w, w.cancel_reason or "shutdown")
                    self._finish_job(w, False, TaskKilled("the pool shut down before it started"))
                else:
                    self._queue.appendleft(w)  # not lost: it runs on the replacement worker
            if not self._closed:
                self.restarts += 1
                self._slots[slot.index] = self._spawn(slot.index)
            self._dispatch_locked()
        if job is None:
            return
        if job.ended:  # reported cancelled before it started: its ending is already told
            self._finish_job(job, False, TaskKilled("cancelled before it started"))
            return
        if job.killed == "cancel":
            exc: BaseException = TaskKilled(f"worker {slot.pid} killed by force cancel")
            if job.order is not None:
                self._emit_parent(job.order, Kind.CANCELLED,
                                  {"reason": job.cancel_reason or "force cancel", "forced": True,
                                   "pid": slot.pid})
        elif job.killed == "timeout":
            exc = TaskKilled(f"worker {slot.pid} killed: the task ignored its timeout")
            if job.order is not None:
                self._emit_parent(job.order, Kind.TIMED_OUT,
                                  {"reason": f"timeout {job.order.timeout_s}s; worker killed after "
                                   f"{KILL_GRACE_S}s grace", "forced": True, "pid": slot.pid})
        else:
            msg = _describe_exit(slot.pid, code)
            if job.requeues > MAX_REQUEUES:
                msg = (f"{job.requeues} workers died before they could start this task; the "
                       f"last: {msg.replace(' while running this task', '')}")
            exc = WorkerDied(msg)
            if job.order is not None:
                self._emit_parent(job.order, Kind.FAILED,
                                  {"type": "WorkerDied", "message": str(exc), "traceback": "",
                                   "exitcode": code, "pid": slot.pid})
        self._finish_job(job, False, exc)

    def _watchdog(self) -> None:
        t = now_ns()
        grace = int(KILL_GRACE_S * 1e9)
        with self._lock:
            for slot in self._slots:
                job = slot.jobs[0] if slot.jobs else None
                if (job is not None and job.deadline_ns is not None and not job.killed
                        and t > job.deadline_ns + grace):
                    self._kill_locked(job, "timeout")

    # -- shutting down --------------------------------------------------------------------------------
    def shutdown(self, wait: bool = True, *, cancel_futures: bool = True, grace_s: float = 0.3) -> None:
        """Stop: cancel queued jobs, flag running ones, kill workers still busy after ``grace_s``."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            queued = list(self._queue)
            self._queue.clear()
            for job in queued:
                job.future.cancel()
                self._end_unstarted(job, "shutdown")
            for slot in self._slots:
                if slot.jobs:
                    for job in slot.jobs:
                        if job.order is not None and not job.ended:
                            job.cancel_reason = job.cancel_reason or "shutdown"
                            self._flag_locked(job)
                else:
                    try:
                        slot.conn.send(None)
                    except (OSError, ValueError):
                        pass
        self._wake()
        deadline = now_ns() + int(grace_s * 1e9)
        for slot in list(self._slots):
            slot.proc.join(timeout=max(0.0, (deadline - now_ns()) / 1e9))
        with self._lock:
            for slot in self._slots:
                if slot.proc.is_alive():
                    if slot.jobs:
                        slot.jobs[0].killed = slot.jobs[0].killed or "cancel"
                    try:
                        slot.proc.kill()
                    except (OSError, ValueError):
                        pass
        for slot in list(self._slots):
            slot.proc.join(timeout=1.0)
        if wait:
            self._reader.join(timeout=2.0)
        for slot in self._slots:
            try:
                slot.conn.close()
            except OSError:
                pass


def _load_value(ok: bool, blob: bytes) -> tuple[bool, Any]:
    """A job's result or exception, unpickled apart from its message (see ``send_done``): one
    that cannot be rebuilt here fails its own job, never the reader thread."""
    try:
        return ok, pickle.loads(blob)
    except Exception as e:  # noqa: BLE001 - whatever the value's __reduce__/__init__ raises
        what = "result" if ok else "exception"
        return False, RuntimeError(
            f"the task's {what} was pickled in the worker but could not be unpickled here: "
            f"{_procworker._one_line(e)}"
        )


def _describe_exit(pid: int, code: int | None) -> str:
    if code is None:
        return f"worker process {pid} died (exit status unknown)"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"worker process {pid} was killed by {name} while running this task"
    return f"worker process {pid} exited with code {code} while running this task"
