"""The task queue most runners share: tasks handed out by index, cancelled while queued.

A run of a million tasks holds a million task *records*, not a million futures: a runner's
workers claim the next index with :meth:`TaskQueue._take` when they are free. A task cancelled
before it is claimed ends ``cancelled`` at once and is skipped when its turn comes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from ..clock import now_ns
from ..events import Event, Kind
from ..samples import WorkerSample
from .execute import TaskOrder
from .protocol import RunView


class TaskQueue:
    """A base for runners that hand out their run's tasks by index (see the module docstring).

    It satisfies :class:`~engine.models.protocol.Runner` with no-op hooks; a runner overrides
    those it needs. Thread-safe: workers claim tasks while cancels arrive from other threads.
    """

    #: Runners whose workers take tasks from a pool set this to a dict: task id -> "" for a task
    #: claimed by :meth:`_take` and not handed to the pool yet, or the reason of a cancel that
    #: arrived in that gap (the pool did not hold the task, so it could not cancel it).
    _claimed: dict[int, str] | None = None

    def __init__(self, run: RunView) -> None:
        self.run = run
        self.sink = run.sink
        self.put = run.sink.put  # in-process events go through the session's batcher
        self._lock = threading.Lock()
        self._next = 0  # index of the next task to hand out
        self._skip: dict[int, str] = {}  # queued task id -> cancel reason

    def start(self) -> None:
        """Begin running the tasks (see :class:`~engine.models.protocol.Runner`)."""

    def cancel(self, task_ids: Iterable[int], force: bool, reason: str) -> None:
        """Ask these tasks to stop."""

    def cancel_all(self, reason: str, force: bool) -> None:
        """Ask every task to stop: the queued ones end now, in one batch; the ones handed
        out go through :meth:`cancel`."""
        self.cancel(self._cancel_all_queued(reason), force, reason)

    def close(self, timeout: float) -> None:
        """Release workers. Called once, after the run ended or at session shutdown."""

    def worker_pids(self) -> list[int]:
        return []

    def remote_workers(self) -> dict[str, WorkerSample]:
        return {}

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
            self.sink.ingest(ended)
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
            self.sink.ingest([Event(run.run_id, tid, kind, t, info=info) for tid in ids])

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
            self.sink.ingest(
                [Event(run.run_id, tid, Kind.CANCELLED, t, info={"reason": reason}) for tid in ids]
            )
        return range(run.first_task_id, run.first_task_id + start)

    def _request(self, tid: int, reason: str) -> None:
        """Record that a cancel was requested for a task that a worker holds (not yet ended)."""
        rec = self.sink.task(tid)
        if rec is None or rec.state.terminal:
            return
        self.sink.ingest(
            [Event(self.run.run_id, tid, Kind.CANCEL_REQUESTED, now_ns(), info={"reason": reason})]
        )


