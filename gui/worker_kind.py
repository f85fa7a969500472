"""What kind of worker runs a model's tasks: a process, an event loop or a thread.

The task table's Worker column and the timeline's lanes both name a task's worker by it. The
answer comes from the engine's own description of the model (:func:`engine.model_info`), so
a new model needs nothing here. It is asked once per model name and kept: the table asks for
every cell it paints, tens of thousands of times a second under load.
"""

from __future__ import annotations

import functools
from typing import Literal

import engine

Kind = Literal["process", "loop", "thread"]

#: The one model whose tasks are coroutines sharing one event-loop thread: the engine's model
#: description does not say so (its other coroutine model hands each task to a process).
LOOP_MODEL = "asyncio"


@functools.cache
def worker_kind(model: str) -> Kind:
    """``"process"`` if the model's workers are processes (:attr:`engine.ModelInfo.isolated`),
    ``"loop"`` for coroutines on one loop thread, else ``"thread"`` (also for a model unknown
    here, such as one named in a trace from a newer TaskScope, or none at all)."""
    try:
        info = engine.model_info(model)
    except engine.SpecError:
        return "thread"
    if info.isolated:
        return "process"
    return "loop" if model == LOOP_MODEL else "thread"
