"""``processes`` and ``asyncio-processes``: tasks in worker processes of a :class:`ProcPool`.

Cancelling: a cooperative cancel writes the task's id into its worker's slot of a shared-memory
array, which the task's context reads at its next check (about 0.1 µs a read). A force cancel
kills the worker: the pool reports that task cancelled (forced), starts a replacement, and no
other task is affected. A ``ProcessPoolExecutor`` could do neither (``Future.cancel()`` is
False for a running task, and one killed worker breaks the whole pool).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable

from ..clock import now_ns
from ..events import Event, Kind
from .execute import TaskOrder
from .protocol import Launch, RunView
from .queue import TaskQueue


class ProcessRunner(TaskQueue):
    """``processes``: a :class:`ProcPool` of K workers; at most a few tasks per worker are
    queued in the pool at a time, the rest wait (as indices) in the runner."""

    def __init__(self, run: RunView, workers: int) -> None:
        super().__init__(run)
        self.workers = workers
        self.pool = None
        self._claimed = {}
        self._pool_ready = threading.Event()
        self._closing = False

    def start(self) -> None:
        from . import _procworker

        self._run_task = _procworker.run_task
        # Spawning workers takes tens to hundreds of ms (measured 215 ms on a loaded machine);
        # start() is called on the caller's thread, often the GUI's, so it happens elsewhere.
        # The tasks show as queued meanwhile, which is what they are.
        threading.Thread(target=self._start_pool, name=f"run{self.run.run_id}-pool-start",
                         daemon=True).start()

    def _start_pool(self) -> None:
        from ..context import error_info
        from .procpool import ProcPool

        try:
            with self._lock:
                if self._closing or self._next >= self.run.n:
                    return  # everything was cancelled before the workers were needed
            t0 = now_ns()

            def ready(t_ns: int) -> None:
                # Start-up is the pool's, not the first tasks': the run says how long it took
                # (a comparison shows it on a line of its own).
                self.sink.run_info(self.run.run_id, {"workers_ready_ns": t_ns,
                                                     "startup_s": max(0, t_ns - t0) / 1e9})

            try:
                pool = ProcPool(min(self.workers, self.run.n), self.sink.ingest,
                                name=f"run{self.run.run_id}", on_ready=ready)
            except Exception as e:  # noqa: BLE001 - e.g. no processes can be started here
                self._end_all_queued(Kind.FAILED, error_info(e))
                return
            with self._lock:
                closing = self._closing
                if not closing:
                    self.pool = pool
            if closing:
                pool.shutdown()
                return
            self._pool_started()
        finally:
            self._pool_ready.set()

    def _pool_started(self) -> None:
        assert self.pool is not None
        for _ in range(2 * self.pool.size):
            if not self._submit_next():
                break

    def _submit_next(self) -> bool:
        while True:
            tid, order = self._take()
            if tid < 0:
                return False
            if order is not None and not self._cancelled_while_claimed(tid):
                break
        assert self.pool is not None
        try:
            fut = self.pool.submit(self._run_task, order)
        except RuntimeError:
            self._not_submitted(tid)  # the pool is closing
            return False
        self._submitted(tid)
        fut.add_done_callback(lambda _f: self._submit_next())
        return True

    def _cancelled_while_claimed(self, tid: int) -> bool:
        """End a claimed task whose cancel came before it reached the pool; True if it did."""
        with self._lock:
            reason = self._claimed.get(tid) if self._claimed is not None else None
            if reason:
                del self._claimed[tid]  # type: ignore[union-attr]
        if reason:
            self._end_unsubmitted({tid: reason})
            return True
        return False

    def _submitted(self, tid: int) -> None:
        """The pool holds the task now: pass on a cancel that came while it was claimed."""
        with self._lock:
            reason = self._claimed.pop(tid, "")  # type: ignore[union-attr]
        if reason and self.pool is not None:
            self.pool.cancel_task(tid, False, reason)

    def _not_submitted(self, tid: int) -> None:
        """A claimed task the pool refused (it is shutting down): it ends here, never started."""
        with self._lock:
            reason = self._claimed.pop(tid, None)  # type: ignore[union-attr]
        if reason is not None:  # else close() already ended it
            self._end_unsubmitted({tid: reason})

    def _end_unsubmitted(self, claimed: dict[int, str]) -> None:
        t = now_ns()
        self.sink.ingest(
            [Event(self.run.run_id, tid, Kind.CANCELLED, t, info={"reason": reason or "shutdown"})
             for tid, reason in claimed.items()]
        )

    def cancel(self, task_ids: Iterable[int], force: bool, reason: str) -> None:
        handed = self._cancel_queued(task_ids, reason)
        if self.pool is None:
            return  # (no task is handed out before the pool exists)
        for tid in handed:
            rec = self.sink.task(tid)
            if rec is None or rec.state.terminal:
                continue
            # Recorded whatever state the store shows yet: a worker may have started the task
            # before its 'started' got here, and it only sees its flag, not the reason.
            self._request(tid, reason)
            self.pool.cancel_task(tid, force, reason)

    def close(self, timeout: float) -> None:
        with self._lock:
            self._closing = True
        # A pool still being started is shut down by its starter once it exists.
        self._pool_ready.wait(min(timeout, 2.0))
        if self.pool is not None:
            self.pool.shutdown(wait=True, grace_s=min(0.3, timeout))
        # Tasks claimed but never handed to the pool (e.g. coroutines the closing engine loop
        # cancelled before they ran) end here, so that no task is left without an ending.
        # (One the pool took just before it closed was ended by the pool: skip those.)
        with self._lock:
            left = dict(self._claimed or {})
            if self._claimed:
                self._claimed.clear()
        task = self.sink.task
        left = {tid: r for tid, r in left.items()
                if (rec := task(tid)) is not None and not rec.state.terminal}
        if left:
            self._end_unsubmitted(left)

    def worker_pids(self) -> list[int]:
        return self.pool.pids() if self.pool is not None else []


class AsyncioProcessRunner(ProcessRunner):
    """``asyncio-processes``: one coroutine per task on the engine loop, each awaiting
    ``loop.run_in_executor(pool, run_task, order)``, the hybrid pattern."""

    def __init__(self, run: RunView, workers: int, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(run, workers)
        self.loop = loop
        self._feeder: asyncio.Task | None = None

    def _pool_started(self) -> None:
        self.loop.call_soon_threadsafe(self._begin)

    def _begin(self) -> None:
        self._feeder = self.loop.create_task(self._feed(), name=f"run-{self.run.run_id}-feeder")

    async def _feed(self) -> None:
        while True:
            tid, order = self._take()
            if tid < 0:
                return
            if order is None:
                continue
            order = order._replace(task_name=f"task-{tid}")
            self.loop.create_task(self._one(order), name=order.task_name)
            if (tid - self.run.first_task_id) % 256 == 255:
                await asyncio.sleep(0)  # let the loop breathe while creating many coroutines

    async def _one(self, order: TaskOrder) -> None:
        try:
            if self._cancelled_while_claimed(order.task_id):
                return
            try:
                fut = self.loop.run_in_executor(self.pool, self._run_task, order)
            except RuntimeError:
                self._not_submitted(order.task_id)  # the pool is closing
                return
            self._submitted(order.task_id)
            await fut
        except asyncio.CancelledError:
            # The coroutine was cancelled; run_in_executor cannot stop a running process task,
            # so stop it through the pool (a queued one was already dequeued by the cancel).
            if self.pool is not None:
                self.pool.cancel_task(order.task_id, False, "cancelled")
        except Exception:  # noqa: BLE001 - the pool already reported the task's ending
            pass

    def close(self, timeout: float) -> None:
        super().close(timeout)
        if not self.loop.is_closed() and self._feeder is not None:
            try:
                self.loop.call_soon_threadsafe(self._feeder.cancel)
            except RuntimeError:
                pass


def processes(run: RunView, launch: Launch) -> ProcessRunner:
    """``launch.workers`` worker processes, started in the background."""
    return ProcessRunner(run, launch.workers)


def asyncio_processes(run: RunView, launch: Launch) -> AsyncioProcessRunner:
    """Coroutines on the engine loop awaiting ``run_in_executor`` on a worker pool."""
    return AsyncioProcessRunner(run, launch.workers, launch.loop())
