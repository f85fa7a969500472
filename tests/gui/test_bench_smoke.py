"""`taskscope bench --quick` runs every figure of issue 7 and reports each against its target.

One smoke test, in a fresh process (the bench opens its own offscreen window and qasync loop).
It checks the report, never whether a target was met: that depends on the machine, and the
bench itself prints measured against target (the README's "Performance" section has a full run).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gui.app import missing_xcb_libs

#: One or more figures for each of the eight of issue 7 (a prefix each).
EXPECTED = {
    "overhead.asyncio.no-op", "overhead.threads.no-op", "overhead.processes.no-op",
    "overhead.asyncio.1ms", "overhead.threads.1ms", "overhead.processes.1ms",  # 1
    *(f"overhead.{m}.{t}.bare" for m in ("asyncio", "threads", "processes")
      for t in ("no-op", "1ms")),  # issue 17: monitoring on, and bare on a row of its own
    "gui.lag.idle", "gui.lag.saturated", "gui.lag.gil_threads", "gui.gil_contention",  # 2
    "pipeline.events_per_s", "pipeline.window.events_per_s", "pipeline.window.gui_lag",  # 3
    "paint.10k.all", "paint.10k.panned", "paint.100k.all", "paint.100k.panned",
    "paint.1M.all", "paint.1M.panned",  # 4
    "cancel.sequential.p99", "cancel.asyncio.p99", "cancel.threads.p99",
    "cancel.processes.p99", "cancel.asyncio-processes.p99", "cancel.processes.force.p99",  # 5
    "idle.window", "idle.sampler_and_probe",  # 6 (issue 17: the GIL probe in the budget)
    "startup.window_shown", "startup.first_process_result", "startup.workers_import_qt",  # 7
    "memory.per_100k_events",  # 8
    "size.cpu.sequential",  # issue 17: a task of size S takes S
    "startup.pool.processes",  # issue 17: start-up on its own line
    "observer.window_cpu_live", "observer.wall_ratio", "gui.lag.live",  # issue 17: the window
}
if importlib.util.find_spec("distributed") is not None:  # taskscope[dask] (issue 15)
    EXPECTED |= {"overhead.dask.noop", "pipeline.dask.started_latency", "cancel.dask.p99",
                 "cancel.dask.force.p99", "startup.dask.cluster"}


@pytest.mark.timeout(150)
def test_bench_quick_reports_every_figure_against_its_target(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    config = tmp_path / "config"  # where the window would remember itself (QSettings)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(config)}
    t = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "gui.entry", "bench", "--quick", "--json", str(out)],
                       env=env, capture_output=True, text=True, timeout=140)
    took = time.monotonic() - t
    assert p.returncode == 0, p.stderr[-3000:]

    # The bench's offscreen windows leave the user's remembered window alone.
    assert not (config / "TaskScope").exists(), list(config.rglob("*"))
    doc = json.loads(out.read_text(encoding="utf-8"))
    figs = {f["key"]: f for f in doc["figures"]}
    assert set(figs) == EXPECTED, set(figs) ^ EXPECTED
    assert doc["errors"] == []
    assert doc["machine"]["cores"] and doc["machine"]["python"]
    for key, f in figs.items():
        for field in ("measured", "target", "ok", "unit", "label"):
            assert field in f, (key, field)
        assert isinstance(f["measured"], int | float), (key, f)  # measured, not n/a
        if f["target"] is None:
            assert f["ok"] is None, key
        else:
            low = f["low"] if f["sense"] == "range" else -math.inf
            assert f["ok"] is (low <= f["measured"] <= f["target"] if f["sense"] != "min"
                               else f["measured"] >= f["target"]), key

    # The window's figures say where they were measured: a real X display when the bench could
    # get one (it starts its own Xvfb when that is on PATH), else offscreen.
    has_x = (shutil.which("Xvfb") is not None or bool(os.environ.get("DISPLAY"))) \
        and not missing_xcb_libs()
    for key in ("observer.window_cpu_live", "observer.wall_ratio", "gui.lag.live"):
        where = figs[key]["extra"]["display"]
        assert (where != "offscreen") is has_x, (key, where)

    # The table: a header, one row per figure with its measured value and a met column.
    lines = p.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("figure"))
    assert lines[header].split()[:5] == ["figure", "measured", "target", "met", "note"]
    rows = lines[header + 2: header + 2 + len(figs)]
    for f, row in zip(doc["figures"], rows, strict=True):
        assert row.startswith(f["label"]), (f["label"], row)
        met = {True: "yes", False: "NO", None: "-"}[f["ok"]]
        assert f"  {met}  " in row, row
    # --quick is meant to take under 30 s on a quiet 2-core machine; the bound here only
    # catches a runaway (test machines are often loaded by other suites).
    assert took < 140


def test_the_bench_and_its_probes_import_no_qt() -> None:
    """The bench forks its raw process-pool baseline before Qt starts, and each probe module is
    its process's ``__main__``: importing any of them must not load Qt."""
    code = ("import sys, gui.bench.cli, gui.bench.startup_probe, gui.bench.observer_probe; "
            "print(sorted(m for m in sys.modules "
            "if m.split('.')[0] in ('PySide6', 'shiboken6', 'pyqtgraph', 'qasync')))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "[]", p.stdout


def test_the_wall_ratio_is_a_ratio_of_means_and_cpu_a_median() -> None:
    """Preset 5's wall is bimodal (see gui.bench.observer): the ratio compares the means of
    the window's and the headless walls, so one fast headless run against slow window runs
    moves it by its share, not to the fast mode's ratio as a median of two did."""
    from gui.bench.observer import _figures

    reps = [{"window_cpu_pct": c, "runs": [{"wall_s": w}], "frames": 90, "live_s": 3.0}
            for c, w in ((7.0, 2.87), (9.0, 2.87), (8.0, 2.59), (30.0, 2.87))]
    figs = {f.key: f for f in _figures("", "offscreen", "offscreen", reps,
                                       [2.59, 2.59, 2.87, 2.87], [])}
    assert figs["observer.wall_ratio"].measured == round((2.87 * 3 + 2.59) / 4 / 2.73, 3)
    assert figs["observer.window_cpu_live"].measured == 8.5  # one outlier run does not count
