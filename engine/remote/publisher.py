"""The engine process's publisher: it sends the front end the state that changed, never polling.

*Updates are state, not events.* The publisher reads the engine store's event log with its own
cursor only to learn *which* tasks changed, and sends those tasks' current records (plus run
summaries, new samples and the event count) as one :class:`~engine.remote.wire.Update`. Many
events for one task between two updates become one record, so the front end's cost follows
what it shows, not the event rate. At most ``MAX_RECORDS`` records go per update and at most
``IN_FLIGHT`` updates are unacknowledged: a front end that is slow to read gets fuller, rarer
updates, never a backlog in the pipe. (Updates that carry only samples, a few hundred bytes
each, may be ``SAMPLE_SLACK`` more: an idle window that reads 5 times a second still gets every
sample as it is taken.) A reader that fell behind the engine's event ring (it overwrote events
before we read them) resends every record of every active run, so the mirror is never left
wrong.

*Nothing polls.* The engine's store (:class:`EngineStore`) tells the publisher of every change,
so an idle engine sends one update per sample, from the sampler's own thread, and wakes no
thread for it; the front end's loop lag in the acknowledgements is read just before each sample
takes it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ..events import Event, Kind, State
from ..store import EventStore
from .wire import (
    Ack,
    CompareDone,
    CompareProgressed,
    RunSummary,
    Update,
    UpdatePickler,
    encode_tasks,
    readable,
)

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from ..probes import ExternalLag
    from ..session import Session

#: Records per update at most (about 1 ms to apply 1,000 on the front end's side).
MAX_RECORDS = 4000
#: Updates sent but not yet acknowledged, at most.
IN_FLIGHT = 2
#: Shortest gap between two updates while things change (changes meanwhile are coalesced).
BUSY_GAP_S = 0.012
#: The publisher sleeps until the engine's store changes (a sample, events, a run), a
#: comparison reports, or it stops; this is only a safety net for a wake-up it missed.
IDLE_WAKE_S = 1.0
#: Updates that carry nothing but samples (a few hundred bytes each) may be this many more
#: unacknowledged than ``IN_FLIGHT``: a front end that reads less often than the sampler
#: samples (an idle window pumps at 5 Hz) still gets each sample as it is taken. They also
#: stop while the updates in flight total ``DIRECT_MAX_BYTES``, far below a socket buffer,
#: so sending one can never block the sampler's thread.
SAMPLE_SLACK = 2
DIRECT_MAX_BYTES = 32 * 1024


class EngineStore(EventStore):
    """The engine process's store: it tells the publisher of each change, so the publisher
    sleeps until there is something to send instead of polling: ``on_change`` for a run
    added or ended and for events, ``on_sample`` for samples (see :meth:`Publisher.sampled`)."""

    def __init__(self, max_events: int | None = None) -> None:
        if max_events:
            super().__init__(max_events=max_events)
        else:
            super().__init__()
        self.on_change: Callable[[], None] | None = None
        self.on_sample: Callable[[], None] | None = None
        #: end_run calls so far: a run's summary changes there without an event.
        self.runs_ended = 0

    def _changed(self) -> None:
        cb = self.on_change
        if cb is not None:
            cb()

    def add_run(self, run_id: int, spec: Any, first_task_id: int, n_tasks: int,
                t_ns: int, info: dict[str, Any] | None = None) -> None:
        super().add_run(run_id, spec, first_task_id, n_tasks, t_ns, info)
        self._changed()

    def append(self, batch: Iterable[Event]) -> list[tuple[int, int, State]]:
        ended = super().append(batch)
        self._changed()
        return ended

    def end_run(self, run_id: int, t_ns: int) -> None:
        super().end_run(run_id, t_ns)
        self.runs_ended += 1
        self._changed()

    def add_samples(self, samples: Iterable[Any]) -> None:
        super().add_samples(samples)
        self._changed()

    def add_sample(self, sample: Any) -> None:
        super().add_sample(sample)
        cb = self.on_sample or self.on_change
        if cb is not None:
            cb()


class Publisher:
    """Sends state updates to the front end (see the module docstring).

    No polling. The publisher thread sleeps on :attr:`wake` until something changed: the
    engine's store calls :meth:`kick` when runs or events change (see :class:`EngineStore`),
    as do comparison reports and :meth:`close`. A new sample with nothing else to send goes
    out from the thread that stored it (the sampler's, :meth:`sampled`), so an idle engine
    wakes no thread of its own for it: one update per sample, the moment it is taken.
    A store that does not notify (a plain EventStore) is polled every ``BUSY_GAP_S``.

    One lock (:attr:`_lock`) covers building, sending, and reading acknowledgements: the
    sampler's thread only ever tries it, so it never waits for the publisher.
    """

    def __init__(self, session: Session, conn: Connection,
                 lag: ExternalLag | None) -> None:
        self.session = session
        self.store: EventStore = session.store
        self.conn = conn
        self.lag = lag  # ExternalLag for "gui", or None
        self.ev_cursor = 0
        self.sample_cursor = 0
        self.pending: set[int] = set()
        self.sent_runs: set[int] = set()
        self.final_runs: set[int] = set()
        self.run_sig: dict[int, tuple] = {}
        self.compare: deque[CompareProgressed | CompareDone] = deque()
        self.stop = threading.Event()
        self.wake = threading.Event()
        self._lock = threading.Lock()
        #: Sizes (bytes) of the updates sent and not yet acknowledged, oldest first.
        self.inflight: deque[int] = deque()
        self._inflight_bytes = 0
        self.last_send = -1.0
        self._runs_ended_seen = -1
        # Is an ack waiting? Used under _lock only (see wire.readable).
        self._ack_ready = readable(conn)
        self._notified = isinstance(self.store, EngineStore)
        if self._notified:
            self.store.on_change = self.kick  # type: ignore[attr-defined]
            self.store.on_sample = self.sampled  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self._main, name="taskscope-publisher",
                                       daemon=True)

    def kick(self) -> None:
        """Something changed: wake the publisher thread (cheap when it is awake already)."""
        if not self.wake.is_set():
            self.wake.set()

    def push_compare(self, item: CompareProgressed | CompareDone) -> None:
        self.compare.append(item)
        self.kick()

    def close(self) -> None:
        """Stop the publisher thread (see :meth:`final` for what is still unsent)."""
        self.stop.set()
        self.wake.set()

    def sampled(self) -> None:
        """A sample was stored (called in the storing thread, the sampler's). If nothing but
        samples waits to be sent and the publisher thread is not at work, send it from here;
        else wake the publisher thread."""
        if not self._send_sample_here():
            self.kick()

    def _samples_only(self) -> bool:
        """Only samples wait (and maybe run summaries: a few hundred bytes), and the pipe has
        room for them: no records, events or comparison reports, few bytes in flight."""
        return not (self.pending or self.compare or self.store.event_count != self.ev_cursor
                    or len(self.inflight) >= IN_FLIGHT + SAMPLE_SLACK
                    or self._inflight_bytes >= DIRECT_MAX_BYTES)

    def _send_sample_here(self) -> bool:
        if self.wake.is_set() or self.stop.is_set() or not self._samples_only():
            return False
        if not self._lock.acquire(blocking=False):
            return False
        try:
            if not self._samples_only():  # again, now that nothing else can send
                return False
            upd = self._build()
            if upd is not None:
                self._send_locked(upd)
            return True
        except (EOFError, OSError):
            return True  # the front end went away; the command loop sees it
        finally:
            self._lock.release()

    def read_acks(self) -> None:
        """Take the acknowledgements that arrived (and the front end's loop lag with them),
        without waiting. The sampler calls this right before each sample reads the "gui"
        lag, so a lateness the front end reported counts in the sample whose interval it
        arrived in. Skipped while the publisher thread is at work or has work waiting (it
        may be waiting on the pipe for these very acks: it reads them itself)."""
        if self.wake.is_set() or not self._lock.acquire(blocking=False):
            return
        try:
            self._acks_locked()
        except (EOFError, OSError):
            pass  # the front end went away; the command loop sees it
        finally:
            self._lock.release()

    def _acks_locked(self) -> None:
        conn = self.conn
        ready = self._ack_ready
        while ready():
            msg = conn.recv()
            if type(msg) is Ack:
                for _ in range(min(msg.n, len(self.inflight))):
                    self._inflight_bytes -= self.inflight.popleft()
                if msg.lag_ms is not None and self.lag is not None:
                    try:
                        self.lag.report(msg.lag_ms)
                    except (TypeError, ValueError):
                        pass  # not a finite number: dropped, the publisher goes on

    def _send_locked(self, upd: Update) -> None:
        buf = UpdatePickler.dumps(upd)  # what Connection.send does, with its size known
        self.conn.send_bytes(buf)
        n = len(buf)
        self.inflight.append(n)
        self._inflight_bytes += n
        self.last_send = time.monotonic()

    def _main(self) -> None:
        stop = self.stop
        wake = self.wake
        lock = self._lock
        try:
            while not stop.is_set():
                with lock:
                    self._acks_locked()
                    can_send = len(self.inflight) < IN_FLIGHT
                    if can_send:
                        wake.clear()  # a change from here on wakes the wait below
                        upd = self._build()
                        if upd is not None:
                            self._send_locked(upd)
                        if self.pending:  # more than MAX_RECORDS changed: the rest next
                            wake.set()
                if not can_send and wake.is_set():
                    # Something to send, and the front end has IN_FLIGHT updates to read:
                    # wait for its next acknowledgement.
                    self.conn.poll(0.1)
                    continue
                # Sleep until something changes (it may have already: then at once).
                wake.wait(IDLE_WAKE_S if self._notified else BUSY_GAP_S)
                # Changes that come quickly go out together, at most one update per gap.
                gap = self.last_send + BUSY_GAP_S - time.monotonic()
                if gap > 0:
                    stop.wait(gap)
        except (EOFError, OSError, BrokenPipeError):
            pass  # the front end went away; the command loop sees it too

    def final(self) -> None:
        """After shutdown: send everything still unsent, whatever is in flight."""
        try:
            with self._lock:
                while (upd := self._build()) is not None:
                    self._send_locked(upd)
        except OSError:
            pass

    def _build(self) -> Update | None:
        st = self.store
        if st.event_count != self.ev_cursor:
            events, self.ev_cursor, dropped = st.read_events(self.ev_cursor)
        else:
            events, dropped = [], 0
        pending = self.pending
        if events:
            queued = Kind.QUEUED
            pending.update(ev[1] for ev in events if ev[2] != queued)
        if dropped:
            # We fell behind the ring: resend every record of every run whose final state the
            # front end has not had yet (a run that ended in the events we missed included).
            for rec in st.runs():
                if rec.run_id not in self.final_runs:
                    pending.update(rec.task_ids)
        # A run's summary changes with its events (counts) and when it ends (end_ns): with
        # neither since the last look, the runs need no scan.
        scan = bool(events or dropped) or not self._notified
        ended = getattr(st, "runs_ended", 0)
        if ended != self._runs_ended_seen:
            self._runs_ended_seen = ended
            scan = True
        runs: list[RunSummary] = []
        for rec in st.runs() if scan else ():
            rid = rec.run_id
            if rid in self.final_runs:
                continue
            counts = dict(rec.counts)
            info = rec.info  # replaced, never changed in place, when the model adds to it
            sig = (rec.end_ns, tuple(sorted(counts.items())), id(info))
            old = self.run_sig.get(rid)
            if old == sig:
                continue
            self.run_sig[rid] = sig
            first = rid not in self.sent_runs
            self.sent_runs.add(rid)
            new_info = info if info and (old is None or old[2] != id(info)) else None
            runs.append(RunSummary(rid, rec.spec if first else None, rec.task_ids.start,
                                   len(rec.task_ids), rec.start_ns, rec.end_ns, counts,
                                   new_info))
            if rec.end_ns is not None:
                self.final_runs.add(rid)
                self.run_sig.pop(rid, None)
        recs: list[tuple[Any, ...]] = []
        if pending:
            take = [pending.pop() for _ in range(min(MAX_RECORDS, len(pending)))]
            recs = encode_tasks(st.records(take))
        samples, self.sample_cursor = st.read_samples(self.sample_cursor)
        compare = []
        while self.compare:
            compare.append(self.compare.popleft())
        if not (runs or recs or samples or compare or events or dropped):
            return None
        return Update(runs, recs, samples, len(events), dropped, st.duplicate_terminals,
                      st.unknown_events, compare, len(pending))


def start_publisher(session: Session, conn: Connection) -> Publisher:
    """A publisher of ``session``'s state on ``conn``, running."""
    pub = Publisher(session, conn, None)
    if session.sampler is not None:
        # The front end's loop lag comes with its acks: each sample reads those that arrived
        # in its interval, in the sampler's thread (the publisher may be asleep).
        pub.lag = session.sampler.add_external_lag("gui", poll=pub.read_acks)
    pub.thread.start()
    return pub
