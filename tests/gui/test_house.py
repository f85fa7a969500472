"""How the gui is put together: what it asks the engine instead of knowing by name."""

from __future__ import annotations

import engine
from engine import State, TaskRecord
from gui.task_table import worker_text
from gui.timeline_data import TimelineData
from gui.worker_kind import worker_kind


def test_a_models_workers_are_processes_exactly_when_the_engine_says_it_is_isolated() -> None:
    for info in engine.all_models():
        assert (worker_kind(info.name) == "process") == info.isolated, info.name
    assert worker_kind("") == worker_kind("no-such-model") == "thread"  # a trace's unknown


def test_a_model_the_gui_never_heard_of_gets_its_lanes_from_its_registry_entry() -> None:
    """A tiny model defined here: the gui knows its kind from the registry alone."""
    from engine.models import ModelEntry, register, unregister

    assert worker_kind("tiny-pool") == "thread"  # unknown yet
    register(ModelEntry("tiny-pool", "a test's own process model", "processes:processes",
                        isolated=True, can_force=True))
    register(ModelEntry("tiny-loop", "a test's own coroutine model", "coroutines:coroutines",
                        coroutines=True))
    try:
        assert (worker_kind("tiny-pool"), worker_kind("tiny-loop")) == ("process", "loop")
    finally:
        unregister("tiny-pool")
        unregister("tiny-loop")


def test_the_table_and_the_timeline_name_a_worker_by_its_kind() -> None:
    d = TimelineData(0)
    for i, info in enumerate(engine.all_models(), 1):
        r = TaskRecord(i, i, 0, state=State.RUNNING, queued_ns=0, start_ns=1, pid=100 + i,
                       tid=200 + i, thread=f"run{i}-thread_0", task_name=f"task-{i}")
        d.update([r], lambda _rid, m=info.name: m)
        kind = worker_kind(info.name)
        assert d.workers[-1].kind == kind
        text = worker_text(r, info.name)
        assert text == {"process": f"process {r.pid}", "loop": f"task-{i} on loop {r.tid}",
                        "thread": f"run{i}-thread_0 ({r.tid})"}[kind]
