"""The open window's idle cost: CPU of every TaskScope process while nothing runs.

The window's process, the engine process and their helpers (forkserver, resource tracker), each
from its own CPU counters over the same seconds, plus the window's threads by name and the GUI
loop's lag meanwhile (the machine's own noise, the baseline the loaded lag figures stand on).
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import psutil

from engine.bench.figures import Figure
from engine.clock import now_ns

from .common import lag_figure, pct_of_core, probe_stats


def _app_procs() -> dict[int, Any]:
    """This (the window's) process and every process under it: the engine process, its
    forkserver and resource tracker, workers if any. The idle figure is all of TaskScope."""
    me = psutil.Process()
    procs = {me.pid: me}
    for c in me.children(recursive=True):
        procs[c.pid] = c
    return procs


def _cpu_s(p: Any) -> float | None:
    try:
        t = p.cpu_times()
    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
        return None
    return t.user + t.system


def _idle_timer(win: Any) -> str:
    """The GUI lag probe's timer while the window idles (it fires less often then)."""
    probe = win.session.loop_probe
    ms = (probe.interval_s if probe is not None else 0.02) * 1e3
    return f"a {ms:.0f} ms timer (the probe's interval while the window idles)"


async def idle_figures(win: Any, secs: float) -> list[Figure]:
    """``secs`` of the open window doing nothing: the GUI loop's lag and the CPU of every
    TaskScope process (% of one core), with the window's threads by name."""
    proc = psutil.Process()
    engine_pid = win.session.engine_pid
    names = {t.native_id: t.name for t in threading.enumerate()}
    th0 = {t.id: t.user_time + t.system_time for t in proc.threads()}
    procs = _app_procs()
    c0 = {pid: _cpu_s(p) for pid, p in procs.items()}
    t0 = time.monotonic()
    frames0 = win._frames
    t0_ns = now_ns()
    await asyncio.sleep(secs)
    lag, nlag = probe_stats(win, t0_ns, now_ns())
    wall = time.monotonic() - t0
    c1 = {pid: _cpu_s(p) for pid, p in procs.items()}
    th1 = {t.id: t.user_time + t.system_time for t in proc.threads()}
    frames = win._frames - frames0
    per_proc = {pid: pct_of_core(c1[pid] - c0[pid], wall) for pid in procs
                if c0[pid] is not None and c1[pid] is not None}
    pct = sum(per_proc.values())
    gui_pct = per_proc.get(proc.pid, 0.0)
    engine_pct = per_proc.get(engine_pid, 0.0) if engine_pid != proc.pid else 0.0
    others = pct - gui_pct - engine_pct
    per: dict[str, float] = {}
    for tid, cpu in th1.items():
        name = names.get(tid, "other")
        if tid == threading.main_thread().native_id:
            name = "GUI thread"
        per[name] = per.get(name, 0.0) + pct_of_core(cpu - th0.get(tid, 0.0), wall)
    top = sorted(per.items(), key=lambda kv: -kv[1])[:3]
    fm = sorted(win.frame_ms)
    base = lag_figure(
        "gui.lag.idle", "GUI loop lag p99: window open, idle (the machine's own noise)", lag,
        nlag, None, "no target: the baseline the loaded figures below stand on (other "
                    "processes keeping the cores busy show up here first)",
        timer=_idle_timer(win))
    return [base, Figure(
        "idle.window", "idle window sampling at 10 Hz: all TaskScope processes (% of one core)",
        round(pct, 2), "%", 3.0,
        note=f"{wall:.1f} s idle, {frames} frames ({frames / wall:.0f}/s, median "
             f"{fm[len(fm) // 2] if fm else 0:.1f} ms); window process {gui_pct:.2f}% ("
             + ", ".join(f"{n} {v:.2f}%" for n, v in top)
             + f"), engine process {engine_pct:.2f}%, its helpers {others:.2f}%",
        extra={"seconds": round(wall, 2), "window_process_pct": round(gui_pct, 3),
               "engine_process_pct": round(engine_pct, 3), "helpers_pct": round(others, 3),
               "threads_pct": {k: round(v, 2) for k, v in per.items()}, "frames": frames})]
