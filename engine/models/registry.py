"""The model registry: one entry per concurrency model, and nothing else names the models.

An entry says what a model is (its description, whether its workers are separate processes,
whether a running task can be force-cancelled, what cancelling means), whether this
interpreter has it and, if not, why and how to get it, its default and largest worker counts,
the options it takes, and the factory that makes its runner for a run. The spec validator, the
session, the CLI, compare, traces and the window all ask the registry.

**Adding a model** is one runner module (a :class:`~engine.models.protocol.Runner`, usually a
:class:`~engine.models.queue.TaskQueue`) plus one :class:`ModelEntry` here, or passed to
:func:`register` (tests add a tiny model that way).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any

from .. import build
from ..errors import SpecError

# Their availability and checks only: not their runners, nor distributed or the interpreters'
# pool (a runner module is imported when a run of its model starts).
from . import dask, interpreters
from .protocol import ALWAYS, Availability, Launch, Resources, Runner, RunView, SpecView

#: Largest worker counts: a guard against typos such as ``--workers 100000``.
MAX_WORKERS = 1024
MAX_PROCESS_WORKERS = 256

COOPERATIVE = "cooperative: the task stops at its next check; a thread cannot be killed"
SHARED_FLAG = "shared-memory flag; force cancel kills the worker"


def cpu_count() -> int:
    return os.cpu_count() or 1


def _cores(tasks: int) -> int:
    return cpu_count()


@dataclass(frozen=True)
class ModelEntry:
    """One concurrency model (see the module docstring)."""

    name: str
    description: str
    #: Makes the model's runner: a callable, or ``"module:function"`` (relative to
    #: ``engine.models``) imported on first use, so that listing models imports no runner.
    runner: Callable[[RunView, Launch], Runner] | str
    #: Workers are separate processes (a crash there cannot take the engine down).
    isolated: bool = False
    #: A running task can be force-cancelled (its worker killed and replaced).
    can_force: bool = False
    #: What cancelling a running task means under this model, in one phrase for front ends.
    cancel_note: str = COOPERATIVE
    #: Whether this interpreter has the model.
    available: Callable[[], Availability] = lambda: ALWAYS
    #: The worker count when the spec gives none (for asyncio: its concurrency limit).
    default_workers: Callable[[int], int] = _cores
    #: The largest worker count a spec may ask for (sequential: exactly 1).
    max_workers: int = MAX_WORKERS
    #: Tasks are coroutines sharing one thread (timelines draw them as sub-lanes).
    coroutines: bool = False
    #: Tasks run Python in several threads of one process, under one GIL (a comparison's
    #: reading then blames the GIL when only one core was busy).
    shares_gil: bool = False
    #: The reference the other models' speed-ups are measured against in a comparison.
    baseline: bool = False
    #: What its workers are, plural, where starting them takes measurable time (a comparison
    #: reads "0.29 s starting 2 worker processes"); "" where they are threads of the engine,
    #: which start in microseconds: such a run's start-up is 0. A model with a noun reports
    #: when its workers were ready (``RunSink.run_info``: ``workers_ready_ns``).
    workers_noun: str = ""
    #: The caller may run it on a loop of its own (the window's "coroutines on the GUI loop").
    caller_loop: bool = False
    #: The shape of its standalone script (``engine.scriptgen``): "loop", "thread-pool",
    #: "process-pool", "coroutines", "coroutines+process-pool"; None: no script.
    script: str | None = None
    #: Options the model takes (``RunSpec.options``): name -> (default, validator). A
    #: validator gets ``(value, field)`` and returns the clean value or raises SpecError.
    options: Mapping[str, tuple[Any, Callable[[Any, str], Any]]] = field(default_factory=dict)
    #: Its workers are a cluster's, each known by its address (see ModelInfo).
    addressed_workers: bool = False
    #: What the interpreter must have for it (see ModelInfo): "subinterpreters",
    #: "free-threading", or "" for nothing beyond the engine's own needs.
    needs: str = ""
    #: Checks that need the outside world (a cluster's scheduler answers), run by
    #: ``Session.start`` before the run is admitted: raise SpecError and nothing starts.
    prepare: Callable[[SpecView, Resources], None] | None = None
    #: The part of ``prepare`` that waits on the network (a scheduler's port must answer, up
    #: to a few seconds), and needs no session: a front end with a GUI thread makes it first,
    #: off that thread (:func:`engine.models.preflight`), so that its call to start the run
    #: no longer waits on a silent host.
    reach: Callable[[SpecView], None] | None = None
    #: Workloads the model cannot run, and why in one phrase (``make_spec`` refuses them
    #: before anything starts): e.g. NumPy, which does not import in a sub-interpreter.
    refuses: Mapping[str, str] = field(default_factory=dict)

    def make_runner(self, run: RunView, launch: Launch) -> Runner:
        factory = self.runner
        if isinstance(factory, str):
            module, _, name = factory.partition(":")
            factory = getattr(import_module(f"{__package__}.{module}"), name)
        return factory(run, launch)


@dataclass(frozen=True)
class ModelInfo:
    """What a model is and whether this interpreter has it (a front end's view of an entry)."""

    name: str
    available: bool
    reason: str
    description: str
    #: Workers are separate processes (a crash there cannot take the engine down).
    isolated: bool
    #: A running task can be force-cancelled (its worker killed).
    can_force: bool
    cancel_note: str
    #: Tasks are coroutines sharing one thread.
    coroutines: bool = False
    #: How to get the model when it is not available ("" when it is, or there is no fix).
    fix: str = ""
    #: The most workers a run may ask for (1: the model runs one task at a time).
    max_workers: int = MAX_WORKERS
    #: A front end may run it on a loop of its own (the window's "coroutines on the GUI loop").
    caller_loop: bool = False
    #: The reference a comparison's speed-ups are measured against.
    baseline: bool = False
    #: The options a run of it takes (``RunSpec.options``), by name: a front end asks for
    #: them only when the model is chosen (the window's Scheduler field).
    options: tuple[str, ...] = ()
    #: Its workers are a cluster's, each known by its address: a task's thread name begins
    #: with its worker's address, which front ends show as the worker's name.
    addressed_workers: bool = False
    #: What the interpreter must have for it: "subinterpreters" (PEP 734), "free-threading"
    #: (a build with the GIL off), or "". A front end that runs engines on several
    #: interpreters asks each one for that capability, not for the model by name.
    needs: str = ""


def free_threading() -> Availability:
    """A free-threaded build (``Py_GIL_DISABLED``) running with its GIL off (judged from
    :func:`engine.build.current`, so a test can describe a build this machine lacks)."""
    b = build.current()
    if not b.free_threaded:
        return Availability(False, "needs a free-threaded build (python3.13t or later); this is "
                            f"Python {b.version}",
                            "run the engine on one: taskscope run --python python3.14t ...")
    if b.gil_enabled:
        return Availability(False, "this free-threaded build has the GIL switched on "
                            "(PYTHON_GIL=1 or an extension)", "unset PYTHON_GIL, or set PYTHON_GIL=0")
    return ALWAYS


_ENTRIES: dict[str, ModelEntry] = {}


def register(entry: ModelEntry) -> ModelEntry:
    """Add a model (or replace one of the same name); return the entry."""
    _ENTRIES[entry.name] = entry
    return entry


def unregister(name: str) -> None:
    """Remove a model (tests that registered one of their own)."""
    _ENTRIES.pop(name, None)


def names() -> tuple[str, ...]:
    """Every registered model, in the registry's order."""
    return tuple(_ENTRIES)


def entry(name: str) -> ModelEntry:
    """The named model's entry. Unknown names raise :class:`SpecError` naming ``model``."""
    e = _ENTRIES.get(name)
    if e is None:
        raise SpecError("model", f"unknown model {name!r}; choose one of {', '.join(_ENTRIES)}")
    return e


def assumed_available() -> dict[str, ModelInfo]:
    """Every model, taken as available: for ``make_spec(models=...)`` to check the rest of a
    spec before the interpreter that will run it (an engine on another Python) is asked."""
    from dataclasses import replace

    return {n: replace(info(n), available=True, reason="", fix="") for n in names()}


def info(name: str) -> ModelInfo:
    e = entry(name)
    a = e.available()
    return ModelInfo(e.name, a.ok, a.reason, e.description, e.isolated, e.can_force,
                     e.cancel_note, e.coroutines, a.fix, e.max_workers, e.caller_loop,
                     e.baseline, tuple(e.options), e.addressed_workers, e.needs)


for _e in (
    ModelEntry("sequential", "one worker thread runs the tasks one after another",
               "threads:sequential", default_workers=lambda tasks: 1, max_workers=1,
               baseline=True, script="loop"),
    ModelEntry("asyncio", "coroutines on the engine's own asyncio loop thread",
               "coroutines:coroutines", coroutines=True, caller_loop=True, script="coroutines",
               cancel_note="Task.cancel() at the next await (plus the task's flag)",
               # like asyncio.gather: every coroutine at once
               default_workers=lambda tasks: tasks),
    ModelEntry("threads", "a pool of worker threads in this process", "threads:threads",
               shares_gil=True, script="thread-pool",
               # ThreadPoolExecutor's own default
               default_workers=lambda tasks: min(32, cpu_count() + 4)),
    ModelEntry("processes", "a pool of worker processes (forkserver/spawn)",
               "processes:processes", isolated=True, can_force=True, cancel_note=SHARED_FLAG,
               max_workers=MAX_PROCESS_WORKERS, script="process-pool",
               workers_noun="worker processes"),
    ModelEntry("asyncio-processes",
               "coroutines that hand work to worker processes via run_in_executor",
               "processes:asyncio_processes", isolated=True, can_force=True,
               cancel_note=SHARED_FLAG, max_workers=MAX_PROCESS_WORKERS,
               script="coroutines+process-pool", workers_noun="worker processes"),
    ModelEntry("interpreters", "sub-interpreters, each with its own GIL, via "
               "InterpreterPoolExecutor", "interpreters:interpreters",
               cancel_note=interpreters.CANCEL_NOTE, available=interpreters.available,
               max_workers=MAX_PROCESS_WORKERS, prepare=interpreters.prepare,
               refuses=interpreters.REFUSES, workers_noun="sub-interpreters",
               needs="subinterpreters"),
    ModelEntry("free-threaded", "threads on a free-threaded build with the GIL off",
               "threads:threads", available=free_threading, script="thread-pool",
               needs="free-threading", default_workers=lambda tasks: min(32, cpu_count() + 4)),
    ModelEntry("dask", "a Dask cluster: an embedded LocalCluster of single-threaded worker "
               "processes, or an existing one (--scheduler)", "dask:dask_runner",
               isolated=True, can_force=True, cancel_note=dask.CANCEL_NOTE,
               available=dask.available, max_workers=MAX_PROCESS_WORKERS, script="dask",
               workers_noun="Dask workers", addressed_workers=True,
               options={"scheduler": (None, dask.check_scheduler)}, prepare=dask.prepare,
               reach=dask.reach),
):
    register(_e)
del _e
