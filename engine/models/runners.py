"""One runner per concurrency model. All share one small interface (see :class:`Runner`).

A runner starts a run's tasks on its model's real workers, routes cancellation to them in the
way that model allows, and releases its workers when the run ends. Tasks are handed out
lazily, so a run of a million tasks holds a million task *records*, not a million futures.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from ..clock import now_ns
from ..context import FlagContext
from ..events import Event, Kind
from .execute import TaskOrder, run_async, run_blocking

if TYPE_CHECKING:
    from ..session import Run


class Runner:
    """The interface every model implements. The hooks are documented no-ops here.

    * :meth:`start` begins the run; it must return quickly (work happens on the workers).
    * :meth:`cancel` asks tasks to stop. Queued tasks end as ``cancelled`` at once; running ones
      get a ``cancel_requested`` event now and their terminal event when they really stop.
      ``force`` is honoured only where :attr:`can_force` is true.
    * :meth:`close` releases the workers once the run has ended (or the session is closing).
    * :meth:`worker_pids` lists the worker processes this runner started, for the sampler.
    """

    can_force = False
    #: Runners whose workers take tasks from a pool set this to a dict: task id -> "" for a task
    #: claimed by :meth:`_take` and not handed to the pool yet, or the reason of a cancel that
    #: arrived in that gap (the pool did not hold the task, so it could not cancel it).
    _claimed: dict[int, str] | None = None

    def __init__(self, run: Run) -> None:
        self.run = run
        self.put = run.session._put  # in-process events go through the session's batcher
        self._lock = threading.Lock()
        self._next = 0  # index of the next task to hand out
        self._skip: dict[int, str] = {}  # queued task id -> cancel reason

    def start(self) -> None:
        """Begin running the tasks."""

    def cancel(self, task_ids: Iterable[int], force: bool, reason: str) -> None:
        """Ask these tasks to stop."""

    def close(self, timeout: float) -> None:
        """Release workers. Called once, after the run ended or at session shutdown."""

    def worker_pids(self) -> list[int]:
        return []

    # -- shared helpers for runners that hand out tasks by index ------------------------------
    def _take(self) -> tuple[int, TaskOrder | None]:
        """Claim the next task to start: ``(task_id, order)``; order is None if it was cancelled
        while queued (the caller emits nothing: that was done at cancel time). ``(-1, None)``
        when none are left."""
        run = self.run
        with self._lock:
            if self._next >= run.n:
                return -1, None
            i = self._next
            self._next += 1
            tid = run.first_task_id + i
            if tid in self._skip:
                del self._skip[tid]
                return tid, None
            if self._claimed is not None:
                self._claimed[tid] = ""
            return tid, run.order(i)

    def _cancel_queued(self, task_ids: Iterable[int], reason: str) -> list[int]:
        """End queued tasks among ``task_ids`` as cancelled; return the ones already handed out."""
        run = self.run
        ended: list[Event] = []
        handed: list[int] = []
        t = now_ns()
        with self._lock:
            first_queued = run.first_task_id + self._next
            claimed = self._claimed
            for tid in task_ids:
                if tid >= first_queued:
                    if tid not in self._skip:
                        self._skip[tid] = reason
                        ended.append(Event(run.run_id, tid, Kind.CANCELLED, t, info={"reason": reason}))
                else:
                    handed.append(tid)
                    if claimed is not None and tid in claimed:
                        claimed[tid] = reason
        if ended:
            run.session.ingest(ended)
        return handed

    def _end_all_queued(self, kind: str, info: dict) -> None:
        """End every task not handed out yet as ``kind`` (e.g. failed: no workers could start)."""
        run = self.run
        t = now_ns()
        with self._lock:
            start = self._next
            self._next = run.n
            ids = [run.first_task_id + i for i in range(start, run.n)
                   if run.first_task_id + i not in self._skip]
            self._skip.clear()
        if ids:
            run.session.ingest([Event(run.run_id, tid, kind, t, info=info) for tid in ids])

    def _cancel_all_queued(self, reason: str) -> range:
        """End every task not handed out yet, in one batch, and hand out no more. Returns the
        ids already handed out: the only ones a caller still has to stop."""
        run = self.run
        t = now_ns()
        with self._lock:
            start = self._next
            self._next = run.n
            ids = [run.first_task_id + i for i in range(start, run.n)]
            ids = [tid for tid in ids if tid not in self._skip]
            self._skip.clear()
        if ids:
            run.session.ingest(
                [Event(run.run_id, tid, Kind.CANCELLED, t, info={"reason": reason}) for tid in ids]
            )
        return range(run.first_task_id, run.first_task_id + start)

    def _request(self, tid: int, reason: str) -> None:
        """Record that a cancel was requested for a task that a worker holds (not yet ended)."""
        rec = self.run.session.store.task(tid)
        if rec is None or rec.state.terminal:
            return
        self.run.session.ingest(
            [Event(self.run.run_id, tid, Kind.CANCEL_REQUESTED, now_ns(), info={"reason": reason})]
        )


class ThreadRunner(Runner):
    """``threads`` (K workers) and ``sequential`` (one worker): a ThreadPoolExecutor whose K
    threads each take the next queued task until none is left."""

    def __init__(self, run: Run, workers: int, prefix: str) -> None:
        super().__init__(run)
        self.workers = workers
        self.prefix = prefix
        self._running: dict[int, FlagContext] = {}
        self._pool: ThreadPoolExecutor | None = None

    def start(self) -> None:
        k = min(self.workers, self.run.n)
        self._pool = ThreadPoolExecutor(max_workers=k, thread_name_prefix=self.prefix)
        for _ in range(k):
            self._pool.submit(self._work)

    def _work(self) -> None:
        run = self.run
        while True:
            tid, order = self._take()
            if tid < 0:
                return
            if order is None:
                continue
            ctx = FlagContext(run.run_id, tid, self.put, run.deadline_ns(), "", order.index)
            with self._lock:
                reason = self._skip.pop(tid, None)
                self._running[tid] = ctx
            if reason is not None:
                ctx.request_cancel(reason)
            try:
                run_blocking(ctx, order)
            finally:
                with self._lock:
                    self._running.pop(tid, None)

    def cancel(self, task_ids: Iterable[int], force: bool, reason: str) -> None:
        for tid in self._cancel_queued(task_ids, reason):
            with self._lock:
                ctx = self._running.get(tid)
                if ctx is None:
                    # Claimed by a worker that has not registered it yet: it sees this on
                    # registering. (If it already ended, this entry is never read.)
                    self._skip[tid] = reason
            self._request(tid, reason)
            if ctx is not None:
                ctx.request_cancel(reason)

    def cancel_all(self, reason: str) -> None:
        self._cancel_all_queued(reason)
        with self._lock:
            running = list(self._running.items())
        for tid, ctx in running:
            self._request(tid, reason)
            ctx.request_cancel(reason)

    def close(self, timeout: float) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            # Then wait (bounded) for the threads to exit, so that a run counts as closed only
            # once its threads are gone. One stuck in a task that ignores its cancel stays
            # (the session's shutdown report lists its task).
            end = now_ns() + int(timeout * 1e9)
            for th in list(self._pool._threads):  # noqa: SLF001
                th.join(max(0.0, (end - now_ns()) / 1e9))

    def threads_alive(self) -> int:
        return len(self._pool._threads) if self._pool is not None else 0  # noqa: SLF001


class AsyncioRunner(Runner):
    """Coroutines on an asyncio loop: the engine's own loop thread by default, or a caller's
    loop (the GUI's "coroutines on the GUI loop" lesson). ``workers`` is the concurrency limit;
    by default every task runs at once, as with ``asyncio.gather``."""

    def __init__(self, run: Run, loop: asyncio.AbstractEventLoop, limit: int) -> None:
        super().__init__(run)
        self.loop = loop
        self.limit = limit
        self._tasks: dict[int, tuple[asyncio.Task, FlagContext]] = {}
        self._feeder: asyncio.Task | None = None
        self._sem: asyncio.Semaphore | None = None

    def start(self) -> None:
        self.loop.call_soon_threadsafe(self._begin)

    def _begin(self) -> None:
        self._sem = asyncio.Semaphore(self.limit)
        self._feeder = self.loop.create_task(self._feed(), name=f"run-{self.run.run_id}-feeder")

    async def _feed(self) -> None:
        run = self.run
        sem = self._sem
        assert sem is not None
        limited = self.limit < run.n  # unlimited: like gather, no need to wait for a slot
        while True:
            if limited:
                await sem.acquire()
            tid, order = self._take()
            if tid < 0:
                return
            if order is None:
                if limited:
                    sem.release()
                continue
            name = f"task-{tid}"
            ctx = FlagContext(run.run_id, tid, self.put, run.deadline_ns(), name, order.index)
            task = self.loop.create_task(self._one(ctx, order), name=name)
            self._tasks[tid] = (task, ctx)
            if not limited and order.index % 256 == 255:
                # Creating 10k tasks in one go held the loop (and, in the GUI's process, the
                # GIL) for 1-2 s on a loaded machine. A turn of the loop every 256 lets the
                # started ones run and releases the GIL in select().
                await asyncio.sleep(0)

    async def _one(self, ctx: FlagContext, order: TaskOrder) -> None:
        # A task's timeout counts from when it starts, as with asyncio.wait_for and as in the
        # other models, not from when the feeder created it: behind a coroutine that blocks
        # the loop, it would otherwise time out the instant it began.
        ctx.deadline_ns = self.run.deadline_ns()
        try:
            await run_async(ctx, order)
        finally:
            self._tasks.pop(ctx.task_id, None)
            if self.limit < self.run.n:
                assert self._sem is not None
                self._sem.release()

    def cancel(self, task_ids: Iterable[int], force: bool, reason: str) -> None:
        handed = self._cancel_queued(task_ids, reason)
        for tid in handed:
            self._request(tid, reason)
            entry = self._tasks.get(tid)
            if entry is not None:
                entry[1].request_cancel(reason)  # seen even by a coroutine that never awaits
        if handed:
            self.loop.call_soon_threadsafe(self._cancel_in_loop, handed, reason)

    def _cancel_in_loop(self, ids: list[int], reason: str = "cancelled") -> None:
        for tid in ids:
            entry = self._tasks.get(tid)
            if entry is not None:
                entry[1].request_cancel(reason)
                # Task.cancel() only once the coroutine has begun (bound its context): a task
                # cancelled before its first step never runs its body, so it would end with no
                # event at all. An unbegun one sees the flag at its start and ends cancelled.
                if entry[1]._pid:  # noqa: SLF001
                    entry[0].cancel()

    def cancel_all(self, reason: str) -> None:
        # Every task handed out, not just those in ``_tasks``: the feeder (on the loop thread)
        # may have claimed a task and not registered it yet; ``_cancel_in_loop`` runs after
        # it has. (Iterating ``_tasks`` from this thread could also race the loop's changes.)
        self.cancel(self._cancel_all_queued(reason), False, reason)

    def close(self, timeout: float) -> None:
        if self.loop.is_closed():
            return

        def stop() -> None:
            if self._feeder is not None:
                self._feeder.cancel()

        try:
            self.loop.call_soon_threadsafe(stop)
        except RuntimeError:
            pass


class ProcessRunner(Runner):
    """``processes``: a :class:`ProcPool` of K workers; at most a few tasks per worker are
    queued in the pool at a time, the rest wait (as indices) in the runner."""

    can_force = True

    def __init__(self, run: Run, workers: int) -> None:
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
            try:
                pool = ProcPool(min(self.workers, self.run.n), self.run.session.ingest,
                                name=f"run{self.run.run_id}")
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
        self.run.session.ingest(
            [Event(self.run.run_id, tid, Kind.CANCELLED, t, info={"reason": reason or "shutdown"})
             for tid, reason in claimed.items()]
        )

    def cancel(self, task_ids: Iterable[int], force: bool, reason: str) -> None:
        handed = self._cancel_queued(task_ids, reason)
        if self.pool is None:
            return  # (no task is handed out before the pool exists)
        store = self.run.session.store
        for tid in handed:
            rec = store.task(tid)
            if rec is None or rec.state.terminal:
                continue
            # Recorded whatever state the store shows yet: a worker may have started the task
            # before its 'started' got here, and it only sees its flag, not the reason.
            self._request(tid, reason)
            self.pool.cancel_task(tid, force, reason)

    def cancel_all(self, reason: str, force: bool = False) -> None:
        # Only tasks already handed out can still be live; the rest just ended as cancelled.
        self.cancel(self._cancel_all_queued(reason), force, reason)

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
        store = self.run.session.store
        left = {tid: r for tid, r in left.items()
                if (rec := store.task(tid)) is not None and not rec.state.terminal}
        if left:
            self._end_unsubmitted(left)

    def worker_pids(self) -> list[int]:
        return self.pool.pids() if self.pool is not None else []


class AsyncioProcessRunner(ProcessRunner):
    """``asyncio-processes``: one coroutine per task on the engine loop, each awaiting
    ``loop.run_in_executor(pool, run_task, order)``, the hybrid pattern."""

    def __init__(self, run: Run, workers: int, loop: asyncio.AbstractEventLoop) -> None:
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
