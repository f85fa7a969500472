"""The built-in workloads. Each has a blocking form and an async form.

Every function is top-level (so it pickles by reference into worker processes) and takes
``(ctx, size_s, params, calib)``: the task's :class:`~engine.context.TaskContext`, the size as a
duration in seconds, the workload's validated parameters, and the calibration rates. Each calls
``ctx.progress`` or ``ctx.check`` at least every few milliseconds of work, so a cancel or a
timeout is seen promptly.

What a size means, so that an uncontended task takes it and every model's contention shows:

* ``cpu``, ``numpy`` (and the CPU halves of ``mixed`` and ``crash``): the task's own CPU time,
  on its thread's clock, which stops while the thread waits for the GIL, a core or its loop;
* ``sleep``, ``http``, ``fail``, ``events``: wall time on the task's own clock (waiting is the
  work; a late wake-up, a blocked loop, still shows);
* ``file``: a fixed number of rounds, at the disk's pace timed when the run starts (no clock
  of its own can tell the disk's work from waiting for a disk that other tasks share).

The calibrated CPU rates only decide how often a task looks at its clock.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ..clock import now_ns
from ..errors import SpecError
from ..parse import parse_duration, parse_int
from .calibrate import FILE_CHUNK, NUMPY_ELEMS, cpu_chunk, file_round, numpy_chunk

Blocking = Callable[[Any, float, dict, dict], Any]
Async = Callable[[Any, float, dict, dict], Awaitable[Any]]

CHUNK_S = 0.001  # how much work between two progress/cancel checks


class WorkloadFailure(Exception):
    """The deliberate failure of the ``fail`` workload."""


# -- cpu ---------------------------------------------------------------------------------
def _chunk_iters(calib: dict) -> int:
    """Iterations of :func:`cpu_chunk` in about CHUNK_S at the calibrated rate: only how often
    a task looks at its clock and its cancel flag, never how much work it does."""
    return max(1, int(calib["cpu_iters_per_s"] * CHUNK_S))


def cpu(ctx: Any, size_s: float, params: dict, calib: dict,
        span: tuple[float, float] = (0.0, 1.0)) -> int:
    """Pure-Python arithmetic until this task has had ``size_s`` of its own CPU time.

    The size is read on the task thread's CPU clock (``time.thread_time``), which runs only
    while the thread runs on a core: not while it waits for the GIL, for a core another task
    holds, or for its event loop. So an uncontended task takes its size (the machine's speed
    of the moment does not matter), and every wait a model causes shows as a longer task.
    A count of iterations calibrated once could not do both: this host's rate moved between
    12M and 19M iterations/s within an hour, so "500ms" tasks took 550-1390 ms.

    ``span``: the part of the task's progress this work covers, when it is only a part of
    the task (``mixed``, ``crash``), so that the task's progress never goes back."""
    chunk = _chunk_iters(calib)
    p0, width = span[0], span[1] - span[0]
    acc = 0
    ctx.check()
    clock = time.thread_time
    t0 = clock()
    spent = 0.0
    while spent < size_s:
        left = size_s - spent
        acc ^= cpu_chunk(chunk if left >= CHUNK_S else max(1, int(chunk * left / CHUNK_S)))
        spent = clock() - t0
        ctx.progress(p0 + width * min(1.0, spent / size_s))
    return acc & 0xFFFFFFFF


#: How long a CPU-bound coroutine runs between two yields to its loop (see cpu_async).
YIELD_S = 0.010


async def cpu_async(ctx: Any, size_s: float, params: dict, calib: dict,
                    span: tuple[float, float] = (0.0, 1.0)) -> int:
    """CPU work in a coroutine: it yields every YIELD_S, so coroutines interleave but never
    overlap. asyncio gives CPU-bound work no speed-up; this shows it.

    Its size is its own CPU time as in :func:`cpu`, counted over its own chunks only (the
    loop thread's clock, read around each chunk): time the loop spends on other coroutines
    is theirs, so N coroutines on one loop take about N times the size, as they should.

    Not after every 1 ms chunk: each yield is a trip through the loop's ``select``, which
    lets go of the GIL and takes it straight back. CPython's GIL hands over on request only
    when its holder kept it a whole switch interval (5 ms) without letting go, so a holder that
    lets go every millisecond starved every other thread of the process: the engine's command
    thread answered a cancel after 0.1-3.5 s, its publisher and flusher stalled the same
    (measured). Cancellation is still checked after every chunk."""
    chunk = _chunk_iters(calib)
    p0, width = span[0], span[1] - span[0]
    acc = 0
    ctx.check()
    clock = time.perf_counter
    cpu_clock = time.thread_time  # the loop thread's: only this coroutine's chunks are counted
    spent = 0.0
    next_yield = clock() + YIELD_S
    while spent < size_s:
        left = size_s - spent
        c0 = cpu_clock()
        acc ^= cpu_chunk(chunk if left >= CHUNK_S else max(1, int(chunk * left / CHUNK_S)))
        spent += cpu_clock() - c0
        ctx.progress(p0 + width * min(1.0, spent / size_s))
        if clock() >= next_yield:
            await asyncio.sleep(0)
            next_yield = clock() + YIELD_S
    return acc & 0xFFFFFFFF


