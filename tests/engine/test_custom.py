"""Custom workloads: the user's own function by reference, under every model, with clear errors."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from engine import make_spec
from engine.custom import NO_CTX_NOTE, load, parse_cli_arg, stable_module_name
from engine.models import all_models
from engine.spec import SpecError

MODELS = [m.name for m in all_models() if m.available]

USER_CODE = textwrap.dedent('''
    import asyncio
    import time

    def spin(n, ctx=None):
        """Sync, takes ctx: checks it while computing."""
        if ctx is not None:
            assert hasattr(ctx, "progress") and hasattr(ctx, "check"), ctx
        s = 0
        for i in range(n):
            s += i * i
            if ctx is not None and i % 1000 == 0:
                ctx.progress(i / n)
        return s

    def nap(seconds):
        """Sync, no ctx."""
        time.sleep(seconds)
        return seconds

    async def anap(seconds, ctx):
        """Async, takes ctx."""
        await ctx.asleep(seconds)

    async def anap_plain(seconds, label="x"):
        """Async, no ctx."""
        await asyncio.sleep(seconds)
        return label

    def forever(ctx):
        while True:
            ctx.sleep(0.01)

    by_name = lambda: None  # noqa: E731 - a module-level lambda resolves by name

    class Holder:
        @staticmethod
        def method(x):
            return x

    NOT_CALLABLE = 42
''')


@pytest.fixture
def userfile(tmp_path: Path) -> Path:
    f = tmp_path / "user_funcs.py"
    f.write_text(USER_CODE)
    return f


@pytest.fixture
def userpkg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    root = tmp_path / "pkgroot"
    (root / "tsuserpkg").mkdir(parents=True)
    (root / "tsuserpkg" / "__init__.py").write_text("")
    (root / "tsuserpkg" / "funcs.py").write_text(USER_CODE)
    monkeypatch.syspath_prepend(str(root))
    return "tsuserpkg.funcs"


def _run(session, spec, timeout: float = 30.0):
    run = session.start(spec)
    assert run.wait(timeout), "run did not end"
    tasks = session.store.tasks(run.run_id)
    return run.record, tasks


@pytest.mark.parametrize("model", MODELS)
def test_every_kind_of_function_runs_under_every_model(session, userfile, userpkg, model) -> None:
    cases = [
        (f"{userfile}:spin", [20000], True, False),
        (f"{userfile}:nap", [0.02], False, False),
        (f"{userpkg}:anap", [0.02], True, True),
        (f"{userpkg}:anap_plain", [0.02, "y"], False, True),
        (f"{userpkg}:by_name", [], False, False),
        (f"{userfile}:Holder.method", [1], False, False),
    ]
    for ref, args, takes_ctx, is_async in cases:
        spec = make_spec(model, "custom", 3, params={"function": ref, "args": args})
        assert spec.params["takes_ctx"] is takes_ctx and spec.params["is_async"] is is_async
        rec, tasks = _run(session, spec)
        errors = [t.error for t in tasks if t.error]
        assert rec.counts.get("finished") == 3, (model, ref, errors)
        if model in ("processes", "asyncio-processes"):
            import os

            assert all(t.pid != os.getpid() for t in tasks)  # really ran in workers


@pytest.mark.parametrize("model", [m for m in ("threads", "processes", "asyncio") if m in MODELS])
def test_a_function_taking_ctx_can_be_cancelled(session, userfile, model) -> None:
    spec = make_spec(model, "custom", 2, workers=2,
                     params={"function": f"{userfile}:forever"})
    run = session.start(spec)
    deadline = time.monotonic() + 10
    while sum(1 for t in session.store.tasks(run.run_id) if t.start_ns) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    t = time.monotonic()
    session.cancel_run(run.run_id)
    assert run.wait(5)
    assert time.monotonic() - t < 2
    assert run.record.counts.get("cancelled") == 2


def test_a_function_taking_ctx_times_out(session, userfile) -> None:
    spec = make_spec("threads", "custom", 2, timeout="100ms",
                     params={"function": f"{userfile}:forever"})
    rec, _ = _run(session, spec)
    assert rec.counts.get("timed_out") == 2


def test_cli_args_and_run(userfile, tmp_path) -> None:
    assert parse_cli_arg("3") == 3 and parse_cli_arg("0.5") == 0.5
    assert parse_cli_arg("[1, 2]") == [1, 2] and parse_cli_arg("null") is None
    assert parse_cli_arg("hello") == "hello" and parse_cli_arg('"3"') == "3"
    r = subprocess.run(
        [sys.executable, "-m", "engine.cli", "run", "-m", "processes", "-n", "3",
         "--function", f"{userfile}:nap", "--arg", "0.01", "-q"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert "finished 3" in r.stdout
    assert NO_CTX_NOTE in r.stderr  # no ctx: the CLI says cancel works only between tasks
    r = subprocess.run(
        [sys.executable, "-m", "engine.cli", "run", "-m", "threads", "-n", "2", "-w", "custom",
         "-p", f"function={userfile}:spin", "-p", "args=[100]", "-q"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    assert r.returncode == 0 and "finished 2" in r.stdout, r.stderr
    assert NO_CTX_NOTE not in r.stderr


def test_file_modules_get_a_stable_name(userfile) -> None:
    fn, info = load(f"{userfile}:nap")
    assert info.module == stable_module_name(str(userfile)) == fn.__module__
    fn2, _ = load(f"{userfile}:nap")
    assert fn2 is fn  # imported once


BAD = [
    ("{d}/missing.py:f", "threads", "no such file"),
    ("{d}/notpy.txt:f", "threads", "is not a .py file"),
    ("{d}/broken.py:f", "threads", "importing"),
    ("{d}/user_funcs.py:nope", "threads", "no function 'nope'"),
    ("{d}/user_funcs.py:NOT_CALLABLE", "threads", "is not callable"),
    ("no_such_module_xyz:f", "threads", "no such module: no_such_module_xyz"),
    ("__main__:f", "processes", "cannot be resolved in a worker process"),
    ("nocolon", "threads", "expected module:function"),
    ("mod:1bad", "threads", "is not a function name"),
]


@pytest.mark.parametrize("ref,model,needle", BAD)
def test_bad_functions_fail_clearly_at_spec_time(userfile, tmp_path, ref, model, needle) -> None:
    (tmp_path / "notpy.txt").write_text("x = 1")
    (tmp_path / "broken.py").write_text("raise ValueError('boom at import')\n")
    with pytest.raises(SpecError) as e:
        make_spec(model, "custom", params={"function": ref.format(d=tmp_path)})
    assert e.value.field == "params.function"
    assert needle in str(e.value)
    assert "\n" not in str(e.value)
    if "broken" in ref:
        assert "ValueError: boom at import" in str(e.value)


def test_bad_arguments_fail_clearly(userfile) -> None:
    ref = f"{userfile}:nap"
    for params, field, needle in [
        ({"function": ref, "args": "not json"}, "params.args", "JSON list"),
        ({"function": ref, "args": 5}, "params.args", "list of arguments"),
        ({"function": ref, "args": [1, 2, 3]}, "params.args", "do not fit nap"),
        ({"function": ref, "args": [1], "kwargs": {"ctx": 1}}, "params.kwargs", "ctx"),
        ({"function": ref, "bogus": 1}, "params.bogus", "unknown parameter"),
        ({}, "params.function", "is required"),
    ]:
        with pytest.raises(SpecError) as e:
            make_spec("threads", "custom", params=params)
        assert e.value.field == field and needle in str(e.value), (params, str(e.value))
    # arguments that cannot cross into a worker process: fine for threads, refused for processes
    unpicklable = [lambda: 0]
    make_spec("threads", "custom", params={"function": ref, "args": unpicklable})
    with pytest.raises(SpecError) as e:
        make_spec("processes", "custom", params={"function": ref, "args": unpicklable})
    assert e.value.field == "params.args" and "cannot be pickled" in str(e.value)


def test_user_code_loads_only_when_named() -> None:
    code = ("import sys, engine, engine.workloads, engine.spec\n"
            "engine.make_spec('threads', 'cpu')\n"
            "print(any(m.startswith('taskscope_user_') for m in sys.modules),"
            " 'engine.custom' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.stdout.split() == ["False", "False"], r.stderr
