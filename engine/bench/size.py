"""Task sizes: a task of size S takes S, the engine's machinery included (issue 17).

A "lost per task" reading blames a model for every millisecond a task takes beyond its size,
so an uncontended task must take its size in a session run as users run it, with the sampler
and its GIL probe on (see :mod:`engine.workloads` for what a size means per workload).
"""

from __future__ import annotations

import statistics
import threading
import time

from ..session import Session
from ..spec import make_spec
from ..workloads.calibrate import cpu_chunk
from .figures import Figure


def size_figure(quick: bool) -> Figure:
    """``size.cpu.sequential``: median task duration / nominal size, cpu tasks under sequential,
    in a session with its sampler and GIL probe on, as the CLI and the window run it.

    A task of size S must take S on an idle machine: the engine's own machinery (calibration,
    monitoring) must not lengthen it, or every "lost per task" reading blames the model for
    it. Beside it, a control: a plain loop bounded by its own CPU time on a fresh thread just
    before and just after, whose wall / CPU says how much the machine itself stretched CPU
    time then (1.00 on an idle machine; more when other work took the core, and then the
    figure will miss by about as much)."""
    n, size_s = (4, 0.25) if quick else (8, 0.5)
    before = _cpu_stretch()
    with Session() as s:
        run = s.start(make_spec("sequential", "cpu", n, size_s))
        run.wait(120)
        tasks = s.store.tasks(run.run_id)
        wall = run.record.wall_s
    after = _cpu_stretch()
    d = sorted(t.duration_ns / 1e9 for t in tasks if t.duration_ns)
    ratio = statistics.median(d) / size_s if d else None
    note = (f"{n} tasks of {size_s * 1e3:.0f} ms: {d[0] * 1e3:.0f}-{d[-1] * 1e3:.0f} ms each, "
            f"wall {wall:.2f} s (ideal {n * size_s:.1f} s); control: a plain loop on its own "
            f"CPU clock took {before:.2f}x / {after:.2f}x its CPU time just before / after"
            ) if d and wall else "the run did not finish"
    return Figure("size.cpu.sequential", "task duration / size, sequential cpu (monitoring on)",
                  None if ratio is None else round(ratio, 3), "x", 1.05, sense="range", low=0.95,
                  note=note, extra={"durations_ms": [round(x * 1e3, 1) for x in d],
                                    "wall_s": wall,
                                    "control_stretch": [round(before, 3), round(after, 3)]})


def _cpu_stretch(seconds: float = 0.2) -> float:
    """Wall / CPU time of a plain loop, on a fresh thread, bounded by its own CPU time."""
    out: list[float] = []

    def loop() -> None:
        c0, w0 = time.thread_time(), time.perf_counter()
        while time.thread_time() - c0 < seconds:
            cpu_chunk(10_000)
        out.append((time.perf_counter() - w0) / (time.thread_time() - c0))

    t = threading.Thread(target=loop, name="bench-cpu-control")
    t.start()
    t.join()
    return out[0]
