"""The Dask clusters a session's ``dask`` runs use: one the engine started, or an existing one.

A :class:`Clusters` is a session-wide resource (``Session.get``): an embedded ``LocalCluster``
started for the first run that needs it is kept for the next ones and closed when the session
shuts down; a scheduler given by address is connected to once. Each :class:`Cluster` holds the
engine's one ``Client`` to it and:

* receives the tasks' event batches (from workers on this machine over its own socket,
  :mod:`~engine.models.dask.channel`; from the others over one topic per cluster,
  ``Client.subscribe_topic``) and the
  scheduler's own events (topic ``"all"``: workers joining and leaving), and hands them to the
  run they belong to;
* knows every worker: its address, pid, nanny, and whether it runs on this machine. A worker
  that shares this machine's boot id shares its ``CLOCK_MONOTONIC``, so its timestamps need no
  correction; one whose pid this engine can read (same pid, same process start time) has its
  CPU and memory read with psutil like any worker process. For the others the clock offset is
  measured (:func:`measure_offset`) and CPU and memory come from the scheduler's figures of
  the worker's own system monitor (:meth:`Cluster.remote_samples`);
* flags tasks for cancellation on every worker (:meth:`Cluster.set_flags`) and kills one
  worker through its nanny, which starts a fresh one (:meth:`Cluster.kill_worker`).

The embedded cluster: ``LocalCluster(n_workers=K, threads_per_worker=1, processes=True)``, its
scheduler in the engine process, ``allowed_failures=0`` (Dask would otherwise run a task whose
worker died up to 3 more times: a hidden retry), workers spawned by Dask's default
``multiprocessing`` method (spawn: fresh interpreters that import no Qt; the engine process is
Qt-free anyway).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ...clock import now_ns
from ...errors import SpecError
from ...events import Event
from ...samples import WorkerSample
from . import worker as dask_worker
from .channel import EventServer

#: Seconds to reach a scheduler: once for a plain TCP connection (before the run is admitted:
#: an unreachable scheduler is refused within this, the issue allows 5 s), once more for
#: Dask's own handshake (in the run's start; a port that is no Dask scheduler fails its tasks).
CONNECT_S = 2.0
#: A force-killed worker gets this long to stop on its own before its nanny SIGKILLs it
#: (the nanny waits 80% of it).
KILL_S = 0.1
#: How often the scheduler's figures for remote workers are read (its workers report them on
#: their heartbeat, about once a second on a small cluster).
METRICS_S = 1.0
#: Round trips per offset measurement of a remote worker's clock (the fastest one counts).
OFFSET_TRIPS = 7


class Listener(Protocol):
    """What a cluster tells a run (a :class:`~engine.models.dask.runner.DaskRunner`)."""

    def on_events(self, address: str, batch: list[Event]) -> None: ...

    def on_worker_lost(self, address: str) -> None: ...


@dataclass
class WorkerInfo:
    """One Dask worker as the engine sees it."""

    address: str
    pid: int
    host: str
    nanny: str | None
    nthreads: int
    #: Same machine and pid namespace: psutil reads its CPU and memory here.
    local: bool
    #: Add to the worker's ``monotonic_ns`` to get the engine's (0 on the same machine).
    offset_ns: int = 0
    #: How far off the offset may be: half the fastest round trip (0 on the same machine).
    offset_err_ns: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"address": self.address, "pid": self.pid, "host": self.host,
                "nthreads": self.nthreads, "local": self.local, "offset_ns": self.offset_ns,
                "offset_err_ns": self.offset_err_ns}


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return ""


def _is_local(pid: int, created: float) -> bool:
    import psutil

    try:
        return abs(psutil.Process(pid).create_time() - created) < 0.05
    except (psutil.Error, OSError, ValueError):
        return False


def measure_offset(client: Any, address: str, trips: int = OFFSET_TRIPS) -> tuple[int, int]:
    """``(offset_ns, err_ns)`` of a worker's monotonic clock against this process's, from
    ``trips`` round trips through ``Client.run``: for each, the worker's reading is taken to
    be the midpoint of the engine's send and receive times; the trip with the shortest round
    trip wins (as NTP does), and half of it bounds the error."""
    best: tuple[int, int] | None = None
    for _ in range(trips):
        t0 = now_ns()
        w = client.run(dask_worker.clock, workers=[address])[address]
        t1 = now_ns()
        rtt = t1 - t0
        if best is None or rtt < best[1]:
            best = ((t0 + t1) // 2 - w, rtt)
    assert best is not None
    return best[0], best[1] // 2


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


class Cluster:
    """One Dask cluster and the engine's client to it (see the module docstring)."""

    def __init__(self, client: Any, owned: Any = None, startup_s: float = 0.0) -> None:
        self.client = client
        #: The LocalCluster the engine started, or None for an existing cluster.
        self.owned = owned
        self.address: str = client.scheduler.address
        #: Seconds it took to start this cluster (0 for one that already existed).
        self.startup_s = startup_s
        self.topic = f"taskscope-{uuid.uuid4().hex[:12]}"
        self._lock = threading.Lock()
        self._routes: dict[int, Listener] = {}
        self.workers: dict[str, WorkerInfo] = {}
        self._boot = _boot_id()
        self._remote: dict[str, WorkerSample] = {}
        self._closed = threading.Event()
        self._wake = threading.Event()
        port, self.allowed_failures = client.run_on_scheduler(_scheduler_facts)
        #: The cluster's own dashboard, or None when it serves none (its scheduler has no
        #: bokeh: the page there would only say so).
        self.dashboard: str | None = None
        if port:
            host = self.address.split("://", 1)[-1].rsplit(":", 1)[0]
            self.dashboard = f"http://{host}:{port}/status"
        self._identify()
        client.subscribe_topic(self.topic, self._on_batch)
        self._server = EventServer(client, self._on_packed)
        #: Where workers on this machine send their batches (None: the event log only).
        self.channel: str | None = self._server.open()
        client.subscribe_topic("all", self._on_cluster_event)
        self._monitor = threading.Thread(target=self._monitor_loop, daemon=True,
                                         name="taskscope-dask-monitor")
        self._monitor.start()

    # -- workers ------------------------------------------------------------------------------
    def _identify(self, only: list[str] | None = None) -> None:
        """Learn who the (new) workers are; measure remote workers' clock offsets."""
        client = self.client
        sched = client.scheduler_info()["workers"]
        addrs = [a for a in sched if only is None or a in only]
        if not addrs:
            return
        ids = client.run(dask_worker.identify, workers=addrs, on_error="return")
        for addr, who in ids.items():
            if not isinstance(who, dict) or addr not in sched:
                continue
            w = sched[addr]
            same_clock = bool(self._boot) and who["boot_id"] == self._boot
            info = WorkerInfo(addr, who["pid"], who["host"], w.get("nanny"),
                              int(w.get("nthreads", 1)), same_clock and _is_local(who["pid"], who["created"]))
            if not same_clock:
                try:
                    info.offset_ns, info.offset_err_ns = measure_offset(client, addr)
                except Exception:  # noqa: BLE001 - it left meanwhile
                    continue
            with self._lock:
                self.workers[addr] = info

    def _monitor_loop(self) -> None:
        """Identify workers that joined; read the remote workers' figures once a second."""
        while not self._closed.is_set():
            with self._lock:
                remote = any(not w.local for w in self.workers.values())
            woke = self._wake.wait(METRICS_S if remote else None)
            if self._closed.is_set():
                return
            self._wake.clear()
            try:
                if woke:
                    with self._lock:
                        known = set(self.workers)
                    sched = self.client.scheduler_info()["workers"]
                    new = [a for a in sched if a not in known]
                    if new:
                        self._identify(new)
                if remote:
                    self._read_remote()
            except Exception:  # noqa: BLE001 - the cluster is going away; keep what we had
                if self._closed.is_set():
                    return

    def _read_remote(self) -> None:
        sched = self.client.scheduler_info()["workers"]
        out: dict[str, WorkerSample] = {}
        with self._lock:
            remote = {a: w for a, w in self.workers.items() if not w.local}
        for addr, w in remote.items():
            m = (sched.get(addr) or {}).get("metrics") or {}
            if "cpu" in m:
                out[addr] = WorkerSample(w.pid, float(m["cpu"]), int(m.get("memory", 0)), -1)
        self._remote = out

    def remote_samples(self) -> dict[str, WorkerSample]:
        """The latest figures of the workers on other machines (address -> sample: CPU as a
        percentage of one core and resident memory, from the worker's own system monitor,
        as the scheduler last heard them)."""
        return dict(self._remote)

    def local_pids(self) -> list[int]:
        with self._lock:
            return [w.pid for w in self.workers.values() if w.local]

    def nthreads(self) -> int:
        with self._lock:
            n = sum(w.nthreads for w in self.workers.values())
        if n:
            return n
        return sum(int(w.get("nthreads", 1)) for w in self.client.scheduler_info()["workers"].values())

    def logged(self, task_id: int) -> tuple[tuple[int, int, int] | None,
                                            tuple[int, int, str] | None]:
        """The start, ``(pid, t_ns, thread id)``, and ending, ``(pid, t_ns, kind)``, that a
        worker on this machine noted of ``task_id`` in its start log (None: none did, or not
        a local worker)."""
        return self._server.logged(task_id)

    def worker(self, address: str) -> WorkerInfo | None:
        with self._lock:
            return self.workers.get(address)

    # -- events from the cluster -----------------------------------------------------------------
    def listen(self, run_id: int, listener: Listener) -> None:
        with self._lock:
            self._routes[run_id] = listener

    def unlisten(self, run_id: int) -> None:
        with self._lock:
            self._routes.pop(run_id, None)

    def _on_batch(self, event: tuple[float, Any]) -> None:
        """A batch from a worker over the event log (on the client's loop thread)."""
        self._on_packed(event[1])

    def _on_packed(self, data: bytes) -> str:
        """A batch from a worker, over the event log or the engine's own socket (on the
        client's loop thread either way: keep it short); the worker's address."""
        addr, events = dask_worker.unpack(data)
        w = self.workers.get(addr)
        off = w.offset_ns if w is not None else 0
        by_run: dict[int, list[Event]] = {}
        for e in events:
            ev = Event(*e)
            if off:
                ev = ev._replace(t_ns=ev.t_ns + off)
            by_run.setdefault(ev.run_id, []).append(ev)
        for run_id, batch in by_run.items():
            route = self._routes.get(run_id)
            if route is not None:
                route.on_events(addr, batch)
        return addr

    def _on_cluster_event(self, event: tuple[float, Any]) -> None:
        msg = event[1]
        if not isinstance(msg, dict):
            return
        action = msg.get("action")
        if action == "remove-worker":
            addr = msg.get("worker")
            with self._lock:
                self.workers.pop(addr, None)
                self._remote.pop(addr, None)
                routes = list(self._routes.values())

            def lost() -> None:
                for route in routes:
                    route.on_worker_lost(addr)

            # Once its last batch on the engine's socket is read (see after_drained).
            self._server.after_drained(addr, lost)
        elif action == "add-worker":
            self._wake.set()

    # -- acting on workers -----------------------------------------------------------------------
    def set_flags(self, task_ids: list[int], reason: str) -> set[int]:
        """Flag these tasks on every worker; return the ids some worker had started."""
        res = self.client.run(dask_worker.set_flags, task_ids, reason, on_error="return")
        started: set[int] = set()
        for v in res.values():
            if isinstance(v, list):
                started.update(v)
        return started

    def forget_run(self, run_id: int, first: int, n: int) -> None:
        self.client.run(dask_worker.forget_run, run_id, first, n, on_error="ignore")

    def kill_worker(self, address: str) -> bool:
        """Kill one worker through its nanny, which starts a fresh one. Returns when the
        process is gone (about ``KILL_S`` later, more on a loaded machine). A worker with no
        nanny is removed from the cluster instead (nothing restarts it)."""
        w = self.worker(address)
        nanny = w.nanny if w is not None else None
        if nanny is None:
            info = self.client.scheduler_info()["workers"].get(address) or {}
            nanny = info.get("nanny")
        if nanny is None:
            self.client.restart_workers([address], raise_for_error=False)
            return True
        from distributed.core import rpc

        async def kill() -> None:
            async with rpc(nanny) as r:
                await r.kill(timeout=KILL_S, reason="taskscope force cancel")

        try:
            self.client.sync(kill)
        except Exception:  # noqa: BLE001 - the worker or its nanny went away meanwhile
            return False
        return True

    # -- closing -------------------------------------------------------------------------------
    def close(self, timeout: float = 2.0) -> None:
        self._closed.set()
        self._wake.set()
        client = self.client
        for topic in (self.topic, "all"):
            try:
                client.unsubscribe_topic(topic)
            except Exception:  # noqa: BLE001
                pass
        self._server.close()
        try:
            client.close(timeout=max(0.1, timeout / 2))
        except Exception:  # noqa: BLE001 - already gone
            pass
        if self.owned is not None:
            try:
                self.owned.sync(_stop_workers, self.owned, KILL_S * 2)
                self.owned.close(timeout=max(0.5, timeout))
            except Exception:  # noqa: BLE001
                pass


