"""What crosses the two pipes between a front end and its engine process: one type per message.

Both ends import this module and nothing else of each other: the client builds
:class:`Command` and reads :class:`Ready`, :class:`Ok`, :class:`Raised`, :class:`Fatal` and
:class:`Update`; the engine process does the opposite. A new command is one :class:`Op`
member here, one handler in :mod:`~engine.remote.server`, one method on the client.

Task records cross as plain tuples laid out by :data:`TASK_UPDATE_FIELDS`, which comes from
:class:`engine.store.TaskRecord` (the one list of a task's fields), not as a named type: for
4,000 records, a full update (best of 50 ``pickle.dumps``/``loads`` on a 2-core EPYC, Python
3.11), a NamedTuple per record took 10.4 ms to pickle and 9.3 ms to unpickle, against 1.9 and
2.0 ms as plain tuples (a NamedTuple pickles through ``copyreg`` and unpickles through a Python
``__new__``, per record). :func:`encode_tasks` and :func:`fold_tasks` are the only two places
that know the layout, and both are written out from :data:`TASK_UPDATE_FIELDS` at import.
Everything else (an update, a run's summary, a command, a reply) is one NamedTuple per message
or per run, where that cost does not count.
"""

from __future__ import annotations

import copyreg
import io
import pickle
import select
from collections.abc import Callable, Iterable
from dataclasses import fields
from enum import Enum
from multiprocessing.reduction import ForkingPickler
from operator import attrgetter
from typing import Any, NamedTuple

from ..errors import SpecError
from ..samples import Sample, WorkerSample
from ..store import TASK_FIELDS, TaskRecord

__all__ = [
    "TASK_STATIC_FIELDS", "TASK_UPDATE_FIELDS", "Ack", "Command", "CompareDone",
    "CompareProgressed", "Fatal", "Ok", "Op", "Raised", "Ready", "RemoteError", "RunSummary",
    "Update", "UpdatePickler", "encode_tasks", "fold_tasks",
]


# == commands (front end -> engine process, on the command pipe) ====================================
class Op(Enum):
    """The operations the engine process serves, one handler each (see
    :data:`engine.remote.server.HANDLERS`)."""

    START = "start"  # (spec,) -> (run_id, first_task_id, start_ns)
    RESERVE = "reserve"  # (n_tasks,) -> (run_id, first_task_id)
    CANCEL_TASK = "cancel_task"  # (task_id, force, reason) -> bool
    CANCEL_RUN = "cancel_run"  # (run_id, force, reason) -> bool
    CANCEL_ALL = "cancel_all"  # (force, reason) -> int
    WORKER_PIDS = "worker_pids"  # () -> list[int]
    COMPARE = "compare"  # (CompareRequest, {settle_s, monitor_interval_s}) -> None; reports
    #                      come with the updates
    COMPARE_CANCEL = "compare_cancel"  # () -> None
    SHUTDOWN = "shutdown"  # (timeout,) -> ShutdownReport, after the last update


class Command(NamedTuple):
    """One operation and its arguments (see :class:`Op` for what each takes and returns)."""

    op: Op
    args: tuple[Any, ...] = ()


# == replies (engine process -> front end, on the command pipe) =====================================
class Ready(NamedTuple):
    """The engine process runs and serves (its first message): its pid, the interpreter it
    runs on (its ``python`` block, :mod:`engine.build`) and the models as that interpreter has
    them (``engine.models.ModelInfo``: available or not, and why), which may differ from the
    front end's when it runs on another Python), and which engine it runs."""

    pid: int
    python: dict[str, Any] | None = None
    models: list[Any] | None = None
    #: The real folder of the engine package it runs (the front end checks it is its own).
    engine: str = ""


class Fatal(NamedTuple):
    """The engine process could not start, or stopped on an unexpected error: why, one line."""

    message: str


class Ok(NamedTuple):
    """A command's result."""

    value: Any = None


class RemoteError(RuntimeError):
    """An unexpected error raised in the engine process: its type name and message."""

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name
        self.message = message


#: Exceptions a command raises that the front end raises again as themselves (a subclass as the
#: first base it has here); anything else arrives as :class:`RemoteError`.
_AS_THEMSELVES: tuple[type[Exception], ...] = (SpecError, RuntimeError, TypeError)


class Raised(NamedTuple):
    """A command raised: :meth:`of` on the engine's side, :meth:`exception` on the front end's."""

    type_name: str  # one of _AS_THEMSELVES' names, else the exception's own type's name
    message: str
    field: str = ""  # a SpecError's field

    @classmethod
    def of(cls, e: BaseException) -> Raised:
        if isinstance(e, SpecError):
            return cls(SpecError.__name__, e.message, e.field)
        base = next((b for b in _AS_THEMSELVES if isinstance(e, b)), type(e))
        return cls(base.__name__, str(e))

    def exception(self) -> Exception:
        if self.type_name == SpecError.__name__:
            return SpecError(self.field, self.message)
        base = next((b for b in _AS_THEMSELVES if b.__name__ == self.type_name), None)
        return base(self.message) if base is not None else RemoteError(self.type_name,
                                                                        self.message)


# == state (engine process -> front end, on the update pipe; acks come back on it) ==================
class RunSummary(NamedTuple):
    """A run's record, sent when it is new or its counts or end changed."""

    run_id: int
    spec: Any  # the RunSpec the first time, None after (the front end has it)
    first_task_id: int
    n_tasks: int
    start_ns: int
    end_ns: int | None
    counts: dict[str, int]
    #: What the run's model reported about it (``RunRecord.info``: when its workers were
    #: ready, a cluster's address and dashboard); None: unchanged since the last summary.
    info: dict[str, Any] | None = None


