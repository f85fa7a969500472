"""``sequential``, ``threads`` and ``free-threaded``: worker threads in the engine's process.

Cancelling a running thread task is cooperative only. Python has no safe way to stop a thread
from outside (``PyThreadState_SetAsyncExc`` does not even interrupt a ``time.sleep``), so a
cancel sets the task's flag and the task stops at its next ``ctx.check()``/``ctx.progress()``
/``ctx.sleep()``. A task that never checks stays ``cancel_requested`` until it returns, and the
engine says exactly that. There is no force: a thread cannot be killed.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from ..clock import now_ns
from ..context import FlagContext
from .execute import run_blocking
from .protocol import Launch, RunView
from .queue import TaskQueue


class ThreadRunner(TaskQueue):
    """``threads`` (K workers) and ``sequential`` (one worker): a ThreadPoolExecutor whose K
    threads each take the next queued task until none is left."""

    def __init__(self, run: RunView, workers: int, prefix: str) -> None:
        super().__init__(run)
        self.workers = workers
        self.prefix = prefix
        self._running: dict[int, FlagContext] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._working = 0  # workers that have not run out of tasks yet

    def start(self) -> None:
        k = min(self.workers, self.run.n)
        self._working = k
        self._pool = ThreadPoolExecutor(max_workers=k, thread_name_prefix=self.prefix)
        for _ in range(k):
            self._pool.submit(self._work)

    def _work(self) -> None:
        run = self.run
        while True:
            tid, order = self._take()
            if tid < 0:
                with self._lock:
                    self._working -= 1
                    last = self._working == 0
                if last:
                    # Every task handed out has ended: store their events now, not at the
                    # batcher's next turn, so the run ends when its last task did.
                    self.sink.flush()
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

    def cancel_all(self, reason: str, force: bool = False) -> None:
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


def sequential(run: RunView, launch: Launch) -> ThreadRunner:
    """One worker thread: the tasks one after another."""
    return ThreadRunner(run, 1, f"run{run.run_id}-sequential")


def threads(run: RunView, launch: Launch) -> ThreadRunner:
    """A pool of ``launch.workers`` threads (on a free-threaded build, with the GIL off,
    they run Python at the same time)."""
    return ThreadRunner(run, launch.workers, f"run{run.run_id}-thread")
