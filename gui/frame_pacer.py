"""The window's frame rate: 30 frames a second while anything runs or changes, 2.5 when idle.

An idle window still has moving parts (the CPU plot scrolls, the now line moves), but they do
not need 30 repaints a second: at 30 Hz the idle window cost 9.5% of a core (taskscope bench;
target 3% for the window and the engine together), at 5 Hz 2.5-2.7% for the window alone, at
2.5 Hz 1.3-1.5% (a minute after start, when the CPU plot is full). 2.5 Hz is faster than top or
a system monitor refresh. Sampling stays at its own rate: every sample is drawn, four at a time
while idle. Anything that starts work calls :meth:`FramePacer.wake`, so a click is never
answered at the idle rate; events from elsewhere are drawn within 400 ms.

Under load the live rate adapts: when the frames themselves come late (the machine is too busy
to run the window's loop on time, a median of LATE_MS late over a second), drawing every frame
only takes more of the CPU the run needs, so the rate drops to 15 a second; it is back at 30 once
frames have come on time for RECOVER_S. The window says so in its status bar
(``on_loaded``): a slower picture is never passed off as the full rate.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, QTimer

FRAME_MS = 33
IDLE_FRAME_MS = 400
#: Idle this long (no run, no change, no backlog) before the rate drops.
IDLE_AFTER_S = 1.0
#: The live rate while the machine is too busy to give the window its frames on time.
LOADED_FRAME_MS = 66
#: Frames this late (median, in ms, over LATE_WINDOW_S) at the full rate: the machine is busy.
LATE_MS = 8.0
LATE_WINDOW_S = 1.0
#: Back to the full rate once nine frames in ten have come less than LATE_MS / 2 late over
#: this long at the lower rate.
RECOVER_S = 3.0
#: Frames needed in a window before its median counts.
MIN_TICKS = 10


class FramePacer:
    """The frame timer (``timer``, calling ``on_frame``) and its rate. ``on_idle(True)`` when
    the rate drops, ``on_idle(False)`` when it is back up (the GUI-loop lag probe slows down
    with the frames); ``on_loaded(True)`` when the live rate drops because frames come late,
    ``on_loaded(False)`` when it is back at the full rate (see the module docstring)."""

    def __init__(self, parent: QObject, on_frame: Callable[[], None],
                 on_idle: Callable[[bool], None],
                 on_loaded: Callable[[bool], None] | None = None) -> None:
        self.timer = QTimer(parent)
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(FRAME_MS)
        self.timer.timeout.connect(on_frame)
        self.on_idle = on_idle
        self.on_loaded = on_loaded
        self._busy_at = time.monotonic()
        self.idle = False
        #: The live rate is down to LOADED_FRAME_MS: frames came late.
        self.loaded = False
        self._loaded_at = 0.0
        self._last_tick: float | None = None
        self._late: deque[tuple[float, float]] = deque()  # (frame start, ms late)

    @property
    def full_rate(self) -> bool:
        """Drawing at a live rate (full, or lowered under load), not the idle one."""
        return not self.idle

    @property
    def live_ms(self) -> int:
        return LOADED_FRAME_MS if self.loaded else FRAME_MS

    @property
    def fps(self) -> int:
        """Frames a second at the rate in force."""
        return round(1000 / self.timer.interval())

    def _set_interval(self, ms: int) -> None:
        self.timer.setInterval(ms)
        self._last_tick = None  # the first interval after a change says nothing
        self._late.clear()

    def ticked(self, now: float | None = None) -> None:
        """A frame starts (``now``: its time.monotonic()): at a live rate, note how late it
        came, and lower or restore the live rate (see the module docstring)."""
        now = time.monotonic() if now is None else now
        last, self._last_tick = self._last_tick, now
        if self.idle or last is None:
            return
        late = self._late
        late.append((now, (now - last) * 1e3 - self.timer.interval()))
        span = RECOVER_S if self.loaded else LATE_WINDOW_S
        while late and now - late[0][0] > span:
            late.popleft()
        if len(late) < MIN_TICKS:
            return
        ms = sorted(v for _, v in late)
        if not self.loaded and ms[len(ms) // 2] > LATE_MS:  # the median
            self._loaded(True, now)
        elif (self.loaded and now - self._loaded_at >= RECOVER_S
              and ms[len(ms) * 9 // 10] < LATE_MS / 2):  # nine frames in ten on time
            self._loaded(False, now)

    def _loaded(self, on: bool, now: float) -> None:
        self.loaded = on
        self._loaded_at = now
        if not self.idle:
            self._set_interval(self.live_ms)
        if self.on_loaded is not None:
            self.on_loaded(on)

    def pace(self, busy: bool) -> None:
        """After a frame: keep the live rate while ``busy``; drop to the idle rate once idle
        for IDLE_AFTER_S."""
        if busy:
            self.wake()
        elif time.monotonic() - self._busy_at > IDLE_AFTER_S and not self.idle:
            self.idle = True
            self._set_interval(IDLE_FRAME_MS)
            if self.loaded:  # the next run starts at the full rate, and says nothing
                self._loaded(False, time.monotonic())
            self.on_idle(True)

    def wake(self) -> None:
        """Back to the live frame rate at once (called when work starts)."""
        self._busy_at = time.monotonic()
        if self.idle:
            self.idle = False
            self._set_interval(self.live_ms)
            self.on_idle(False)
