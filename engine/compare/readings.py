"""One sentence per model that follows from its measured figures, never from its name.

:func:`reading` branches on numbers (the speedup, the cores this work kept busy against its
workers and its CPU share, the overhead per task against the task size); it adds the run's
start-up and other programs' load where they matter, and the window's lag only for a run on
the window's own loop (any other run does not cause it: it runs in the engine). Structural facts about a model only pick the explanation once the numbers have shown the
effect.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .results import CORES_FMT, SPEEDUP_FMT


@dataclass(frozen=True)
class Figures:
    """What :func:`reading` looks at. Structural facts about the model (``shares_gil``,
    ``one_thread``) only pick the *explanation* once the numbers have shown the effect."""

    model: str
    complete: bool
    tasks: int
    tasks_ok: int
    wall_s: float | None
    speedup: float | None
    is_baseline: bool
    cores_busy: float | None
    workers: int
    cores: int
    cpu_share: float
    size_s: float
    overhead_per_task_s: float | None
    gui_lag_p99_ms: float | None
    #: Machine-wide busy cores during the settle pause just before the run (other load).
    baseline_cores: float | None = None
    #: Machine-wide busy cores while it ran (every program's, this run's included).
    machine_cores: float | None = None
    #: Seconds until its workers were ready (part of ``wall_s``), and what they are.
    startup_s: float | None = None
    workers_noun: str = ""
    speedup_without_startup: float | None = None
    #: How its tasks ended (finished, failed, cancelled, timed_out): a partial run says so.
    counts: Mapping[str, int] = field(default_factory=dict)
    #: It ran on the window's own event loop, so the window's lag is its doing.
    on_gui_loop: bool = False
    #: Tasks run Python in several threads of one process (they share one GIL).
    shares_gil: bool = False
    #: Every task runs on one thread (an event loop, or one worker).
    one_thread: bool = False


GUI_LAG_BAD_MS = 50.0
#: Start-up shorter than this (and than 2% of the wall) goes unmentioned.
STARTUP_NOTED_S = 0.01


def _cores(v: float) -> str:
    return format(v, CORES_FMT)


def _partial(f: Figures) -> str:
    ended = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in f.counts.items()
                      if v and k not in ("finished", "failed"))
    return (f"did not complete ({f.tasks_ok} of {f.tasks} tasks ended on their own"
            + (f"; {ended}" if ended else "") + "): a partial run, not ranked")


def _startup(f: Figures) -> str:
    s = f.startup_s
    if s is None or f.wall_s is None or s < max(STARTUP_NOTED_S, 0.02 * f.wall_s):
        return ""
    lanes = min(f.workers, f.tasks)
    what = f"{lanes} {f.workers_noun}" if f.workers_noun else "its workers"
    text = f"; of its {f.wall_s:.2f} s, {s:.2f} s went to starting {what}"
    if f.speedup_without_startup is not None and not f.is_baseline:
        text += f" ({f.speedup_without_startup:{SPEEDUP_FMT}}x without start-up)"
    return text


def reading(f: Figures) -> str:
    """One sentence that follows from the figures.

    The branches test measured numbers: the speedup against the baseline, the cores this work
    kept busy against the workers it had and the CPU share of the work, the per-task overhead
    against the task size, its start-up, and the GUI loop's lag when it ran on that loop.
    Change the numbers and the sentence changes. The numbers it quotes are printed as the
    results table prints them (:data:`~engine.compare.results.CORES_FMT`, ``SPEEDUP_FMT``).
    """
    p = f"{f.model}: "
    if not f.complete:
        return p + _partial(f)
    head: list[str] = []
    if f.speedup is not None:
        head.append(f"{f.speedup:{SPEEDUP_FMT}}x")
    elif f.wall_s is not None:
        head.append(f"{f.wall_s:.2f} s")
    busy = f.cores_busy
    if busy is not None:
        head.append(f"{_cores(busy)} cores busy")
    lead = p + ", ".join(head) + ": "
    lanes = min(f.workers, f.tasks)
    cpu_work = f.cpu_share >= 0.5
    sp = f.speedup
    oh = f.overhead_per_task_s
    oh_big = oh is not None and f.size_s > 0 and oh > max(0.001, 0.25 * f.size_s)

    if sp is None:
        why = "nothing completed to compare it with"
    elif f.is_baseline:
        if busy is not None and busy < 0.3:
            why = "the baseline; the CPU sat idle while tasks waited one after another"
        elif busy is not None and busy <= 1.3:
            why = "the baseline; one core computed one task at a time"
        else:
            why = "the baseline"
    elif sp >= 1.5:
        if busy is not None and busy >= 1.5:
            ceiling = min(lanes, f.cores)
            why = f"the work ran in parallel on {_cores(busy)} cores"
            if cpu_work and sp >= 0.8 * ceiling:
                why += f", close to the {ceiling}-core limit"
        elif busy is not None and busy < 0.5:
            why = "tasks overlapped their waiting, which needs almost no CPU"
        elif cpu_work:
            why = ("faster with only about one core busy on its work, so the baseline ran "
                   "slow: other load may skew this comparison")
        else:
            why = "waits overlapped while about one core computed"
    elif sp >= 1.15:
        if busy is not None and busy >= 1.5:
            why = (f"{_cores(busy)} cores busy but only {sp:{SPEEDUP_FMT}}x: start-up, "
                   "hand-off or other load took the rest")
        elif cpu_work and lanes > 1 and busy is not None and busy <= 1.3:
            why = "a modest gain, with about one core computing at a time"
        else:
            why = "a modest gain from overlapping tasks"
        if oh_big:
            why += f"; {oh * 1e3:.1f} ms lost per task"
    elif sp >= 0.85:
        if cpu_work and lanes > 1 and busy is not None and busy <= 1.3:
            if f.shares_gil:
                why = "the GIL lets one thread run Python at a time"
            elif f.one_thread:
                why = "one thread runs every task, so the computing takes turns"
            else:
                why = f"only about one core was busy although {lanes} workers could run"
        elif busy is not None and busy >= 1.5:
            why = (f"{_cores(busy)} cores were busy yet it went no faster: overhead or "
                   "contention ate the gain")
        elif not cpu_work and lanes > 1 and busy is not None and busy < 0.5:
            why = (f"its tasks did not overlap although {lanes} could: "
                   "something blocked while they waited")
        else:
            why = "no gain over the baseline"
        if oh_big:
            why += f"; {oh * 1e3:.1f} ms lost per task"
    else:
        why = "slower than the baseline"
        if oh is not None:
            why += f": {oh * 1e3:.1f} ms lost per task against {f.size_s * 1e3:.0f} ms of work"
    if sp is not None and sp >= 1.5 and oh_big:
        why += f"; still {oh * 1e3:.1f} ms lost per task"
    why += _startup(f)
    other = None if f.machine_cores is None or busy is None else f.machine_cores - busy
    if other is not None and other >= 0.5:
        why += (f" (other programs kept {_cores(other)} more cores busy meanwhile: "
                f"{_cores(f.machine_cores or 0.0)} machine-wide)")
    elif f.baseline_cores is not None and f.baseline_cores >= 0.5:
        why += f" (other load kept {_cores(f.baseline_cores)} cores busy just before it ran)"
    if (f.on_gui_loop and f.gui_lag_p99_ms is not None
            and f.gui_lag_p99_ms >= GUI_LAG_BAD_MS):
        why += f"; it ran on the window's loop, which lagged {f.gui_lag_p99_ms:.0f} ms (p99)"
    return lead + why
