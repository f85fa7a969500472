"""A comparison's results: per-model figures, the whole result, progress, and its table.

The figures are defined in :mod:`engine.compare` (the package docstring); this module holds
them and prints them (the CLI's table, flat rows for CSV and front ends).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

from ..build import python_label


@dataclass
class ModelResult:
    """One model's run within a comparison, and its figures (see the package docstring)."""

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
    startup_s: float | None = None
    speedup_without_startup: float | None = None
    #: What its workers are, for "starting 2 worker processes" ("" for none worth naming).
    workers_noun: str = ""
    busy_cores: float | None = None
    machine_cores: float | None = None
    machine_source: str = ""
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
    #: The interpreter that ran it: its ``python`` block (``engine.build``), as the engine
    #: that ran it said. None for a model that did not run.
    python: dict[str, Any] | None = None

    @property
    def complete(self) -> bool:
        return self.status == "complete"

    @property
    def partial(self) -> bool:
        """It ran but not every task ended on its own: its figures describe part of a run."""
        return self.status in ("incomplete", "cancelled")

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["complete"] = self.complete
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelResult:
        """The result :meth:`as_dict` wrote (a saved comparison). Raises ValueError naming a
        field it does not know or one that is missing; a field added later is optional."""
        return cls(**_fields_of(cls, d, derived=("complete",)))


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
    #: What ran, in a few words: "cpu · 8 tasks × 500 ms", "work.py:work(30) · 8 tasks".
    label: str = ""
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
            "label": self.label,
            "notes": list(self.notes),
            "results": [r.as_dict() for r in self.results],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CompareResult:
        """The comparison :meth:`as_dict` wrote (ValueError, naming the field, if it is not
        one): how a saved trace brings a comparison back."""
        kw = _fields_of(cls, d)
        results = kw["results"]
        if not isinstance(results, list) or not all(isinstance(x, Mapping) for x in results):
            raise ValueError("results: expected a list of objects")
        kw["results"] = []
        for i, x in enumerate(results):
            try:
                kw["results"].append(ModelResult.from_dict(x))
            except ValueError as e:
                raise ValueError(f"results[{i}].{e}") from None
        return cls(**kw)


def _fields_of(cls: type, d: Mapping[str, Any], derived: tuple[str, ...] = ()) -> dict[str, Any]:
    """``d``'s entries as keyword arguments of the dataclass ``cls``: every field without a
    default must be there, nothing unknown may be (``derived``: keys written for readers, not
    fields, and ignored)."""
    if not isinstance(d, Mapping):
        raise ValueError(f"expected an object, got {type(d).__name__}")
    known = {f.name: f for f in fields(cls)}
    for k in d:
        if k not in known and k not in derived:
            raise ValueError(f"{k}: unknown field")
    for name, f in known.items():
        if name not in d and f.default is MISSING and f.default_factory is MISSING:
            raise ValueError(f"{name}: missing")
    return {k: v for k, v in d.items() if k in known}


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


COLUMNS = ("model", "python", "wall_s", "startup_s", "speedup", "speedup_without_startup", "busy_cores",
           "machine_cores", "peak_mb", "gui_lag_p99_ms", "tasks_per_s", "overhead_ms", "winner",
           "reading")


def row(r: ModelResult) -> dict[str, Any]:
    """One model's figures as a flat row (for CSV and tables). Speed-up, winner and reading
    are filled in once the whole comparison is done; before that they are None / False / "".
    ``partial``: it ran but did not complete (its figures describe part of a run)."""
    return {
        "model": r.model,
        "status": r.status,
        "partial": r.partial,
        "wall_s": r.wall_s,
        "startup_s": r.startup_s,
        "speedup": r.speedup,
        "speedup_without_startup": r.speedup_without_startup,
        "speedup_basis": r.speedup_basis,
        "busy_cores": r.busy_cores,
        "machine_cores": r.machine_cores,
        "baseline_cores": r.baseline_cores,
        "peak_mb": None if r.peak_rss_bytes is None else r.peak_rss_bytes / 2**20,
        "gui_lag_p99_ms": r.gui_lag_p99_ms,
        "tasks_per_s": r.tasks_per_s,
        "overhead_ms": None if r.overhead_per_task_s is None else r.overhead_per_task_s * 1e3,
        "workers": r.workers,
        "winner": r.winner,
        "reading": r.reading,
        "python": python_label(r.python) if r.python else None,
        "python_executable": (r.python or {}).get("executable"),
    }


