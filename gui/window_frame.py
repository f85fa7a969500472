"""The window's frame: once per frame tick, drain the engine's state and update every view.

:class:`FrameTick` is a part of :class:`~gui.main_window.MainWindow` (a mixin), the one place
where state reaches the views: one pump of the engine's events and samples per frame (in
batches, never per event), then each view updated in bulk, the task table half a frame later in
a paint pass of its own, the status bar a few times a second. Every cost here was measured
(``taskscope bench``, the window's CPU while a run is live) before it was cut.
"""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtWidgets import QMainWindow

from engine import Pumped, TaskRecord

from .frame_pacer import FRAME_MS

#: The status bar's figures: twice a second while idle, 5 times a second while anything runs.
IDLE_STATUS_S = 0.5
LIVE_STATUS_S = 0.2
#: Running durations in the task table move at 5 Hz (every 6th frame at 30 Hz).
TABLE_TICK_FRAMES = 6
#: Tasks the tables and the timeline keep. Past it, the oldest *finished* runs leave the view
#: (down to 3/4 of it, so this is not redone every frame); active runs always stay.
MAX_SHOWN_TASKS = 1_000_000


class FrameTick(QMainWindow):
    """The frame tick and what it drives (see the module docstring). The views, the session
    and the counters are the window's own (built in ``MainWindow.__init__``)."""

    # Built by the window; named here for the reader and the type checker.
    session: Any
    store: Any
    _closed: bool

    def frame(self) -> None:
        """Drain events and samples once, update every view in bulk."""
        if self._closed:
            return
        t0 = time.perf_counter()
        self.pacer.ticked()
        # The engine runs in its own process (engine.remote): one pump folds what it sent
        # since the last frame into the mirror store, within a time budget.
        pumped = self.session.pump() if self.session is not None else Pumped()
        changed = pumped.changed
        n_events = pumped.events
        self.dropped += pumped.dropped
        if self.session is not None and self.engine_gone is None and self.session.gone_reason:
            self.engine_gone = self.session.gone_reason
            self.status_message(
                f"The engine process stopped ({self.engine_gone}): runs cannot go on; close "
                "and reopen TaskScope")
        now = time.monotonic()
        self.ev_window.append((now, n_events))
        while self.ev_window and now - self.ev_window[0][0] > 1.0:
            self.ev_window.popleft()

        known = self.runs.row_of
        live = False
        runs_key = []
        for rec in self.store.runs():
            if rec.end_ns is None:
                live = True
                # A cluster's address and dashboard, once the run reports them.
                self.controls.cluster.show_cluster(rec.info.get("cluster"))
            runs_key.append((rec.run_id, rec.end_ns, tuple(rec.counts.values())))
            if rec.run_id not in known and (rec.run_id in self.run_model
                                            or self.compare.adopt(rec)):
                self.show_run(rec)
                self.controls.cluster.show_cluster(rec.info.get("cluster"))
                if self.tasks.rowCount() > MAX_SHOWN_TASKS:
                    self._bound_shown()
        if changed:
            recs: list[TaskRecord] = []
            row_of = self.tasks.row_of
            all_recs = self.tasks.recs
            for tid in changed:
                row = row_of.get(tid)
                if row is not None:
                    recs.append(all_recs[row])
            self.tl_data.update(recs, lambda r: self.run_model.get(r, ""))
            self.compare.tasks_changed(recs)
            self._table_changed |= changed
        table_tick = live and self._frames % TABLE_TICK_FRAMES == 0
        if runs_key != self._runs_key:
            # The runs table: whole at once when a run's counts or end change (it was redrawn
            # whole on every live frame), and 5 times a second only the running runs' walls.
            self._runs_key = runs_key
            self.runs.refresh()
        elif table_tick:
            self.tables.repaint_running_walls()
        if table_tick:
            # Running durations grow between events: redraw them 5 times a second, not on
            # every frame (rows whose record changed are redrawn at once by the model's
            # dataChanged). At 30 Hz this repaint was the window's largest cost under load,
            # which on saturated cores is what makes it late.
            self._table_tick = True
        if (self._table_changed or self._table_tick) and not self._table_timer.isActive():
            self._table_timer.start()
        self.pacer.pace(live or bool(changed) or bool(pumped.backlog))
        self._frames += 1
        if self._frames % 10 == 0 and self.proxy.active:
            self.proxy.refresh()  # an active filter or sort follows state changes at 3 Hz

        # A view in a hidden tab is not moved: following the clock is a new range, a scene
        # update and an axis update on every frame (about a third of a millisecond of CPU),
        # for nothing on screen. The tab ticks its view at once when it shows (_tab_shown).
        if self.timeline.isVisible():
            self.timeline.tick()
        self.compare.tick()
        samples, self.sample_cursor = self.store.read_samples(self.sample_cursor)
        if samples:  # the plot moves when a sample arrives (10 Hz), not on every frame
            self.cpu.add_samples(samples)
            self.last_sample = samples[-1]
            # After the views above: the timeline's scene is processed first, and the CPU
            # plots (repainted from here, see CpuView._frame_driven) join its paint pass.
            self.cpu.redraw(self.clock_ns())
        live = live or self.compare.active
        if self._was_live and not live:
            self._all_ended()
        self._was_live = live
        if self._started:
            self._say_ended()
        # The status bar's figures (lags, frame time) change on nearly every frame, and each
        # changed rich-text label is laid out and repainted with the bar under it: they are
        # refreshed twice a second while idle, 5 times a second while anything runs (faster
        # than anyone reads a number; at 30 Hz this was a repaint of the bar on every frame).
        if now - self._status_at >= (LIVE_STATUS_S if self.pacer.full_rate else IDLE_STATUS_S):
            self._status_at = now
            self.refresh_status()
        self.frame_ms.append((time.perf_counter() - t0) * 1e3)

    def _tab_shown(self, i: int) -> None:
        """A tab shows: its view catches up with the clock before it is painted (the frame
        does not move a view in a hidden tab)."""
        page = self.views.widget(i)
        if page is self.tl_pane:
            self.timeline.tick()
        elif page is self.compare_scroll:
            self.compare.view.tick()

    def _all_ended(self) -> None:
        """Every run (and comparison) has ended: the timeline stops following the clock, so
        the bars stay where they are (they slid off the left edge), and messages about the
        runs go."""
        if self.act_follow.isChecked():
            self.act_follow.setChecked(False)
        if self._run_message is not None:
            if self.statusBar().currentMessage() == self._run_message:
                self.statusBar().clearMessage()
            self._run_message = None

    def _say_ended(self) -> None:
        """Once the runs started by hand have ended, the form's line says how, instead of
        "Started run 1." (issue 16)."""
        runs = [self.store.run(rid) for rid in sorted(self._started)]
        if any(r is not None and r.end_ns is None for r in runs):
            return
        done = [r for r in runs if r is not None]
        self._started.clear()
        if not done:
            return
        parts = []
        for r in done:
            counts = ", ".join(f"{n} {state}" for state, n in r.counts.items() if n)
            wall = ((r.end_ns or r.start_ns) - r.start_ns) / 1e9
            parts.append(f"Run {r.run_id} ended after {wall:.2f} s: {counts or 'no tasks'}.")
        self.controls.say(" ".join(parts))

    def _table_paint(self) -> None:
        """Mark the task table's changed rows (and, at 5 Hz, its running durations and
        progress) for a repaint, half a frame after :meth:`frame`. Qt paints every dirty part of a window in
        one pass: the timeline and the table together were 8-10 ms of GUI thread at a time
        on saturated cores, and a timer due then ran that late (``taskscope bench``, GUI lag
        p99). Apart, each pass is about half that. The model's data is current at once; only
        the repaint moves, by ~16 ms."""
        if self._closed:
            return
        changed, self._table_changed = self._table_changed, set()
        tick, self._table_tick = self._table_tick, False
        if tick:
            changed |= self._table_progress
            self._table_progress = set()
        if changed:
            # A running task's progress moves on nearly every frame; its cell is repainted
            # with the running durations at the table tick (5 Hz), not on every frame: a
            # table pass of its own on every frame was the largest part of the window's
            # paints during a live run (issue 17). State, worker, core and times still show
            # half a frame after they change.
            held = self.tasks.changed(changed, progress=tick)
            self._table_progress = (self._table_progress - changed) | held
        if tick:
            self.tables.repaint_running_durations()

    def wake(self) -> None:
        """Back to the full frame rate at once (called when work starts)."""
        self.pacer.wake()

    def _frame_rate_loaded(self, loaded: bool) -> None:
        """The live frame rate dropped because frames came late (the machine is busy), or is
        back up: the status bar says so while it lasts (and the frame readout, while another
        message shows)."""
        bar = self.statusBar()
        if loaded:
            self._load_message = (
                f"Drawing at {self.pacer.fps} frames/s, not {round(1000 / FRAME_MS)}: the "
                "machine is busy (frames came late); back to full rate when it frees up")
            bar.showMessage(self._load_message)
        elif self._load_message is not None:
            if bar.currentMessage() == self._load_message:
                bar.clearMessage()
            self._load_message = None
        self.refresh_status()

    def _probe_idle(self, idle: bool) -> None:
        """The GUI-loop lag probe fires every 250 ms while the window idles, every 20 ms
        otherwise: 50 qasync timers a second were about 1% of a core in an idle window."""
        if self.session is not None:
            self.session.set_loop_idle(idle)

    def refresh_status(self) -> None:
        """The status bar's figures and the task count, from the latest frame's state."""
        runs = self.runs.runs
        gui_lag = self.session.gui_lag() if self.session is not None else None
        self.readouts.show(
            self.last_sample, sum(n for _, n in self.ev_window), self.dropped, gui_lag,
            self.frame_ms, active=sum(1 for r in runs if not r.done),
            running=sum(r.counts.get("running", 0) for r in runs if not r.done),
            lowered_fps=self.pacer.fps if self.pacer.loaded else None)
        self.tables.show_count()

    def _bound_shown(self) -> None:
        """Keep the views' memory bounded (see MAX_SHOWN_TASKS), oldest finished runs first."""
        total, goal = self.tasks.rowCount(), MAX_SHOWN_TASKS * 3 // 4
        drop: set[int] = set()
        for r in self.runs.runs:  # oldest first
            if total <= goal:
                break
            if r.done:
                drop.add(r.run_id)
                total -= len(r.task_ids)
        if drop:
            self.drop_runs(drop)
            self.status_message(
                f"{len(drop)} finished run{'s' if len(drop) != 1 else ''} left the view: it "
                f"keeps at most {MAX_SHOWN_TASKS:,} tasks", 8000)
