"""Running one task on its worker: the part every model shares.

:func:`run_blocking` and :func:`run_async` emit ``started``, call the workload, and emit exactly
one terminal event, whatever the workload does. They never raise for the workload's sake.
"""

from __future__ import annotations

import asyncio
from typing import Any, NamedTuple

from ..context import TaskCancelled, TaskContext, TaskTimedOut, error_info
from ..events import Kind


class TaskOrder(NamedTuple):
    """Everything a worker needs to run one task. Picklable: it crosses into processes."""

    run_id: int
    task_id: int
    index: int
    workload: str
    size_s: float
    params: dict
    calib: dict
    timeout_s: float | None
    task_name: str = ""


#: (workload, async?) -> its function, once looked up: an import statement in a function runs
#: the import machinery at each call (1.4 µs, as much as a no-op task's two events).
_FUNCTIONS: dict[tuple[str, bool], Any] = {}


def _resolve(order: TaskOrder, async_: bool) -> Any:
    fn = _FUNCTIONS.get((order.workload, async_))
    if fn is None:
        from ..workloads import WORKLOADS

        wl = WORKLOADS[order.workload]
        fn = _FUNCTIONS[(order.workload, async_)] = wl.async_ if async_ else wl.blocking
    return fn


def _cancelled_before_start(ctx: TaskContext) -> str:
    """A worker took a task whose cancel was already requested: it ends without starting."""
    ctx.event(Kind.CANCELLED, info={"reason": ctx.cancel_reason or "cancelled before it started"})
    return Kind.CANCELLED


def run_blocking(ctx: TaskContext, order: TaskOrder) -> str:
    """Run the blocking form of the order's workload on this thread; return the terminal kind."""
    ctx.bind()
    if ctx.cancelled():
        return _cancelled_before_start(ctx)
    ctx.event(Kind.STARTED)
    try:
        fn = _resolve(order, False)
        ctx.check()
        fn(ctx, order.size_s, order.params, order.calib)
    except TaskCancelled as e:
        ctx.event(Kind.CANCELLED, info={"reason": str(e) or "cancelled"})
        return Kind.CANCELLED
    except TaskTimedOut:
        ctx.event(Kind.TIMED_OUT, info={"reason": f"timeout {order.timeout_s}s"})
        return Kind.TIMED_OUT
    except BaseException as e:  # noqa: BLE001 - a workload's failure is data, not our crash
        ctx.event(Kind.FAILED, info=error_info(e))
        if isinstance(e, KeyboardInterrupt):
            raise
        return Kind.FAILED
    ctx.event(Kind.FINISHED)
    return Kind.FINISHED


async def run_async(ctx: TaskContext, order: TaskOrder) -> str:
    """Run the async form of the order's workload in the current task."""
    ctx.bind()
    if ctx.cancelled():
        return _cancelled_before_start(ctx)
    ctx.event(Kind.STARTED)
    cm = asyncio.timeout(order.timeout_s) if order.timeout_s is not None else None
    try:
        fn = _resolve(order, True)
        ctx.check()
        if cm is not None:
            async with cm:
                await fn(ctx, order.size_s, order.params, order.calib)
        else:
            await fn(ctx, order.size_s, order.params, order.calib)
    except (asyncio.CancelledError, TaskCancelled):
        ctx.event(Kind.CANCELLED, info={"reason": ctx.cancel_reason or "cancelled"})
        return Kind.CANCELLED
    except TaskTimedOut:
        ctx.event(Kind.TIMED_OUT, info={"reason": f"timeout {order.timeout_s}s"})
        return Kind.TIMED_OUT
    except TimeoutError as e:
        if cm is not None and cm.expired():
            ctx.event(Kind.TIMED_OUT, info={"reason": f"timeout {order.timeout_s}s"})
            return Kind.TIMED_OUT
        ctx.event(Kind.FAILED, info=error_info(e))
        return Kind.FAILED
    except BaseException as e:  # noqa: BLE001
        ctx.event(Kind.FAILED, info=error_info(e))
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        return Kind.FAILED
    ctx.event(Kind.FINISHED)
    return Kind.FINISHED
