"""What the GUI figures share: the frame budget, the progress callback, the GUI-lag figure."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from engine.bench.figures import Figure
from engine.probes import lag_stats

#: One frame at 60 Hz: the budget for GUI-loop lag and for painting the timeline.
FRAME_BUDGET_MS = 16.0

#: Progress lines on stderr ("[ 12.3 s] cancel latency").
Say = Callable[[str], None]


def pct_of_core(cpu_s: float, wall_s: float) -> float:
    """CPU seconds over wall seconds, as percent of one core."""
    return 100.0 * cpu_s / wall_s if wall_s > 0 else 0.0


def lag_figure(key: str, label: str, stats: dict[str, float] | None, n: int,
               target: float | None, note: str, timer: str = "a 20 ms timer") -> Figure:
    """A GUI-loop lag figure: p99 against ``target``, p50 and max beside it (None: no probe)."""
    if not stats:
        return Figure(key, label, None, "ms", target, note="no lag probe on the GUI loop")
    return Figure(key, label, round(stats["p99"], 1), "ms", target,
                  note=f"p50 {stats['p50']:.1f} ms, max {stats['max']:.1f} ms over {n} "
                       f"firings of {timer}; {note}",
                  extra={"p50_ms": round(stats["p50"], 2), "p99_ms": round(stats["p99"], 2),
                         "max_ms": round(stats["max"], 2), "firings": n})


def probe_stats(win: Any, t0_ns: int, t1_ns: int) -> tuple[dict[str, float] | None, int]:
    """GUI-loop lag stats of the firings inside [t0_ns, t1_ns] (the window's "gui" probe)."""
    probe = win.session.loop_probe  # measured in the window's process
    if probe is None:
        return None, 0
    vals = [ms for t, ms in list(probe.history) if t0_ns <= t <= t1_ns]
    return lag_stats(vals), len(vals)


@contextmanager
def settings_elsewhere() -> Iterator[str]:
    """Point the app's QSettings at a temporary folder (removed after) for a probe's window.

    A bench opens the window offscreen: it must neither change what the user's window remembers
    nor start from it (a remembered window comes back at the offscreen screen's size, the form
    squeezed: seen, an 800x800 layout at 1366x768)."""
    import shutil
    import tempfile

    from PySide6.QtCore import QSettings

    folder = tempfile.mkdtemp(prefix="taskscope-bench-settings-")
    for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, folder)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
