"""Start-up, timed from outside: fresh app processes, launch to first paint and first result.

Each run launches ``python -m gui.bench.startup_probe`` (the app, started the way ``taskscope``
starts it, plus a probe that reports) and reads the probe's report line. Interpreter start is
included: it is part of what a user waits for.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from typing import Any

from engine.bench.figures import Figure
from engine.clock import now_ns

from . import startup_probe
from .startup_probe import STARTUP_TAG


def _startup_once(timeout: float = 60.0) -> dict[str, Any]:
    """One fresh app process: ms from launch to first paint, from the run request to its first
    result, and how many of its workers imported Qt (-1: the check did not run)."""
    env = dict(os.environ)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    t0 = now_ns()
    p = subprocess.run([sys.executable, "-m", startup_probe.__name__], env=env,
                       capture_output=True, text=True, timeout=timeout)
    vals: dict[str, Any] = {}
    for line in p.stdout.splitlines():
        if line.startswith(STARTUP_TAG):
            for item in line.split()[1:]:
                k, _, v = item.partition("=")
                vals[k] = v
    if p.returncode != 0 or "shown_ns" not in vals:
        raise RuntimeError(f"start-up child exited {p.returncode}: {p.stderr.strip()[-400:]}")
    out: dict[str, Any] = {"shown_ms": (int(vals["shown_ns"]) - t0) / 1e6,
                           "qt_workers": int(vals.get("qt_workers", -1)),
                           "workers": int(vals.get("workers", 0)),
                           "qt_error": vals.get("qt_error", "")}
    if "result_ns" in vals:
        out["result_ms"] = (int(vals["result_ns"]) - int(vals["request_ns"])) / 1e6
        out["result_from_launch_ms"] = (int(vals["result_ns"]) - t0) / 1e6
    return out


def startup_figures(quick: bool) -> list[Figure]:
    """Window shown (from launching the app's process), first process result (from the
    request, on the cold pool of a fresh window), and whether any worker imported Qt."""
    reps = 1 if quick else 3
    runs = [_startup_once() for _ in range(reps)]
    shown = statistics.median(r["shown_ms"] for r in runs)
    res = [r["result_ms"] for r in runs if "result_ms" in r]
    launch = [r["result_from_launch_ms"] for r in runs if "result_from_launch_ms" in r]
    qt = max(r["qt_workers"] for r in runs)
    workers = sum(r["workers"] for r in runs)
    errs = {r["qt_error"] for r in runs if r["qt_error"]}
    of = f"median of {reps} fresh process{'es' if reps > 1 else ''}"
    return [
        Figure("startup.window_shown", "start-up: launch to window shown (first paint)",
               round(shown), "ms", None,
               note=f"{of}; `python -m {startup_probe.__name__}` (the app as `taskscope` "
                    f"starts it), interpreter start included",
               extra={"runs_ms": [round(r["shown_ms"], 1) for r in runs]}),
        Figure("startup.first_process_result",
               "start-up: first process task result (cold pool, fresh window)",
               round(statistics.median(res)) if res else None, "ms", None,
               note=f"{of}; from the request right after the window showed; "
                    f"{statistics.median(launch):.0f} ms from launch" if launch
                    else "no result came back",
               extra={"runs_ms": [round(x, 1) for x in res]}),
        Figure("startup.workers_import_qt", "start-up: worker processes that imported Qt",
               None if qt < 0 else qt, "workers", 0,
               note=f"checked {workers} workers (PySide6/shiboken6/pyqtgraph/qasync in "
                    f"sys.modules)" + (f"; {'; '.join(sorted(errs))}" if errs else "")),
    ]
