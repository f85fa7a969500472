"""How the gui is put together: what it asks the engine instead of knowing by name, and what
the window's helpers may ask of the window."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from typing import Generic, Protocol

from PySide6.QtCore import Signal

import engine
from engine import State, TaskRecord
from gui import hosts
from gui.task_text import worker_text
from gui.timeline_data import TimelineData
from gui.worker_kind import worker_kind


def test_a_models_workers_are_processes_exactly_when_the_engine_says_it_is_isolated() -> None:
    for info in engine.all_models():
        kind = worker_kind(info.name)
        assert (kind in ("process", "cluster")) == info.isolated, info.name
        # A cluster's workers (Dask's) are processes known by their addresses.
        assert (kind == "cluster") == info.addressed_workers, info.name
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
        # A cluster worker's task names its worker's address first (as Dask's do).
        address = f"tcp://10.0.0.{i}:4000 " if info.addressed_workers else ""
        r = TaskRecord(i, i, 0, state=State.RUNNING, queued_ns=0, start_ns=1, pid=100 + i,
                       tid=200 + i, thread=f"{address}run{i}-thread_0", task_name=f"task-{i}")
        d.update([r], lambda _rid, m=info.name: m)
        kind = worker_kind(info.name)
        assert d.workers[-1].kind == kind
        text = worker_text(r, info.name)
        assert text == {"process": f"process {r.pid}", "loop": f"task-{i} on loop {r.tid}",
                        "thread": f"run{i}-thread_0 ({r.tid})",
                        "cluster": f"worker 10.0.0.{i}:4000 · pid {r.pid}"}[kind]
        if kind == "cluster":
            assert d.workers[-1].label == f"run{i} 10.0.0.{i}:4000 ({r.tid})"


# -- the window's helpers ask the window through gui.hosts ------------------------------------
GUI = Path(__file__).resolve().parents[2] / "gui"
#: helper module -> (the Protocol it is typed against, the names its code calls the host by)
HELPERS = {"compare_mode.py": (hosts.CompareHost, {"self.host", "host"}),
           "file_menu.py": (hosts.FileHost, {"self.host", "host"}),
           "replay.py": (hosts.ReplayHost, {"win"})}


def _members(proto: type) -> set[str]:
    return {n for c in proto.__mro__ if c not in (object, Protocol, Generic)
            for n in (*vars(c), *getattr(c, "__annotations__", {}))
            if not n.startswith("_")}


def _params(f: object) -> list[tuple[str, object, object]]:
    """A method's parameters: name, kind and default (what a caller relies on)."""
    return [(p.name, p.kind, p.default) for p in inspect.signature(f).parameters.values()]


def test_the_window_has_every_method_of_every_host_with_the_same_signature() -> None:
    from gui.main_window import MainWindow

    for proto, _names in HELPERS.values():
        for name in _members(proto):
            assert hasattr(MainWindow, name), (proto.__name__, name)
            want = getattr(proto, name, None)
            if not inspect.isfunction(want) or not inspect.isfunction(getattr(MainWindow, name)):
                continue  # Qt's own methods (window, close) and the closed signal
            assert _params(getattr(MainWindow, name)) == _params(want), name
    assert isinstance(MainWindow.__dict__["closed"], Signal)  # hosts.ReplayWindow.closed


def test_the_helpers_ask_the_window_only_what_their_host_protocol_names() -> None:
    """Every attribute a helper reads from its window is a member of its Protocol: no widget,
    no private method. (The old helpers read ~35 of the window's attributes.)"""
    for module, (proto, names) in HELPERS.items():
        tree = ast.parse((GUI / module).read_text())
        allowed = _members(proto)
        used = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
                and ast.unparse(node.value) in names}
        assert used, module  # the check looks at the right names
        assert used <= allowed, (module, sorted(used - allowed))
        imports = {ast.unparse(n) for n in ast.walk(tree)
                   if isinstance(n, ast.ImportFrom | ast.Import)}
        assert not any("main_window" in i for i in imports), module
