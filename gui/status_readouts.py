"""The status bar's readouts: loop lags, GIL wait, events a second, frame time, tasks running.

The window hands them its latest figures (:meth:`StatusReadouts.show`); each label is opaque
and only set when asked, so a refresh repaints the labels alone. Each has a fixed width (so a
changing figure never lays the bar out again) that is as narrow as its text: the bar's left
part shows the window's messages, and while one shows, the two least needed readouts (events
and frame time) step aside for it, so "Saved ...: PATH" is read whole on a laptop's screen.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QLabel, QSizeGrip, QStatusBar

from . import theme

TIPS = {
    "tasks": "Runs not yet ended, and their tasks running now",
    "gui": "GUI-loop lag: worst lateness of a timer on this window's event loop over the last second (every "
           "20 ms while anything runs, every 250 ms while idle). Over ~50 ms the window feels "
           "sluggish.",
    "engine": "Engine-loop lag: worst lateness of a timer on the engine's own asyncio loop (where coroutine "
              "workloads run), in the engine process.",
    "gil": "Share of time a probe thread in the engine process waited for the GIL: how much "
           "that process's CPU-bound Python threads (the threads model) contend. The window has "
           "a process, and a GIL, of its own. Measured only while a run is active: between "
           "runs the probe rests. On a free-threaded build with the GIL off there is nothing "
           "to wait for: it says 'no GIL', and threads show in the CPU view running at once.",
    "events": "Task events the engine recorded per second (queued, started, progress, ended, "
              "…).",
    "frame": "Time this window spent on its last frames (draining + drawing). \"15 fps: "
             "busy\": frames came late, so the window draws 15 frames a second instead of 30 "
             "until the machine frees up.",
}


def lag_text(name: str, ms: float | None) -> tuple[str, str | None]:
    """A lag readout's text and colour (None: the theme's): amber over 30 ms, red over 100."""
    if ms is None:
        return f"{name} –", None
    return f"{name} {ms:.0f} ms", (theme.ERROR if ms > 100 else theme.WARN if ms > 30 else None)


#: Events after which a label may have been polished again (a new parent: its style sheet rules
#: apply anew).
_POLISHED = (QEvent.Type.Polish, QEvent.Type.StyleChange, QEvent.Type.ParentChange)


class Readout(QLabel):
    """A status bar readout, opaque (like the CPU pane's readouts): nothing under it is
    repainted with it. Its auto-fill is set again each time it is polished: a style sheet rule
    that gives a label a box (the theme's padding) turns auto-fill off when it polishes it,
    and the status bar and the window behind it were repainted with every readout.

    Plain text in one colour (:meth:`set_reading`): a rich-text label parses its HTML and lays
    out a text document on every new text, twice the cost of a plain one (214 against 103 us a
    change and repaint, issue 17), and the figures change several times a second while a run
    is live. A warning colours the whole readout, not just its number."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setAutoFillBackground(True)
        self._colour: str | None = None

    def colour(self) -> str | None:
        """The readout's warning colour, or None (the theme's text colour)."""
        return self._colour

    def set_reading(self, text: str, colour: str | None = None) -> None:
        """Show ``text`` in ``colour`` (None: the theme's text colour)."""
        if colour != self._colour:
            self._colour = colour
            self._apply_colour()
        self.setText(text)

    def _apply_colour(self) -> None:
        pal = self.palette()
        pal.setColor(QPalette.ColorRole.WindowText,
                     QColor(self._colour or QApplication.palette().color(
                         QPalette.ColorRole.WindowText)))
        self.setPalette(pal)

    def event(self, ev: QEvent) -> bool:
        done = super().event(ev)
        if ev.type() in _POLISHED:
            self.setAutoFillBackground(True)
            if self._colour is not None:  # a polish sets the style sheet's palette again
                self._apply_colour()
        return done


class StatusReadouts:
    """The labels at the right of a status bar (``gui``, ``engine``, ``gil``, ``events``,
    ``frame``, ``tasks``), in that order."""

    def __init__(self, bar: QStatusBar) -> None:
        self.gui = Readout("GUI lag –")
        self.engine = Readout("engine lag –")
        self.gil = Readout("GIL wait –")
        self.events = Readout("0 events/s")
        self.frame = Readout("frame –")
        self.tasks = Readout("")
        labels = {"gui": self.gui, "engine": self.engine, "gil": self.gil,
                  "events": self.events, "frame": self.frame, "tasks": self.tasks}
        # The widest text each shows in practice, for its fixed width.
        widest = {"gui": "GUI lag 9999 ms", "engine": "engine lag 9999 ms",
                  "gil": "GIL wait – (idle)", "events": "99,999 events/s",
                  "frame": "frame 99.9 ms (max 999)", "tasks": "99 active runs · 999 running"}
        for key, w in labels.items():
            w.setToolTip(TIPS.get(key, ""))
            fm = w.fontMetrics()
            # A fixed size, height too: a label whose size can change asks its parent to lay
            # out again at every setText, and a status bar answers that by repainting itself
            # whole, and the window behind it (5 times a second while a run is live; issue
            # 17). As high as the bar's layout made it: its row is as high as its tallest
            # item (the size grip, or a label).
            w.ensurePolished()
            text = w.text()
            w.setText(widest[key])
            height = max([w.sizeHint().height(), bar.fontMetrics().height()]
                         + [g.sizeHint().height() for g in bar.findChildren(QSizeGrip)])
            w.setText(text)
            w.setFixedSize(fm.horizontalAdvance(widest[key]) + 18, height)  # + the padding
            bar.addPermanentWidget(w)
        bar.messageChanged.connect(self._message)

    def _message(self, text: str) -> None:
        """A message shows: the events and frame readouts make room for it, until it goes."""
        for w in (self.events, self.frame):
            if not self.recorded:
                w.setVisible(not text)

    recorded = False  # a replay: see set_recorded

    def set_recorded(self) -> None:
        """A replay: no live events or frames to count; the rest is as the trace recorded."""
        self.recorded = True
        for w in (self.events, self.frame):
            w.hide()
        self.tasks.setToolTip("As recorded when the trace was exported")

    def show(self, sample: Any, events: int, dropped: int, gui_lag: dict[str, float] | None,
             frame_ms: Iterable[float], active: int, running: int,
             lowered_fps: int | None = None) -> None:
        """``sample``: the latest engine sample (or None); ``events``: task events in the last
        second; ``gui_lag``: this process's own GUI-loop lag figures, if it measures them
        (else the sample's); ``frame_ms``: the last frames' times; ``active`` runs with
        ``running`` tasks; ``lowered_fps``: the frame rate, when it is lowered because the
        machine is busy (the frame readout says so)."""
        s = sample
        self.events.setText(f"{events:,} event{'s' if events != 1 else ''}/s"
                            + (f" · {dropped:,} dropped" if dropped else ""))
        if gui_lag is not None:  # measured in this process, over the last second
            self.gui.set_reading(*lag_text("GUI lag", gui_lag["max"]))
        elif s is not None:
            self.gui.set_reading(*lag_text("GUI lag", s.lag_ms.get("gui")))
        if s is not None:
            self.engine.set_reading(*lag_text("engine lag", s.lag_ms.get("engine")))
            if s.gil_disabled:
                self.gil.set_reading("no GIL (free-threaded)")
            elif s.gil is None:
                self.gil.set_reading("GIL wait – (idle)")  # the probe rests between runs
            else:
                self.gil.set_reading(f"GIL wait {s.gil * 100:.0f}%", theme.ERROR if s.gil > 0.5
                                     else theme.WARN if s.gil > 0.1 else None)
        fm = sorted(frame_ms)
        if lowered_fps is not None:
            self.frame.set_reading(f"{lowered_fps} fps: busy"
                                   + (f" · {fm[len(fm) // 2]:.1f} ms" if fm else ""), theme.WARN)
        elif fm:
            self.frame.set_reading(f"frame {fm[len(fm) // 2]:.1f} ms (max {fm[-1]:.0f})")
        else:  # no frame timed yet: never a stale "busy"
            self.frame.set_reading("frame –")
        self.tasks.setText(f"{active} active run{'s' if active != 1 else ''} · "
                           f"{running} running")
