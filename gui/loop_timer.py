"""The GUI loop's lag probe timer: a Qt one-shot timer, cheaper on the window's loop than qasync's
``call_later``.

The probe (:class:`engine.probes.LagProbe`) arms one timer at a time and records how late it
fires; that is what the bench's GUI-lag figures and ``lag_ms["gui"]`` mean. Through qasync, each
arming is a ``call_later``: a Handle, qasync's checks and its ``timerEvent`` dispatch in Python,
on top of the thread's wake-up. A ``QTimer`` re-armed from its own ``timeout`` costs the wake-up
and one Python slot. Same firings, same due times (armed ``interval_s`` after the previous
firing), so the probe measures exactly what it did; a precise timer, so Qt adds none of a coarse
timer's up to 5% of slack to the lateness.

Measured on a bare qasync loop offscreen, only the probe at 20 ms (about 50 firings
a second), the process's CPU over 8 s, runs interleaved, load 1.2-3.2: the probe on
``call_later`` 0.97-1.30% of a core (five runs), on this timer 0.53-0.58% (four runs). The
wake-up alone, a repeating QTimer with nothing connected, is 0.28-0.33%: what is left is that and
the probe's own bookkeeping.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, QTimer

__all__ = ["QtProbeTimer"]


class QtProbeTimer:
    """A :class:`engine.probes.ProbeTimer` on the Qt thread it is made on (the GUI thread)."""

    def __init__(self) -> None:
        self._timer = QTimer()
        self._timer.setSingleShot(True)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._callback: Callable[[], None] | None = None
        self._interval_s = -1.0

    def start(self, interval_s: float, callback: Callable[[], None]) -> None:
        # The probe passes the same callback every time: connect it once, straight to the
        # timer's signal (no Python in between), and set the interval only when it changes.
        if callback != self._callback:
            if self._callback is not None:
                self._timer.timeout.disconnect(self._callback)
            self._timer.timeout.connect(callback)
            self._callback = callback
        if interval_s != self._interval_s:
            self._timer.setInterval(max(1, round(interval_s * 1000)))
            self._interval_s = interval_s
        self._timer.start()

    def cancel(self) -> None:
        self._timer.stop()
