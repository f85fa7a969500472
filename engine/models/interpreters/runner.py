"""The ``interpreters`` model's runner: a run's tasks on an :class:`InterpreterPool`.

The interpreters start in a thread of the runner's own (a few hundred ms: not on the caller's
thread, which may be the GUI's), and the tasks show as queued meanwhile, which they are. Then
at most two tasks per interpreter wait in the pool's queue; the rest wait here, as indices,
where a cancel ends them at once.

Cancelling a task handed to the pool sets its byte of the run's flags: one waiting in the
pool's queue ends ``cancelled`` as it comes to start, one running stops at its next check.
There is no force: an interpreter cannot be killed (see :mod:`engine.models.interpreters`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from concurrent.futures import Future

from ...clock import now_ns
from ...context import error_info
from ...events import Event, Kind
from ..protocol import RunView
from ..queue import TaskQueue
from . import inside
from .pool import InterpreterPool

#: Tasks per interpreter waiting in the pool's queue, so an interpreter never waits for the
#: runner's next hand-over.
QUEUED_PER_INTERPRETER = 2


class InterpreterRunner(TaskQueue):
    """``interpreters``: K sub-interpreters, started before the run's tasks (see the module
    docstring)."""

    def __init__(self, run: RunView, workers: int) -> None:
        super().__init__(run)
        self.workers = workers
        self.pool: InterpreterPool | None = None
        self._ready = threading.Event()
        self._closing = False
        self._inflight: set[int] = set()  # handed to the pool, not done yet

    def start(self) -> None:
        threading.Thread(target=self._start_pool, name=f"run{self.run.run_id}-interp-start",
                         daemon=True).start()

    def _start_pool(self) -> None:
        run = self.run
        try:
            with self._lock:
                if self._closing or self._next >= run.n:
                    return  # everything was cancelled before the interpreters were needed
            t0 = now_ns()
            pool = InterpreterPool(min(self.workers, run.n), run.n, self.sink.ingest,
                                   name=f"run{run.run_id}")
            try:
                pool.start()
            except Exception as e:  # noqa: BLE001 - no interpreters: every task fails, saying why
                pool.shutdown(2.0)
                self._end_all_queued(Kind.FAILED, error_info(e))
                return
            ready = now_ns()
            with self._lock:
                closing = self._closing
                if not closing:
                    self.pool = pool
            if closing:
                pool.shutdown(2.0)
                return
            # Start-up is the interpreters', not the tasks': the run says how long it took.
            self.sink.run_info(run.run_id, {"workers_ready_ns": ready,
                                            "startup_s": (ready - t0) / 1e9,
                                            "interpreters": pool.lanes})
            for _ in range(QUEUED_PER_INTERPRETER * pool.n):
                if not self._submit_next():
                    break
        finally:
            self._ready.set()

    def _submit_next(self) -> bool:
        while True:
            tid, order = self._take()
            if tid < 0:
                return False
            if order is not None:
                break
        assert self.pool is not None
        try:
            fut = self.pool.submit(inside.run_task, order)
        except RuntimeError:  # the pool is shutting down: it never starts
            self._end(tid, Kind.CANCELLED, {"reason": "shutdown"})
            return False
        with self._lock:
            self._inflight.add(tid)
        fut.add_done_callback(lambda f, tid=tid: self._done(tid, f))
        return True

    def _done(self, tid: int, fut: Future) -> None:
        with self._lock:
            self._inflight.discard(tid)
        if fut.cancelled():  # still queued in the pool when it shut down
            self._end(tid, Kind.CANCELLED, {"reason": "shutdown"})
        elif fut.exception() is not None:
            # Our own machinery failed around the task (its events could not leave its
            # interpreter, say): it reported no ending, so it gets this one.
            self._end(tid, Kind.FAILED, error_info(fut.exception()))  # type: ignore[arg-type]
        if not self._closing:
            self._submit_next()

    def _end(self, tid: int, kind: str, info: dict) -> None:
        rec = self.sink.task(tid)
        if rec is None or rec.state.terminal:
            return
        self.sink.ingest([Event(self.run.run_id, tid, kind, now_ns(), info=info)])

    def cancel(self, task_ids: Iterable[int], force: bool, reason: str) -> None:
        handed = self._cancel_queued(task_ids, reason)
        pool = self.pool
        if pool is None:
            return  # (no task is handed out before the pool exists)
        first = self.run.first_task_id
        for tid in handed:
            rec = self.sink.task(tid)
            if rec is None or rec.state.terminal:
                continue
            self._request(tid, reason)
            pool.flag(tid - first)

    def close(self, timeout: float) -> None:
        with self._lock:
            self._closing = True
        self._ready.wait(min(timeout, 2.0))
        if self.pool is not None:
            # Every task still running is asked to stop (a run ends only when all its tasks
            # did; this is a session shutting down), then the pool waits for its threads.
            with self._lock:
                inflight = list(self._inflight)
            for tid in inflight:
                self.pool.flag(tid - self.run.first_task_id)
            self.pool.shutdown(timeout)

    def threads_alive(self) -> int:
        return sum(th.is_alive() for th in self.pool.threads()) if self.pool is not None else 0
