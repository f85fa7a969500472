"""The observer probe: ``python -m gui.bench.observer_probe --preset N`` opens the app, starts a
preset story as a user would, and reports what the window cost while the run was live.

The app starts exactly as ``taskscope --preset N --start`` starts it (:func:`gui.app.run`); the
probe, handed the shown window, watches the window's own store from a thread (20 checks a
second: a few microseconds each, inside the figure) until every run it shows has ended, then
prints one line tagged :data:`OBSERVER_TAG` with a JSON object and closes the window:

* ``window_cpu_s`` / ``live_s``: this (the window's) process's CPU, every thread, user +
  system, the counters ``/proc/PID/stat`` keeps, over the live span: from the moment the
  window has a run to the moment it shows the last one ended;
* ``x_cpu_s``: the X server's CPU over the same span, when its pid was given;
* ``lag``: the GUI loop's lag (p50/p99/max ms, firings) over the span, the window's own probe;
* ``frames``: frame ticks in the span; ``lowered``: whether the window lowered its frame
  rate under load at any point of it (:mod:`gui.frame_pacer`); ``runs``: each run's spec and
  wall (the engine's ``RunRecord.wall_s``, as ``taskscope run --json`` reports it).

:mod:`gui.bench.observer` launches it and reads the line. Importing this module is Qt-free
(Qt comes with the app, inside :func:`main`): it is the ``__main__`` of its process, which the
engine's processes may import again.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from typing import Any

import psutil

from engine.clock import now_ns

from .common import probe_stats, settings_elsewhere

#: The probe's report line starts with this; a JSON object follows.
OBSERVER_TAG = "TASKSCOPE_BENCH_OBSERVER"

#: How often the watcher looks at the window's store.
POLL_S = 0.05


def _cpu_s(p: psutil.Process | None) -> float | None:
    if p is None:
        return None
    try:
        t = p.cpu_times()
    except psutil.Error:
        return None
    return t.user + t.system


def watch(win: Any, x_pid: int | None, timeout_s: float) -> dict[str, Any]:
    """Block (on a thread of its own) until the window's runs have ended; what they cost."""
    me = psutil.Process()
    try:
        xserver = psutil.Process(x_pid) if x_pid else None
    except psutil.Error:
        xserver = None
    store = win.store  # the window's mirror of the engine's store, filled by its frame tick
    deadline = time.monotonic() + timeout_s
    while not store.runs():
        if time.monotonic() > deadline:
            return {"error": f"no run appeared in the window within {timeout_s:g} s"}
        time.sleep(POLL_S)
    t0, c0, x0, f0 = now_ns(), _cpu_s(me), _cpu_s(xserver), win._frames
    ended = False
    lowered = False
    while time.monotonic() < deadline:
        lowered = lowered or win.pacer.loaded
        runs = store.runs()
        if runs and all(r.done for r in runs) and not win.compare.active:
            ended = True
            break
        time.sleep(POLL_S)
    t1, c1, x1, f1 = now_ns(), _cpu_s(me), _cpu_s(xserver), win._frames
    stats, n = probe_stats(win, t0, t1)
    out: dict[str, Any] = {
        "live_s": (t1 - t0) / 1e9,
        "window_cpu_s": None if c0 is None or c1 is None else c1 - c0,
        "x_cpu_s": None if x0 is None or x1 is None else x1 - x0,
        "frames": f1 - f0,
        "lowered": lowered,
        "lag": dict(stats or {}, firings=n) if stats else None,
        "runs": [{"spec": r.spec.as_dict(), "wall_s": r.wall_s, "counts": dict(r.counts)}
                 for r in store.runs()],
    }
    if not ended:
        out["error"] = f"the runs did not end within {timeout_s:g} s"
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m gui.bench.observer_probe")
    ap.add_argument("--preset", type=int, required=True)
    ap.add_argument("--x-pid", type=int, default=None, help="the X server's pid, if known")
    ap.add_argument("--timeout", type=float, default=120.0)
    args = ap.parse_args(argv)

    from gui.app import parse_args, run

    def probe(win: Any) -> None:
        loop = win.loop

        def body() -> None:
            try:
                report = watch(win, args.x_pid, args.timeout)
            except Exception as e:  # noqa: BLE001 - reported to the bench, which says it
                report = {"error": f"{type(e).__name__}: {e}"}
            print(OBSERVER_TAG, json.dumps(report), flush=True)
            loop.call_soon_threadsafe(win.close)

        threading.Thread(target=body, name="bench-observer-watch", daemon=True).start()

    # Never the user's remembered window, and nothing written to it.
    with settings_elsewhere():
        return run(parse_args(["--preset", str(args.preset), "--start"]), on_shown=probe)


if __name__ == "__main__":
    sys.exit(main())
