"""One sentence per model that follows from its measured figures, never from its name.

:func:`reading` branches on numbers (the speedup, the cores this work kept busy against its
workers and its CPU share, the overhead per task against the task size, the GUI loop's lag);
structural facts about a model only pick the explanation once the numbers have shown the
effect.
"""

from __future__ import annotations

from dataclasses import dataclass


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
    #: Tasks run Python in several threads of one process (they share one GIL).
    shares_gil: bool = False
    #: Every task runs on one thread (an event loop, or one worker).
    one_thread: bool = False


GUI_LAG_BAD_MS = 50.0


def reading(f: Figures) -> str:
    """One sentence that follows from the figures.

    The branches test measured numbers: the speedup against the baseline, the cores this work
    kept busy against the workers it had and the CPU share of the work, the per-task overhead
    against the task size, and the GUI loop's lag. Change the numbers and the sentence changes.
    """
    p = f"{f.model}: "
    if not f.complete:
        return p + (f"did not complete ({f.tasks_ok} of {f.tasks} tasks ended on their own), "
                    "so its figures describe a partial run")
    head: list[str] = []
    if f.speedup is not None:
        head.append(f"{f.speedup:.1f}x")
    elif f.wall_s is not None:
        head.append(f"{f.wall_s:.2f} s")
    busy = f.cores_busy
    if busy is not None:
        head.append(f"{busy:.1f} cores busy")
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
            why = f"the work ran in parallel on {busy:.1f} cores"
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
            why = (f"{busy:.1f} cores busy but only {sp:.1f}x: start-up, hand-off "
                   "or other load took the rest")
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
            why = f"{busy:.1f} cores were busy yet it went no faster: overhead or contention ate the gain"
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
    if f.baseline_cores is not None and f.baseline_cores >= 0.5:
        why += f" (other load kept {f.baseline_cores:.1f} cores busy just before it ran)"
    if f.gui_lag_p99_ms is not None and f.gui_lag_p99_ms >= GUI_LAG_BAD_MS:
        why += f"; the GUI loop lagged {f.gui_lag_p99_ms:.0f} ms (p99)"
    return lead + why
