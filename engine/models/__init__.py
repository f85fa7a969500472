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

Each model is one entry of :mod:`engine.models.registry` and one runner module
(:mod:`~engine.models.threads`, :mod:`~engine.models.coroutines`,
:mod:`~engine.models.processes`), behind the one :class:`~engine.models.protocol.Runner`
protocol.

**A thread cannot be killed.** Python offers no safe way to stop a thread from outside. A thread
task that never calls back into its context (``ctx.progress``/``ctx.check``/``ctx.sleep``) stays
in ``cancel_requested`` until it returns on its own; the engine reports exactly that and never
claims it stopped. Only process tasks can be force-cancelled: their worker is killed and
replaced, and no other task is affected.
"""

from __future__ import annotations

from .protocol import Launch, Runner, RunSink, RunView, SpecView
from .registry import (
    Availability,
    ModelEntry,
    ModelInfo,
    cpu_count,
    entry,
    info,
    names,
    register,
    unregister,
)


def model_info(name: str) -> ModelInfo:
    """What the named model is and whether this interpreter has it. Unknown names raise."""
    return info(name)


def all_models() -> list[ModelInfo]:
    return [info(n) for n in names()]


def model_names() -> tuple[str, ...]:
    """Every model's name, in the registry's order."""
    return names()


def default_workers(model: str, tasks: int) -> int:
    """Each model's default worker count (for asyncio: its concurrency limit)."""
    return entry(model).default_workers(tasks)


def preflight(spec: SpecView) -> None:
    """The checks of a run that wait on the network (its model's ``reach``: a cluster's
    scheduler must answer), with the SpecError its start would raise; up to a few seconds
    against a silent host, so a window calls this off its GUI thread before it starts the
    run. ``Session.start`` makes them again (quick once they passed)."""
    reach = entry(spec.model).reach
    if reach is not None:
        reach(spec)


__all__ = [
    "Availability",
    "Launch",
    "ModelEntry",
    "ModelInfo",
    "RunSink",
    "RunView",
    "Runner",
    "all_models",
    "cpu_count",
    "default_workers",
    "entry",
    "model_info",
    "model_names",
    "preflight",
    "register",
    "unregister",
]