# -- numpy -------------------------------------------------------------------------------
def numpy(ctx: Any, size_s: float, params: dict, calib: dict) -> float:
    """``np.sin`` calls until this task has had ``size_s`` of its own CPU time.

    NumPy lets go of the GIL inside the call, but the C loop still runs on the task's own
    thread, so that thread's CPU clock counts its compute and nothing else: two threads on two
    free cores each get their size in about their size; more threads than cores, or the GIL
    waits between calls, make tasks longer. (Set-up, the import and two arrays, is not part
    of the size: a fresh worker process would otherwise do less work in its first task.)"""
    import numpy as np

    a = np.linspace(0.0, 100.0, NUMPY_ELEMS)
    out = np.empty_like(a)
    ctx.check()
    clock = time.thread_time
    t0 = clock()
    spent = 0.0
    while spent < size_s:
        numpy_chunk(a, out)  # releases the GIL inside the C loop
        spent = clock() - t0
        ctx.progress(min(1.0, spent / size_s))
    return float(out[-1]) if spent else 0.0


def _import_numpy() -> None:
    """NumPy's import (60-100 ms) made the first numpy task of an in-process run that much
    longer than its size; worker processes have it already (their forkserver preloads it)."""
    import numpy  # noqa: F401


async def numpy_async(ctx: Any, size_s: float, params: dict, calib: dict) -> float:
    """As :func:`numpy`, counting only this coroutine's own calls on the loop thread's clock."""
    import numpy as np

    a = np.linspace(0.0, 100.0, NUMPY_ELEMS)
    out = np.empty_like(a)
    ctx.check()
    clock = time.thread_time
    spent = 0.0
    while spent < size_s:
        c0 = clock()
        numpy_chunk(a, out)
        spent += clock() - c0
        ctx.progress(min(1.0, spent / size_s))
        await asyncio.sleep(0)
    return float(out[-1]) if spent else 0.0


# -- sleep -------------------------------------------------------------------------------
def sleep(ctx: Any, size_s: float, params: dict, calib: dict) -> float:
    ctx.sleep(size_s)
    return size_s


async def sleep_async(ctx: Any, size_s: float, params: dict, calib: dict) -> float:
    await ctx.asleep(size_s)
    return size_s


# -- http --------------------------------------------------------------------------------
def _http_plan(size_s: float, params: dict) -> tuple[int, float]:
    delay = params["delay"]
    n = max(1, round(size_s / delay)) if delay > 0 else 1
    return n, size_s / n


def http(ctx: Any, size_s: float, params: dict, calib: dict) -> int:
    from .http import BlockingClient

    n, each = _http_plan(size_s, params)
    client = BlockingClient(params["url"])
    try:
        for i in range(n):
            ctx.check()
            client.get_delay(each)
            ctx.progress((i + 1) / n)
    finally:
        client.close()
    return n


async def http_async(ctx: Any, size_s: float, params: dict, calib: dict) -> int:
    from .http import AsyncClient

    n, each = _http_plan(size_s, params)
    client = AsyncClient(params["url"])
    try:
        for i in range(n):
            ctx.check()
            await client.get_delay(each)
            ctx.progress((i + 1) / n)
    finally:
        await client.close()
    return n


# -- file --------------------------------------------------------------------------------
def _file_rounds(size_s: float, calib: dict) -> int:
    """A file task's work: a fixed number of write/fsync/read rounds, its size at the disk's
    pace timed at its run's start (``file_rounds_per_s``, see :func:`file_rates_now`).

    Rounds, not time: a disk shared by several tasks at once serves each of them more slowly,
    and the task's own clock (wall time) cannot tell that from work, so a time bound would let
    four contended tasks finish in the time of one with a quarter of the work each. A fixed
    count makes contention (for the disk, the GIL, one event loop) show as longer tasks."""
    return max(1, round(size_s * calib["file_rounds_per_s"])) if size_s > 0 else 0


def file_rates_now() -> dict[str, float]:
    """The disk's pace now, timed again at the start of every file run (about 20 ms): fsync's
    pace on a shared VM disk drifts by a third from one second to the next, so a rate timed
    minutes ago made uncontended "500ms" tasks take 550-1000 ms."""
    from .calibrate import file_rate_now

    return {"file_rounds_per_s": file_rate_now()}


