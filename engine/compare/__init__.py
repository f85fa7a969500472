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

from .figures import CPU_SHARE
from .measure import p99
from .readings import GUI_LAG_BAD_MS, Figures, reading
from .request import CompareRequest, parse_models, plan
from .results import COLUMNS, CompareProgress, CompareResult, ModelResult, format_table, row, rows
from .run import CANCEL_GRACE_S, CompareJob, compare, start_compare

__all__ = [
    "CANCEL_GRACE_S",
    "COLUMNS",
    "CPU_SHARE",
    "GUI_LAG_BAD_MS",
    "CompareJob",
    "CompareProgress",
    "CompareRequest",
    "CompareResult",
    "Figures",
    "ModelResult",
    "compare",
    "format_table",
    "p99",
    "parse_models",
    "plan",
    "reading",
    "row",
    "rows",
    "start_compare",
]
