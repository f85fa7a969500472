"""The model registry: every model is one entry, and a new one needs nothing else.

The tiny model below is defined here, in the test, with one runner class and one entry: the
spec validator, the session, cancel, the CLI and the session's resources take it without a
change anywhere else in the engine.
"""

from __future__ import annotations

import ast
import threading
from collections.abc import Iterable
from pathlib import Path

import pytest

import engine
from engine import Session, SpecError, State, make_spec
from engine.cli import main as cli_main
from engine.context import FlagContext
from engine.models import ModelEntry, Runner, register, unregister
from engine.models.execute import run_blocking
from engine.models.protocol import Launch, RunView
from engine.models.queue import TaskQueue
from engine.models.registry import entry, names


class OneThread(TaskQueue):
    """A tiny model: one thread of its own runs the tasks in order, cooperative cancel."""

    def __init__(self, run: RunView, launch: Launch) -> None:
        super().__init__(run)
        self.thread = threading.Thread(target=self._work, name=f"tiny-{run.run_id}")
        self.running: dict[int, FlagContext] = {}
        # A session-wide resource: made once, closed at shutdown.
        self.shared = launch.resources.get("tiny.counter", lambda: {"made": 1, "closed": 0},
                                           lambda c: c.update(closed=c["closed"] + 1))

    def start(self) -> None:
        self.thread.start()

    def _work(self) -> None:
        while True:
            tid, order = self._take()
            if tid < 0:
                return
            if order is None:
                continue
            ctx = FlagContext(self.run.run_id, tid, self.put, self.run.deadline_ns(), "",
                              order.index)
            self.running[tid] = ctx
            try:
                run_blocking(ctx, order)
            finally:
                self.running.pop(tid, None)

    def cancel(self, task_ids: Iterable[int], force: bool, reason: str) -> None:
        for tid in self._cancel_queued(task_ids, reason):
            ctx = self.running.get(tid)
            if ctx is not None:
                self._request(tid, reason)
                ctx.request_cancel(reason)

    def close(self, timeout: float) -> None:
        self.thread.join(timeout)


def _choice(value: object, field: str) -> str:
    if value not in ("a", "b"):
        raise SpecError(field, f"must be a or b, got {value!r}")
    return str(value)


@pytest.fixture
def tiny() -> Iterable[ModelEntry]:
    e = register(ModelEntry("tiny", "one thread of its own, defined in a test", OneThread,
                            default_workers=lambda tasks: 1,
                            options={"flavour": ("a", _choice)},
                            refuses={"http": "it has no network of its own"}))
    try:
        yield e
    finally:
        unregister("tiny")


def test_a_model_defined_in_a_test_runs_end_to_end(tiny: ModelEntry) -> None:
    spec = make_spec("tiny", "cpu", tasks=4, size="5ms")
    assert spec.options == {"flavour": "a"}
    with Session(sample_hz=None) as s:
        run = s.start(spec)
        assert run.wait(30)
        recs = s.store.tasks(run.run_id)
        assert [r.state for r in recs] == [State.FINISHED] * 4
        assert {r.thread for r in recs} == {f"tiny-{run.run_id}"}  # its own, real lane
        shared = run.runner.shared
    assert shared == {"made": 1, "closed": 1}  # closed once, at shutdown


def test_a_new_model_is_cancelled_like_the_others(tiny: ModelEntry) -> None:
    with Session(sample_hz=None) as s:
        run = s.start(make_spec("tiny", "sleep", tasks=3, size="20s"))
        deadline = threading.Event()
        while s.store.tasks(run.run_id)[0].state is not State.RUNNING:
            assert not deadline.wait(0.01) and not run.ended
        assert s.cancel_run(run.run_id, force=True)  # force is not the tiny model's to honour
        assert run.wait(10)
        states = [r.state for r in s.store.tasks(run.run_id)]
    assert states == [State.CANCELLED] * 3


