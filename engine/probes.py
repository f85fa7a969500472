"""Responsiveness probes: how late an event loop runs a timer, and how long threads wait for the GIL.

Both are *measurements from the inside*: nothing here guesses from CPU load. A loop that is
blocked runs our timer late, by exactly as long as it was blocked; a GIL that another thread
holds makes our probe thread wait, by exactly as long as it was held. The sampler
(:mod:`engine.sampler`) reads both once per interval.

:class:`ExternalLag` is the third kind of source: lateness measured by a front end in another
process (the window's own loop, with a :class:`LagProbe` there) and forwarded here as numbers.
The sampler reads it exactly like a probe.

Both probes can idle between runs (the sampler tells them, see
:meth:`engine.sampler.Sampler.set_busy`): the GIL probe pauses (its samples then say ``None``,
"not measured", never 0), and a lag probe given an ``idle_interval_s`` fires that much less
often. While work runs they measure exactly as described below.

No Qt here: :class:`LagProbe` works on any :class:`asyncio.AbstractEventLoop` (a stock loop, or
the GUI's qasync loop), through ``call_soon_threadsafe`` and ``call_later`` only.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Protocol

from . import build
from .clock import NS_PER_MS, now_ns

__all__ = ["ExternalLag", "GilProbe", "LagProbe", "LoopTimer", "ProbeTimer", "gil_disabled",
           "lag_stats"]


def lag_stats(values: Iterable[float]) -> dict[str, float]:
    """p50, p99 and max of ``values`` (nearest-rank percentiles; all 0.0 when empty).

    Nearest rank rather than interpolation, so every figure is a lateness that really happened.
    """
    v = sorted(values)
    n = len(v)
    if n == 0:
        return {"p50": 0.0, "p99": 0.0, "max": 0.0}

    def rank(p: float) -> float:
        return v[max(0, math.ceil(p * n) - 1)]

    return {"p50": rank(0.50), "p99": rank(0.99), "max": v[-1]}


def _check_interval(name: str, v: object) -> None:
    if isinstance(v, bool) or not (isinstance(v, int | float) and 0.001 <= v <= 10.0):
        raise ValueError(f"{name}: expected 0.001..10 seconds, got {v!r}")


class ProbeTimer(Protocol):
    """The one-shot timer a :class:`LagProbe` arms on its loop; every call comes from that
    loop's thread. A front end can give one that is cheaper on its loop than ``call_later``
    (the window's: a Qt timer, see ``gui.loop_timer``)."""

    def start(self, interval_s: float, callback: Callable[[], None]) -> None:
        """Call ``callback`` once, ``interval_s`` from now (the probe never has two pending)."""
        ...

    def cancel(self) -> None:
        """Drop the pending call, if any."""
        ...


class LoopTimer:
    """A :class:`ProbeTimer` through the loop's own ``call_later`` (any asyncio loop)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._handle: asyncio.TimerHandle | None = None

    def start(self, interval_s: float, callback: Callable[[], None]) -> None:
        self._handle = self.loop.call_later(interval_s, callback)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


class LagProbe:
    """A periodic timer on an asyncio loop that records how late each firing is.

    Lateness = actual fire time - scheduled time, on the engine clock. A loop that is free runs
    the timer within about a millisecond; a loop blocked for 200 ms runs it up to 200 ms late.
    The timer re-arms itself from inside the loop, so the probe costs one timer per
    ``interval_s`` on that loop (qasync turns every ``call_later`` into a Qt timer, which is why
    the probe never uses more than one at a time).

    :meth:`take` (called from the sampler's thread) returns the worst lateness since the
    previous :meth:`take`, *including a stall still in progress*: while the loop is blocked,
    successive samples show the stall growing instead of zero followed by one late spike.

    ``idle_interval_s`` (optional): the interval to use while the sampler is idle (no run
    active, see :meth:`set_idle`). A timer every 20 ms costs its loop thread about 0.5% of a
    core; one every 250 ms, a tenth of that. The price is honest and bounded: while idle, a
    stall that starts and ends between two firings can go unseen (the stall that covers a
    firing's due time is still measured to the millisecond).

    ``timer`` (optional): the one-shot timer to arm (a :class:`ProbeTimer`, made on the loop's
    thread); default :class:`LoopTimer`, the loop's ``call_later``. Either way the probe
    measures the same thing: one timer at a time, due ``interval_s`` after it was armed.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, interval_s: float = 0.02,
                 history_s: float = 120.0, *, idle_interval_s: float | None = None,
                 timer: ProbeTimer | None = None) -> None:
        _check_interval("interval_s", interval_s)
        if idle_interval_s is not None:
            _check_interval("idle_interval_s", idle_interval_s)
        self.loop = loop
        #: The interval used while work runs, and the one used while the sampler says it is
        #: idle (None: the same); :attr:`interval_s` is the one in force now.
        self.busy_interval_s = float(interval_s)
        self.idle_interval_s = None if idle_interval_s is None else float(idle_interval_s)
        self.interval_s = self.busy_interval_s
        self._interval_ns = int(interval_s * 1e9)
        self._lock = threading.Lock()
        self._due_ns = 0  # when the armed timer should fire; 0 = not armed
        self._worst_ns = 0  # worst lateness of firings since the last take()
        self._timer: ProbeTimer = LoopTimer(loop) if timer is None else timer
        self._armed = False  # a timer is pending (touched on the loop only)
        self._stopped = False
        #: (fire time ns, lateness ms) of every firing, bounded to about ``history_s``.
        self.history: deque[tuple[int, float]] = deque(
            maxlen=max(16, int(history_s / self.interval_s)))
        self.fired = 0

    def start(self) -> None:
        """Arm the first timer (from any thread). Raises RuntimeError if the loop is closed."""
        self.loop.call_soon_threadsafe(self._arm)

    def stop(self) -> None:
        """Stop re-arming and cancel the pending timer (from any thread; idempotent)."""
        self._stopped = True
        try:
            self.loop.call_soon_threadsafe(self._cancel)
        except RuntimeError:  # loop already closed: nothing is pending any more
            pass

    def set_idle(self, idle: bool) -> None:
        """Switch to ``idle_interval_s`` (``idle`` True) or back to the normal interval (from
        any thread). A no-op without an ``idle_interval_s``. Going busy re-arms the timer at
        once, so the short interval applies from now, not from the idle timer's due time."""
        if self.idle_interval_s is None:
            return
        interval = self.idle_interval_s if idle else self.busy_interval_s
        with self._lock:
            if interval == self.interval_s:
                return
            self.interval_s = interval
            self._interval_ns = int(interval * 1e9)
        if not idle:
            try:
                self.loop.call_soon_threadsafe(self._rearm)
            except RuntimeError:  # loop closed: nothing to re-arm
                pass

    # -- on the loop ----------------------------------------------------------------------
    def _arm(self) -> None:
        if self._stopped:
            return
        with self._lock:
            self._due_ns = now_ns() + self._interval_ns
            interval = self.interval_s
        self._armed = True
        self._timer.start(interval, self._fire)

    def _record(self, t: int) -> None:
        """Record the armed timer's firing at ``t`` (lock held)."""
        late = max(0, t - self._due_ns)
        self._due_ns = 0
        if late > self._worst_ns:
            self._worst_ns = late
        self.history.append((t, late / NS_PER_MS))
        self.fired += 1

    def _fire(self) -> None:
        self._armed = False
        t = now_ns()
        with self._lock:
            self._record(t)
        self._arm()

    def _rearm(self) -> None:
        """Replace the pending timer by one at the current interval. A timer already overdue
        counts as fired now (its lateness is real and must not be lost with the handle)."""
        if self._stopped or not self._armed:
            return  # not armed yet (start() will) or stopped
        self._timer.cancel()
        self._armed = False
        t = now_ns()
        with self._lock:
            if self._due_ns and t >= self._due_ns:
                self._record(t)
        self._arm()

    def _cancel(self) -> None:
        self._timer.cancel()
        self._armed = False
        with self._lock:
            self._due_ns = 0

    # -- from the sampler ---------------------------------------------------------------------
    def take(self) -> float | None:
        """Worst lateness in ms since the last call, or None if the timer has not run yet.

        A timer that is overdue right now counts with its lateness so far, but only while its
        loop is running: a loop that was stopped is not late, it is gone.
        """
        t = now_ns()
        running = self.loop.is_running()
        with self._lock:
            worst = self._worst_ns
            self._worst_ns = 0
            if self._due_ns and running and t > self._due_ns:
                worst = max(worst, t - self._due_ns)
            armed_ever = self.fired > 0 or self._due_ns != 0
        if not armed_ever:
            return None
        return worst / NS_PER_MS

    def stats(self, window_s: float = 10.0) -> dict[str, float]:
        """p50/p99/max lateness (ms) of the firings in the last ``window_s`` seconds."""
        since = now_ns() - int(window_s * 1e9)
        values: list[float] = []
        with self._lock:
            # Newest first, stopping at the window's start (firings are appended in time
            # order): the window asks for the last second on every frame, and the history
            # holds two minutes of firings (6000 at 20 ms).
            for t, ms in reversed(self.history):
                if t < since:
                    break
                values.append(ms)
        return lag_stats(values)


class ExternalLag:
    """Loop lateness measured elsewhere and reported here: the sampler's view of a front end's
    loop that runs in another process (the window's, once the engine has its own process).

    The front end measures its own loop with a :class:`LagProbe` and forwards each lateness it
    measured; whatever thread receives them calls :meth:`report`. The sampler then reads this
    object exactly like a probe: :meth:`take` once per sample, :meth:`stats` on demand, and
    ``history`` holds ``(t_ns, ms)`` pairs like a probe's.

    Honest about what it cannot see: a front end that is blocked cannot report, so a stall in
    progress shows only once the front end runs again and reports it (a local probe shows it
    growing). Until then the samples carry no value for that loop (:meth:`take` says None),
    never a made-up 0.
    """

    #: Reports kept per second of ``history_s`` (a front end forwarding a 20 ms probe sends 50).
    HISTORY_PER_S = 100

    def __init__(self, history_s: float = 120.0) -> None:
        self._lock = threading.Lock()
        self._worst_ms: float | None = None  # worst report since the last take()
        self._stopped = False
        #: (report time ns, lateness ms) of every report, bounded to about ``history_s``.
        self.history: deque[tuple[int, float]] = deque(
            maxlen=max(16, int(history_s * self.HISTORY_PER_S)))
        #: Reports received (the counterpart of a probe's ``fired``).
        self.fired = 0

    def start(self) -> None:
        """Nothing to start (reports arrive on their own); here so it reads like a probe."""

    def stop(self) -> None:
        """Ignore reports from now on (idempotent)."""
        self._stopped = True

    def set_idle(self, idle: bool) -> None:
        """Nothing to slow down: the front end decides how often it measures."""

    def report(self, lateness_ms: float, t_ns: int | None = None) -> None:
        """Record one lateness (ms) the front end measured; thread-safe, from any thread.

        ``t_ns``: when it was measured, on the engine clock (``time.monotonic_ns`` is
        system-wide, so a front end in another process can stamp it itself); default now.
        A negative lateness (a timer that ran early) counts as 0, as a probe's does. Raises
        ValueError for anything but a finite number; reports after :meth:`stop` are ignored.
        """
        if isinstance(lateness_ms, bool) or not isinstance(lateness_ms, int | float) \
                or not math.isfinite(lateness_ms):
            raise ValueError(f"lateness_ms: expected a finite number of ms, got {lateness_ms!r}")
        if t_ns is None:
            t_ns = now_ns()
        elif isinstance(t_ns, bool) or not isinstance(t_ns, int):
            raise ValueError(f"t_ns: expected an int (engine clock ns), got {t_ns!r}")
        ms = max(0.0, float(lateness_ms))
        with self._lock:
            if self._stopped:
                return
            if self._worst_ms is None or ms > self._worst_ms:
                self._worst_ms = ms
            self.history.append((t_ns, ms))
            self.fired += 1

    def take(self) -> float | None:
        """Worst lateness in ms reported since the last call; None if nothing was."""
        with self._lock:
            worst = self._worst_ms
            self._worst_ms = None
        return worst

    def stats(self, window_s: float = 10.0) -> dict[str, float]:
        """p50/p99/max lateness (ms) of the reports stamped in the last ``window_s`` seconds."""
        since = now_ns() - int(window_s * 1e9)
        with self._lock:
            values = [ms for t, ms in self.history if t >= since]
        return lag_stats(values)




def gil_disabled() -> bool:
    """True on a free-threaded build running with the GIL off (then there is nothing to wait
    for, and a GIL probe would only measure OS scheduling noise)."""
    return build.current().gil_off


def _voluntary_switches() -> Callable[[], int] | None:
    """The calling thread's count of voluntary context switches, where the OS keeps one per
    thread (Linux: ``getrusage(RUSAGE_THREAD)``); None elsewhere.

    A thread that wakes from ``sleep`` and finds the GIL taken blocks on the GIL's condition
    variable: a second voluntary switch. One that only waited for a free CPU does not. That is
    how the probe tells GIL waiting from OS scheduling delay on a saturated machine.
    """
    try:
        import resource

        who = resource.RUSAGE_THREAD  # type: ignore[attr-defined]
        getrusage = resource.getrusage
        getrusage(who)
    except (ImportError, AttributeError, OSError, ValueError):
        return None

    def count() -> int:
        return getrusage(who).ru_nvcsw

    return count


class GilProbe:
    """Share of time a thread that wants the GIL has to wait for it (gilknocker's approach).

    A daemon thread sleeps ``poll_s`` (releasing the GIL) over and over. Waking up, it must take
    the GIL back before ``time.sleep`` returns; how much longer than requested the sleep took,
    minus the overshoot the OS adds anyway (the *baseline*, measured at start), is time spent
    waiting for the GIL. The metric is that waiting time divided by the elapsed time, 0..1,
    like gilknocker's ``contention_metric``. Measured here: 0.00 idle, 0.02 with a thread busy
    10% of the time, 0.46 at 50%, 0.72 with one CPU-bound thread, 0.80-0.85 with two (CPython
    makes a waiter wait for the 5 ms switch interval, so a 2 ms poll cannot reach 1.0).

    On a saturated machine the OS itself wakes the probe late, which would look like GIL
    waiting. Where the OS counts context switches per thread (Linux), a wake-up counts only if
    the thread really blocked on the GIL (a second voluntary switch after the sleep's own), so
    the metric stays at 0 with every core busy in other processes. Elsewhere that OS delay is
    not separated (documented limitation).

    It polls in bursts: ``burst_s`` of polling right after each :meth:`take` (so each of the
    sampler's intervals holds one whole burst), or ``every_s`` after the last burst began when
    nothing takes, then rests. While a CPU-bound
    thread holds the GIL every poll takes the GIL from it: CPython hands it over only after
    the holder kept it a whole switch interval, and on a 2-core VM each such hand-over cost
    the holder 0.1-0.6 ms of wall time (it waits for the probe's vCPU to wake, then for its
    own). Polling all the time, that was about 140 hand-overs a second, taken out of every
    in-process model's tasks and out of none of the process models'. In bursts the share is
    measured over the polled time only, so it reads the same (0.72 with one CPU-bound
    thread), for a fifth of the hand-overs and of the probe's own CPU.

    Cost: 0.25-0.45% of one core (20 ms bursts every 100 ms; 0.5-1.6% polling all the time),
    which the sampler's budget of 1% includes; see :attr:`cpu_percent` and
    :func:`engine.bench.sampler_cost.measure_cost`. Bursts read what polling all the time
    reads (``GilProbe()`` against ``GilProbe(every_s=None)``, taken at 10 Hz for 2 s each on
    the 2-core VM at load 4): 0.00 / 0.00 idle, 0.47 / 0.51 beside a thread busy half the
    time, 0.78 / 0.77 beside one CPU-bound thread, 0.93 / 0.87 beside two.

    :meth:`pause` stops the polling (the thread blocks on an event: no wake-ups, no CPU) until
    :meth:`resume`; the sampler pauses it while no run is active. Time paused is not measured:
    :meth:`take` says None for an interval the probe did not run in at all, and for one it ran
    in only partly, the share of the part it ran (never a 0 it did not measure).
    """

    CALIBRATION_SLEEPS = 25
    #: Upper bound on the baseline: a start under heavy GIL load must not hide contention.
    MAX_BASELINE_NS = 1_000_000

    def __init__(self, poll_s: float = 0.002, *, burst_s: float = 0.02,
                 every_s: float | None = 0.1) -> None:
        """``burst_s``: polling after each :meth:`take`; ``every_s``: the longest rest between
        two bursts (None: poll all the time, with no rests)."""
        if not (isinstance(poll_s, int | float) and 0.0005 <= poll_s <= 0.1):
            raise ValueError(f"poll_s: expected 0.0005..0.1 seconds, got {poll_s!r}")
        if every_s is not None and not (0 < burst_s < every_s <= 10.0):
            raise ValueError(f"burst_s, every_s: expected 0 < burst_s < every_s <= 10 s, "
                             f"got {burst_s!r}, {every_s!r}")
        self.poll_s = float(poll_s)
        self.burst_ns = int(burst_s * 1e9)
        self.every_ns = None if every_s is None else int(every_s * 1e9)
        self.disabled = gil_disabled()
        self.baseline_ns = 0
        # Written only by the probe thread (monotonic totals, so readers never reset them).
        self._wait_total_ns = 0  # under _span_lock: the probe thread and take() add to it
        self._cpu_ns = 0  # the probe thread's own CPU time (see _note_cpu)
        self._cpu0_ns = 0
        self._started_ns = 0
        # (t_ns, wait_total_ns, ran_ns) at the last take()
        self._last_take: tuple[int, int, int] | None = None
        # Time the probe has been polling: closed spans, plus the open one since _run_since_ns
        # (0 while paused). Written by the probe thread under _span_lock.
        self._span_lock = threading.Lock()
        self._ran_ns = 0
        self._run_since_ns = 0
        self._run = threading.Event()  # set: poll; clear: paused
        self._run.set()
        self._stop = threading.Event()
        # take() ends the rest (a burst is due): a binary semaphore, held while no burst is
        # asked for. A rest is one lock wait (a C call), where an Event's wait and set run a
        # Condition's Python code in the probe thread and in the sampler's, every 100 ms.
        self._burst = threading.Lock()
        self._burst.acquire()
        self._resting = False  # between two bursts (under _span_lock)
        self._parked = False  # paused, blocked until resume() (under _span_lock)
        # Engine-clock time from which the probe thread's current block counts as waiting (0:
        # not blocked in a measured wait). Under _span_lock.
        self._due_ns = 0
        self._ready = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        """Calibrate and start the probe thread (no thread at all when the GIL is off)."""
        if self.disabled or self.thread is not None:
            return
        self.thread = threading.Thread(target=self._main, name="taskscope-gil-probe",
                                       daemon=True)
        self.thread.start()
        self._ready.wait(2.0)

    def stop(self, timeout: float = 0.5) -> None:
        self._stop.set()
        self._run.set()  # wake a paused thread so it can see the stop
        self._ask_burst()  # and a resting one
        if self.thread is not None:
            self.thread.join(timeout)

    def pause(self) -> None:
        """Stop polling until :meth:`resume` (from any thread; takes effect within one poll).
        Pausing before :meth:`start` makes the thread calibrate, then wait."""
        if not self._stop.is_set():
            self._run.clear()

    def resume(self) -> None:
        """Poll again (from any thread; at once). A parked probe's measuring starts now, not
        when its thread gets the GIL back to begin (see :meth:`_rest`)."""
        with self._span_lock:
            if self._parked and not self._run_since_ns and not self._stop.is_set():
                t = now_ns()
                self._run_since_ns = t
                self._due_ns = t + self.baseline_ns
        self._run.set()

    @property
    def paused(self) -> bool:
        return not self._run.is_set()

    def _main(self) -> None:
        sleep = time.sleep
        clock = now_ns  # the engine clock: take() compares it with _due_ns
        poll = self.poll_s
        poll_ns = int(poll * 1e9)
        # Baseline: the overshoot of an uncontended sleep. A low percentile, not the mean, so
        # that a busy moment during calibration does not make real waiting look normal.
        over = []
        for _ in range(self.CALIBRATION_SLEEPS):
            a = clock()
            sleep(poll)
            over.append(clock() - a - poll_ns)
        over.sort()
        base = min(over[len(over) // 5], self.MAX_BASELINE_NS)
        self.baseline_ns = max(0, base)
        self._started_ns = now_ns()
        with self._span_lock:
            self._run_since_ns = self._started_ns
            self._last_take = (self._started_ns, 0, 0)
        self._cpu0_ns = time.thread_time_ns()
        self._ready.set()
        stop = self._stop.is_set
        running = self._run.is_set
        switches = _voluntary_switches()
        every = self.every_ns
        burst_ns = self.burst_ns
        span_lock = self._span_lock
        end = burst_start = now_ns()
        n1 = switches() if switches is not None else 0
        while not stop():
            if not running():
                self._park(switches)
                end = burst_start = now_ns()
                n1 = switches() if switches is not None else 0
                continue
            if every is not None and end - burst_start >= burst_ns:
                self._rest(every / 1e9, switches)
                end = burst_start = now_ns()
                n1 = switches() if switches is not None else 0
                continue
            # The count after the last poll is the one before this one: nothing between the
            # two blocks (the span lock is held for a few instructions, and take()'s only).
            n0 = n1
            a = clock()
            with span_lock:
                # From this moment on, a delay beyond the OS's usual overshoot is waiting; a
                # take() meanwhile counts it so far (see take).
                self._due_ns = a + poll_ns + base
            sleep(poll)
            end = clock()
            o = end - a - poll_ns
            # Only the sleep itself blocked (fewer than two voluntary switches): the thread
            # never waited on the GIL's condition variable, so any overshoot was the OS
            # waking us late (a loaded machine).
            if switches is None:
                blocked = True
            else:
                n1 = switches()
                blocked = n1 - n0 >= 2
            self._end_wait(end, blocked)
            if o < base:
                # The OS overshoots less than the calibration said: lower the baseline.
                base = max(0, o)
                self.baseline_ns = base
        self._note_cpu()

    def _note_cpu(self) -> None:
        """Record the probe thread's own CPU time so far (called by the probe thread at each
        rest and pause, and as it ends: a thread's CPU clock is a system call, not one each
        poll)."""
        self._cpu_ns = time.thread_time_ns() - self._cpu0_ns

    def _end_wait(self, end: int, blocked: bool) -> None:
        """A wait that began at ``_due_ns`` ended at ``end``: count it if it was the GIL's."""
        with self._span_lock:
            due, self._due_ns = self._due_ns, 0
            if blocked and due and end > due:
                self._wait_total_ns += end - due

    def _rest(self, longest_s: float, switches: Callable[[], int] | None) -> None:
        """Between two bursts: close the running span and wait for the next :meth:`take` (or
        a stop; ``longest_s`` at most). Time resting is not measured, as time paused is not.

        The next burst starts when :meth:`take` asks for it, not when this thread gets the
        GIL back to begin it: that wait is GIL contention like a poll's (a CPU-bound thread
        holds the GIL a whole switch interval), so take() opens the span and starts the wait
        (``_due_ns``) itself, and it is counted here like a poll's, if this thread really
        blocked on the GIL. Otherwise an interval under heavy contention could end before its
        burst began, and read "not measured" instead of "contended"."""
        with self._span_lock:
            self._ran_ns += now_ns() - self._run_since_ns
            self._run_since_ns = 0
            self._resting = True
        self._note_cpu()
        n0 = switches() if switches is not None else 0
        self._burst.acquire(True, longest_s)  # a take() (or a stop) releases it
        end = now_ns()
        # Two voluntary switches: the wait on the lock, then one on the GIL's condition.
        blocked = switches is None or switches() - n0 >= 2
        with self._span_lock:
            self._resting = False
            if not self._run_since_ns:  # woken by the timeout or a stop, not by take()
                self._run_since_ns = end
        self._end_wait(end, blocked)

    def _park(self, switches: Callable[[], int] | None = None) -> None:
        """Close the running span, block until resumed (or stopped), open a new span: at the
        :meth:`resume`, which also starts the wait for the GIL that counts like a poll's."""
        with self._span_lock:
            self._ran_ns += now_ns() - self._run_since_ns
            self._run_since_ns = 0
            self._parked = True
        self._note_cpu()
        n0 = switches() if switches is not None else 0
        self._run.wait()
        end = now_ns()
        blocked = switches is None or switches() - n0 >= 2
        with self._span_lock:
            self._parked = False
            if not self._run_since_ns:
                self._run_since_ns = end
        self._end_wait(end, blocked)

    def take(self) -> float | None:
        """Share of time (0..1) spent waiting for the GIL since the last call; None when the
        GIL is off, the probe is not running, or it was paused for the whole interval.

        The share is over the time the probe polled: the whole interval while it runs (then
        exactly the figure a probe that never pauses gives), only the polled part of an
        interval it was paused or resumed in. A polled part shorter than one poll is too
        short to say anything: None.
        """
        if self.disabled or self._last_take is None:
            return None
        with self._span_lock:
            t = now_ns()
            due = self._due_ns
            if due and t > due:  # a wait in progress: count it so far, the rest when it ends
                self._wait_total_ns += t - due
                self._due_ns = t
            wait = self._wait_total_ns
            ran = self._ran_ns + (t - self._run_since_ns if self._run_since_ns else 0)
            t0, w0, r0 = self._last_take
            self._last_take = (t, wait, ran)
            if self._resting and self._run.is_set() and not self._run_since_ns:
                # The next interval's burst starts now (unless one asked for by an earlier
                # take() is still waiting for the GIL to begin: its span is open already).
                self._run_since_ns = t
                self._due_ns = t + self.baseline_ns
        self._ask_burst()
        polled = ran - r0
        if polled <= 0 or (polled < t - t0 and polled < self.poll_s * 1e9):
            return None
        return min(1.0, max(0.0, (wait - w0) / polled))

    def _ask_burst(self) -> None:
        """End the probe thread's rest (now, or its next one if it is polling)."""
        try:
            self._burst.release()
        except RuntimeError:  # asked already, and not yet rested on
            pass

    @property
    def cpu_percent(self) -> float:
        """The probe thread's own CPU since it started, in percent of one core."""
        if not self._started_ns:
            return 0.0
        wall = now_ns() - self._started_ns
        return 100.0 * self._cpu_ns / wall if wall > 0 else 0.0
