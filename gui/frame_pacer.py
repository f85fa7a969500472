"""The window's frame rate: 30 frames a second while anything runs or changes, 2.5 when idle.

An idle window still has moving parts (the CPU plot scrolls, the now line moves), but they do
not need 30 repaints a second: at 30 Hz the idle window cost 9.5% of a core (taskscope bench;
target 3% for the window and the engine together), at 5 Hz 2.5-2.7% for the window alone, at
2.5 Hz 1.3-1.5% (a minute after start, when the CPU plot is full). 2.5 Hz is faster than top or
a system monitor refresh. Sampling stays at its own rate: every sample is drawn, four at a time
while idle. Anything that starts work calls :meth:`FramePacer.wake`, so a click is never
answered at the idle rate; events from elsewhere are drawn within 400 ms.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, QTimer

FRAME_MS = 33
IDLE_FRAME_MS = 400
#: Idle this long (no run, no change, no backlog) before the rate drops.
IDLE_AFTER_S = 1.0


class FramePacer:
    """The frame timer (``timer``, calling ``on_frame``) and its rate. ``on_idle(True)`` when
    the rate drops, ``on_idle(False)`` when it is back up (the GUI-loop lag probe slows down
    with the frames)."""

    def __init__(self, parent: QObject, on_frame: Callable[[], None],
                 on_idle: Callable[[bool], None]) -> None:
        self.timer = QTimer(parent)
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(FRAME_MS)
        self.timer.timeout.connect(on_frame)
        self.on_idle = on_idle
        self._busy_at = time.monotonic()

    @property
    def full_rate(self) -> bool:
        return self.timer.interval() == FRAME_MS

    def pace(self, busy: bool) -> None:
        """After a frame: keep the full rate while ``busy``; drop to the idle rate once idle
        for IDLE_AFTER_S."""
        if busy:
            self.wake()
        elif time.monotonic() - self._busy_at > IDLE_AFTER_S and self.full_rate:
            self.timer.setInterval(IDLE_FRAME_MS)
            self.on_idle(True)

    def wake(self) -> None:
        """Back to the full frame rate at once (called when work starts)."""
        self._busy_at = time.monotonic()
        if not self.full_rate:
            self.timer.setInterval(FRAME_MS)
            self.on_idle(False)
