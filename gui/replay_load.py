"""A saved trace made ready for a replay window, off the GUI thread.

:func:`prepare` parses and validates the trace, rebuilds its store and lays out every timeline
bar. It is Qt-free and runs on a worker thread (the File menu's job), so a big trace never
stalls the window; the replay window then only fills its views from ready data
(:mod:`gui.replay`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from engine.trace import Replay, load_trace

from .timeline_data import TimelineData


@dataclass(frozen=True)
class PreparedReplay:
    """A loaded trace plus its timeline bars, laid out off the GUI thread."""

    replay: Replay
    timeline: TimelineData


def replay_end_ns(replay: Replay) -> int:
    """The last instant the trace knows about: where "now" stands still in a replay."""
    end = replay.origin_ns
    for r in replay.runs:
        end = max(end, r.start_ns, r.end_ns or 0)
    for t in replay.tasks:
        end = max(end, t.queued_ns, t.start_ns or 0, t.end_ns or 0, t.cancel_requested_ns or 0)
    if replay.samples:
        end = max(end, max(s.t_ns for s in replay.samples))
    return end


def model_of(replay: Replay) -> Callable[[int], str]:
    """run id -> the run's model name, from the specs saved in the trace."""
    models = {r.run_id: (r.spec.model if r.spec is not None else "") for r in replay.runs}
    return lambda run_id: models.get(run_id, "")


def build_timeline(replay: Replay) -> TimelineData:
    """Every task's bar, laid out on its real worker's lane (Qt-free: any thread)."""
    data = TimelineData(replay.origin_ns)
    data.update(replay.tasks, model_of(replay))
    return data


def prepare(path: str | os.PathLike[str]) -> PreparedReplay:
    """Load a trace and lay out its timeline. Qt-free; raises TraceError (one line)."""
    replay = load_trace(path)
    return PreparedReplay(replay, build_timeline(replay))
