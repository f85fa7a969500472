"""The one clock every event and sample carries.

``time.monotonic_ns`` reads CLOCK_MONOTONIC on Linux (mach_absolute_time on macOS,
QueryPerformanceCounter on Windows). On one machine it is system-wide, so stamps taken in
different threads and different processes line up on one axis.
"""

from __future__ import annotations

import time

now_ns = time.monotonic_ns

NS_PER_S = 1_000_000_000
NS_PER_MS = 1_000_000
