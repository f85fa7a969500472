"""The GUI loop's lag probe timer: a Qt one-shot timer, cheaper on the window's loop than qasync's
``call_later``.

The probe (:class:`engine.probes.LagProbe`) arms one timer at a time and records how late it
fires; that is what the bench's GUI-lag figures and ``lag_ms["gui"]`` mean. Through qasync, each
arming is a ``call_later``: a Handle, qasync's checks and its ``timerEvent`` dispatch in Python,
on top of the thread's wake-up. A ``QTimer`` re-armed from its own ``timeout`` costs the wake-up
and one Python slot. Same firings, same due times (armed ``interval_s`` after the previous
firing), so the probe measures exactly what it did; a precise timer, so Qt adds none of a coarse
timer's up to 5% of slack to the lateness.

Measured on a bare qasync loop offscreen, the probe at 20 ms, process CPU over 8 s, three runs
each interleaved: ``call_later`` 0.73-0.89% of a core; a Qt single-shot timer re-armed from its
slot 0.44-0.50%; a bare repeating QTimer with no slot (the wake-up alone) 0.28-0.33%.
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
        self._timer.timeout.connect(self._timeout)

    def _timeout(self) -> None:
        if self._callback is not None:
            self._callback()

    def start(self, interval_s: float, callback: Callable[[], None]) -> None:
        self._callback = callback
        self._timer.start(max(1, round(interval_s * 1000)))

    def cancel(self) -> None:
        self._timer.stop()
