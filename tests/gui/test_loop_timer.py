"""The window's loop-lag probe on a Qt timer measures what it measured on ``call_later``."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from engine.probes import LagProbe
from gui.loop_timer import QtProbeTimer


def test_qt_timed_probe_sees_a_block_of_the_gui_thread_and_switches_intervals(
        qloop: asyncio.AbstractEventLoop, qtbot: Any) -> None:
    from PySide6.QtCore import QTimer

    probe = LagProbe(qloop, 0.02, idle_interval_s=0.25, timer=QtProbeTimer())
    try:
        probe.start()
        qtbot.waitUntil(lambda: probe.fired >= 5, timeout=5000)
        fired0, n0 = probe.fired, len(probe.history)
        QTimer.singleShot(0, lambda: time.sleep(0.1))  # block the GUI thread for 100 ms
        qtbot.wait(300)
        worst = max(ms for _, ms in list(probe.history)[n0:])
        assert probe.fired - fired0 >= 5  # ~12 in the 200 ms the thread was free
        # The timer fell due within the block's first 20 ms: 80-100 ms late (loose above for a
        # loaded machine, never more than the block plus a scheduling delay).
        assert 75.0 <= worst <= 250.0, worst

        probe.set_idle(True)
        qtbot.wait(300)  # the pending 20 ms timer fires, then the 250 ms ones
        fired1 = probe.fired
        qtbot.wait(1000)
        idle_fired = probe.fired - fired1
        probe.set_idle(False)  # re-armed at once, at 20 ms
        fired2 = probe.fired
        qtbot.wait(500)
        busy_fired = probe.fired - fired2
        probe.stop()
        qtbot.wait(100)
        fired3 = probe.fired
        qtbot.wait(200)
        assert probe.fired == fired3  # stopped: no timer left
    finally:
        probe.stop()
    assert 2 <= idle_fired <= 6, idle_fired  # 4 at 250 ms (50 at 20 ms)
    assert busy_fired >= 10, busy_fired  # ~24 at 20 ms, loose for a loaded machine
    assert probe.take() is not None and probe.stats(60.0)["max"] == pytest.approx(
        max(ms for _, ms in probe.history))
