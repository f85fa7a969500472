"""Show code: the standalone Python script equivalent to a run spec, without TaskScope.

:func:`generate` turns a :class:`~engine.spec.RunSpec` into a script a user can copy and run
with a plain ``python`` (3.11+: it uses ``asyncio.timeout`` and ``asyncio.TaskGroup``). The
pattern per model:

=====================  =============================================================
sequential             a plain ``for`` loop
asyncio                ``asyncio.gather`` (collect) or ``asyncio.TaskGroup`` (fail-fast),
                       ``asyncio.timeout`` per task, a ``Semaphore`` for a worker limit
threads                ``ThreadPoolExecutor`` + ``wait(..., FIRST_EXCEPTION)`` for fail-fast
processes              ``ProcessPoolExecutor`` under ``if __name__ == "__main__":``
asyncio-processes      ``loop.run_in_executor`` with a ``ProcessPoolExecutor``
dask                   ``LocalCluster`` (or ``Client(SCHEDULER)``) + ``client.map`` +
                       ``client.gather``; ``as_completed`` for fail-fast
=====================  =============================================================

Built-in workloads are inlined as small equivalent functions (the cpu workload is a sum of
squares whose iteration count comes from this machine's calibration, so the script does the
same amount of work as the engine's task). Custom functions are imported by their reference.

Timeouts: coroutines get ``asyncio.timeout``. A thread or a process task cannot be interrupted
from outside, so there the inlined work checks a deadline between chunks of work (the same
cooperative check the engine uses); an imported custom function is only subject to it if it
takes a ``ctx`` (the script passes a small stand-in with ``check``/``progress``/``sleep``).

Failures: every script *reports* failures and exits 0, as the engine does (a failed task is a
result, not a crash of the run). ``collect`` waits for every task and lists each failure;
``fail-fast`` stops at the first failure the way the pattern does (``TaskGroup`` cancels its
other tasks; an executor cancels the queued futures while running ones finish) and reports
``fail-fast: ...`` with the counts. The last line is always ``wall <seconds> s``.

The ``events`` workload exercises TaskScope's own event pipeline and has no standalone
equivalent; :func:`generate` refuses it with :class:`ScriptError`.
"""

from __future__ import annotations

from ..models import registry
from ..spec import RunSpec
from .prune import prune
from .shapes import REPORT, asyncio_shape, dask_shape, executor_shape, loop_shape
from .work import COMMON, ScriptError, workload_code

__all__ = ["ScriptError", "generate"]


def generate(spec: RunSpec, calib: dict[str, float] | None = None) -> str:
    """The standalone script for ``spec`` (see the module docstring). ``calib``: the rates that
    size the inlined work; by default this machine's calibration."""
    if calib is None:
        from ..workloads.calibrate import calibration

        calib = calibration()
    code, extra_imports, desc = workload_code(spec, calib)
    ff = spec.policy == "fail-fast"
    m = spec.model
    workers = spec.effective_workers()
    imports = {"import asyncio", "import time"}
    shape = registry.entry(m).script
    if shape == "thread-pool":
        imports.add("from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait"
                    if ff else "from concurrent.futures import ThreadPoolExecutor, wait")
        runner, pattern = executor_shape("ThreadPoolExecutor", ff), "ThreadPoolExecutor"
    elif shape == "process-pool":
        imports.add("from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait"
                    if ff else "from concurrent.futures import ProcessPoolExecutor, wait")
        runner, pattern = executor_shape("ProcessPoolExecutor", ff), "ProcessPoolExecutor"
    elif shape == "coroutines":
        limited = spec.workers is not None and spec.workers < spec.tasks
        runner = asyncio_shape(ff, limited, executor=False)
        pattern = "asyncio.TaskGroup" if ff else "asyncio.gather"
    elif shape == "coroutines+process-pool":
        imports.add("from concurrent.futures import ProcessPoolExecutor")
        runner = asyncio_shape(ff, False, executor=True)
        pattern = "loop.run_in_executor + ProcessPoolExecutor"
    elif shape == "loop":
        runner, pattern = loop_shape(ff), "a plain loop"
    elif shape == "dask":
        scheduler = spec.options.get("scheduler")
        imports.add("from dask.distributed import Client, LocalCluster, as_completed, wait")
        if scheduler is None:
            imports.add("import dask")
            pattern = "Dask: LocalCluster, Client, client.map, client.gather"
        else:
            pattern = f"Dask on an existing cluster ({scheduler}): client.map, client.gather"
        runner = dask_shape(ff, scheduler)
    else:
        raise ScriptError(f"{m} has no standalone script yet")
    imports.update(extra_imports)
    std = sorted(i for i in imports if i.startswith("import "))
    frm = sorted(i for i in imports if i.startswith("from "))
    timeout = "None" if spec.timeout_s is None else repr(spec.timeout_s)
    server = spec.workload == "http"
    # A custom function decides its own work: the spec's size means nothing for it.
    size = "" if spec.workload == "custom" else f" × {spec.size_s * 1e3:g} ms"
    header = f'''#!/usr/bin/env python3
"""{m} · {spec.workload} · {spec.tasks} tasks{size} · {workers} workers · {spec.policy}

Generated by TaskScope ("show code"); it runs without TaskScope, on Python 3.11+.
Pattern: {pattern}. Work: {desc}.
Timeouts: asyncio.timeout for coroutines; threads and processes cannot be interrupted from
outside, so their work checks a deadline between chunks. Failures are reported, not raised:
the script exits 0 and its last line is the wall time.
"""

from __future__ import annotations

{chr(10).join(std + frm)}

TASKS = {spec.tasks}
WORKERS = {workers}
TIMEOUT = {timeout}  # seconds per task, or None
''' + (
        f"SCHEDULER = {spec.options['scheduler']!r}\n" if spec.options.get("scheduler") else "")
    main_call = "    start_server()\n    main()\n" if server else "    main()\n"
    return prune(header + "\n" + code.strip("\n") + "\n\n" + COMMON + REPORT + runner
                 + '\n\nif __name__ == "__main__":  # required: worker processes re-import '
                 'this file\n' + main_call)
