"""The live frame rate adapts to load, and says so (issue 17).

When the machine is too busy to run the window's frames on time, drawing every frame only takes
more of the CPU the run needs: the pacer lowers the live rate to 15 frames a second, and puts it
back once frames come on time again. The status bar says so while it lasts. The lateness is fed
here by hand (frame start times), so these tests never depend on how busy the machine is.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject

from gui.frame_pacer import (
    FRAME_MS,
    IDLE_FRAME_MS,
    LATE_MS,
    LOADED_FRAME_MS,
    RECOVER_S,
    FramePacer,
)


def _frames(pacer: FramePacer, t: float, seconds: float, late_ms: float) -> float:
    """Frame starts for ``seconds`` from ``t``, each ``late_ms`` after the interval in force."""
    end = t + seconds
    while t < end:
        t += (pacer.timer.interval() + late_ms) / 1e3
        pacer.ticked(t)
    return t


def test_late_frames_lower_the_rate_and_on_time_frames_restore_it(qapp: object) -> None:
    parent = QObject()
    said: list[bool] = []
    pacer = FramePacer(parent, lambda: None, lambda idle: None, said.append)
    t = _frames(pacer, 100.0, 3.0, late_ms=LATE_MS / 4)  # a little late: nothing changes
    assert not pacer.loaded and pacer.timer.interval() == FRAME_MS and said == []
    t = _frames(pacer, t, 1.0, late_ms=3 * LATE_MS)  # the machine is busy
    assert pacer.loaded and pacer.timer.interval() == LOADED_FRAME_MS and said == [True]
    assert pacer.fps == round(1000 / LOADED_FRAME_MS) and pacer.full_rate  # live, not idle
    t = _frames(pacer, t, RECOVER_S * 2, late_ms=3 * LATE_MS)  # still busy: stays lowered
    assert pacer.loaded and said == [True]
    t = _frames(pacer, t, RECOVER_S - 0.5, late_ms=1.0)  # on time, not yet long enough
    assert pacer.loaded
    _frames(pacer, t, 1.5, late_ms=1.0)
    assert not pacer.loaded and pacer.timer.interval() == FRAME_MS and said == [True, False]


def test_going_idle_ends_the_lowered_rate(qapp: object) -> None:
    """An idle window draws at its idle rate; the next run starts at the full rate."""
    parent = QObject()
    said: list[bool] = []
    pacer = FramePacer(parent, lambda: None, lambda idle: None, said.append)
    _frames(pacer, 100.0, 1.0, late_ms=3 * LATE_MS)
    assert pacer.loaded
    pacer._busy_at -= 10  # idle for long enough
    pacer.pace(False)
    assert pacer.idle and pacer.timer.interval() == IDLE_FRAME_MS
    assert not pacer.loaded and said == [True, False]
    pacer.wake()
    assert pacer.timer.interval() == FRAME_MS


def test_the_status_bar_says_when_the_rate_is_lowered(window: Any, qtbot: Any) -> None:
    window.frame_timer.stop()  # frame starts only from this test
    pacer = window.pacer
    pacer.wake()
    t = _frames(pacer, 100.0, 1.0, late_ms=3 * LATE_MS)
    fps = round(1000 / LOADED_FRAME_MS)
    assert pacer.loaded
    message = window.statusBar().currentMessage()
    assert f"{fps} frames/s" in message and "busy" in message
    assert f"{fps} fps: busy" in window.readouts.frame.text()
    _frames(pacer, t, RECOVER_S + 1, late_ms=0.0)
    assert not pacer.loaded
    assert window.statusBar().currentMessage() == ""
    assert "busy" not in window.readouts.frame.text()
