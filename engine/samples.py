"""The system sample: what the machine and our workers were doing over one sampling interval.

Samples share the events' clock (:mod:`engine.clock`) and live in the same
:class:`~engine.store.EventStore`. The sampler (:mod:`engine.sampler`) produces them; the GUI,
the CLI's ``--json`` and the trace exporter read them, averaged over a span of time with
:func:`core_averages`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .clock import NS_PER_S


@dataclass(slots=True, frozen=True)
class WorkerSample:
    """One worker process over the interval."""

    pid: int
    cpu: float  # percent of one core (100 = one core fully busy), over the sample's interval
    #: bytes; every sample on Linux, else refreshed once a second (samples in between repeat
    #: the last read)
    rss: int
    core: int  # the core it last ran on, -1 if unknown


@dataclass(slots=True, frozen=True)
class Sample:
    """Everything measured over the interval ending at ``t_ns``."""

    t_ns: int
    interval_s: float
    #: Per-core utilisation, 0..100 (everything but idle and iowait), from cpu_times deltas.
    cores: tuple[float, ...]
    cores_user: tuple[float, ...]
    cores_system: tuple[float, ...]
    #: Mean of ``cores`` (0..100).
    total: float
    #: TaskScope itself: this process plus the sampler's ``own_pids`` (e.g. the window's
    #: process, when the engine runs in a process of its own). ``self_cpu``: percent of one core
    #: over the interval, each process's counters differenced on their own. ``self_rss``:
    #: resident memory in bytes, summed; this process's refreshed once a second (samples in
    #: between repeat the last read), the others' as a worker's ``rss``.
    self_cpu: float
    self_rss: int
    #: Worker processes the engine started, by pid.
    workers: dict[int, WorkerSample] = field(default_factory=dict)
    #: This process's threads (not own_pids'): native thread id -> percent of one core.
    threads: dict[int, float] = field(default_factory=dict)
    #: Worst lateness of a periodic timer in the interval, in ms, per loop ("gui", "engine").
    #: Missing key: no probe on that loop, or a loop measured in another process (an external
    #: lag source) that reported nothing over the interval. While no run is active, the
    #: engine loop's probe fires every 0.25 s instead of every 20 ms.
    lag_ms: dict[str, float] = field(default_factory=dict)
    #: Share of time a probe thread waited for the GIL over the interval (0..1). None: not
    #: measured: the probe is off, or paused because no run was active (an interval it ran in
    #: only partly gives the share over the part it ran). On a free-threaded build with the GIL
    #: off: None and ``gil_disabled`` True.
    gil: float | None = None
    gil_disabled: bool = False
    #: Workers on other machines (a Dask cluster's), by address: their own figures, as
    #: their cluster last reported them (CPU percent of one of *their* cores, resident
    #: memory; ``core`` -1). Not part of ``cores``/``workers``, which are this machine's.
    remote: dict[str, WorkerSample] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "t_ns": self.t_ns,
            "interval_s": self.interval_s,
            "cores": list(self.cores),
            "cores_user": list(self.cores_user),
            "cores_system": list(self.cores_system),
            "total": self.total,
            "self_cpu": self.self_cpu,
            "self_rss": self.self_rss,
            "workers": {
                str(p): {"cpu": w.cpu, "rss": w.rss, "core": w.core} for p, w in self.workers.items()
            },
            "threads": {str(t): c for t, c in self.threads.items()},
            "lag_ms": dict(self.lag_ms),
            "gil": self.gil,
            "gil_disabled": self.gil_disabled,
            **({"remote": {a: {"pid": w.pid, "cpu": w.cpu, "rss": w.rss}
                           for a, w in self.remote.items()}} if self.remote else {}),
        }


def core_averages(samples: Iterable[Sample], start_ns: int | None = None,
                  end_ns: int | None = None) -> list[float]:
    """Per-core utilisation (0..100) over ``[start_ns, end_ns]``, from samples.

    Each sample covers ``(t_ns - interval_s, t_ns]``; it is weighted by how much of that
    interval lies inside the window (so back-to-back samples average to exactly what the
    kernel counters say over the whole span).
    """
    sums: list[float] = []
    weight = 0.0
    for s in samples:
        hi = s.t_ns
        lo = hi - int(s.interval_s * NS_PER_S)
        if start_ns is not None:
            lo = max(lo, start_ns)
        if end_ns is not None:
            hi = min(hi, end_ns)
        w = (hi - lo) / NS_PER_S
        if w <= 0:
            continue
        if not sums:
            sums = [0.0] * len(s.cores)
        if len(s.cores) != len(sums):
            continue
        for i, c in enumerate(s.cores):
            sums[i] += c * w
        weight += w
    # min(): a weighted mean of 100s can come out a rounding error above 100.
    return [min(100.0, x / weight) for x in sums] if weight > 0 else []
