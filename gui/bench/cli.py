"""The ``taskscope bench`` command: its options, the order of its steps, the table and JSON.

Order matters: everything that starts processes from this process without the engine's
forkserver (the raw ``ProcessPoolExecutor`` baseline forks) runs *before* Qt is imported.
Nothing forks after Qt starts. Importing this module is Qt-free.

A new family of figures is one module returning :class:`~engine.bench.figures.Figure`s (in
:mod:`engine.bench` if it needs no window, else here in :mod:`gui.bench`), one step in
:func:`run_bench`, and, if its keys start a new section of the table, their prefix in
:data:`SECTIONS` (keys outside every section come last).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from importlib.metadata import version
from typing import Any

import psutil

from engine.bench.cancel import cancel_latency_figures
from engine.bench.figures import Figure, format_table
from engine.bench.memory import memory_figure
from engine.bench.overhead import overhead_figures
from engine.bench.pipeline import pipeline_figure
from engine.bench.pool import pool_startup_figure
from engine.bench.sampler_cost import sampler_cost_figure
from engine.bench.size import size_figure

from .common import Say
from .observer import observer_figures
from .startup import startup_figures
from .window import window_figures


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover - not on Linux/macOS
        return None


def machine_info() -> dict[str, Any]:
    """CPU model, cores, RAM, Python and PySide6 versions (PySide6 read from its metadata, so
    this does not import Qt)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        pyside = version("PySide6-Essentials")
    except Exception:
        try:
            pyside = version("PySide6")
        except Exception:
            pyside = "unknown"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "pyside6": pyside,
        "qt_platform": os.environ.get("QT_QPA_PLATFORM", ""),
    }


#: The table's order: figures grouped by key prefix, each group in the order it was measured.
SECTIONS = ("overhead.", "gui.", "observer.", "pipeline.", "paint.", "cancel.", "size.",
            "idle.", "startup.", "memory.")


def _ordered(figs: list[Figure]) -> list[Figure]:
    def rank(f: Figure) -> int:
        return next((i for i, p in enumerate(SECTIONS) if f.key.startswith(p)), len(SECTIONS))

    return sorted(figs, key=rank)  # stable: each section keeps its own order


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="taskscope bench",
        description="Measure engine overhead against raw Python, GUI responsiveness with the "
                    "window open (offscreen unless QT_QPA_PLATFORM says otherwise), event "
                    "pipeline, timeline paint, cancel latency, idle cost, start-up and memory; "
                    "print each figure against its target. Exits 0 even when a target is "
                    "missed (the table says NO); non-zero only on errors.")
    ap.add_argument("--quick", action="store_true", help="smaller runs (under 30 s)")
    ap.add_argument("--json", metavar="PATH|-", help="write every figure as JSON ('-': stdout)")
    return ap.parse_args(list(argv))


def _dask_figures(quick: bool) -> list[Figure]:
    """The dask model's figures, when this interpreter has it (``taskscope[dask]``)."""
    from engine.models import model_info

    if not model_info("dask").available:
        return []
    from engine.bench.dask import dask_figures

    return dask_figures(quick)


def run_bench(quick: bool, say: Say) -> tuple[list[Figure], list[str]]:
    """Every figure, in an order that never forks after Qt starts. Returns (figures, errors)."""
    figs: list[Figure] = []
    errors: list[str] = []
    steps: list[tuple[str, Callable[[], list[Figure]]]] = [
        ("engine overhead per task (monitoring on, then bare)", lambda: overhead_figures(quick)),
        ("process pool start-up", lambda: [pool_startup_figure(quick)]),
        ("event pipeline (headless)", lambda: [pipeline_figure(quick)]),
        ("cancel latency", lambda: cancel_latency_figures(quick)),
        ("task size", lambda: [size_figure(quick)]),
        ("memory", lambda: [memory_figure()]),
        ("start-up (fresh processes)", lambda: startup_figures(quick)),
        ("observer: the window during a live run, and headless",
         lambda: observer_figures(quick, say)),
        ("sampler cost", lambda: [sampler_cost_figure(quick)]),
        ("dask (a LocalCluster)", lambda: _dask_figures(quick)),
        ("window", lambda: window_figures(quick, say)),  # imports Qt: last
    ]
    for name, step in steps:
        say(name)
        try:
            figs += step()
        except Exception as e:  # report it, keep measuring the rest
            errors.append(f"{name}: {type(e).__name__}: {e}")
    return _ordered(figs), errors


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    out: Any = None
    if args.json and args.json != "-":
        try:
            out = open(args.json, "w", encoding="utf-8")  # noqa: SIM115 - closed below
        except OSError as e:
            print(f"taskscope: error: --json: cannot write {args.json}: {e.strerror}",
                  file=sys.stderr)
            return 2
    table_to = sys.stderr if args.json == "-" else sys.stdout
    t0 = time.monotonic()
    started = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
    load0 = _loadavg()

    def say(msg: str) -> None:
        print(f"[{time.monotonic() - t0:5.1f} s] {msg}", file=sys.stderr, flush=True)

    figs, errors = run_bench(args.quick, say)
    elapsed = time.monotonic() - t0
    load1 = _loadavg()
    info = machine_info()
    # Where the fresh windows of the observer figures were shown (a real X display or not).
    info["displays"] = sorted({str(f.extra["display"]) for f in figs if "display" in f.extra})
    head = (f"taskscope bench{' --quick' if args.quick else ''}: {info['cpu']}, "
            f"{info['cores']} cores, {info['ram_gib']} GiB, Python {info['python']}, "
            f"PySide6 {info['pyside6']}, Qt platform {info['qt_platform'] or 'default'}"
            + (f" (fresh windows: {', '.join(info['displays'])})" if info["displays"] else "")
            + f"; {started}; {elapsed:.0f} s; load average {load0} before, {load1} after")
    print(head, file=table_to)
    print(format_table(figs), file=table_to)
    missed = [f.key for f in figs if f.ok is False]
    print(f"{len(figs)} figures, {sum(f.ok is True for f in figs)} targets met, "
          f"{len(missed)} missed" + (f": {', '.join(missed)}" if missed else ""), file=table_to)
    for e in errors:
        print(f"taskscope bench: error: {e}", file=sys.stderr)
    if args.json:
        doc = {"command": "taskscope bench" + (" --quick" if args.quick else ""),
               "quick": args.quick, "started": started, "elapsed_s": round(elapsed, 1),
               "machine": info, "loadavg_before": load0, "loadavg_after": load1,
               "figures": [f.as_dict() for f in figs], "errors": errors}
        text = json.dumps(doc, indent=2, ensure_ascii=False, default=_json_default)
        if out is None:
            print(text)
        else:
            with out:
                out.write(text + "\n")
    return 1 if errors else 0


def _json_default(o: Any) -> Any:
    if isinstance(o, float) and not math.isfinite(o):
        return None
    return str(o)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