def _scheduler_facts(dask_scheduler: Any) -> tuple[int | None, int]:
    """On the scheduler: its dashboard's port (None without one: Dask serves its dashboard
    only where bokeh is installed) and its ``allowed_failures``."""
    import sys

    port = None
    if "distributed.dashboard.scheduler" in sys.modules and dask_scheduler.http_server:
        port = dask_scheduler.http_server.port
    return port, int(dask_scheduler.allowed_failures)


async def _stop_workers(cluster: Any, timeout: float) -> None:
    """Close an embedded cluster's nannies at once, each giving its worker ``timeout`` to
    stop before it is killed: nothing on them needs saving (a graceful close took about
    1 s here)."""
    import asyncio

    await asyncio.gather(*(w.close(timeout=timeout) for w in list(cluster.workers.values())),
                         return_exceptions=True)


def local_cluster(workers: int) -> Any:
    """A LocalCluster as the engine starts one: ``workers`` single-threaded worker processes
    with nannies, its scheduler in this process, no scheduler-side retries."""
    import dask
    from distributed import LocalCluster

    # A LocalCluster drops a worker's nanny for good when no worker of that name is back
    # ``lost-worker-timeout`` (15 s) after one left: a worker that crashes or is killed again
    # just then, while its nanny restarts it, would leave the cluster one worker short.
    # Here nannies restart their workers, always: never give one up.
    dask.config.set({"distributed.deploy.lost-worker-timeout": "365 days"})
    # dashboard on a free port (Dask's default 8787 may be taken: another cluster, say);
    # logs silenced: the engine reports what happens to every task itself.
    return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                        host="127.0.0.1", dashboard_address=":0",
                        scheduler_kwargs={"allowed_failures": 0},
                        silence_logs=logging.CRITICAL + 1)


