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
    First task queued to last task ended (the store's run wall time). It includes start-up.
``startup_s``
    Seconds from the run's start until its workers were ready, as the model reports it
    (``RunRecord.info["workers_ready_ns"]``: worker processes, a Dask cluster, interpreters),
    at most ``wall_s``; 0 for a model whose workers are engine threads (its registry entry
    names no ``workers_noun``); None when the workers never became ready (the run ended first).
``speedup`` / ``speedup_basis`` / ``speedup_without_startup``
    ``baseline wall / this wall``. The baseline is the registry's baseline model
    (``sequential``) when it is in the set and completed; otherwise the *slowest* complete run
    (``speedup_basis`` says which, e.g. ``"slowest (threads)"``) when at least two completed,
    so the figures still rank the models. A partial run is never the basis and has no
    speed-up; neither has any run when nothing it could be measured against completed.
    ``speedup_without_startup`` is the same ratio with each side's ``startup_s`` taken off.
``python``
    The interpreter that ran the model (its ``python`` block, :mod:`engine.build`), as the
    engine that ran it said.
``busy_cores``
    The cores this run kept busy: CPU seconds used by this process plus the run's worker
    processes, divided by the run's window (compare's own psutil monitor,
    ``Process.cpu_times``), whatever else runs on the machine. The table, the charts, the CLI
    and the reading all show this figure under this name.
``machine_cores`` / ``machine_source``
    Machine-wide average busy cores over the window (sum over cores of the busy share; busy =
    everything but idle and iowait): every program's, this run's included. From the sampler's
    per-core samples when the session has a sampler (``"sampler"``), else from
    ``psutil.cpu_times(percpu=True)`` deltas at the window's start and end (``"psutil"``).
    ``machine_cores - busy_cores`` is other programs' load; ``baseline_cores`` is the machine's
    during the settle pause just before the run.
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
    probe: headless runs have no GUI loop, so the CLI always shows "n/a" there. The GUI figure
    is the *window's* lag while the model ran, not a property of the model: a comparison runs
    in the engine process, never on the window's loop, so no reading blames a model for it.
``tasks_per_s``
    Tasks that ran to an end of their own (finished or failed) divided by ``wall_s``.
``overhead_per_task_s``
    ``(wall_s - startup_s - ideal_s) / tasks`` for a complete run (None for a partial one):
    time the model lost per task against a perfect run of the same work on this machine, its
    workers' start-up apart (that has its own figure). ``ideal_s = max(ceil(tasks / lanes) *
    size, tasks * size * cpu_share / min(lanes, cores))`` with ``lanes = min(workers, tasks)``
    (for asyncio ``workers`` is the concurrency limit) and ``cpu_share`` the share of a task
    spent computing (1 for cpu and numpy, 0.5 for mixed, 0 for sleep, http and fail; for
    ``file`` and custom functions it is estimated from the sequential run's ``busy_cores``
    when sequential is in the set, else taken as 0). ``size`` is the spec's size (a task of
    size S takes S: see the README's "What a size means"), except for custom functions (which
    ignore it): there it is the median task duration of the sequential run, or the smallest
    per-model median when sequential is absent. So it counts scheduling, pickling and lost
    parallelism (GIL, one loop thread). Negative values mean the run beat the estimate.
``winner``
    The lowest ``wall_s`` among *complete* runs (every task ended on its own, finished or
    failed: none cancelled or timed out), when at least two completed.
``reading``
    One sentence derived from the figures by :func:`reading` (branches on speedup, cores busy
    against workers, CPU share and start-up; never a canned line per model name). A partial
    run's reading says it is partial and how its tasks ended.

A finished comparison is also kept in ``session.store`` (:meth:`EventStore.add_comparison`),
beside the runs it measured: a session trace saves it and a replay shows it again.

API for front ends:

* :func:`compare` runs a whole comparison on the calling thread and returns a
  :class:`CompareResult`; ``on_progress`` gets :class:`CompareProgress` snapshots;
  ``cancel_event`` (a :class:`threading.Event`) stops it.
* :class:`CompareAcross` runs one comparison on several interpreters, one engine each, one
  after another: a row per model per interpreter, speed-ups per interpreter (see
  :mod:`~engine.compare.across`).
* :func:`start_compare` validates at once (raising :class:`~engine.spec.SpecError`) and runs the
  comparison in a background thread; it returns a :class:`CompareJob` to poll
  (:attr:`CompareJob.progress`), cancel and wait on. Nothing here imports Qt.
"""

from __future__ import annotations

from .across import CompareAcross, Where
from .figures import CPU_SHARE
from .measure import p99
from .readings import GUI_LAG_BAD_MS, Figures, reading
from .request import CompareRequest, parse_models, plan
from .results import (
    COLUMNS,
    CORES_FMT,
    SPEEDUP_FMT,
    CompareProgress,
    CompareResult,
    ModelResult,
    format_table,
    no_winner_why,
    row,
    rows,
)
from .run import CANCEL_GRACE_S, CompareJob, compare, start_compare

__all__ = [
    "CANCEL_GRACE_S",
    "COLUMNS",
    "CORES_FMT",
    "CPU_SHARE",
    "GUI_LAG_BAD_MS",
    "SPEEDUP_FMT",
    "CompareAcross",
    "CompareJob",
    "CompareProgress",
    "CompareRequest",
    "CompareResult",
    "Figures",
    "ModelResult",
    "compare",
    "format_table",
    "no_winner_why",
    "p99",
    "parse_models",
    "plan",
    "reading",
    "row",
    "rows",
    "start_compare",
    "Where",
]
