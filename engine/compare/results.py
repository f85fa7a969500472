"""A comparison's results: per-model figures, the whole result, progress, and its table.

The figures are defined in :mod:`engine.compare` (the package docstring); this module holds
them and prints them (the CLI's table, flat rows for CSV and front ends).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


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
