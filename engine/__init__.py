"""TaskScope's engine: run workloads under real concurrency models and report what happened.

No Qt here, ever (an import-linter contract and a test enforce it). The public surface:

* :func:`make_spec` validates values into a :class:`RunSpec` (or raises :class:`SpecError`);
* :class:`Session` starts runs, cancels a task, a run or everything, and shuts down;
  :class:`SessionAPI` is what front ends may ask of it, and of ``engine.remote.RemoteSession``
  (the same session in a process of its own);
* :class:`EventStore` (``session.store``) holds events, task records and samples, read
  incrementally by cursor;
* :func:`all_models` / :data:`WORKLOADS` say what can run here;
* :func:`preflight` makes a run's checks that wait on the network (a window: off its GUI
  thread, before it starts the run).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .api import CompareJobAPI, Pumped, RunHandle, SessionAPI, ShutdownReport
    from .events import Event, Kind, State
    from .models import ModelInfo, all_models, model_info, model_names, preflight
    from .session import Run, Session
    from .spec import RunSpec, SpecError, make_spec
    from .store import EventStore, RunRecord, TaskRecord
    from .workloads import WORKLOADS

#: Each public name -> the module that defines it. Imported on first use (PEP 562), so that
#: importing one of the engine's modules does not import all of them: a sub-interpreter, a
#: worker process or a Dask worker that needs the task machinery only paid 150-450 ms for
#: the session, the sampler's probes and the rest (``python -X importtime``, Python 3.13).
_WHERE = {
    "CompareJobAPI": "api", "Pumped": "api", "RunHandle": "api", "SessionAPI": "api",
    "ShutdownReport": "api",
    "Event": "events", "Kind": "events", "State": "events",
    "ModelInfo": "models", "all_models": "models", "model_info": "models",
    "model_names": "models", "preflight": "models",
    "Run": "session", "Session": "session",
    "RunSpec": "spec", "SpecError": "spec", "make_spec": "spec",
    "EventStore": "store", "RunRecord": "store", "TaskRecord": "store",
    "WORKLOADS": "workloads",
}

__all__ = [
    "WORKLOADS", "CompareJobAPI", "Event", "EventStore", "Kind", "ModelInfo", "Pumped", "Run",
    "RunHandle", "RunRecord", "RunSpec", "Session", "SessionAPI", "ShutdownReport", "SpecError",
    "State", "TaskRecord", "all_models", "make_spec", "model_info", "model_names", "preflight",
]
assert sorted(__all__) == sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        # A submodule not imported yet (``engine.spec.POLICIES`` after ``import engine``),
        # as before the names above were lazy.
        try:
            return import_module(f".{name}", __name__)
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE})
