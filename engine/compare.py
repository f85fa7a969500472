"""Compare mode: one workload under several models, one model at a time, and what it means.

Models run **one after another, never at once**, so that they do not disturb each other's
measurements. Before each model the machine settles for ``settle_s`` (the previous model's
workers have already exited: compare waits for each run to release them); the CPU use measured
during that pause is reported as ``baseline_cores``, so a reader can see how busy the machine was
with other work. Each model's run keeps its own ``run_id`` in ``session.store`` (its events and
task records are there), and its start and end on the engine clock, so a front end can draw one
timeline band per model on one aligned time scale (offsets from :attr:`CompareResult.t0_ns`).

Figures per model (:class:`ModelResult`), and how each is defined:

``wall_s``
    First task queued to last task ended (the store's run wall time).
``speedup`` / ``speedup_basis``
    ``baseline wall / this wall``. The baseline is ``sequential`` when it is in the set and
    completed; otherwise the *slowest* completed run (``speedup_basis`` says which, e.g.
    ``"slowest (threads)"``), so the figures still rank the models. None for a run that did
    not complete, or when no run completed.
``busy_cores``
    Machine-wide average busy cores over the model's window (sum over cores of the busy share;
    busy = everything but idle and iowait). From the sampler's per-core samples when the session
    has a sampler writing :class:`~engine.samples.Sample` objects into the store, else from
    ``psutil.cpu_times(percpu=True)`` deltas that compare takes itself at the window's start and
    end. It includes any other load on the machine; see ``baseline_cores``.
``own_cores``
    CPU seconds used by this process plus the run's worker processes, divided by the window:
    how many cores *this work* kept busy, whatever else runs on the machine. Measured by
    compare's own psutil monitor (``Process.cpu_times``). The reading sentence uses this one.
``peak_rss_bytes``
    Peak resident memory of this process plus the worker processes during the window: the
    larger of the sampler's samples (``self_rss + workers[pid].rss``) and compare's own psutil
    readings (every ``monitor_interval_s``, 0.1 s by default, plus one at the end). Never the
    window's memory: when the engine runs in a process of its own, its sampler's ``self_rss``
    also counts the window's process (TaskScope's own, for the CPU legend), the same for
    every model, which would only flatten the differences between models; compare then
    takes the peak from its own readings alone.
``gui_lag_p99_ms`` / ``engine_lag_p99_ms``
    99th percentile (nearest rank) of the per-sample loop lateness the sampler's probes report
    (``Sample.lag_ms["gui"]`` / ``["engine"]``) within the window. None when there is no such
    probe: headless runs have no GUI loop, so the CLI always shows "n/a" there.
``tasks_per_s``
    Tasks that ran to an end of their own (finished or failed) divided by ``wall_s``.
``overhead_per_task_s``
    ``(wall_s - ideal_s) / tasks``: time lost per task against a perfect run of the same work
    on this machine. ``ideal_s = max(ceil(tasks / lanes) * size, tasks * size * cpu_share /
    min(lanes, cores))`` with ``lanes = min(workers, tasks)`` (for asyncio ``workers`` is the
    concurrency limit) and ``cpu_share`` the share of a task spent computing (1 for cpu and
    numpy, 0.5 for mixed, 0 for sleep, http and fail; for ``file`` and custom functions it is
    estimated from the sequential run's ``own_cores`` when sequential is in the set, else taken
    as 0). ``size`` is the spec's size, except for custom functions (which ignore it): there it
    is the median task duration of the sequential run, or the smallest per-model median when
    sequential is absent. So it counts start-up, scheduling, pickling *and* lost parallelism
    (GIL, one loop thread). Negative values mean the run beat the calibrated estimate.
``winner``
    The lowest ``wall_s`` among *complete* runs: every task ended on its own (finished or
    failed), none cancelled or timed out.
``reading``
    One sentence derived from the figures by :func:`reading` (branches on speedup, cores busy
    against workers, CPU share and lag; never a canned line per model name).

API for front ends:

* :func:`compare` runs a whole comparison on the calling thread and returns a
  :class:`CompareResult`; ``on_progress`` gets :class:`CompareProgress` snapshots;
  ``cancel_event`` (a :class:`threading.Event`) stops it.
* :func:`start_compare` validates at once (raising :class:`~engine.spec.SpecError`) and runs the
  comparison in a background thread; it returns a :class:`CompareJob` to poll
  (:attr:`CompareJob.progress`), cancel and wait on. Nothing here imports Qt.
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import psutil

from .clock import now_ns
from .events import State
from .models import model_info
from .spec import RunSpec, SpecError, cpu_count, make_spec

#: Share of a task spent computing, per built-in workload (see ``overhead_per_task_s``).
CPU_SHARE: dict[str, float] = {
    "cpu": 1.0,
    "numpy": 1.0,
    "crash": 1.0,
    "events": 1.0,
    "mixed": 0.5,
    "sleep": 0.0,
    "http": 0.0,
    "fail": 0.0,
}

#: How long a cancelled model may take to stop before compare moves on (thread tasks that
#: never check their context cannot be stopped; they are reported as still cancelling).
CANCEL_GRACE_S = 2.0


# -- results -------------------------------------------------------------------------------------
@dataclass
class ModelResult:
    """One model's run within a comparison, and its figures (see the module docstring)."""

    model: str
    #: "complete", "incomplete" (some tasks cancelled or timed out), "cancelled" (the compare
    #: was cancelled during it), "skipped" (cancelled before it started) or "error".
    status: str
    run_id: int | None = None
    workers: int = 0
    tasks: int = 0
    start_ns: int | None = None
    end_ns: int | None = None
    wall_s: float | None = None
    counts: dict[str, int] = field(default_factory=dict)
    speedup: float | None = None
    speedup_basis: str | None = None
    busy_cores: float | None = None
    busy_source: str = ""
    own_cores: float | None = None
    baseline_cores: float | None = None
    peak_rss_bytes: int | None = None
    gui_lag_p99_ms: float | None = None
    engine_lag_p99_ms: float | None = None
    tasks_per_s: float | None = None
    ideal_s: float | None = None
    overhead_per_task_s: float | None = None
    winner: bool = False
    reading: str = ""
    error: str = ""

    @property
    def complete(self) -> bool:
        return self.status == "complete"

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["complete"] = self.complete
        return d


