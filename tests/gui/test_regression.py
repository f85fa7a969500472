"""PySide6 6.12.0 on Python 3.11 dropped a reference to None on every Python slot and
timerEvent call, and crashed with "Fatal Python error: none_dealloc" after a few thousand
(../shared/DESIGN.md, facts table). pyproject pins PySide6 < 6.12 on 3.11; this test keeps
the pin honest: thousands of slot calls must leave None's refcount where it was."""

from __future__ import annotations

import sys
from typing import Any

from PySide6.QtCore import QObject, QTimerEvent, Signal

N = 5_000


class Emitter(QObject):
    ping = Signal(int)


class Ticker(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def timerEvent(self, ev: QTimerEvent) -> None:
        self.count += 1
        if self.count >= N:
            self.killTimer(ev.timerId())


def test_thousands_of_slot_and_timer_calls_keep_none_refcount(qapp: Any, qtbot: Any) -> None:
    got: list[int] = []
    em = Emitter()
    em.ping.connect(lambda v: got.append(v))  # a Python slot returning None
    for _ in range(200):  # warm-up: let caches settle
        em.ping.emit(0)
    got.clear()
    before = sys.getrefcount(None)
    for i in range(N):
        em.ping.emit(i)
    assert len(got) == N
    drift = sys.getrefcount(None) - before
    # The bug loses one reference per call (drift -N); other threads may hold a few.
    assert drift > -N // 2, f"None refcount drifted by {drift} over {N} slot calls"

    ticker = Ticker()
    before = sys.getrefcount(None)
    ticker.startTimer(0)
    qtbot.waitUntil(lambda: ticker.count >= N, timeout=30_000)
    drift = sys.getrefcount(None) - before
    assert drift > -N // 2, f"None refcount drifted by {drift} over {N} timerEvents"
