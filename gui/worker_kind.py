"""What kind of worker runs a model's tasks: a cluster's worker, a process, an event loop or a
thread.

The task table's Worker column and the timeline's lanes both name a task's worker by it. The
answer comes from the engine's description of the model (:func:`engine.model_info`), so a new
model needs nothing here. Each known model is asked once and its answer kept (the table asks
for every cell it paints, tens of thousands of times a second under load), so a model
re-registered under the same name with other workers keeps its first answer.
"""

from __future__ import annotations

from typing import Literal

import engine

Kind = Literal["cluster", "process", "loop", "thread"]

_kinds: dict[str, Kind] = {}


def worker_address(thread: str) -> str:
    """A cluster worker's address, from its task's thread name (which begins with it), without
    the scheme: ``"tcp://10.0.0.5:40123 0-Dask-…"`` -> ``"10.0.0.5:40123"``."""
    head = thread.split(" ", 1)[0]
    return head.partition("://")[2] or head


def worker_kind(model: str) -> Kind:
    """``"cluster"`` if its workers are a cluster's, known by their addresses
    (:attr:`engine.ModelInfo.addressed_workers`: a Dask worker, named by its address where it
    was "process PID"); ``"process"`` if they are processes (:attr:`engine.ModelInfo.isolated`),
    ``"loop"`` if its tasks are coroutines sharing one thread, else ``"thread"``; also
    ``"thread"`` for a model unknown here (a trace from a newer TaskScope, or no model at all),
    which is not kept, so a model registered later is asked again."""
    kind = _kinds.get(model)
    if kind is not None:
        return kind
    try:  # a comparison row across interpreters ("threads · 3.13.0"): its model's kind
        info = engine.model_info(model.split(" · ", 1)[0])
    except engine.SpecError:
        return "thread"
    kind: Kind = ("cluster" if info.addressed_workers else "process" if info.isolated
                  else "loop" if info.coroutines else "thread")
    _kinds[model] = kind
    return kind