class CompareProgressed(NamedTuple):
    """A comparison in the engine process moved on (an ``engine.compare.CompareProgress``)."""

    progress: Any


class CompareDone(NamedTuple):
    """A comparison ended: its ``CompareResult`` (None if it failed) and, if it failed,
    ``(type name, message)``."""

    result: Any
    error: tuple[str, str] | None


class Update(NamedTuple):
    """One update: what changed since the previous one (see :mod:`engine.remote`)."""

    runs: list[RunSummary]
    tasks: list[tuple[Any, ...]]  # laid out by TASK_UPDATE_FIELDS (encode_tasks)
    samples: list[Any]
    events: int  # events the engine recorded meanwhile
    dropped: int  # events its ring dropped before the publisher read them
    duplicates: int  # the engine store's duplicate_terminals
    unknown: int  # the engine store's unknown_events
    compare: list[CompareProgressed | CompareDone]
    backlog: int  # changed records still waiting in the engine process


class Ack(NamedTuple):
    """The front end read ``n`` updates (one ack per pump, for all it read); with its own
    loop's worst lateness since the last ack."""

    lag_ms: float | None = None
    n: int = 1


# == task records ===================================================================================
#: Fields a run's registration fixes and nothing changes later: the front end makes them itself
#: from the run's summary (its id range, its start), so a 1M-task run does not ship 1M rows.
TASK_STATIC_FIELDS = ("run_id", "index", "queued_ns")
#: The fields a task record sends, in TaskRecord's order; ``task_id`` first (the key).
TASK_UPDATE_FIELDS: tuple[str, ...] = tuple(f for f in TASK_FIELDS if f not in TASK_STATIC_FIELDS)
assert TASK_UPDATE_FIELDS[0] == "task_id"


def _written_out(names: tuple[str, ...]) -> tuple[
        Callable[[Iterable[TaskRecord]], list[tuple[Any, ...]]],
        Callable[[dict[int, TaskRecord], Iterable[tuple[Any, ...]]], set[int]]]:
    """``encode_tasks`` and ``fold_tasks`` for ``names``, as straight-line code (what
    dataclasses and namedtuple do). On 4,000 records: folding by ``setattr`` in a loop over the
    names took 6.1 ms, the written-out assignment 0.55 ms; building each tuple with
    ``attrgetter`` took 2.1 ms, the written-out tuple 1.1 ms."""
    values = ", ".join(f"r.{n}" for n in names)
    targets = ", ".join("_" if n == "task_id" else f"r.{n}" for n in names)
    src = f"""
def encode_tasks(records):
    return [({values},) for r in records]

def fold_tasks(tasks, rows):
    changed = set()
    for t in rows:
        r = tasks.get(t[0])
        if r is not None:
            {targets}, = t
            changed.add(t[0])
    return changed
"""
    scope: dict[str, Any] = {}
    exec(compile(src, f"<{__name__}: task records>", "exec"), scope)  # our own field names
    return scope["encode_tasks"], scope["fold_tasks"]


#: ``encode_tasks(records)``: the tuples that cross the pipe, one per record.
#: ``fold_tasks(tasks, rows)``: write each row into ``tasks[row's task_id]`` (a task the front
#: end does not know is skipped); return the ids written. A task's State crosses as the enum
#: member itself: pickle memoizes it, so after its first use in an update it costs two bytes.
encode_tasks, fold_tasks = _written_out(TASK_UPDATE_FIELDS)


# == pickling ========================================================================================
def _by_fields(cls: type) -> dict[type, Callable[[Any], tuple[Any, ...]]]:
    """{cls: reduce cls to (cls, its fields' values)}: its constructor's arguments, when
    every field is one (else nothing: it pickles the usual way)."""
    fs = fields(cls)
    if any(not f.init for f in fs):  # pragma: no cover - not so today
        return {}
    get = attrgetter(*(f.name for f in fs))
    return {cls: lambda obj: (cls, get(obj))}


def readable(conn: Any) -> Callable[[], bool]:
    """A check "is a message waiting on ``conn``?" that never blocks: one poll(2) on a poll
    object made once. ``Connection.poll`` builds a selector for each call (26 µs; the window's
    pump and the publisher ask several times a frame). A poll object is single-threaded: one
    thread asks (the publisher under its lock, the window under its pump lock)."""
    if not hasattr(select, "poll"):  # pragma: no cover - no poll(2)
        return lambda: conn.poll(0)
    poller = select.poll()
    poller.register(conn.fileno(), select.POLLIN)
    return lambda: bool(poller.poll(0))


class UpdatePickler(pickle.Pickler):
    """What ``Connection.send`` pickles with (ForkingPickler's reducers), plus one shortcut:
    a Sample (and a WorkerSample) pickles as its constructor's arguments. A dataclass with
    slots otherwise goes through a Python ``__getstate__`` that lists its fields on every
    call: most of an idle update's cost. The front end unpickles it as before (``recv``)."""

    dispatch_table = {**copyreg.dispatch_table,
                      **getattr(ForkingPickler, "_extra_reducers", {}),
                      **_by_fields(Sample), **_by_fields(WorkerSample)}

    @classmethod
    def dumps(cls, obj: Any) -> memoryview:
        buf = io.BytesIO()
        cls(buf, pickle.HIGHEST_PROTOCOL).dump(obj)
        return buf.getbuffer()