def file(ctx: Any, size_s: float, params: dict, calib: dict) -> int:
    payload = os.urandom(FILE_CHUNK)
    fd, path = tempfile.mkstemp(prefix="taskscope-")
    os.close(fd)
    rounds = _file_rounds(size_s, calib)
    try:
        for i in range(rounds):
            ctx.check()
            file_round(path, payload)
            ctx.progress((i + 1) / rounds)
    finally:
        os.unlink(path)
    return rounds * FILE_CHUNK


async def file_async(ctx: Any, size_s: float, params: dict, calib: dict) -> int:
    """File I/O from a coroutine: asyncio has no async files, so each round goes to the loop's
    default thread pool, as ``aiofiles`` and ``asyncio.to_thread`` do."""
    payload = os.urandom(FILE_CHUNK)
    fd, path = tempfile.mkstemp(prefix="taskscope-")
    os.close(fd)
    rounds = _file_rounds(size_s, calib)
    try:
        for i in range(rounds):
            ctx.check()
            await asyncio.to_thread(file_round, path, payload)
            ctx.progress((i + 1) / rounds)
    finally:
        os.unlink(path)
    return rounds * FILE_CHUNK


# -- mixed -------------------------------------------------------------------------------
def mixed(ctx: Any, size_s: float, params: dict, calib: dict) -> int:
    """Half the size waiting on I/O (simulated latency), then half computing."""
    ctx.sleep(size_s / 2)
    return cpu(ctx, size_s / 2, params, calib, span=(0.5, 1.0))


async def mixed_async(ctx: Any, size_s: float, params: dict, calib: dict) -> int:
    await ctx.asleep(size_s / 2)
    return await cpu_async(ctx, size_s / 2, params, calib, span=(0.5, 1.0))


# -- blocking: the pitfall -----------------------------------------------------------------
def blocking(ctx: Any, size_s: float, params: dict, calib: dict) -> float:
    if params["mode"] == "cpu":
        cpu(ctx, size_s, params, calib)
    else:
        _blocking_sleep(ctx, size_s)
    return size_s


def _blocking_sleep(ctx: Any, size_s: float) -> None:
    end = time.monotonic() + size_s
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, 0.005))
        ctx.progress(1 - max(0.0, end - time.monotonic()) / size_s)


async def blocking_async(ctx: Any, size_s: float, params: dict, calib: dict) -> float:
    """The classic mistake: ``time.sleep`` (or CPU work) inside a coroutine, with no await.

    The whole event loop stops for ``size_s``; every other coroutine waits. Only our own cancel
    flag can stop it early, because ``Task.cancel()`` needs an ``await`` to take effect.
    """
    if params["mode"] == "cpu":
        cpu(ctx, size_s, params, calib)
    else:
        _blocking_sleep(ctx, size_s)
    return size_s


# -- fail and crash -------------------------------------------------------------------------
def fail(ctx: Any, size_s: float, params: dict, calib: dict) -> None:
    ctx.sleep(size_s)
    if ctx.index % params["every"] == 0:
        raise WorkloadFailure(f"task {ctx.index} failed on purpose (fail workload)")


async def fail_async(ctx: Any, size_s: float, params: dict, calib: dict) -> None:
    await ctx.asleep(size_s)
    if ctx.index % params["every"] == 0:
        raise WorkloadFailure(f"task {ctx.index} failed on purpose (fail workload)")


CRASH_EXIT_CODE = 70


def crash(ctx: Any, size_s: float, params: dict, calib: dict) -> None:
    """Works for half its size, then its worker process dies: ``os._exit`` (mode ``exit``),
    ``SIGKILL`` from itself (``sigkill``, like the OOM killer), or a segfault (``segfault``,
    a NULL read through ctypes)."""
    cpu(ctx, size_s / 2, params, calib, span=(0.0, 0.5))
    if ctx.index % params["every"] == 0:
        mode = params["mode"]
        if mode == "sigkill":
            import signal

            os.kill(os.getpid(), signal.SIGKILL)
        elif mode == "segfault":
            import ctypes
            import faulthandler

            faulthandler.disable()  # die quietly: the parent reports the signal
            ctypes.string_at(0)
        os._exit(CRASH_EXIT_CODE)
    cpu(ctx, size_s / 2, params, calib, span=(0.5, 1.0))


async def crash_async(ctx: Any, size_s: float, params: dict, calib: dict) -> None:
    crash(ctx, size_s, params, calib)


# -- events: stress the event pipeline ------------------------------------------------------
def events(ctx: Any, size_s: float, params: dict, calib: dict) -> int:
    """Emits progress events as fast as it can for ``size_s``: a load test of the pipeline
    from the workers to the store (and on to the GUI)."""
    from ..events import Kind

    end = now_ns() + int(size_s * 1e9)
    n = 0
    emit = ctx.event
    while True:
        for _ in range(256):
            emit(Kind.PROGRESS, 0.5)
        n += 256
        ctx.check()
        if now_ns() >= end:
            return n