@dataclass
class CompareResult:
    """A whole comparison: the common setup, one :class:`ModelResult` per model, the winner."""

    workload: str
    tasks: int
    size_s: float
    params: dict[str, Any]
    models: list[str]
    results: list[ModelResult]
    cores: int
    t0_ns: int
    end_ns: int
    cancelled: bool = False
    winner: str | None = None
    #: Where a front end should look for the figures' caveats (e.g. "no GUI loop: lag n/a").
    notes: list[str] = field(default_factory=list)

    def result(self, model: str) -> ModelResult:
        for r in self.results:
            if r.model == model:
                return r
        raise KeyError(model)

    def as_dict(self) -> dict[str, Any]:
        return {
            "workload": self.workload,
            "tasks": self.tasks,
            "size_s": self.size_s,
            "params": dict(self.params),
            "models": list(self.models),
            "cores": self.cores,
            "t0_ns": self.t0_ns,
            "end_ns": self.end_ns,
            "cancelled": self.cancelled,
            "winner": self.winner,
            "notes": list(self.notes),
            "results": [r.as_dict() for r in self.results],
        }


@dataclass(frozen=True)
class CompareProgress:
    """A snapshot of a comparison in progress, as ``on_progress`` and :class:`CompareJob` give it.

    ``phase``: "settling" (pausing before ``model``), "running" (``model`` runs; ``tasks_done``
    of ``tasks_total`` ended), "model_done" (``result`` holds its figures), then once "done" or
    "cancelled" at the end.
    """

    phase: str
    model: str | None
    index: int
    n_models: int
    tasks_done: int
    tasks_total: int
    run_id: int | None
    elapsed_s: float
    result: ModelResult | None = None


# -- validation ------------------------------------------------------------------------------------
def parse_models(models: str | Sequence[str]) -> list[str]:
    """``"a,b,c"`` or a sequence -> a list of distinct model names; SpecError on ``models``."""
    items = models.split(",") if isinstance(models, str) else list(models)
    out: list[str] = []
    for m in items:
        if not isinstance(m, str):
            raise SpecError("models", f"expected model names, got {m!r}")
        m = m.strip()
        if not m:
            continue
        if m in out:
            raise SpecError("models", f"{m} is listed twice")
        out.append(m)
    if not out:
        raise SpecError("models", "name at least one model, e.g. sequential,threads,processes")
    return out


def plan(
    workload: str,
    models: str | Sequence[str],
    tasks: Any = 10,
    size: Any = "200ms",
    workers: Any = None,
    params: Mapping[str, Any] | None = None,
    timeout: Any = None,
    policy: Any = "collect",
) -> list[RunSpec]:
    """Validate every model's spec before anything runs. ``workers`` applies to every model
    but sequential (which always has one)."""
    specs = []
    for m in parse_models(models):
        w = None if m == "sequential" else workers
        try:
            specs.append(make_spec(m, workload, tasks, size, w, timeout, policy, params))
        except SpecError as e:
            if e.field == "model":
                raise SpecError("models", e.message) from None
            raise
    return specs


# -- measuring ------------------------------------------------------------------------------------
def _busy_cores(before: Any, after: Any) -> float | None:
    """Average busy cores between two ``psutil.cpu_times(percpu=True)`` readings."""
    total = 0.0
    for a, b in zip(before, after, strict=False):
        da = sum(b) - sum(a)
        if da <= 0:
            continue
        idle = (b.idle - a.idle) + (getattr(b, "iowait", 0.0) - getattr(a, "iowait", 0.0))
        total += max(0.0, min(1.0, 1.0 - idle / da))
    return total


def p99(values: Sequence[float]) -> float | None:
    """Nearest-rank 99th percentile, None for no values."""
    if not values:
        return None
    s = sorted(values)
    return s[max(0, math.ceil(0.99 * len(s)) - 1)]


class _Monitor:
    """compare's own light psutil monitor: RSS and CPU time of this process and the session's
    worker processes, read every ``interval`` s in a daemon thread (and on demand).

    ``psutil.Process`` objects are kept alive per pid: psutil keeps CPU state per object.
    """

    def __init__(self, session: Any, interval: float) -> None:
        self.session = session
        self.interval = interval
        self._me = psutil.Process()
        self._procs: dict[int, psutil.Process] = {}
        self._lock = threading.Lock()
        self._peak = 0
        self._cpu: dict[int, float] = {}  # pid -> latest cpu seconds seen this window
        self._self0 = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="taskscope-compare-monitor",
                                        daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.tick()

    def tick(self) -> None:
        with self._lock:
            try:
                rss = self._me.memory_info().rss
                t = self._me.cpu_times()
                self._cpu[0] = t.user + t.system
            except psutil.Error:
                return
            for pid in self.session.worker_pids():
                p = self._procs.get(pid)
                if p is None:
                    try:
                        p = self._procs[pid] = psutil.Process(pid)
                    except psutil.Error:
                        continue
                try:
                    with p.oneshot():
                        rss += p.memory_info().rss
                        t = p.cpu_times()
                    self._cpu[pid] = t.user + t.system
                except psutil.Error:
                    pass  # it exited; its last reading stands
            self._peak = max(self._peak, rss)

    def begin(self) -> None:
        """Start a window: reset the peak and the CPU counters."""
        with self._lock:
            self._peak = 0
            self._cpu = {}
            t = self._me.cpu_times()
            self._self0 = t.user + t.system
            self._procs = {}
        self.tick()

    def end(self) -> tuple[int, float]:
        """Finish the window: ``(peak RSS bytes, CPU seconds used by us and the workers)``.
        Workers first seen in the window count from 0 (their start-up is the model's cost)."""
        self.tick()
        with self._lock:
            cpu = self._cpu.get(0, self._self0) - self._self0
            cpu += sum(v for pid, v in self._cpu.items() if pid != 0)
            return self._peak, max(0.0, cpu)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(1.0)


def _samples_in(samples: list[Any], start_ns: int, end_ns: int) -> list[Any]:
    """Samples whose interval's midpoint lies in the window."""
    out = []
    for s in samples:
        mid = s.t_ns - int(getattr(s, "interval_s", 0.0) * 5e8)
        if start_ns <= mid <= end_ns:
            out.append(s)
    return out


def _apply_samples(session: Any, r: ModelResult, cursor: int) -> None:
    """Fill a model's sampler figures as soon as it ends (not after the whole comparison),
    so a view shows each model complete as it finishes. Waits up to ~0.3 s for the sample
    that covers the run's end."""
    if r.start_ns is None or r.end_ns is None:
        return
    sampler = getattr(session, "sampler", None)
    deadline = time.monotonic() + (0.3 if sampler is not None else 0.0)
    while True:
        samples, _ = session.store.read_samples(cursor)
        if (samples and samples[-1].t_ns >= r.end_ns) or time.monotonic() >= deadline:
            break
        time.sleep(0.02)
    # A sampler that adds other TaskScope processes (the window's) into self_rss gives no
    # figure for "this process plus workers": the peak comes from compare's own readings.
    own_only = sampler is None or not getattr(sampler, "counts_own_pids", False)
    got = _from_samples(_samples_in(samples, r.start_ns, r.end_ns), rss=own_only)
    if "busy_cores" in got:
        r.busy_cores, r.busy_source = got["busy_cores"], "sampler"
    if "peak_rss" in got:
        r.peak_rss_bytes = max(r.peak_rss_bytes or 0, got["peak_rss"])
    r.gui_lag_p99_ms = got.get("gui_lag")
    r.engine_lag_p99_ms = got.get("engine_lag")


def _from_samples(samples: list[Any], rss: bool = True) -> dict[str, Any]:
    """Figures from sampler samples, where present: busy cores, peak RSS, loop lag p99s.
    ``rss`` False: no peak RSS (the samples' ``self_rss`` is not this process alone)."""
    out: dict[str, Any] = {}
    cores = [sum(s.cores) / 100.0 for s in samples if getattr(s, "cores", None)]
    if cores:
        out["busy_cores"] = statistics.fmean(cores)
    if rss:
        peaks = [
            int(getattr(s, "self_rss", 0) or 0)
            + sum(int(getattr(w, "rss", 0) or 0)
                  for w in (getattr(s, "workers", None) or {}).values())
            for s in samples
        ]
        if any(peaks):
            out["peak_rss"] = max(peaks)
    for loop in ("gui", "engine"):
        lags = [s.lag_ms[loop] for s in samples
                if loop in (getattr(s, "lag_ms", None) or {}) and s.lag_ms[loop] is not None]
        if lags:
            out[f"{loop}_lag"] = p99(lags)
    return out


# -- readings ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Figures:
    """What :func:`reading` looks at. Structural facts about the model (``shares_gil``,
    ``one_thread``) only pick the *explanation* once the numbers have shown the effect."""

    model: str
    complete: bool
    tasks: int
    tasks_ok: int
    wall_s: float | None
    speedup: float | None
    is_baseline: bool
    cores_busy: float | None
    workers: int
    cores: int
    cpu_share: float
    size_s: float
    overhead_per_task_s: float | None
    gui_lag_p99_ms: float | None
    #: Machine-wide busy cores during the settle pause just before the run (other load).
    baseline_cores: float | None = None
    #: Tasks run Python in several threads of one process (they share one GIL).
    shares_gil: bool = False
    #: Every task runs on one thread (an event loop, or one worker).
    one_thread: bool = False


GUI_LAG_BAD_MS = 50.0


def reading(f: Figures) -> str:
    """One sentence that follows from the figures.

    The branches test measured numbers: the speedup against the baseline, the cores this work
    kept busy against the workers it had and the CPU share of the work, the per-task overhead
    against the task size, and the GUI loop's lag. Change the numbers and the sentence changes.
    """
    p = f"{f.model}: "
    if not f.complete:
        return p + (f"did not complete ({f.tasks_ok} of {f.tasks} tasks ended on their own), "
                    "so its figures describe a partial run")
    head: list[str] = []
    if f.speedup is not None:
        head.append(f"{f.speedup:.1f}x")
    elif f.wall_s is not None:
        head.append(f"{f.wall_s:.2f} s")
    busy = f.cores_busy
    if busy is not None:
        head.append(f"{busy:.1f} cores busy")
    lead = p + ", ".join(head) + ": "
    lanes = min(f.workers, f.tasks)
    cpu_work = f.cpu_share >= 0.5
    sp = f.speedup
    oh = f.overhead_per_task_s
    oh_big = oh is not None and f.size_s > 0 and oh > max(0.001, 0.25 * f.size_s)

    if sp is None:
        why = "nothing completed to compare it with"
    elif f.is_baseline:
        if busy is not None and busy < 0.3:
            why = "the baseline; the CPU sat idle while tasks waited one after another"
        elif busy is not None and busy <= 1.3:
            why = "the baseline; one core computed one task at a time"
        else:
            why = "the baseline"
    elif sp >= 1.5:
        if busy is not None and busy >= 1.5:
            ceiling = min(lanes, f.cores)
            why = f"the work ran in parallel on {busy:.1f} cores"
            if cpu_work and sp >= 0.8 * ceiling:
                why += f", close to the {ceiling}-core limit"
        elif busy is not None and busy < 0.5:
            why = "tasks overlapped their waiting, which needs almost no CPU"
        elif cpu_work:
            why = ("faster with only about one core busy on its work, so the baseline ran "
                   "slow: other load may skew this comparison")
        else:
            why = "waits overlapped while about one core computed"
    elif sp >= 1.15:
        if busy is not None and busy >= 1.5:
            why = (f"{busy:.1f} cores busy but only {sp:.1f}x: start-up, hand-off "
                   "or other load took the rest")
        elif cpu_work and lanes > 1 and busy is not None and busy <= 1.3:
            why = "a modest gain, with about one core computing at a time"
        else:
            why = "a modest gain from overlapping tasks"
        if oh_big:
            why += f"; {oh * 1e3:.1f} ms lost per task"
    elif sp >= 0.85:
        if cpu_work and lanes > 1 and busy is not None and busy <= 1.3:
            if f.shares_gil:
                why = "the GIL lets one thread run Python at a time"
            elif f.one_thread:
                why = "one thread runs every task, so the computing takes turns"
            else:
                why = f"only about one core was busy although {lanes} workers could run"
        elif busy is not None and busy >= 1.5:
            why = f"{busy:.1f} cores were busy yet it went no faster: overhead or contention ate the gain"
        elif not cpu_work and lanes > 1 and busy is not None and busy < 0.5:
            why = (f"its tasks did not overlap although {lanes} could: "
                   "something blocked while they waited")
        else:
            why = "no gain over the baseline"
        if oh_big:
            why += f"; {oh * 1e3:.1f} ms lost per task"
    else:
        why = "slower than the baseline"
        if oh is not None:
            why += f": {oh * 1e3:.1f} ms lost per task against {f.size_s * 1e3:.0f} ms of work"
    if sp is not None and sp >= 1.5 and oh_big:
        why += f"; still {oh * 1e3:.1f} ms lost per task"
    if f.baseline_cores is not None and f.baseline_cores >= 0.5:
        why += f" (other load kept {f.baseline_cores:.1f} cores busy just before it ran)"
    if f.gui_lag_p99_ms is not None and f.gui_lag_p99_ms >= GUI_LAG_BAD_MS:
        why += f"; the GUI loop lagged {f.gui_lag_p99_ms:.0f} ms (p99)"
    return lead + why


# -- running ------------------------------------------------------------------------------------
def _ensure_forkserver() -> None:
    """Start the forkserver before timing anything: it is a one-off cost of the session, not of
    whichever process model happens to run first."""
    from .models.procpool import start_method

    if start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()


def _settle(seconds: float, cancel: threading.Event) -> float | None:
    """Pause; return the machine's busy cores over the pause (other load, our idle threads)."""
    if seconds <= 0:
        return None
    a = psutil.cpu_times(percpu=True)
    t = time.monotonic()
    cancel.wait(seconds)
    if time.monotonic() - t < 0.05:
        return None
    return _busy_cores(a, psutil.cpu_times(percpu=True))


def compare(
    session: Any,
    workload: str,
    models: str | Sequence[str],
    tasks: Any = 10,
    size: Any = "200ms",
    workers: Any = None,
    params: Mapping[str, Any] | None = None,
    on_progress: Callable[[CompareProgress], None] | None = None,
    cancel_event: threading.Event | None = None,
    *,
    timeout: Any = None,
    policy: Any = "collect",
    settle_s: float = 0.5,
    monitor_interval_s: float = 0.1,
) -> CompareResult:
    """Run ``workload`` under each of ``models`` in turn on ``session`` and measure each.

    Blocks until done (use :func:`start_compare` for a background thread). Every spec is
    validated first; a :class:`SpecError` means nothing ran. ``on_progress`` is called on this
    thread (keep it cheap; a GUI should hand the snapshot to its own thread). Setting
    ``cancel_event`` cancels the running model (process workers are force-killed, thread tasks
    stop at their next check) and skips the rest; the result then has ``cancelled=True``.
    """
    specs = plan(workload, models, tasks, size, workers, params, timeout, policy)
    cancel = cancel_event or threading.Event()
    names = [s.model for s in specs]
    n_tasks = specs[0].tasks
    cores = cpu_count()
    results: list[ModelResult] = []
    sample_cursor = session.store.sample_count
    t0 = time.monotonic()

    def emit(phase: str, model: str | None, i: int, done: int = 0, run_id: int | None = None,
             result: ModelResult | None = None) -> None:
        if on_progress is not None:
            on_progress(CompareProgress(phase, model, i, len(specs), done, n_tasks, run_id,
                                        time.monotonic() - t0, result))

    if any(model_info(s.model).isolated for s in specs):
        _ensure_forkserver()
    monitor = _Monitor(session, monitor_interval_s)
    first_ns: int | None = None
    try:
        for i, spec in enumerate(specs):
            if cancel.is_set():
                results.append(ModelResult(spec.model, "skipped", tasks=spec.tasks,
                                           workers=spec.effective_workers()))
                continue
            emit("settling", spec.model, i)
            baseline = _settle(settle_s, cancel)
            if cancel.is_set():
                results.append(ModelResult(spec.model, "skipped", tasks=spec.tasks,
                                           workers=spec.effective_workers()))
                continue
            r = _run_one(session, spec, cancel, monitor, lambda d, rid, m=spec.model, i=i:
                         emit("running", m, i, d, rid))
            r.baseline_cores = baseline
            if first_ns is None and r.start_ns is not None:
                first_ns = r.start_ns
            _apply_samples(session, r, sample_cursor)
            results.append(r)
            emit("model_done", spec.model, i, spec.tasks, r.run_id, r)
    finally:
        monitor.stop()

    _finish(session, specs, results, cores)
    res = CompareResult(
        workload=specs[0].workload,
        tasks=n_tasks,
        size_s=specs[0].size_s,
        params=dict(specs[0].params),
        models=names,
        results=results,
        cores=cores,
        t0_ns=first_ns if first_ns is not None else now_ns(),
        end_ns=now_ns(),
        cancelled=cancel.is_set(),
        winner=next((r.model for r in results if r.winner), None),
    )
    if all(r.gui_lag_p99_ms is None for r in results):
        res.notes.append("GUI-loop lag: n/a (no GUI loop was probed; headless runs have none)")
    if "sequential" not in names:
        res.notes.append("speedup is relative to the slowest complete run (no sequential run)")
    if specs[0].workload == "custom" and not specs[0].params.get("takes_ctx"):
        from .custom import NO_CTX_NOTE

        res.notes.append(NO_CTX_NOTE)
    emit("cancelled" if res.cancelled else "done", None, len(specs), 0, None)
    return res


def _run_one(session: Any, spec: RunSpec, cancel: threading.Event, monitor: _Monitor,
             progress: Callable[[int, int], None]) -> ModelResult:
    """Run one model's spec to its end (or until cancelled) and take its raw figures."""
    r = ModelResult(spec.model, "error", tasks=spec.tasks, workers=spec.effective_workers())
    monitor.begin()
    cpu_a = psutil.cpu_times(percpu=True)
    start = now_ns()
    try:
        run = session.start(spec)
    except Exception as e:  # noqa: BLE001 - one model failing to start must not end the compare
        r.error = f"{type(e).__name__}: {e}"
        monitor.end()
        return r
    r.run_id = run.run_id
    cancelled_at: float | None = None
    last = -1
    while not run.ended:
        if cancel.is_set() and cancelled_at is None:
            cancelled_at = time.monotonic()
            session.cancel_run(run.run_id, force=True, reason="compare cancelled")
        if cancelled_at is not None and time.monotonic() - cancelled_at > CANCEL_GRACE_S:
            break
        time.sleep(0.01)
        rec = run.record
        done = sum(v for k, v in rec.counts.items() if k not in ("queued", "running"))
        if done != last:
            last = done
            progress(done, run.run_id)
    end = now_ns()
    cpu_b = psutil.cpu_times(percpu=True)
    peak, own_cpu = monitor.end()
    if cancelled_at is None:
        run.wait(10.0)  # its workers are gone before the next model starts
    rec = run.record
    r.start_ns = rec.start_ns or start
    r.end_ns = rec.end_ns or end
    r.counts = {k: v for k, v in rec.counts.items() if v and k not in ("queued", "running")}
    r.wall_s = (r.end_ns - r.start_ns) / 1e9 if rec.end_ns is not None else None
    window_s = max(1e-9, (end - start) / 1e9)
    r.busy_cores = _busy_cores(cpu_a, cpu_b)
    r.busy_source = "psutil"
    r.own_cores = own_cpu / window_s
    r.peak_rss_bytes = peak or None
    ok = r.counts.get(State.FINISHED.value, 0) + r.counts.get(State.FAILED.value, 0)
    if cancelled_at is not None:
        r.status = "cancelled"
    elif ok == spec.tasks:
        r.status = "complete"
    else:
        r.status = "incomplete"
    if r.wall_s:
        r.tasks_per_s = ok / r.wall_s
    return r


def _median_task_s(session: Any, run_id: int | None) -> float | None:
    if run_id is None:
        return None
    d = [t.duration_ns for t in session.store.tasks(run_id) if t.duration_ns]
    return statistics.median(d) / 1e9 if d else None


def _structure(model: str, spec: RunSpec, isolated: bool) -> dict[str, bool]:
    """How the model runs Python, for :class:`Figures` (which explanation fits, not which
    sentence): several threads under one GIL, or one thread for every task."""
    if isolated or model == "free-threaded":
        return {"shares_gil": False, "one_thread": False}
    if model == "asyncio":
        offloaded = spec.workload == "custom" and not spec.params.get("is_async")
        return {"shares_gil": offloaded, "one_thread": not offloaded}
    if model == "sequential":
        return {"shares_gil": False, "one_thread": True}
    return {"shares_gil": True, "one_thread": False}


def _finish(session: Any, specs: list[RunSpec], results: list[ModelResult], cores: int) -> None:
    """Cross-model figures: speedup, ideal time and overhead, winner, readings."""
    spec0 = specs[0]
    complete = [r for r in results if r.complete and r.wall_s]
    seq = next((r for r in complete if r.model == "sequential"), None)
    base: ModelResult | None = seq or (max(complete, key=lambda r: r.wall_s or 0.0)
                                       if complete else None)
    basis = None if base is None else ("sequential" if base is seq else f"slowest ({base.model})")

    share = CPU_SHARE.get(spec0.workload)
    if spec0.workload == "blocking":
        share = 1.0 if spec0.params.get("mode") == "cpu" else 0.0
    if share is None:  # file, custom: estimate from the sequential run, one task at a time
        share = min(1.0, max(0.0, seq.own_cores or 0.0)) if seq is not None else 0.0
    size = spec0.size_s
    if spec0.workload == "custom":
        med = _median_task_s(session, seq.run_id) if seq is not None else None
        if med is None:
            meds = [m for m in (_median_task_s(session, r.run_id) for r in complete) if m]
            med = min(meds) if meds else 0.0
        size = med

    winner = min(complete, key=lambda r: r.wall_s or math.inf) if complete else None
    for r in results:
        if r.wall_s and r.complete and base is not None and base.wall_s:
            r.speedup = base.wall_s / r.wall_s
            r.speedup_basis = basis
        lanes = max(1, min(r.workers, r.tasks))
        ideal = max(math.ceil(r.tasks / lanes) * size,
                    r.tasks * size * share / min(lanes, cores))
        r.ideal_s = ideal
        if r.wall_s is not None and r.tasks:
            r.overhead_per_task_s = (r.wall_s - ideal) / r.tasks
        r.winner = r is winner
        if r.status in ("skipped", "error"):
            r.reading = f"{r.model}: {'not run (compare cancelled)' if r.status == 'skipped' else r.error}"
            continue
        info = model_info(r.model)
        ok = r.counts.get("finished", 0) + r.counts.get("failed", 0)
        r.reading = reading(Figures(
            model=r.model,
            complete=r.complete,
            tasks=r.tasks,
            tasks_ok=ok,
            wall_s=r.wall_s,
            speedup=r.speedup,
            is_baseline=r is base and base is seq,
            cores_busy=r.own_cores,
            workers=r.workers,
            cores=cores,
            cpu_share=share,
            size_s=size,
            overhead_per_task_s=r.overhead_per_task_s,
            gui_lag_p99_ms=r.gui_lag_p99_ms,
            baseline_cores=r.baseline_cores,
            **_structure(r.model, spec0, info.isolated),
        ))


# -- background ------------------------------------------------------------------------------------
class CompareJob:
    """A comparison running in a background thread (what the GUI uses).

    Poll :attr:`progress` on a frame tick (the latest :class:`CompareProgress`, thread-safe) or
    pass ``on_progress`` to :func:`start_compare`; call :meth:`cancel` to stop; :attr:`result`
    is set when :attr:`done`. An unexpected failure inside the thread is kept in :attr:`error`.
    """

    def __init__(self, session: Any, kwargs: dict[str, Any],
                 on_progress: Callable[[CompareProgress], None] | None) -> None:
        self.cancel_event = threading.Event()
        self._progress: CompareProgress | None = None
        self._user_cb = on_progress
        self._done = threading.Event()
        self.result: CompareResult | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, args=(session, kwargs),
                                        name="taskscope-compare", daemon=True)
        self._thread.start()

    def _on_progress(self, p: CompareProgress) -> None:
        self._progress = p  # one reference swap: atomic for readers on other threads
        if self._user_cb is not None:
            self._user_cb(p)

    def _main(self, session: Any, kwargs: dict[str, Any]) -> None:
        try:
            self.result = compare(session, on_progress=self._on_progress,
                                  cancel_event=self.cancel_event, **kwargs)
        except BaseException as e:  # noqa: BLE001 - handed to the front end, not lost
            self.error = e
        finally:
            self._done.set()

    @property
    def progress(self) -> CompareProgress | None:
        return self._progress

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def cancel(self) -> None:
        """Stop the running model and skip the rest (returns at once)."""
        self.cancel_event.set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)


def start_compare(
    session: Any,
    workload: str,
    models: str | Sequence[str],
    tasks: Any = 10,
    size: Any = "200ms",
    workers: Any = None,
    params: Mapping[str, Any] | None = None,
    on_progress: Callable[[CompareProgress], None] | None = None,
    **options: Any,
) -> CompareJob:
    """Validate now (raising :class:`SpecError`, nothing started) and run :func:`compare` in a
    background thread. ``options``: ``timeout``, ``policy``, ``settle_s``,
    ``monitor_interval_s``. ``on_progress`` runs on the compare thread."""
    plan(workload, models, tasks, size, workers, params, options.get("timeout"),
         options.get("policy", "collect"))
    kwargs = dict(workload=workload, models=models, tasks=tasks, size=size, workers=workers,
                  params=params, **options)
    return CompareJob(session, kwargs, on_progress)


# -- output ------------------------------------------------------------------------------------
COLUMNS = ("model", "wall_s", "speedup", "busy_cores", "own_cores", "peak_mb", "gui_lag_p99_ms",
           "tasks_per_s", "overhead_ms", "winner", "reading")


def row(r: ModelResult) -> dict[str, Any]:
    """One model's figures as a flat row (for CSV and tables). Speed-up, winner and reading
    are filled in once the whole comparison is done; before that they are None / False / ""."""
    return {
        "model": r.model,
        "status": r.status,
        "wall_s": r.wall_s,
        "speedup": r.speedup,
        "speedup_basis": r.speedup_basis,
        "busy_cores": r.busy_cores,
        "own_cores": r.own_cores,
        "baseline_cores": r.baseline_cores,
        "peak_mb": None if r.peak_rss_bytes is None else r.peak_rss_bytes / 2**20,
        "gui_lag_p99_ms": r.gui_lag_p99_ms,
        "tasks_per_s": r.tasks_per_s,
        "overhead_ms": None if r.overhead_per_task_s is None else r.overhead_per_task_s * 1e3,
        "workers": r.workers,
        "winner": r.winner,
        "reading": r.reading,
    }


def rows(res: CompareResult) -> list[dict[str, Any]]:
    """One flat row per model (for CSV and tables): :func:`row` of each."""
    return [row(r) for r in res.results]


def _f(v: Any, fmt: str, na: str = "n/a") -> str:
    return na if v is None else format(v, fmt)


def format_table(res: CompareResult) -> str:
    """The results table the CLI prints: one row per model, the winner starred, then each
    model's reading."""
    head = (f"compare · {res.workload} · {res.tasks} tasks × {res.size_s * 1e3:g} ms · "
            f"{res.cores} cores{' · CANCELLED' if res.cancelled else ''}")
    cols = ["", "model", "workers", "wall s", "speedup", "busy cores", "ours", "peak MB",
            "gui lag p99", "tasks/s", "overhead/task", "status"]
    body = []
    for r in res.results:
        body.append([
            "*" if r.winner else "",
            r.model,
            str(r.workers),
            _f(r.wall_s, ".3f", "-"),
            "-" if r.speedup is None else f"{r.speedup:.2f}x",
            _f(r.busy_cores, ".2f"),
            _f(r.own_cores, ".2f"),
            "n/a" if r.peak_rss_bytes is None else f"{r.peak_rss_bytes / 2**20:.0f}",
            "n/a" if r.gui_lag_p99_ms is None else f"{r.gui_lag_p99_ms:.1f} ms",
            _f(r.tasks_per_s, ".1f", "-"),
            "-" if r.overhead_per_task_s is None else f"{r.overhead_per_task_s * 1e3:.1f} ms",
            r.status,
        ])
    widths = [max(len(c), *(len(b[i]) for b in body)) for i, c in enumerate(cols)]
    line = lambda cells: "  ".join(  # noqa: E731
        c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
    ).rstrip()
    out = [head, line(cols)] + [line(b) for b in body]
    out.append("")
    out.extend(r.reading for r in res.results)
    basis = next((r.speedup_basis for r in res.results if r.speedup_basis), None)
    out.append("")
    out.append(f"* winner: {res.winner or 'none (no run completed)'}"
               + (f" · speedup relative to {basis}" if basis else ""))
    out.extend(res.notes)
    return "\n".join(out)
