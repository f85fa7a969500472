"""What a runner is: the methods the session calls, and what a runner may use of its run.

Every concurrency model is one :class:`Runner`. The session calls exactly the six methods
below, each with one signature, and nothing else. A runner reports through its run's
:class:`RunSink` (put an event, flush, ingest a batch, look up a task): it never reaches into the
session. Like trio's ``Instrument``, the hooks are documented here, once, for every model.

What cancelling means differs by model, and each runner's docstring says it plainly. The
shared rules:

* a task that has not started ends ``cancelled`` at once, with no worker involved;
* a running task gets a ``cancel_requested`` event now, and its terminal event only when it
  really stops: a thread stops at its next check of its context, because a thread cannot be
  killed; a process task can also be force-cancelled, which kills its worker;
* nothing is ever reported as stopped that has not stopped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from ..events import Event
from ..samples import WorkerSample

if TYPE_CHECKING:
    from ..store import TaskRecord
    from .execute import TaskOrder

T = TypeVar("T")


@dataclass(frozen=True)
class Availability:
    """Whether this interpreter has a model; if not, why, and what to do about it."""

    ok: bool
    reason: str = ""
    fix: str = ""


ALWAYS = Availability(True)


class SpecView(Protocol):
    """The fields of a run's spec that runners read (:class:`engine.spec.RunSpec` has them;
    the spec module sits above this one, so runners are typed against this view)."""

    @property
    def model(self) -> str: ...
    @property
    def workload(self) -> str: ...
    @property
    def tasks(self) -> int: ...
    @property
    def size_s(self) -> float: ...
    @property
    def timeout_s(self) -> float | None: ...
    @property
    def params(self) -> Mapping[str, Any]: ...
    @property
    def options(self) -> Mapping[str, Any]: ...


class RunSink(Protocol):
    """Where a runner reports. The only part of the session a runner may use."""

    def put(self, ev: Event) -> None:
        """An event from a worker thread in this process: batched, stored within a few ms."""

    def flush(self) -> None:
        """Store what was put so far now, on the calling thread, not at the batcher's next
        turn (a few ms away): a runner calls it when its run's last task has ended, so that
        the caller holds the last result as soon as an executor's caller would."""

    def ingest(self, batch: list[Event]) -> None:
        """Events to store now: a worker process's batch, or events a runner ends tasks with
        itself (a queued task cancelled, a task whose worker died)."""

    def task(self, task_id: int) -> TaskRecord | None:
        """The task's latest record (None if the store has none)."""

    def run_info(self, run_id: int, info: Mapping[str, Any]) -> None:
        """Facts about the run as a whole, merged into its record's ``info`` (JSON-able):
        e.g. ``workers_ready_ns`` and ``startup_s`` when its workers became ready, a
        cluster's address and dashboard."""


class RunView(Protocol):
    """What a runner sees of its run."""

    run_id: int
    #: How many tasks the run has; their ids are ``first_task_id .. first_task_id + n - 1``.
    n: int
    first_task_id: int
    spec: SpecView
    sink: RunSink

    @property
    def task_ids(self) -> range: ...

    def order(self, index: int) -> TaskOrder:
        """Everything a worker needs to run task ``index`` (picklable)."""

    def deadline_ns(self) -> int | None:
        """A deadline for a task starting now (its timeout from now), or None."""


class Resources(Protocol):
    """Things a model keeps for the whole session rather than one run (a cluster, say): made
    on first use, closed when the session shuts down."""

    def get(self, key: str, make: Callable[[], T], close: Callable[[T], None]) -> T: ...


@dataclass(frozen=True)
class Launch:
    """What a runner factory gets besides its run."""

    #: The worker count to use (the spec's, or the model's default).
    workers: int
    #: The loop coroutines run on: the engine's own loop thread (started on first call), or
    #: the caller's loop for a model whose registry entry allows it.
    loop: Callable[[], asyncio.AbstractEventLoop]
    resources: Resources


@runtime_checkable
class Runner(Protocol):
    """The methods the session calls on a model's runner, each with one signature."""

    def start(self) -> None:
        """Begin running the tasks. Return quickly: starting workers happens elsewhere (a
        thread of the runner's own), and tasks show as queued meanwhile, which they are."""

    def cancel(self, task_ids: Iterable[int], force: bool, reason: str) -> None:
        """Ask these tasks to stop (see the module docstring). ``force`` is True only for
        models whose registry entry says ``can_force``."""

    def cancel_all(self, reason: str, force: bool) -> None:
        """Ask every task of the run to stop, and hand out no more."""

    def close(self, timeout: float) -> None:
        """Release the workers. Called once, after the run ended or when the session closes;
        returns within about ``timeout``."""

    def worker_pids(self) -> list[int]:
        """The worker processes this runner started and that are alive (for the sampler)."""

    def remote_workers(self) -> dict[str, WorkerSample]:
        """Workers on other machines (the sampler cannot read them): address -> their own
        latest CPU and memory figures. Empty for every model whose workers are local."""


#: Makes a model's runner for one run.
RunnerFactory = Callable[[RunView, Launch], Runner]
