"""The concurrency models, what each can do here, and how each cancels.

========================  ==================================  ===========================
model                     workers                             cancel
========================  ==================================  ===========================
sequential                one thread, tasks one after another cooperative flag
asyncio                   coroutines on the engine's loop     ``Task.cancel()`` + flag
threads                   a pool of K threads                 cooperative flag only
processes                 K worker processes (forkserver)     shared-memory flag; force kill
asyncio-processes         coroutines + ``run_in_executor``    shared-memory flag; force kill
interpreters              ``InterpreterPoolExecutor`` (3.14+) cooperative flag only
free-threaded             threads on a build with the GIL off cooperative flag only
========================  ==================================  ===========================

**A thread cannot be killed.** Python offers no safe way to stop a thread from outside. A thread
task that never calls back into its context (``ctx.progress``/``ctx.check``/``ctx.sleep``) stays
in ``cancel_requested`` until it returns on its own; the engine reports exactly that and never
claims it stopped. Only process tasks can be force-cancelled: their worker is killed and
replaced, and no other task is affected.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from dataclasses import dataclass

from ..errors import SpecError

MODEL_NAMES = (
    "sequential",
    "asyncio",
    "threads",
    "processes",
    "asyncio-processes",
    "interpreters",
    "free-threaded",
)


@dataclass(frozen=True)
class ModelInfo:
    name: str
    available: bool
    reason: str
    description: str
    #: Workers are separate processes (a crash there cannot take the engine down).
    isolated: bool
    #: A running task can be force-cancelled (its worker killed).
    can_force: bool
    cancel_note: str


def _gil_disabled() -> tuple[bool, str]:
    if not sysconfig.get_config_var("Py_GIL_DISABLED"):
        return False, f"needs a free-threaded build (python3.13t or later); this is {_py()}"
    is_enabled = getattr(sys, "_is_gil_enabled", None)
    if is_enabled is not None and is_enabled():
        return False, "this free-threaded build has the GIL switched on (PYTHON_GIL=1 or an extension)"
    return True, ""


def _interpreters() -> tuple[bool, str]:
    import concurrent.futures as cf

    if sys.version_info < (3, 14) or not hasattr(cf, "InterpreterPoolExecutor"):
        return False, f"needs Python 3.14+ (concurrent.futures.InterpreterPoolExecutor); this is {_py()}"
    return False, "not implemented yet for InterpreterPoolExecutor"


def _py() -> str:
    v = sys.version_info
    return f"Python {v[0]}.{v[1]}.{v[2]}"


def model_info(name: str) -> ModelInfo:
    """What the named model is and whether this interpreter has it. Unknown names raise."""
    coop = "cooperative: the task stops at its next check; a thread cannot be killed"
    if name == "sequential":
        return ModelInfo(name, True, "", "one worker thread runs the tasks one after another",
                         False, False, coop)
    if name == "asyncio":
        return ModelInfo(name, True, "", "coroutines on the engine's own asyncio loop thread",
                         False, False, "Task.cancel() at the next await (plus the task's flag)")
    if name == "threads":
        return ModelInfo(name, True, "", "a pool of worker threads in this process",
                         False, False, coop)
    if name == "processes":
        return ModelInfo(name, True, "", "a pool of worker processes (forkserver/spawn)",
                         True, True, "shared-memory flag; force cancel kills the worker")
    if name == "asyncio-processes":
        return ModelInfo(name, True, "",
                         "coroutines that hand work to worker processes via run_in_executor",
                         True, True, "shared-memory flag; force cancel kills the worker")
    if name == "interpreters":
        ok, why = _interpreters()
        return ModelInfo(name, ok, why, "sub-interpreters via InterpreterPoolExecutor",
                         False, False, coop)
    if name == "free-threaded":
        ok, why = _gil_disabled()
        return ModelInfo(name, ok, why, "threads on a free-threaded build with the GIL off",
                         False, False, coop)
    raise SpecError("model", f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")


def all_models() -> list[ModelInfo]:
    return [model_info(n) for n in MODEL_NAMES]


def cpu_count() -> int:
    return os.cpu_count() or 1


def default_workers(model: str, tasks: int) -> int:
    """Each model's default worker count (for asyncio: its concurrency limit)."""
    if model == "sequential":
        return 1
    if model == "asyncio":
        return tasks  # like asyncio.gather: every coroutine at once
    if model in ("threads",):
        return min(32, cpu_count() + 4)  # ThreadPoolExecutor's own default
    return cpu_count()