def start_local(workers: int) -> Cluster:
    """Start an embedded LocalCluster (:func:`local_cluster`) and connect to it."""
    from distributed import Client

    t0 = time.perf_counter()
    cluster = local_cluster(workers)
    try:
        client = Client(cluster, set_as_default=False)
        client.wait_for_workers(workers, timeout=60)
        c = Cluster(client, cluster)
        c.startup_s = time.perf_counter() - t0
        return c
    except BaseException:
        cluster.close(timeout=2)
        raise


def reachable(address: str, field: str = "options.scheduler") -> None:
    """A plain TCP connection to the scheduler's port first: a refused one fails at once and
    a silent host within ``CONNECT_S`` (Dask's own connect retries a refused port until its
    timeout), before anything of Dask is even imported."""
    import socket

    rest = address.split("://", 1)[-1]
    host, _, port = rest.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_S).close()
    except OSError as e:
        why = e.strerror or _one_line(e)
        raise SpecError(field, f"cannot reach the Dask scheduler at {address}: {why}") from None


def connect(address: str, field: str = "options.scheduler") -> Cluster:
    """Connect to an existing scheduler; a :class:`SpecError` naming ``field`` within about
    ``CONNECT_S`` (twice that at worst) if it cannot be reached."""
    reachable(address, field)
    from distributed import Client

    # Client(timeout=) bounds the TCP connect, not Dask's handshake: against a port that
    # accepts and never answers (no Dask scheduler there) it waited for ever. So it runs in a
    # thread given CONNECT_S; one that gives up late closes what it made.
    box: dict[str, Any] = {}
    gave_up = threading.Event()

    def make() -> None:
        try:
            c = Client(address, timeout=CONNECT_S, set_as_default=False)
        except Exception as e:  # noqa: BLE001 - OSError, TimeoutError, a refused handshake...
            box["error"] = e
            return
        if gave_up.is_set():
            c.close(timeout=1)
        else:
            box["client"] = c

    th = threading.Thread(target=make, name="taskscope-dask-connect", daemon=True)
    th.start()
    th.join(2 * CONNECT_S)
    if th.is_alive():
        gave_up.set()
        th.join(0.1)
    client = box.get("client")
    if client is None:
        e = box.get("error")
        why = f" ({_one_line(e)})" if e is not None else ": no Dask scheduler answered there"
        raise SpecError(field, f"cannot reach the Dask scheduler at {address} within "
                        f"{2 * CONNECT_S:g} s{why}")
    try:
        return Cluster(client)
    except BaseException:
        client.close(timeout=1)
        raise


