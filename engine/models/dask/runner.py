"""The engine's side of a ``dask`` run: submitting tasks, cancelling them, ending them truthfully.

A :class:`DaskRunner` keeps a window of its run's tasks in Dask (``WINDOW_MIN``, or
``WINDOW_PER_THREAD`` per worker thread, so a worker always has its next task when one ends:
Dask's own scheduler places and queues them), the rest queued in the runner, where a cancel
ends them at once. Tasks go to Dask as ``client.map(run_task, orders, pure=False,
retries=0)``: no client-side retries, and on the embedded cluster no scheduler-side ones
either (``allowed_failures=0``).

How a task ends, and who says so:

* its own terminal event, from the worker (:mod:`~engine.models.dask.worker`), normally;
* **cancelled while queued in the runner**: the runner, at once;
* **cancelled while queued in Dask** (submitted, not started): ``Future.cancel``, then every
  worker is flagged; if none had started it, the runner reports it cancelled, and a worker
  that still gets to it skips it silently. If one had, it is running: see next;
* **cancelled while running**: its worker flags its context; it stops at its next check and
  reports ``cancelled`` itself. Dask cannot stop a running task (``Future.cancel`` only
  forgets it, dask/distributed#4694), so nothing else happens unless forced;
* **force** (Kill): the task's future is cancelled (so Dask does not run it again), then its
  worker is killed through its nanny, which starts a fresh one. The task ends ``cancelled``
  (forced); other tasks that were running on that worker (only with several threads per
  worker) fail, naming the kill; tasks Dask had queued for that worker go back to the queue;
* **timeout**: cooperative at the task's deadline; one that ignores it is killed like a force
  ``KILL_GRACE_S`` later and ends ``timed_out`` (forced);
* **its worker died** (a crash): the task fails, naming the worker. Tasks Dask had given that
  worker but that had not started are submitted again (not lost; each at most
  ``MAX_REQUEUES`` times). A task whose start had not reached the engine yet, but which a worker
  on this machine noted in its start log (it died before its next batch), had started: it
  fails with its start as noted; one whose ending the log holds ended so, when the log says.
  The runner hears of a lost worker once that worker's socket has closed (everything it sent
  read), so an ending still on its way is not taken for a death. A task that had started is
  never run again: on a cluster that
  retries by itself (``allowed_failures`` > 0, an existing cluster's own setting, which the
  engine does not change), the retry is cancelled and flagged, and reports nothing.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Iterable
from typing import Any

from ...clock import now_ns
from ...context import error_info
from ...events import TERMINAL_KINDS, Event, Kind
from ...samples import WorkerSample
from ..execute import TaskOrder
from ..protocol import Launch, RunView
from ..queue import TaskQueue
from . import worker as dask_worker
from .cluster import RESOURCE, Cluster, Clusters, close_clusters

#: A task past its deadline that ignores it is killed this much later.
KILL_GRACE_S = 0.5
#: A task whose worker keeps dying before it starts is failed after this many submissions.
MAX_REQUEUES = 3
#: A future that finished without its terminal event having arrived (its worker died just
#: after): the runner reports its ending itself after this long.
LOST_ENDING_S = 2.0
#: Tasks in Dask at once: at least this many, and this many per worker thread. Each refill
#: (a quarter window) is one ``client.map`` and one graph update on the scheduler, which has a
#: fixed cost: 1000 no-op tasks on 2 local workers, per-thread CPU in the same rounds, took
#: +160 us wall and +340 us of worker and +350 us of engine-process CPU a task over raw
#: ``client.map`` with a window of 64 (63 refills), +23 us, +160 us and +180 us with 1024.
WINDOW_MIN = 1024
WINDOW_PER_THREAD = 4
#: The watchdog's period (timeouts, lost endings).
TICK_S = 0.05


class DaskRunner(TaskQueue):
    """The ``dask`` model's runner (see the module docstring)."""

    def __init__(self, run: RunView, launch: Launch, scheduler: str | None) -> None:
        super().__init__(run)
        self.workers = launch.workers
        self.scheduler = scheduler
        self._clusters: Clusters = launch.resources.get(RESOURCE, Clusters, close_clusters)
        self.cluster: Cluster | None = None
        self._claimed = {}
        self._futures: dict[int, Any] = {}  # task id -> its Future, while Dask holds it
        self._orders: dict[int, TaskOrder] = {}
        self._keys: dict[str, int] = {}
        self._attempts: dict[int, int] = {}
        self._where: dict[int, str] = {}  # task id -> the worker it started on
        self._live: dict[int, str] = {}  # the same, for tasks that have not ended yet
        self._killing: dict[int, str] = {}  # task id -> "cancel" | "timeout"
        self._ended: set[int] = set()  # endings the runner reported itself
        self._timed: set[int] = set()  # past their deadline and grace: being killed
        self._finished: dict[int, tuple[int, Any]] = {}  # id -> (when, future): ending due
        self._requeue: deque[tuple[int, TaskOrder]] = deque()
        self._submit_lock = threading.RLock()
        self._window = 0
        self._closing = False
        self._ready = threading.Event()
        self._jobs: queue.SimpleQueue[tuple | None] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._wake = threading.Event()  # endings freed room in the window
        self._threads: list[threading.Thread] = []

    # -- starting ---------------------------------------------------------------------------
    def start(self) -> None:
        # Starting a LocalCluster takes 0.5 s to several seconds: not on the caller's thread.
        # The tasks show as queued meanwhile, which they are.
        rid = self.run.run_id
        for target, name in ((self._start_cluster, "start"), (self._job_loop, "cancel"),
                             (self._watchdog, "watchdog")):
            th = threading.Thread(target=target, name=f"run{rid}-dask-{name}", daemon=True)
            th.start()
            self._threads.append(th)

    def _start_cluster(self) -> None:
        try:
            with self._lock:
                if self._closing or self._next >= self.run.n:
                    return
            t0 = now_ns()
            try:
                cluster, fresh = self._clusters.acquire(self.scheduler, self.workers)
            except Exception as e:  # noqa: BLE001 - e.g. no processes can be started here
                self._end_all_queued(Kind.FAILED, error_info(e))
                return
            ready = now_ns()
            with self._lock:
                closing = self._closing
                if not closing:
                    self.cluster = cluster
            if closing:
                self._clusters.release(cluster)
                return
            cluster.listen(self.run.run_id, self)
            # Enough in Dask that a worker never waits for the engine's next hand-over (a
            # round trip through the client), few enough that a million-task run is not a
            # million futures: the rest wait in the runner, where a cancel is exact and free.
            self._window = max(WINDOW_MIN, WINDOW_PER_THREAD * cluster.nthreads())
            self.sink.run_info(self.run.run_id, {
                "workers_ready_ns": ready,
                # what this run waited for its cluster: 0 when an earlier run had started it
                "startup_s": (ready - t0) / 1e9,
                "cluster": {
                    "scheduler": cluster.address,
                    "started_by": "engine" if cluster.owned is not None else "existing",
                    "startup_s": cluster.startup_s if fresh else 0.0,
                    "dashboard": cluster.dashboard,
                    "allowed_failures": cluster.allowed_failures,
                    "workers": [w.as_dict() for w in cluster.workers.values()],
                },
            })
            self._submit_more()
        finally:
            self._ready.set()

    # -- submitting ---------------------------------------------------------------------------
    def _submit_more(self) -> None:
        with self._submit_lock:
            # Refill in batches of a quarter window: one message to the scheduler per batch,
            # not per task (the scheduler still holds three quarters, so no worker waits).
            with self._lock:
                free = self._window - len(self._futures)
                requeued = bool(self._requeue)
            if self._futures and free < self._window // 4 and not requeued:
                return
            items: list[tuple[int, TaskOrder]] = []
            while not self._closing and len(self._futures) + len(items) < self._window:
                with self._lock:
                    item = self._requeue.popleft() if self._requeue else None
                if item is None:
                    tid, order = self._take()
                    if tid < 0:
                        break
                    if order is None:
                        continue
                    item = (tid, order)
                items.append(item)
            if items:
                self._submit(items)

    def _submit(self, items: list[tuple[int, TaskOrder]]) -> None:
        """Hand these tasks to Dask in one ``client.map`` (one message to the scheduler)."""
        cluster = self.cluster
        assert cluster is not None
        futs: list[Any] = []
        refused: list[tuple[int, str]] = []
        with self._lock:
            go: list[tuple[int, TaskOrder]] = []
            for tid, order in items:
                reason = self._claimed.pop(tid, "") if self._claimed is not None else ""
                if reason or self._closing:
                    refused.append((tid, reason or "shutdown"))
                else:
                    go.append((tid, order))
            if go:
                keys = []
                for tid, order in go:
                    n = self._attempts[tid] = self._attempts.get(tid, 0) + 1
                    keys.append(f"taskscope-{order.run_id}-{tid}-{n}")
                futs = cluster.client.map(dask_worker.run_task, [o for _, o in go],
                                          topic=cluster.topic, channel=cluster.channel, key=keys,
                                          pure=False, retries=0)
                for (tid, order), fut in zip(go, futs, strict=True):
                    self._futures[tid] = fut
                    self._orders[tid] = order
                    self._keys[fut.key] = tid
        for tid, reason in refused:
            self._end(tid, Kind.CANCELLED, {"reason": reason})

    def _release(self, tids: list[int]) -> None:
        """These tasks' endings arrived: let go of their futures (on the client's loop
        thread). A future held keeps its task's result on a worker, and Dask runs a task again
        whose result a client still wants when that worker dies."""
        released = False
        with self._lock:
            for tid in tids:
                fut = self._futures.pop(tid, None)
                if fut is not None:
                    released = True
                    self._keys.pop(fut.key, None)
                    self._orders.pop(tid, None)
                if self._finished:
                    # Its future finished before its ending arrived (the worker ships its
                    # events a few ms after Dask's own message).
                    self._finished.pop(tid, None)
            # Wake the watchdog only when it would refill (see _submit_more): waking it for
            # every batch, to find three quarters of the window still in Dask, cost a thread
            # switch and the GIL each time, on the client's loop thread and the watchdog's.
            # Nor once every task was handed to Dask: a run that fits in the window (the
            # bench's 1000 no-op tasks) woke it for every batch after its first quarter
            # ended, about 500 times a run, to find nothing left to submit.
            refill = released and (self._requeue or (
                self._next < self.run.n
                and (not self._futures
                     or self._window - len(self._futures) >= self._window // 4)))
        if refill and not self._wake.is_set():
            self._wake.set()

    def _poll_futures(self) -> None:
        """Futures that ended without their task's ending (on the watchdog's thread, every
        ``TICK_S``): a worker died (``KilledWorker``), a cancel, an error outside the task, or
        an ending still on its way. Polled rather than given a done-callback each: Dask runs
        each callback through its loop and a thread pool, about 150 µs of the engine
        process's CPU per task, where the scheduler runs too (measured on 1000 no-op tasks)."""
        with self._lock:
            ended = [(tid, fut) for tid, fut in self._futures.items()
                     if fut.status != "pending"]
            for tid, fut in ended:
                del self._futures[tid]
                self._keys.pop(fut.key, None)
        for tid, fut in ended:
            with self._lock:
                order = self._orders.pop(tid, None)
            status = fut.status
            if status == "error":
                self._errored(tid, order, fut)
            elif status in ("finished", "lost"):
                rec = self.sink.task(tid)
                if rec is None or not rec.state.terminal:
                    with self._lock:
                        self._finished[tid] = (now_ns(), fut)

    def _errored(self, tid: int, order: TaskOrder | None, fut: Any) -> None:
        from distributed.scheduler import KilledWorker

        try:
            exc = fut.exception(timeout=5)
        except Exception as e:  # noqa: BLE001
            exc = e
        rec = self.sink.task(tid)
        if rec is None or rec.state.terminal or tid in self._killing:
            return
        if isinstance(exc, KilledWorker):
            if rec.start_ns is None and self.cluster is not None:
                # Its start never reached the engine; a worker here may have noted it anyway
                # (it died before its next batch): then it did run, and is not run again.
                start = self.cluster.logged(tid)[0]
                if start is not None:
                    pid, t_ns, thread_id = start
                    last = getattr(getattr(exc, "last_worker", None), "address", "") or ""
                    # Its start as the worker noted it (time, pid and thread), then its end.
                    self.sink.ingest([Event(self.run.run_id, tid, Kind.STARTED, t_ns, pid,
                                            thread_id, f"{last} (from its start log)")])
                    self._end(tid, Kind.FAILED, {
                        "type": "WorkerDied", "traceback": "", "pid": pid, "worker": last,
                        "message": f"Dask worker process {pid} ({last or 'gone'}) died while "
                                   "running this task, before its start reached the engine"})
                    return
            if rec.start_ns is None and order is not None:
                # Dask had given it to a worker that died before starting it: not lost.
                if self._attempts.get(tid, 0) <= MAX_REQUEUES:
                    with self._lock:
                        self._requeue.append((tid, order))
                    return
                self._end(tid, Kind.FAILED, {
                    "type": "WorkerDied", "traceback": "",
                    "message": f"{self._attempts[tid]} workers died before they could start "
                               f"this task"})
                return
            self._worker_died(tid, self._where.get(tid, ""))
            return
        self._end(tid, Kind.FAILED, error_info(exc if isinstance(exc, BaseException)
                                               else RuntimeError(str(exc))))

    # -- events from the cluster ------------------------------------------------------------
    def on_events(self, address: str, batch: list[Event]) -> None:
        """A batch from a worker (on the client's loop thread)."""
        where = self._where
        live = self._live
        ended = []
        for ev in batch:
            kind = ev.kind
            if kind == Kind.STARTED:
                if ev.task_id in where and where[ev.task_id] != address:
                    # Dask ran it again elsewhere (a cluster that retries): stop that one.
                    self._jobs.put(("stop_retry", [ev.task_id]))
                    continue
                where[ev.task_id] = live[ev.task_id] = address
            elif kind in TERMINAL_KINDS:
                live.pop(ev.task_id, None)
                ended.append(ev.task_id)
        self.sink.ingest(batch)
        if ended:
            self._release(ended)

    def on_worker_lost(self, address: str) -> None:
        """A worker left the cluster (on the client's loop thread)."""
        lost = [tid for tid, a in list(self._live.items()) if a == address]
        died = []
        for tid in lost:
            rec = self.sink.task(tid)
            if rec is None or rec.state.terminal or tid in self._killing:
                continue
            end = self.cluster.logged(tid)[1] if self.cluster is not None else None
            if end is not None:
                # It ended before its worker died; its ending went down with it, not in the
                # log: that ending, as the worker noted it.
                self._ended_log(tid, address, *end)
                continue
            died.append(tid)
            self._worker_died(tid, address)
        if died and self.cluster is not None and self.cluster.allowed_failures > 0:
            self._jobs.put(("stop_retry", died))

    def _ended_log(self, tid: int, address: str, pid: int, t_ns: int, kind: str) -> None:
        """A task's ending from its worker's start log (its event died with the worker)."""
        info: dict[str, Any] = {}
        if kind == Kind.FAILED:
            info = {"type": "Error", "traceback": "", "message":
                    f"it failed; its error's details were lost with its worker, Dask worker "
                    f"process {pid} ({address}), which died just after"}
        elif kind in (Kind.CANCELLED, Kind.TIMED_OUT):
            info = {"reason": f"{kind.replace('_', ' ')}; its worker, Dask worker process "
                              f"{pid} ({address}), died just after"}
        self._end(tid, kind, info or None, t_ns)

    def _worker_died(self, tid: int, address: str) -> None:
        w = self.cluster.worker(address) if self.cluster is not None else None
        rec = self.sink.task(tid)
        pid = rec.pid if rec is not None and rec.pid else (w.pid if w is not None else 0)
        self._end(tid, Kind.FAILED, {
            "type": "WorkerDied", "traceback": "", "pid": pid, "worker": address,
            "message": f"Dask worker process {pid} ({address}) died while running this task"})

    def _end(self, tid: int, kind: str, info: dict | None, t_ns: int | None = None) -> None:
        """Report a task's ending on its behalf (once, and never after its own), at ``t_ns``
        (default: now)."""
        with self._lock:
            if tid in self._ended:
                return
            rec = self.sink.task(tid)
            if rec is None or rec.state.terminal:
                return
            self._ended.add(tid)
        self._live.pop(tid, None)
        self.sink.ingest([Event(self.run.run_id, tid, kind, now_ns() if t_ns is None else t_ns,
                                info=info)])

    # -- cancelling -----------------------------------------------------------------------------
    def cancel(self, task_ids: Iterable[int], force: bool, reason: str) -> None:
        handed = self._cancel_queued(task_ids, reason)
        mine = []
        for tid in handed:
            rec = self.sink.task(tid)
            if rec is None or rec.state.terminal:
                continue
            with self._lock:
                if tid not in self._futures:
                    continue  # claimed, not submitted yet: _submit ends it
            if rec.start_ns is not None:
                self._request(tid, reason)
            mine.append(tid)
        if mine:
            self._jobs.put(("cancel", mine, force, reason))

    def _job_loop(self) -> None:
        """Cancels and kills, in order, off the caller's thread (each is a round trip or more
        to the cluster; a kill waits for the worker to die)."""
        while True:
            job = self._jobs.get()
            if job is None:
                return
            try:
                if job[0] == "cancel":
                    self._do_cancel(*job[1:])
                elif job[0] == "force":
                    self._force(*job[1:])
                elif job[0] == "stop_retry":
                    self._stop_retry(job[1])
            except Exception:  # noqa: BLE001 - the cluster went away: close() ends the rest
                if self._closing:
                    continue

    def _do_cancel(self, tids: list[int], force: bool, reason: str) -> None:
        cluster = self.cluster
        if cluster is None:
            return
        unseen = []
        with self._lock:
            for tid in tids:
                rec = self.sink.task(tid)
                if rec is not None and rec.start_ns is None and tid in self._futures:
                    unseen.append(tid)
            futs = [self._futures[t] for t in unseen]
        if futs:
            cluster.client.cancel(futs, reason=reason)  # queued in Dask: never runs now
        # Force kills without a word to the task first (it might stop on its own a moment
        # before the kill, and then its worker would not be the one that was killed).
        flag = unseen if force else tids
        started = cluster.set_flags(flag, reason) if flag else set()
        for tid in unseen:
            if tid in started:
                self._request(tid, reason)  # it had started after all
            else:
                self._end(tid, Kind.CANCELLED, {"reason": reason})
        if force:
            for tid in tids:
                if tid in started or tid not in unseen:
                    self._force(tid, "cancel", reason)

    def _force(self, tid: int, why: str, reason: str) -> None:
        """Kill the worker running ``tid`` (through its nanny) and end the task."""
        cluster = self.cluster
        rec = self.sink.task(tid)
        if cluster is None or rec is None or rec.state.terminal or tid in self._killing:
            return
        addr = self._where.get(tid)
        if addr is None:  # its 'started' is still on its way
            end = now_ns() + 1_000_000_000
            while addr is None and now_ns() < end and not rec.state.terminal:
                threading.Event().wait(0.005)
                addr = self._where.get(tid)
            if addr is None:
                return
        self._killing[tid] = why
        with self._lock:
            fut = self._futures.get(tid)
        if fut is not None:
            cluster.client.cancel([fut], reason=reason)  # so Dask does not run it again
        w = cluster.worker(addr)
        pid = rec.pid or (w.pid if w is not None else 0)
        cluster.kill_worker(addr)
        if why == "timeout":
            t = self.run.spec.timeout_s
            self._end(tid, Kind.TIMED_OUT, {
                "reason": f"timeout {t}s; worker killed after {KILL_GRACE_S}s grace",
                "forced": True, "pid": pid, "worker": addr})
        else:
            self._end(tid, Kind.CANCELLED, {"reason": reason or "force cancel", "forced": True,
                                            "pid": pid, "worker": addr})
        for other, a in list(self._live.items()):
            if a == addr and other != tid and other not in self._killing:
                self._end(other, Kind.FAILED, {
                    "type": "WorkerDied", "traceback": "", "pid": pid, "worker": addr,
                    "message": f"its Dask worker {addr} was killed to force-cancel task "
                               f"{rec.index}"})

    def _stop_retry(self, tids: list[int]) -> None:
        """Tasks the engine ended whose futures Dask may run again: cancel and flag them."""
        cluster = self.cluster
        if cluster is None:
            return
        with self._lock:
            futs = [self._futures[t] for t in tids if t in self._futures]
        if futs:
            cluster.client.cancel(futs, reason="its worker died; no retry")
        cluster.set_flags(tids, "its worker died; no retry")

    # -- the watchdog -------------------------------------------------------------------------
    def _watchdog(self) -> None:
        timeout = self.run.spec.timeout_s
        grace = int(KILL_GRACE_S * 1e9)
        lost = int(LOST_ENDING_S * 1e9)
        wake = self._wake
        tick = 0
        while not self._stop.is_set():
            wake.wait(TICK_S)
            wake.clear()
            if self._stop.is_set():
                return
            t = now_ns()
            if self.cluster is not None:
                self._submit_more()
            if t < tick:
                continue
            tick = t + int(TICK_S * 1e9)
            self._poll_futures()
            if self.cluster is not None:
                self._submit_more()
            if timeout is not None:
                limit = int(timeout * 1e9) + grace
                for tid in list(self._live):
                    rec = self.sink.task(tid)
                    if (rec is not None and not rec.state.terminal and rec.start_ns is not None
                            and t - rec.start_ns > limit and tid not in self._timed):
                        self._timed.add(tid)
                        self._jobs.put(("force", tid, "timeout", "timeout"))
            with self._lock:
                due = [(tid, fut) for tid, (at, fut) in self._finished.items() if t - at > lost]
                for tid, _ in due:
                    del self._finished[tid]
            for tid, fut in due:
                self._lost_ending(tid, fut)

    def _lost_ending(self, tid: int, fut: Any) -> None:
        rec = self.sink.task(tid)
        if rec is None or rec.state.terminal:
            return
        try:
            kind = fut.result(timeout=2)
        except Exception:  # noqa: BLE001
            kind = ""
        note = "its worker's own report of the ending was lost; the result says it"
        if kind in (Kind.FINISHED, Kind.FAILED, Kind.CANCELLED, Kind.TIMED_OUT):
            self._end(tid, kind, {"reason": note} if kind != Kind.FAILED else
                      {"type": "Unknown", "message": note, "traceback": ""})
        else:
            self._end(tid, Kind.CANCELLED, {"reason": "cancelled before it started"})

    # -- the rest of the Runner protocol ----------------------------------------------------------
    def close(self, timeout: float) -> None:
        with self._lock:
            self._closing = True
        self._ready.wait(min(timeout, 2.0))
        cluster = self.cluster
        end = now_ns() + int(timeout * 1e9)
        if cluster is not None:
            # Running tasks had their cancel (the session cancels a run before closing it);
            # give them the time left to stop, then kill the workers of those that did not.
            while now_ns() < end and self._running_ids():
                threading.Event().wait(0.01)
            stuck = self._running_ids()
            killers = [threading.Thread(target=self._force, args=(tid, "cancel", "shutdown"),
                                        daemon=True) for tid in stuck]
            for th in killers:
                th.start()
            for th in killers:
                th.join(max(1.0, timeout))
            with self._lock:
                futs = list(self._futures.values())
                left = list(self._futures)
            if futs:
                try:
                    cluster.client.cancel(futs, reason="shutdown")
                except Exception:  # noqa: BLE001 - the client is closing
                    pass
            for tid in left:
                rec = self.sink.task(tid)
                if rec is not None and not rec.state.terminal and rec.start_ns is None:
                    self._end(tid, Kind.CANCELLED, {"reason": "shutdown"})
            with self._lock:
                # Let go of every future of the run: a future held keeps its task's result on
                # a worker, and Dask would run that task again if the worker died.
                self._futures.clear()
                self._finished.clear()
                self._keys.clear()
                self._orders.clear()
            try:
                cluster.forget_run(self.run.run_id, self.run.first_task_id, self.run.n)
            except Exception:  # noqa: BLE001 - the cluster is closing
                pass
            cluster.unlisten(self.run.run_id)
            self._clusters.release(cluster)
        self._stop.set()
        self._wake.set()
        self._jobs.put(None)
        # Claimed but never submitted (cancelled while the cluster started): end them here.
        with self._lock:
            left_claimed = dict(self._claimed or {})
            if self._claimed:
                self._claimed.clear()
        for tid, reason in left_claimed.items():
            self._end(tid, Kind.CANCELLED, {"reason": reason or "shutdown"})

    def _running_ids(self) -> list[int]:
        out = []
        for tid in list(self._live):
            rec = self.sink.task(tid)
            if rec is not None and not rec.state.terminal:
                out.append(tid)
        return out

    def worker_pids(self) -> list[int]:
        c = self.cluster
        return c.local_pids() if c is not None else []

    def remote_workers(self) -> dict[str, WorkerSample]:
        c = self.cluster
        return c.remote_samples() if c is not None else {}