async def events_async(ctx: Any, size_s: float, params: dict, calib: dict) -> int:
    from ..events import Kind

    end = now_ns() + int(size_s * 1e9)
    n = 0
    while True:
        for _ in range(256):
            ctx.event(Kind.PROGRESS, 0.5)
        n += 256
        ctx.check()
        await asyncio.sleep(0)
        if now_ns() >= end:
            return n


# -- custom: the user's own function (see engine/custom.py) ---------------------------------
def custom(ctx: Any, size_s: float, params: dict, calib: dict) -> Any:
    """The user's function, resolved by reference in whichever process runs it. Imported
    lazily: user code is loaded only when a spec names it."""
    from ..custom import run_blocking

    return run_blocking(ctx, size_s, params, calib)


async def custom_async(ctx: Any, size_s: float, params: dict, calib: dict) -> Any:
    from ..custom import run_async

    return await run_async(ctx, size_s, params, calib)


# -- registry ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Workload:
    name: str
    blocking: Blocking
    async_: Async
    description: str
    #: Kills its worker process, so it only runs where workers are processes.
    process_only: bool = False
    #: Needs the engine's loopback HTTP server.
    needs_server: bool = False
    #: Rates to time again at the start of each of its runs (they drift too fast to cache).
    rates_per_run: Callable[[], dict[str, float]] | None = None
    #: Done in the engine's process before a run is queued (an import), so that no model's
    #: first task, and so no model's wall, includes it.
    prepare: Callable[[], None] | None = None


WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload("cpu", cpu, cpu_async, "pure-Python arithmetic (holds the GIL)"),
        Workload("numpy", numpy, numpy_async, "NumPy sin over float arrays (releases the GIL)",
                 prepare=_import_numpy),
        Workload("sleep", sleep, sleep_async, "simulated latency: time.sleep / asyncio.sleep"),
        Workload(
            "http", http, http_async, "real requests to a loopback HTTP server", needs_server=True
        ),
        Workload("file", file, file_async, "write, fsync and read back temp files",
                 rates_per_run=file_rates_now),
        Workload("mixed", mixed, mixed_async, "half I/O wait, then half CPU"),
        Workload(
            "blocking", blocking, blocking_async, "time.sleep or CPU inside a coroutine (pitfall)"
        ),
        Workload("fail", fail, fail_async, "waits, then raises (every Nth task)"),
        Workload(
            "crash", crash, crash_async, "its worker process dies mid-task", process_only=True
        ),
        Workload("events", events, events_async, "floods progress events (pipeline load test)"),
        Workload(
            "custom", custom, custom_async, "your own function: params function=mod:fn or file.py:fn"
        ),
    )
}

#: Parameters each workload accepts: name -> (default, validator).
_PARAMS: dict[str, dict[str, tuple[Any, Callable[[Any, str], Any]]]] = {
    "http": {
        "delay": ("20ms", lambda v, f: parse_duration(v, f)),
        # Fault injection: the server drops every request after this many (0: never).
        "fail_after": (0, lambda v, f: parse_int(v, f, 0, 10_000_000)),
    },
    "blocking": {
        "mode": ("sleep", lambda v, f: _choice(v, f, ("sleep", "cpu"))),
    },
    "fail": {"every": (1, lambda v, f: parse_int(v, f, 1, 1_000_000))},
    "crash": {
        "every": (1, lambda v, f: parse_int(v, f, 1, 1_000_000)),
        "mode": ("exit", lambda v, f: _choice(v, f, ("exit", "sigkill", "segfault"))),
    },
}


def _choice(value: Any, field: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise SpecError(field, f"must be one of {', '.join(choices)}, got {value!r}")
    return value


def validate_params(workload: str, params: dict[str, Any]) -> dict[str, Any]:
    """Check a workload's parameters and fill in defaults. Raises SpecError naming the field."""
    if workload == "custom":
        from ..custom import validate_params as validate_custom

        return validate_custom(params)
    known = _PARAMS.get(workload, {})
    out: dict[str, Any] = {}
    for key in params:
        if key not in known:
            allowed = ", ".join(known) or "none"
            raise SpecError(
                f"params.{key}", f"unknown parameter for {workload} (it takes: {allowed})"
            )
    for key, (default, check) in known.items():
        out[key] = check(params.get(key, default), f"params.{key}")
    if workload == "http" and (out["delay"] <= 0 or out["delay"] > 60):
        raise SpecError("params.delay", "must be between 0 and 60 seconds")
    return out
