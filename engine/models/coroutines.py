"""``asyncio``: one coroutine per task on an asyncio loop, the engine's own by default.

Cancelling: ``Task.cancel()`` interrupts a coroutine at its next ``await``; the task's flag is
set too, so a coroutine that never awaits (CPU work, or ``time.sleep`` in a coroutine, the
classic mistake) still stops at its next ``ctx.check()``. A coroutine that neither awaits nor
checks blocks the whole loop until it returns, and no cancel can reach it: that is the pitfall
the ``blocking`` workload shows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from ..context import FlagContext
from .execute import TaskOrder, run_async
from .protocol import Launch, RunView
from .queue import TaskQueue


class AsyncioRunner(TaskQueue):
    """Coroutines on an asyncio loop: the engine's own loop thread by default, or a caller's
    loop (the GUI's "coroutines on the GUI loop" lesson). ``workers`` is the concurrency limit;
    by default every task runs at once, as with ``asyncio.gather``."""

    def __init__(self, run: RunView, loop: asyncio.AbstractEventLoop, limit: int) -> None:
        super().__init__(run)
        self.loop = loop
        self.limit = limit
        self._limited = limit < run.n  # unlimited: like gather, no need to wait for a slot
        self._tasks: dict[int, tuple[asyncio.Task, FlagContext]] = {}
        self._feeder: asyncio.Task | None = None
        self._sem: asyncio.Semaphore | None = None
        self._fed = False  # the feeder has handed out every task

    def start(self) -> None:
        self.loop.call_soon_threadsafe(self._begin)

    def _begin(self) -> None:
        self._sem = asyncio.Semaphore(self.limit)
        self._feeder = self.loop.create_task(self._feed(), name=f"run-{self.run.run_id}-feeder")

    async def _feed(self) -> None:
        run = self.run
        sem = self._sem
        assert sem is not None
        limited = self._limited
        while True:
            if limited:
                await sem.acquire()
            tid, order = self._take()
            if tid < 0:
                self._fed = True
                self._flush_if_done()
                return
            if order is None:
                if limited:
                    sem.release()
                continue
            name = f"task-{tid}"
            # No deadline yet: _one sets it when the task starts (see there).
            ctx = FlagContext(run.run_id, tid, self.put, None, name, order.index)
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
            if self._limited:
                assert self._sem is not None
                self._sem.release()
            self._flush_if_done()

    def _flush_if_done(self) -> None:
        """Once every task handed out has ended, store their events now, not at the batcher's
        next turn, so that the run ends when its last task did (on the loop's thread)."""
        if self._fed and not self._tasks:
            self.sink.flush()

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

    def cancel_all(self, reason: str, force: bool = False) -> None:
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


def coroutines(run: RunView, launch: Launch) -> AsyncioRunner:
    """Coroutines on ``launch.loop()``, at most ``launch.workers`` at once."""
    return AsyncioRunner(run, launch.loop(), launch.workers)
