"""TaskScope's engine: run workloads under real concurrency models and report what happened.

No Qt here, ever (an import-linter contract and a test enforce it). The public surface:

* :func:`make_spec` validates values into a :class:`RunSpec` (or raises :class:`SpecError`);
* :class:`Session` starts runs, cancels a task, a run or everything, and shuts down;
  :class:`SessionAPI` is what front ends may ask of it, and of ``engine.remote.RemoteSession``
  (the same session in a process of its own);
* :class:`EventStore` (``session.store``) holds events, task records and samples, read
  incrementally by cursor;
* :func:`all_models` / :data:`WORKLOADS` say what can run here.
"""

from __future__ import annotations

from .api import CompareJobAPI, Pumped, RunHandle, SessionAPI, ShutdownReport
from .events import Event, Kind, State
from .models import ModelInfo, all_models, model_info, model_names
from .session import Run, Session
from .spec import RunSpec, SpecError, make_spec
from .store import EventStore, RunRecord, TaskRecord
from .workloads import WORKLOADS

__all__ = [
    "WORKLOADS",
    "CompareJobAPI",
    "Event",
    "EventStore",
    "Kind",
    "ModelInfo",
    "Pumped",
    "Run",
    "RunHandle",
    "RunRecord",
    "RunSpec",
    "Session",
    "SessionAPI",
    "ShutdownReport",
    "SpecError",
    "State",
    "TaskRecord",
    "all_models",
    "make_spec",
    "model_info",
    "model_names",
]
