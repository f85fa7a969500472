"""Read-only replay of a saved trace, in a window of its own.

A replay is a :class:`~gui.main_window.MainWindow` built on the store that
:func:`engine.trace.load_trace` fills, with no :class:`engine.Session` behind it. The views read
that store exactly as they read a live one (same table models, same timeline data, same CPU
view), so a replay shows what the live window showed.

Why a second window, not a mode of the main one: the live session must keep running and stay
visible, undisturbed, while a trace is open (issue 6: opening a file "changes nothing"). A
separate window also lets a user put a saved run next to a live one, and closing it simply
drops the replay's store. In a replay window nothing can be started or cancelled: the run form,
Start/Cancel actions and every Cancel/Kill column are gone, their shortcuts cleared (so Ctrl+R,
Esc and F still belong to the live window), and the title says ``Replay — <file>``.

Heavy work stays off the GUI thread: :func:`prepare` (parse, validate, rebuild the store, lay
out every timeline bar) is Qt-free and runs on a worker thread; the window then only fills its
models from ready data.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QLabel

from engine.trace import Replay, load_trace

from .task_table import RunTableModel, TaskTableModel
from .timeline_data import TimelineData

if TYPE_CHECKING:
    from .main_window import MainWindow

TITLE_PREFIX = "Replay — "


@dataclass(frozen=True)
class PreparedReplay:
    """A loaded trace plus its timeline bars, laid out off the GUI thread."""

    replay: Replay
    timeline: TimelineData


def replay_end_ns(replay: Replay) -> int:
    """The last instant the trace knows about: where "now" stands still in a replay."""
    end = replay.origin_ns
    for r in replay.runs:
        end = max(end, r.start_ns, r.end_ns or 0)
    for t in replay.tasks:
        end = max(end, t.queued_ns, t.start_ns or 0, t.end_ns or 0, t.cancel_requested_ns or 0)
    if replay.samples:
        end = max(end, max(s.t_ns for s in replay.samples))
    return end


def model_of(replay: Replay) -> Callable[[int], str]:
    """run id -> the run's model name, from the specs saved in the trace."""
    models = {r.run_id: (r.spec.model if r.spec is not None else "") for r in replay.runs}
    return lambda run_id: models.get(run_id, "")


def build_timeline(replay: Replay) -> TimelineData:
    """Every task's bar, laid out on its real worker's lane (Qt-free: any thread)."""
    data = TimelineData(replay.origin_ns)
    data.update(replay.tasks, model_of(replay))
    return data


def prepare(path: str | os.PathLike[str]) -> PreparedReplay:
    """Load a trace and lay out its timeline. Qt-free; raises TraceError (one line)."""
    replay = load_trace(path)
    return PreparedReplay(replay, build_timeline(replay))


def enter_replay_mode(win: MainWindow, replay: Replay) -> None:
    """Turn a freshly built window (no session) into a read-only view of ``replay``."""
    name = replay.path.name
    win.setWindowTitle(f"{TITLE_PREFIX}{name}")
    win.setToolTip("")
    win.controls_pane.hide()

    # Nothing to start or cancel. Shortcuts cleared too: the live window's application-wide
    # Ctrl+R / Esc / F would otherwise become ambiguous, and Qt would fire neither.
    # Every toolbar/window action is about the live session (start, cancel, follow, show the
    # form's code...), so all of them go, not only the ones named here.
    acts = {*win.toolbar.actions(), *win.actions(), win.act_start, win.act_cancel_all,
            win.act_kill_all, win.act_clear, win.act_follow}
    for act in acts:
        if act.isSeparator():
            act.setVisible(False)
            continue
        act.setShortcut(QKeySequence())
        act.setEnabled(False)
        act.setVisible(False)
    for view, cols in ((win.tasks_view, (TaskTableModel.C_CANCEL, TaskTableModel.C_FORCE)),
                       (win.runs_view, (RunTableModel.C_CANCEL, RunTableModel.C_FORCE))):
        for c in cols:
            view.setColumnHidden(c, True)
    meta = replay.meta
    banner = QLabel(
        f"<b>Read-only replay</b> of {name} · {replay.scope} trace · "
        f"{len(replay.runs)} run{'s' if len(replay.runs) != 1 else ''}, "
        f"{len(replay.tasks):,} tasks, {len(replay.samples):,} CPU samples · exported "
        f"{str(meta.get('exported_at', '?'))[:19].replace('T', ' ')} · "
        f"Python {str(meta.get('python', '?')).split()[0]}")
    banner.setObjectName("hint")
    banner.setToolTip(str(replay.path))
    win.toolbar.addWidget(banner)
    win.replay_banner = banner  # type: ignore[attr-defined]
    for w in (win.st_events, win.st_frame):
        w.hide()
    win.st_tasks.setToolTip("As recorded when the trace was exported")

    models = model_of(replay)
    for r in replay.runs:
        win.run_model[r.run_id] = models(r.run_id)
        win.run_force[r.run_id] = False
        win.run_gui_loop[r.run_id] = False

    # Fill the views once, from ready data (the frame timer never runs in a replay).
    store = replay.store
    for r in sorted(store.runs(), key=lambda r: r.run_id):
        win.runs.add(r)
        win.tasks.add(store.tasks(r.run_id))
    if win.tl_data.n == 0 and replay.tasks:  # not prepared off-thread: lay the bars out now
        win.tl_data.update(replay.tasks, models)
    win.ev_cursor = store.event_count
    samples, win.sample_cursor = store.read_samples(0)
    win.cpu.set_replay(replay.origin_ns, len(samples))
    if samples:
        win.cpu.add_samples(samples)
        win.last_sample = samples[-1]
        win.cpu.redraw(win.clock_ns())

    tl = win.timeline
    tl.set_follow(False)
    tl.item.refresh()
    tl.now_line.set_text("end")
    pi = tl.getPlotItem()
    pi.setLabel("bottom", "time since the trace starts", units="s")
    win.tl_hint.setText("wheel: zoom · drag: pan · click: select")
    # The CPU plots follow the timeline's time range (same axis: seconds since the start).
    win.cpu.cores_plot.setXLink(tl)
    end_s = max(win.now_s(), 1e-3)
    pad = end_s * 0.02
    pi.getViewBox().setRange(xRange=(-pad, end_s + pad),
                             yRange=(0, max(8, win.tl_data.rows)), padding=0)
    tl.tick()
    tl.set_follow(False)
    win._status()
