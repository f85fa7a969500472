"""The timeline's bars: one per task, on its real worker's lane, in flat numpy arrays.

Qt-free (a replay lays out a whole trace's bars on a worker thread, then hands them to the
view). Lanes are real workers, keyed by ``(run, pid, thread id)``: each thread, each worker
process and the asyncio loop thread. Tasks that overlap in time on one worker (coroutines on
one loop) are stacked into sub-lanes by greedy interval packing, so a coroutine lane shows real
concurrency. :mod:`gui.timeline` draws them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from engine import State, TaskRecord

from .worker_kind import worker_address, worker_kind

#: Coroutine sub-lanes per worker before stacking wraps around.
MAX_SUBLANES = 64
#: Bar height within a lane (the rest is the gap between lanes).
BAR_H = 0.74

STATES: tuple[State, ...] = tuple(State)  # the enum's own order: queued first
STATE_CODE: dict[State, int] = {s: i for i, s in enumerate(STATES)}
RUNNING_CODES = (STATE_CODE[State.RUNNING], STATE_CODE[State.CANCEL_REQUESTED])


@dataclass
class Worker:
    """One real worker: a thread, a process, a loop thread or a cluster's worker, within one
    run."""

    key: tuple[int, int, int]
    run_id: int
    label: str
    kind: str  # "thread", "process", "loop", "cluster"
    #: Slot occupying each sub-lane (the last bar placed there).
    subs: list[int] = field(default_factory=list)
    base: int = 0  # first row
    rr: int = 0  # round-robin pointer once the sub-lanes are saturated


class TimelineData:
    """Bars in flat arrays, indexed by slot (one slot per task that ever started)."""

    def __init__(self, t0_ns: int) -> None:
        self.t0_ns = t0_ns
        self.n = 0
        cap = 1024
        self.task_id = np.zeros(cap, np.int64)
        self.worker = np.zeros(cap, np.int32)
        self.sub = np.zeros(cap, np.int32)
        self.row = np.zeros(cap, np.int32)
        self.start = np.zeros(cap, np.float64)
        self.end = np.full(cap, np.nan)
        self.state = np.zeros(cap, np.int8)
        self.slot_of: dict[int, int] = {}
        self.workers: list[Worker] = []
        self.worker_of: dict[tuple[int, int, int], int] = {}
        self.rows = 0
        self.t_max = 0.0
        self.version = 0
        #: + 1 whenever the lanes are laid out again (workers or sub-lanes came): the lane
        #: labels change only then, while ``version`` moves with every event.
        self.lanes_version = 0
        #: Bars still running (no end yet): they grow with the clock on every frame.
        self.running = 0
        #: Some worker has more bars in flight than MAX_SUBLANES, so bars overlap on a row.
        self.stacked = False

    def clear(self) -> None:
        version, lanes = self.version, self.lanes_version
        self.__init__(self.t0_ns)  # type: ignore[misc]
        self.version = version + 1  # never goes back: views compare it with the last they drew
        self.lanes_version = lanes + 1

    def seconds(self, t_ns: int) -> float:
        return (t_ns - self.t0_ns) / 1e9

    def _grow(self) -> None:
        cap = len(self.task_id) * 2
        for name in ("task_id", "worker", "sub", "row", "start", "state"):
            a = getattr(self, name)
            b = np.zeros(cap, a.dtype)
            b[: self.n] = a[: self.n]
            setattr(self, name, b)
        e = np.full(cap, np.nan)
        e[: self.n] = self.end[: self.n]
        self.end = e

    def _worker(self, rec: TaskRecord, model: str) -> int:
        key = (rec.run_id, rec.pid, rec.tid)
        w = self.worker_of.get(key)
        if w is not None:
            return w
        r = rec.run_id
        kind = worker_kind(model)
        if kind == "cluster":
            # one lane per worker thread (a worker may run several): its pid is in the task's line
            label = f"run{r} {worker_address(rec.thread)} ({rec.tid})"
        elif kind == "process":
            label = f"run{r} process {rec.pid}"
        elif kind == "loop":
            label = f"run{r} asyncio loop ({rec.tid})"
        elif rec.thread.startswith(f"run{r}"):
            label = f"{rec.thread} ({rec.tid})"
        else:
            label = f"run{r} {rec.thread or 'thread'} ({rec.tid})"
        w = len(self.workers)
        self.workers.append(Worker(key, rec.run_id, label, kind))
        self.worker_of[key] = w
        return w

    def update(self, records: Iterable[TaskRecord], model_of: Callable[[int], str]) -> None:
        """Fold the latest state of these tasks into the bars."""
        new: list[TaskRecord] = []
        for rec in records:
            if rec.start_ns is None:
                continue
            slot = self.slot_of.get(rec.task_id)
            if slot is None:
                new.append(rec)
                continue
            self._set(slot, rec)
        if new:
            new.sort(key=lambda r: r.start_ns or 0)
            lanes_changed = False
            for rec in new:
                if self.n == len(self.task_id):
                    self._grow()
                slot = self.n
                self.n += 1
                self.slot_of[rec.task_id] = slot
                self.task_id[slot] = rec.task_id
                self._set(slot, rec)
                w = self._worker(rec, model_of(rec.run_id))
                self.worker[slot] = w
                sub = self._place(self.workers[w], slot)
                self.sub[slot] = sub
                lanes_changed = True
            if lanes_changed:
                self._layout()
                self.lanes_version += 1
        self.running = int(np.count_nonzero(np.isnan(self.end[: self.n])))
        self.version += 1

    def load(self, workers: Sequence[Worker], worker: np.ndarray, sub: np.ndarray,
             start: np.ndarray, end: np.ndarray, state: np.ndarray) -> None:
        """Replace every bar at once from arrays, one entry per bar: its index into ``workers``,
        its sub-lane (0 up, no gaps per worker), start and end in seconds (end NaN: still
        running) and its :data:`STATE_CODE`. Task ids are 1 to n.

        For timelines too large to build from records: ``taskscope bench`` paints a million
        bars, and a TaskRecord each folded through :meth:`update` would take longer than the
        paints it measures. Bars are stored in start order, as :meth:`update` stores them.
        """
        n = len(start)
        if not len(worker) == len(sub) == len(end) == len(state) == n:
            raise ValueError("load: worker, sub, start, end and state must have one entry a bar")
        order = np.argsort(start, kind="stable")
        version = self.version
        self.__init__(self.t0_ns)  # type: ignore[misc]
        self.version = version
        cap = max(1024, n)
        self.task_id = np.zeros(cap, np.int64)
        self.task_id[:n] = np.arange(1, n + 1)
        self.worker = np.zeros(cap, np.int32)
        self.sub = np.zeros(cap, np.int32)
        self.row = np.zeros(cap, np.int32)
        self.start = np.zeros(cap, np.float64)
        self.end = np.full(cap, np.nan)
        self.state = np.zeros(cap, np.int8)
        for name, a in (("worker", worker), ("sub", sub), ("start", start), ("end", end),
                        ("state", state)):
            getattr(self, name)[:n] = np.asarray(a)[order]
        self.n = n
        self.slot_of = dict(zip(range(1, n + 1), range(n), strict=True))
        self.workers = list(workers)
        self.worker_of = {w.key: i for i, w in enumerate(self.workers)}
        for w in self.workers:
            w.subs, w.rr = [], 0
        # Each sub-lane's last bar (what _place reads when the next bar comes).
        w_, s_ = self.worker[:n].astype(np.int64), self.sub[:n].astype(np.int64)
        width = int(s_.max()) + 1 if n else 1
        pairs, first_rev = np.unique((w_ * width + s_)[::-1], return_index=True)
        for key, last in zip(pairs.tolist(), (n - 1 - first_rev).tolist(), strict=True):
            w = self.workers[key // width]
            s = key % width
            while len(w.subs) <= s:
                w.subs.append(-1)
            w.subs[s] = last
        if any(-1 in w.subs for w in self.workers):
            raise ValueError("load: a worker's sub-lanes must be numbered 0 up with no gaps")
        ends = self.end[:n]
        self.t_max = float(max(np.nanmax(ends, initial=0.0), self.start[:n].max(initial=0.0)))
        self.running = int(np.count_nonzero(np.isnan(ends)))
        self.stacked = any(len(w.subs) > MAX_SUBLANES for w in self.workers)
        self._layout()
        self.lanes_version += 1
        self.version += 1

    def _set(self, slot: int, rec: TaskRecord) -> None:
        s = self.seconds(rec.start_ns or 0)
        self.start[slot] = s
        self.state[slot] = STATE_CODE[rec.state]
        if rec.end_ns is not None:
            e = self.seconds(rec.end_ns)
            self.end[slot] = e
            if e > self.t_max:
                self.t_max = e
        elif s > self.t_max:
            self.t_max = s

    def _place(self, w: Worker, slot: int) -> int:
        """The sub-lane for a new bar: the first whose last bar has ended (greedy packing).

        Once a worker has MAX_SUBLANES sub-lanes (more coroutines in flight than that), bars
        are dealt round-robin onto them and stack: O(1) per bar, so 20k coroutines starting
        at once cost one cheap pass, not a scan each.
        """
        if len(w.subs) >= MAX_SUBLANES:
            self.stacked = True
            i = w.rr % MAX_SUBLANES
            w.rr += 1
            w.subs[i] = slot
            return i
        start = self.start[slot]
        end = self.end
        for i, other in enumerate(w.subs):
            e = end[other]
            if e == e and e <= start + 1e-9:  # e == e: not NaN (still running)
                w.subs[i] = slot
                return i
        w.subs.append(slot)
        return len(w.subs) - 1

    def _layout(self) -> None:
        order = sorted(range(len(self.workers)), key=lambda i: (self.workers[i].run_id, i))
        row = 0
        base = np.zeros(len(self.workers), np.int32)
        for i in order:
            w = self.workers[i]
            w.base = row
            base[i] = row
            row += max(1, len(w.subs))
        self.rows = row
        n = self.n
        self.row[:n] = base[self.worker[:n]] + self.sub[:n]

    def ends(self, now_s: float) -> np.ndarray:
        e = self.end[: self.n].copy()
        e[np.isnan(e)] = now_s
        return e

    def find(self, x: float, y: float, now_s: float) -> int | None:
        """The slot of the bar at (x seconds, y rows), or None."""
        n = self.n
        if n == 0 or y < 0:
            return None
        row = int(y)
        frac = y - row
        if abs(frac - 0.5) > BAR_H / 2 + 0.08:
            return None
        ends = self.ends(now_s)
        hit = np.nonzero((self.row[:n] == row) & (self.start[:n] <= x) & (ends >= x))[0]
        if len(hit) == 0:
            return None
        return int(hit[-1])

    def row_labels(self) -> dict[int, tuple[str, bool]]:
        """row -> (label, is the worker's first row)."""
        out: dict[int, tuple[str, bool]] = {}
        for w in self.workers:
            n = max(1, len(w.subs))
            out[w.base] = (w.label, True)
            if w.kind == "loop" or n > 1:
                for k in range(n):
                    if k:
                        out[w.base + k] = (f"coroutine slot {k + 1}", False)
        return out
