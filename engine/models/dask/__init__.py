"""``dask``: tasks on a Dask cluster (``distributed``), with live lanes, CPU and a real cancel.

By default the engine starts an embedded ``LocalCluster`` of K single-threaded worker processes
(K: the run's workers) and keeps it for the session's next runs; with the option
``scheduler="tcp://HOST:PORT"`` (``--scheduler``) it uses an existing cluster instead.

What TaskScope adds to Dask, and how (each in its module):

* a task shows as running when it **starts**, not when it finishes: the task reports its own
  events from the worker, batched, over a socket of the engine's own from workers on this
  machine, else over the worker event log (:mod:`~engine.models.dask.worker`,
  :mod:`~engine.models.dask.channel`);
* one lane per worker thread: the worker's address, pid and thread id; timestamps of workers on
  other machines are moved onto the engine's clock by a measured offset
  (:mod:`~engine.models.dask.cluster`);
* a running task **can be stopped**: cooperatively through its context's flag, or by force,
  killing its worker through the nanny (:mod:`~engine.models.dask.runner`); no hidden retries.

Cancel in one phrase (the UI shows :data:`CANCEL_NOTE`): a queued task is cancelled through
``Future.cancel``; a running one stops at its next check of its flag (Dask itself cannot stop
a running task); Kill restarts its worker, which ends only the tasks running on that worker.
"""

from __future__ import annotations

import importlib.util
import re
from typing import Any

from ...errors import SpecError
from ..protocol import ALWAYS, Availability, Launch, Resources, RunView, SpecView

CANCEL_NOTE = ("queued: Future.cancel; running: the task's flag, at its next check (Dask "
               "cannot stop a running task); Kill restarts the task's worker through its nanny")
INSTALL = "pip install 'taskscope[dask]'"

_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")


def available() -> Any:
    """An :class:`~engine.models.protocol.Availability`: ``distributed`` must be installed."""

    if importlib.util.find_spec("distributed") is None:
        return Availability(False, "needs Dask's distributed package, which is not installed",
                            INSTALL)
    return ALWAYS


def check_scheduler(value: Any, field: str) -> str:
    """``tcp://HOST:PORT`` (``HOST:PORT`` is taken as tcp), normalised; else a SpecError."""
    if not isinstance(value, str) or not value.strip():
        raise SpecError(field, f"expected tcp://HOST:PORT, got {value!r}")
    v = value.strip()
    scheme, sep, rest = v.partition("://")
    if not sep:
        scheme, rest = "tcp", v
    if scheme != "tcp":
        raise SpecError(field, f"expected tcp://HOST:PORT, got scheme {scheme!r} in {v!r}")
    if rest.startswith("["):  # [IPv6]:PORT
        host, close, port = rest[1:].partition("]")
        if not close or not port.startswith(":") or not host or not all(
                c in "0123456789abcdefABCDEF:." for c in host):
            raise SpecError(field, f"expected tcp://[IPv6]:PORT, got {v!r}")
        port = port[1:]
        shown = f"[{host}]"
    else:
        host, colon, port = rest.rpartition(":")
        if not colon:
            raise SpecError(field, f"expected tcp://HOST:PORT (no port in {v!r})")
        if not _HOST.match(host):
            raise SpecError(field, f"expected tcp://HOST:PORT, got host {host!r} in {v!r}")
        shown = host
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise SpecError(field, f"expected a port from 1 to 65535, got {port!r} in {v!r}")
    return f"tcp://{shown}:{int(port)}"


def reach(spec: SpecView) -> None:
    """An existing scheduler's port must answer: a SpecError naming ``options.scheduler`` at
    once for a refused port, within ``CONNECT_S`` for a silent host. Only a TCP connection
    (Dask's own connect happens in the run's background start, like a LocalCluster's
    start-up); it needs no Dask, so a window makes it first, off its GUI thread."""
    address = spec.options.get("scheduler")
    if address:
        from .cluster import reachable

        reachable(address)


def prepare(spec: SpecView, resources: Resources) -> None:
    """Before a run is admitted: :func:`reach` (nothing starts if the scheduler does not
    answer). The caller (the engine process's answer to a Start) waits for this."""
    reach(spec)


def dask_runner(run: RunView, launch: Launch) -> Any:
    """K single-threaded worker processes of an embedded LocalCluster, or the workers of the
    scheduler named by the run's ``scheduler`` option."""
    from .runner import DaskRunner

    return DaskRunner(run, launch, run.spec.options.get("scheduler"))
