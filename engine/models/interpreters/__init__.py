"""``interpreters``: tasks in sub-interpreters (PEP 734), each with its own GIL, in one process.

The pool is ``concurrent.futures.InterpreterPoolExecutor`` (Python 3.14+), or on 3.13 the same
class from the ``interpreters-pep-734`` backport (``pip install 'taskscope[interpreters]'``).
On 3.12 the backport needs the ``_interpreters`` C module, which only a source build provides
(and which crashed on import on 3.12.1 here): the model is unavailable there, and says so.

What TaskScope adds to the pool, and where:

* **Nothing the pool cannot carry crosses it** (:mod:`.inside`): with the backport, a result
  it cannot send (an int outside int64, such as ``sum(i*i for i in range(8_000_000))``), an
  object or exception that does not pickle, or a function whose module fails to import inside,
  left its pool waiting forever with no error, one core busy. So the pool only ever gets one
  function, :func:`.inside.call`, and bytes in and out: the call and its arguments are
  unpickled inside its own ``try``, the outcome pickled inside, an unpicklable one replaced by
  an error that says so, and the engine unpickles it apart (:mod:`.pool`). The module that
  holds ``call`` is imported in a fresh interpreter first, where a failure is an error.
* **Lanes per interpreter** (:mod:`.pool`): every interpreter starts before the run's tasks
  and says who it is (its worker thread's native id, its interpreter id); each lane is named
  ``interp-<id>``, from inside (the events) and from the main side (the thread's name). How
  long starting them took is the run's ``startup_s`` (``RunRecord.info``), not a task's.
* **Events** leave each interpreter through a pipe of its own, batched (a start and an ending
  at once, progress at most every ``FLUSH_S``), into the session's store.
* **Cancel** is cooperative, through one shared byte per task that the engine sets and the
  task reads at its next check, as a thread's flag is. An interpreter, like a thread, cannot be
  killed: a task that never checks runs to its end, and shows ``cancel_requested`` until then.
  A timeout works the same way.

Workloads that cannot run inside are refused before anything starts (:data:`REFUSES`); a
custom function must import in a sub-interpreter (checked in a fresh one before the run: a
module that imports NumPy does not), and never comes from ``__main__``.
"""

from __future__ import annotations

import importlib.util
import sys
from functools import cache
from typing import Any

from ..protocol import ALWAYS, Availability, Launch, Resources, RunView, SpecView

CANCEL_NOTE = ("cooperative: the task stops at its next check of its flag; an interpreter, "
               "like a thread, cannot be killed (no force)")
INSTALL = "pip install 'taskscope[interpreters]'"

#: Workloads this model refuses, and why (``ModelEntry.refuses``).
REFUSES = {
    "numpy": "NumPy does not import in a sub-interpreter (its C extension does not support "
             "them); use processes or threads",
    "crash": "its task ends the process, and a sub-interpreter's process is the engine's",
}


def _py() -> str:
    v = sys.version_info
    return f"Python {v[0]}.{v[1]}.{v[2]}"


def _fix_elsewhere() -> str:
    return ("run the engine on Python 3.13+: taskscope run --python PATH ... "
            "(taskscope pythons lists them; taskscope pythons add PATH prepares one)")


@cache
def available() -> Availability:
    """Whether this interpreter has an InterpreterPoolExecutor the model can use (cached: the
    answer cannot change while the engine runs)."""
    v = sys.version_info[:2]
    if v < (3, 12):
        return Availability(False, f"needs sub-interpreters (Python 3.13+); this is {_py()}",
                            _fix_elsewhere())
    if v == (3, 12):
        return Availability(False, "the interpreters-pep-734 backport needs the _interpreters "
                            f"C module, which {_py()} does not have", _fix_elsewhere())
    if v >= (3, 14):
        import concurrent.futures as cf

        if not hasattr(cf, "InterpreterPoolExecutor"):
            return Availability(False, f"{_py()} has no concurrent.futures."
                                "InterpreterPoolExecutor", _fix_elsewhere())
        return ALWAYS
    if importlib.util.find_spec("interpreters_backport") is None:
        return Availability(False, f"needs the interpreters-pep-734 backport on {_py()}, "
                            "which is not installed",
                            f"{INSTALL} (or: taskscope pythons add {sys.executable})")
    try:
        executor_class()
    except Exception as e:  # noqa: BLE001 - a broken install: say what broke
        return Availability(False, f"the interpreters-pep-734 backport does not import "
                            f"({type(e).__name__}: {e})", INSTALL)
    return ALWAYS


def executor_class() -> Any:
    """``InterpreterPoolExecutor``: the standard library's (3.14+) or the backport's."""
    if sys.version_info >= (3, 14):
        from concurrent.futures import InterpreterPoolExecutor
    else:
        from interpreters_backport.concurrent.futures import InterpreterPoolExecutor
    return InterpreterPoolExecutor


def interpreters_module() -> Any:
    """PEP 734's ``interpreters`` module (``concurrent.interpreters`` on 3.14+)."""
    if sys.version_info >= (3, 14):
        from concurrent import interpreters
    else:
        from interpreters_backport import interpreters
    return interpreters


def prepare(spec: SpecView, resources: Resources) -> None:
    """Before a run is admitted: a custom function must import in a sub-interpreter (a
    SpecError naming ``params.function`` in one line if not; nothing starts)."""
    if spec.workload == "custom":
        from .pool import check_function

        check_function(spec.params)


def interpreters(run: RunView, launch: Launch) -> Any:
    """``launch.workers`` sub-interpreters, started before the run's tasks."""
    from .runner import InterpreterRunner

    return InterpreterRunner(run, launch.workers)