def rows(res: CompareResult) -> list[dict[str, Any]]:
    """One flat row per model (for CSV and tables): :func:`row` of each."""
    return [row(r) for r in res.results]


def _f(v: Any, fmt: str, na: str = "n/a") -> str:
    return na if v is None else format(v, fmt)


#: How the figures a reading quotes are printed, here and in every table: one figure, one text.
CORES_FMT = ".2f"
SPEEDUP_FMT = ".2f"


def format_table(res: CompareResult) -> str:
    """The results table the CLI prints: one row per model, the winner starred, then each
    model's reading. "busy cores" is the run's own (as in its reading); "machine" is every
    program's, this one's included."""
    what = res.label or f"{res.workload} · {res.tasks} tasks × {res.size_s * 1e3:g} ms"
    head = f"compare · {what} · {res.cores} cores{' · CANCELLED' if res.cancelled else ''}"
    cols = ["", "model", "python", "workers", "wall s", "start-up s", "speedup", "w/o start-up",
            "busy cores", "machine", "peak MB", "gui lag p99", "tasks/s", "overhead/task",
            "status"]
    body = []
    for r in res.results:
        body.append([
            "*" if r.winner else "",
            r.model,
            python_label(r.python) if r.python else "-",
            str(r.workers),
            _f(r.wall_s, ".3f", "-"),
            _f(r.startup_s, ".3f", "-"),
            "-" if r.speedup is None else f"{r.speedup:{SPEEDUP_FMT}}x",
            "-" if r.speedup_without_startup is None else f"{r.speedup_without_startup:{SPEEDUP_FMT}}x",
            _f(r.busy_cores, CORES_FMT),
            _f(r.machine_cores, CORES_FMT),
            "n/a" if r.peak_rss_bytes is None else f"{r.peak_rss_bytes / 2**20:.0f}",
            "n/a" if r.gui_lag_p99_ms is None else f"{r.gui_lag_p99_ms:.1f} ms",
            _f(r.tasks_per_s, ".1f", "-"),
            "n/a" if r.overhead_per_task_s is None else f"{r.overhead_per_task_s * 1e3:.1f} ms",
            r.status,
        ])
    widths = [max(len(c), *(len(b[i]) for b in body)) for i, c in enumerate(cols)]
    line = lambda cells: "  ".join(  # noqa: E731
        c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
    ).rstrip()
    out = [head, line(cols)] + [line(b) for b in body]
    out.append("")
    out.extend(r.reading for r in res.results)
    bases = list(dict.fromkeys(r.speedup_basis for r in res.results if r.speedup_basis))
    best = next((r for r in res.results if r.winner), None)
    across = len({python_label(r.python) for r in res.results if r.python}) > 1
    winner = res.winner or f"none ({no_winner_why(res)})"
    if best is not None and across and best.python:
        winner += f" on {python_label(best.python)}"
    out.append("")
    out.append(f"* winner: {winner}"
               + (f" · speedup relative to {bases[0]}" if len(bases) == 1 else "")
               + (" · speed-ups: each against its own interpreter's baseline"
                  if len(bases) > 1 else ""))
    out.extend(res.notes)
    return "\n".join(out)


def no_winner_why(res: CompareResult) -> str:
    """Why a comparison has no winner, in a few words."""
    done = sum(r.complete for r in res.results)
    if done == 0:
        return "no run completed"
    return "only one run completed: nothing to rank it against"