def test_a_new_model_shows_in_the_lists_and_the_cli(tiny: ModelEntry,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert "tiny" in engine.model_names()
    assert engine.model_info("tiny").description == "one thread of its own, defined in a test"
    assert cli_main(["models"]) == 0
    assert "tiny" in capsys.readouterr().out


def test_a_model_option_is_checked_before_anything_starts(tiny: ModelEntry) -> None:
    with pytest.raises(SpecError) as e:
        make_spec("tiny", "cpu", options={"flavour": "c"})
    assert e.value.field == "options.flavour"
    with pytest.raises(SpecError) as e:
        make_spec("tiny", "cpu", options={"colour": "a"})
    assert e.value.field == "options.colour" and "flavour" in str(e.value)
    with pytest.raises(SpecError) as e:
        make_spec("threads", "cpu", options={"flavour": "a"})
    assert e.value.field == "options.flavour" and "none" in str(e.value)


def test_a_workload_the_model_refuses_is_refused_before_anything_starts(
        tiny: ModelEntry) -> None:
    with pytest.raises(SpecError) as e:
        make_spec("tiny", "http", tasks=2)
    assert e.value.field == "workload"
    assert str(e.value) == "workload: tiny cannot run http: it has no network of its own"
    make_spec("threads", "http", tasks=2)  # the refusal is the tiny model's alone


def test_unregistered_models_are_unknown() -> None:
    with pytest.raises(SpecError) as e:
        make_spec("tiny", "cpu")
    assert e.value.field == "model" and "sequential" in str(e.value)


@pytest.mark.parametrize("name", names())
def test_every_entry_makes_a_runner_that_satisfies_the_protocol(name: str) -> None:
    e = entry(name)
    if not e.available().ok:
        pytest.skip(f"{name}: {e.available().reason}")
    with Session(sample_hz=None) as s:
        run = s.start(make_spec(name, "sleep", tasks=2, size="1ms"))
        assert isinstance(run.runner, Runner)
        assert run.wait(30)


def test_a_front_end_learns_what_it_needs_from_model_info(tiny: ModelEntry) -> None:
    """What the window asks of a model (one worker? its own loop? the baseline?) comes from
    the entry, so a front end needs no model names."""
    assert engine.model_info("tiny").max_workers == tiny.max_workers
    for name in names():
        e, i = entry(name), engine.model_info(name)
        assert (i.max_workers, i.caller_loop, i.baseline, i.coroutines, i.isolated) == (
            e.max_workers, e.caller_loop, e.baseline, e.coroutines, e.isolated)
    assert [n for n in names() if engine.model_info(n).baseline] == ["sequential"]


def _decisions_by_model_name(tree: ast.AST, model_names: set[str]) -> list[tuple[int, str]]:
    """Where code decides by a model's name: ``x == "asyncio"``, ``m in ("a", "b")``,
    ``models.index("asyncio")``, ``boxes["threads"]``."""
    def named(node: ast.AST) -> str | None:
        if isinstance(node, ast.Constant) and node.value in model_names:
            return node.value
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            return next((n for n in map(named, node.elts) if n), None)
        return None

    out = []
    for node in ast.walk(tree):
        hits: list[str | None] = []
        if isinstance(node, ast.Compare):
            hits = [named(n) for n in (node.left, *node.comparators)]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr == "index":
            hits = [named(a) for a in node.args]
        elif isinstance(node, ast.Subscript):  # by model: boxes["threads"], models["dask"]
            base = node.value
            label = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", "")
            if "model" in label or "box" in label:
                hits = [named(node.slice)]
        out += [(node.lineno, h) for h in hits if h]
    return out


def test_no_code_outside_the_registry_decides_by_a_models_name() -> None:
    """Adding a model is a runner module and an entry: front ends, compare, remote and the
    CLI ask the model's info (baseline, caller_loop, needs, ...) instead of its name."""
    root = Path(__file__).resolve().parents[2]
    # The models' own package; benches; scriptgen's shapes (the registry names each model's
    # script shape, and one shape is called "dask" too).
    outside = ("engine/models/", "engine/bench/", "gui/bench/", "engine/scriptgen/")
    found = {}
    for path in sorted([*root.glob("engine/**/*.py"), *root.glob("gui/**/*.py")]):
        rel = path.relative_to(root).as_posix()
        if rel.startswith(outside):
            continue
        hits = _decisions_by_model_name(ast.parse(path.read_text()), set(names()))
        if hits:
            found[rel] = hits
    assert not found, found