class Clusters:
    """The session's Dask clusters: at most one embedded LocalCluster (another worker count
    replaces an idle one), and one connection per scheduler address. A session resource."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._local: dict[int, Cluster] = {}
        self._remote: dict[str, Cluster] = {}
        self._users: dict[int, int] = {}  # id(cluster) -> runs using it
        self._starting: dict[str, threading.Lock] = {}
        self._closed = False

    def acquire(self, scheduler: str | None, workers: int) -> tuple[Cluster, bool]:
        """The cluster for a run, and whether it was started (or connected) just now."""
        key = scheduler or f"local:{workers}"
        with self._lock:
            gate = self._starting.setdefault(key, threading.Lock())
        with gate:
            with self._lock:
                if self._closed:
                    raise RuntimeError("the session is shutting down")
                c = self._remote.get(scheduler) if scheduler else self._local.get(workers)
                if c is not None:
                    self._users[id(c)] = self._users.get(id(c), 0) + 1
                    return c, False
                idle = [] if scheduler else [
                    (k, old) for k, old in self._local.items() if not self._users.get(id(old))]
                for k, _old in idle:
                    del self._local[k]
            for _k, old in idle:
                old.close()
            c = connect(scheduler) if scheduler else start_local(workers)
            with self._lock:
                if self._closed:
                    closing = True
                else:
                    closing = False
                    if scheduler:
                        self._remote[scheduler] = c
                    else:
                        self._local[workers] = c
                    self._users[id(c)] = 1
            if closing:
                c.close()
                raise RuntimeError("the session is shutting down")
            return c, True

    def release(self, cluster: Cluster) -> None:
        with self._lock:
            n = self._users.get(id(cluster), 0)
            self._users[id(cluster)] = max(0, n - 1)

    def all(self) -> list[Cluster]:
        with self._lock:
            return [*self._local.values(), *self._remote.values()]

    def close(self, timeout: float = 2.0) -> None:
        with self._lock:
            self._closed = True
            held = [*self._local.values(), *self._remote.values()]
            self._local.clear()
            self._remote.clear()
        threads = [threading.Thread(target=c.close, args=(timeout,), daemon=True,
                                    name="taskscope-dask-close") for c in held]
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout + 1.0)


#: The session resource key and how to make and close it.
RESOURCE = "dask.clusters"
make_clusters: Callable[[], Clusters] = Clusters


def close_clusters(c: Clusters) -> None:
    c.close()
