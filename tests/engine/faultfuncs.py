"""Misbehaving functions for the fault tests, run through the ``custom`` workload
(``function="tests.engine.faultfuncs:NAME"``) or submitted to a ProcPool directly.

Everything here is top-level so that worker processes can import it by name. Nothing in this
module is imported by the engine unless a spec names it (the security tests check that).
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

#: Set in a process when this module is imported; the "custom code is loaded only when named"
#: test checks that running built-in workloads never sets it.
IMPORTED_IN = os.getpid()


# -- tasks that ignore cancellation -------------------------------------------------------
def ignore_cancel(seconds: float) -> float:
    """Sleeps in one ``time.sleep`` call and never looks at a context: a cancel cannot reach it."""
    time.sleep(seconds)
    return seconds


def ignore_cancel_marked(seconds: float, marker: str) -> float:
    """:func:`ignore_cancel` that first creates ``marker`` (its pid inside), so a test knows
    the function itself is running (a task's 'started' comes before its function is loaded)."""
    tmp = f"{marker}.{os.getpid()}.{threading.get_ident()}.tmp"  # tasks may share a marker
    with open(tmp, "w") as f:
        f.write(str(os.getpid()))
    os.replace(tmp, marker)
    time.sleep(seconds)
    return seconds


def spin(seconds: float) -> int:
    """A tight pure-Python loop that never checks a context (holds the GIL between switches)."""
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        n += 1
    return n


def hang(ctx: Any = None) -> None:
    """Takes a ctx (so the engine thinks it can be interrupted) but never calls it: hangs far
    past any timeout."""
    time.sleep(30)


def hang_for(seconds: float, ctx: Any = None) -> float:
    """Like :func:`hang`, for ``seconds``."""
    time.sleep(seconds)
    return seconds


# -- exceptions whose payload cannot cross a process boundary -------------------------------
class LockPayloadError(Exception):
    """Carries a lock: ``pickle.dumps`` of it fails in the worker."""

    def __init__(self) -> None:
        super().__init__("payload is a lock", threading.Lock())


class TwoArgError(Exception):
    """Pickles fine but cannot be rebuilt: ``__init__`` needs two arguments, ``args`` has one.
    Unpickling it in the parent raises TypeError."""

    def __init__(self, a: Any, b: Any) -> None:
        super().__init__(f"{a}/{b}")
        self.a, self.b = a, b


class BadStrError(Exception):
    """Its ``str()`` raises: anything formatting the message must not fall over."""

    def __str__(self) -> str:
        raise RuntimeError("str() of this exception is broken")


class BadReduceError(Exception):
    """``__reduce__`` itself raises something that is not a PicklingError."""

    def __reduce__(self) -> Any:
        raise ValueError("refuses to be pickled")


def raise_lock_payload() -> None:
    raise LockPayloadError()


def raise_two_arg() -> None:
    raise TwoArgError("left", "right")


def raise_bad_str() -> None:
    raise BadStrError()


def raise_bad_reduce() -> None:
    raise BadReduceError("no")


def return_lock() -> Any:
    """A result that cannot be pickled back to the parent."""
    return threading.Lock()


def return_two_arg() -> Any:
    """A result that pickles but cannot be unpickled in the parent."""
    return TwoArgError("x", "y")


def raise_ctx_error(ctx: Any = None) -> None:
    raise TwoArgError("with", "ctx")


# -- plain functions for ProcPool.submit ------------------------------------------------------
def add(a: int, b: int) -> int:
    return a + b


def pid() -> int:
    return os.getpid()


def die(code: int) -> None:
    os._exit(code)


def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds
