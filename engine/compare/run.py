"""Running a comparison: each model in turn, measured, on the calling thread or in a job.

Models run one after another, never at once (see the package docstring for why and for what
each figure means). :func:`compare` blocks; :func:`start_compare` validates at once and runs
it in a background thread, returning a :class:`CompareJob`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import psutil

from ..clock import now_ns
from ..events import State
from ..models import registry
from ..spec import RunSpec
from ..store import RunRecord
from .figures import finish
from .measure import _apply_samples, _busy_cores, _ensure_forkserver, _Monitor, _settle
from .request import CompareRequest, plan
from .results import CompareProgress, CompareResult, ModelResult

if TYPE_CHECKING:
    from ..api import SessionAPI

#: How long a cancelled model may take to stop before compare moves on (thread tasks that
#: never check their context cannot be stopped; they are reported as still cancelling).
CANCEL_GRACE_S = 2.0


def compare(
    session: SessionAPI,
    request: CompareRequest,
    on_progress: Callable[[CompareProgress], None] | None = None,
    cancel_event: threading.Event | None = None,
    *,
    settle_s: float = 0.5,
    monitor_interval_s: float = 0.1,
) -> CompareResult:
    """Run the request's workload under each of its models in turn on ``session`` and
    measure each.

    Blocks until done (use :func:`start_compare` for a background thread). Every spec is
    validated first; a :class:`SpecError` means nothing ran. ``on_progress`` is called on this
    thread (keep it cheap; a GUI should hand the snapshot to its own thread). Setting
    ``cancel_event`` cancels the running model (process workers are force-killed, thread tasks
    stop at their next check) and skips the rest; the result then has ``cancelled=True``.
    """
    specs = plan(request)
    for s in specs:  # checks that need the outside world (a scheduler answers) before any run
        prepare = registry.entry(s.model).prepare
        if prepare is not None:
            prepare(s, session)
    cancel = cancel_event or threading.Event()
    names = [s.model for s in specs]
    n_tasks = specs[0].tasks
    cores = registry.cpu_count()
    results: list[ModelResult] = []
    sample_cursor = session.store.sample_count
    t0 = time.monotonic()

    def emit(phase: str, model: str | None, i: int, done: int = 0, run_id: int | None = None,
             result: ModelResult | None = None) -> None:
        if on_progress is not None:
            on_progress(CompareProgress(phase, model, i, len(specs), done, n_tasks, run_id,
                                        time.monotonic() - t0, result))

    if any(registry.entry(s.model).isolated for s in specs):
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

    finish(session, specs, results, cores)
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
        label=specs[0].label,
    )
    if all(r.gui_lag_p99_ms is None for r in results):
        res.notes.append("GUI-loop lag: n/a (no GUI loop was probed; headless runs have none)")
    base = next((n for n in registry.names() if registry.entry(n).baseline), "baseline")
    if any(r.speedup_basis and r.speedup_basis != base for r in results):
        res.notes.append(f"speedup is relative to the slowest complete run (no complete {base} "
                         "run)")
    if any(r.partial for r in results):
        res.notes.append("partial runs (cancelled, timed out) are shown but not ranked: no "
                         "speedup, no overhead, never the winner or the basis")
    if specs[0].workload == "custom" and not specs[0].params.get("takes_ctx"):
        from ..custom import NO_CTX_NOTE

        res.notes.append(NO_CTX_NOTE)
    # Kept with the runs it measured: a session trace saves it, a replay shows it again.
    session.store.add_comparison(res)
    emit("cancelled" if res.cancelled else "done", None, len(specs), 0, None)
    return res


def _run_one(session: SessionAPI, spec: RunSpec, cancel: threading.Event, monitor: _Monitor,
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
        # Not every 10 ms: each wake takes the GIL, and from an in-process CPU-bound task that
        # costs 0.1-0.6 ms of its wall time a hand-over on a 2-core VM (see TRICKLE_FLUSH_S in
        # engine.batcher): our polling, counted as the model's "lost per task".
        time.sleep(0.05)
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
    r.python = rec.info.get("python")  # said by the engine that ran it
    r.wall_s = (r.end_ns - r.start_ns) / 1e9 if rec.end_ns is not None else None
    window_s = max(1e-9, (end - start) / 1e9)
    r.busy_cores = own_cpu / window_s
    r.machine_cores = _busy_cores(cpu_a, cpu_b)
    r.machine_source = "psutil"
    r.peak_rss_bytes = peak or None
    r.workers_noun = registry.entry(spec.model).workers_noun
    r.startup_s = _startup_s(rec, r)
    ok = r.counts.get(State.FINISHED.value, 0) + r.counts.get(State.FAILED.value, 0)
    # (A front end's Esc may cancel the run's tasks and the comparison at once: the run can
    # end before the loop above sees the comparison's cancel. It was still cancelled.)
    if cancelled_at is not None or (cancel.is_set() and ok < spec.tasks):
        r.status = "cancelled"
    elif ok == spec.tasks:
        r.status = "complete"
    else:
        r.status = "incomplete"
    if r.wall_s:
        r.tasks_per_s = ok / r.wall_s
    return r


def _startup_s(rec: RunRecord, r: ModelResult) -> float | None:
    """Seconds from the run's start until its workers were ready, as its model reported them
    (``workers_ready_ns``, else ``startup_s`` in the run's info), at most its wall. 0 for a
    model whose workers are engine threads (no ``workers_noun``); None when a model that starts
    workers never said they were ready (the run ended first)."""
    info = rec.info or {}
    ready = info.get("workers_ready_ns")
    s: float | None
    if isinstance(ready, int) and r.start_ns is not None:
        s = max(0.0, (ready - r.start_ns) / 1e9)
    elif isinstance(info.get("startup_s"), (int, float)):
        s = max(0.0, float(info["startup_s"]))
    else:
        return None if r.workers_noun else 0.0
    return s if r.wall_s is None else min(s, r.wall_s)


class CompareJob:
    """A comparison running in a background thread (what the GUI uses).

    Poll :attr:`progress` on a frame tick (the latest :class:`CompareProgress`, thread-safe) or
    pass ``on_progress`` to :func:`start_compare`; call :meth:`cancel` to stop; :attr:`result`
    is set when :attr:`done`. An unexpected failure inside the thread is kept in :attr:`error`.
    """

    def __init__(self, session: SessionAPI, request: CompareRequest, how: dict[str, Any],
                 on_progress: Callable[[CompareProgress], None] | None) -> None:
        self.cancel_event = threading.Event()
        self._progress: CompareProgress | None = None
        self._user_cb = on_progress
        self._done = threading.Event()
        self.result: CompareResult | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, args=(session, request, how),
                                        name="taskscope-compare", daemon=True)
        self._thread.start()

    def _on_progress(self, p: CompareProgress) -> None:
        self._progress = p  # one reference swap: atomic for readers on other threads
        if self._user_cb is not None:
            self._user_cb(p)

    def _main(self, session: SessionAPI, request: CompareRequest, how: dict[str, Any]) -> None:
        try:
            self.result = compare(session, request, self._on_progress, self.cancel_event, **how)
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
    session: SessionAPI,
    request: CompareRequest,
    on_progress: Callable[[CompareProgress], None] | None = None,
    *,
    settle_s: float = 0.5,
    monitor_interval_s: float = 0.1,
) -> CompareJob:
    """Validate now (raising :class:`SpecError`, nothing started) and run :func:`compare` in a
    background thread. ``on_progress`` runs on the compare thread."""
    plan(request)
    return CompareJob(session, request,
                      {"settle_s": settle_s, "monitor_interval_s": monitor_interval_s},
                      on_progress)
