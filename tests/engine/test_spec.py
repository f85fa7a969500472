"""Run specs: valid values become a RunSpec; every bad one is a one-line SpecError that names the
field, raised before anything starts."""

from __future__ import annotations

import asyncio
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import engine
from engine.spec import MAX_PROCESS_WORKERS, MAX_SIZE_S, MAX_TASKS, MAX_WORKERS, parse_duration

UNAVAILABLE = [m.name for m in engine.all_models() if not m.available]
IN_PROCESS = [m.name for m in engine.all_models() if m.available and not m.isolated]


def test_defaults_and_values() -> None:
    s = engine.make_spec("threads", "cpu")
    assert (s.model, s.workload, s.tasks, s.size_s, s.workers, s.timeout_s, s.policy) == (
        "threads", "cpu", 10, 0.2, None, None, "collect")
    s = engine.make_spec(" processes ", " sleep ", tasks="1_000", size="1.5s", workers="2",
                         timeout="250ms", policy="fail-fast")
    assert (s.model, s.workload, s.tasks, s.size_s, s.workers, s.timeout_s, s.policy) == (
        "processes", "sleep", 1000, 1.5, 2, 0.25, "fail-fast")
    assert s.effective_workers() == 2
    assert engine.make_spec("sequential", "cpu").effective_workers() == 1
    assert engine.make_spec("asyncio", "sleep", tasks=50).effective_workers() == 50
    assert engine.make_spec("threads", "http").params["delay"] == 0.02
    d = s.as_dict()
    assert d["model"] == "processes" and d["workers"] == 2 and d["timeout_s"] == 0.25


@pytest.mark.parametrize(("text", "seconds"), [
    ("200ms", 0.2), ("1.5s", 1.5), ("500us", 0.0005), ("2m", 120.0), ("1min", 60.0),
    (" 3 s ", 3.0), (0.25, 0.25), (2, 2.0), ("1e-3s", 0.001), ("0", 0.0),
])
def test_durations(text, seconds) -> None:
    assert math.isclose(parse_duration(text, "size"), seconds)


BAD = [
    # (kwargs, field)
    ({"model": ""}, "model"),
    ({"model": None}, "model"),
    ({"model": 3}, "model"),
    ({"model": "nope"}, "model"),
    ({"model": "Threads"}, "model"),
    ({"workload": ""}, "workload"),
    ({"workload": "nope"}, "workload"),
    ({"workload": None}, "workload"),
    ({"tasks": 0}, "tasks"),
    ({"tasks": -1}, "tasks"),
    ({"tasks": "-5"}, "tasks"),
    ({"tasks": "abc"}, "tasks"),
    ({"tasks": 1.5}, "tasks"),
    ({"tasks": True}, "tasks"),
    ({"tasks": None}, "tasks"),
    ({"tasks": float("nan")}, "tasks"),
    ({"tasks": float("inf")}, "tasks"),
    ({"tasks": MAX_TASKS + 1}, "tasks"),
    ({"tasks": 10**12}, "tasks"),
    ({"tasks": "9" * 5000}, "tasks"),
    ({"size": -1}, "size"),
    ({"size": "-5ms"}, "size"),
    ({"size": "nan"}, "size"),
    ({"size": float("nan")}, "size"),
    ({"size": float("inf")}, "size"),
    ({"size": "1e999s"}, "size"),
    ({"size": "abc"}, "size"),
    ({"size": "5 parsecs"}, "size"),
    ({"size": MAX_SIZE_S + 1}, "size"),
    ({"size": "100h"}, "size"),
    ({"size": True}, "size"),
    ({"size": []}, "size"),
    ({"workers": 0}, "workers"),
    ({"workers": -3}, "workers"),
    ({"workers": "x"}, "workers"),
    ({"workers": float("nan")}, "workers"),
    ({"workers": MAX_WORKERS + 1}, "workers"),
    ({"model": "processes", "workers": MAX_PROCESS_WORKERS + 1}, "workers"),
    ({"model": "sequential", "workers": 2}, "workers"),
    ({"timeout": 0}, "timeout"),
    ({"timeout": "0s"}, "timeout"),
    ({"timeout": -1}, "timeout"),
    ({"timeout": "nan"}, "timeout"),
    ({"timeout": float("inf")}, "timeout"),
    ({"timeout": "100000s"}, "timeout"),
    ({"policy": "nope"}, "policy"),
    ({"policy": None}, "policy"),
    ({"params": {"nokey": 1}}, "params.nokey"),
    ({"workload": "http", "params": {"delay": 0}}, "params.delay"),
    ({"workload": "http", "params": {"delay": "61s"}}, "params.delay"),
    ({"workload": "http", "params": {"delay": "soon"}}, "params.delay"),
    ({"workload": "blocking", "params": {"mode": "gpu"}}, "params.mode"),
    ({"workload": "fail", "params": {"every": 0}}, "params.every"),
    ({"workload": "fail", "params": {"every": "often"}}, "params.every"),
    ({"model": "processes", "workload": "crash", "params": {"every": -1}}, "params.every"),
    ({"params": [1, 2]}, "params"),
    ({"params": "delay=1"}, "params"),
] + [({"model": m}, "model") for m in UNAVAILABLE] + [
    ({"model": m, "workload": "crash"}, "workload") for m in IN_PROCESS
]


@pytest.mark.parametrize(("kw", "field"), BAD, ids=[f"{f}={kw}"[:60] for kw, f in BAD])
def test_bad_values_name_the_field(kw: dict, field: str) -> None:
    args = {"model": "threads", "workload": "cpu", **kw}
    with pytest.raises(engine.SpecError) as ei:
        engine.make_spec(**args)
    err = ei.value
    assert err.field == field
    msg = str(err)
    assert msg.startswith(f"{field}: ")
    assert "\n" not in msg and len(msg) < 300
    assert err.message


def test_unavailable_models_say_why() -> None:
    for m in engine.all_models():
        if not m.available:
            with pytest.raises(engine.SpecError, match=m.name) as ei:
                engine.make_spec(m.name, "cpu")
            assert m.reason and m.reason in str(ei.value)


_anything = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(),
                                                         max_size=2),
)


@settings(max_examples=300, deadline=None)
@given(model=st.sampled_from([*engine.model_names(), "x"]), workload=st.sampled_from(
    [*engine.WORKLOADS, "x"]), tasks=_anything, size=_anything, workers=_anything,
       timeout=_anything, policy=_anything, params=_anything)
def test_any_input_gives_a_spec_or_a_spec_error(model, workload, tasks, size, workers, timeout,
                                                policy, params) -> None:
    try:
        s = engine.make_spec(model, workload, tasks, size, workers, timeout, policy, params)
    except engine.SpecError as e:
        assert "\n" not in str(e) and e.field
        return
    assert 1 <= s.tasks <= MAX_TASKS
    assert 0 <= s.size_s <= MAX_SIZE_S and math.isfinite(s.size_s)
    assert s.workers is None or s.workers >= 1
    assert s.timeout_s is None or (s.timeout_s > 0 and math.isfinite(s.timeout_s))


# -- nothing starts for a bad spec ------------------------------------------------------------------
def test_session_refuses_specs_it_cannot_run(session) -> None:
    with pytest.raises(TypeError):
        session.start({"model": "threads", "workload": "cpu"})  # type: ignore[arg-type]
    for m in UNAVAILABLE:
        with pytest.raises(engine.SpecError) as ei:
            session.start(engine.RunSpec(m, "cpu"))
        assert ei.value.field == "model"
    loop = asyncio.new_event_loop()
    try:
        with pytest.raises(engine.SpecError) as ei:
            session.start(engine.make_spec("threads", "http"), loop=loop)
        assert ei.value.field == "loop"
    finally:
        loop.close()
    assert session.runs() == []
    assert session.store.runs() == []
    assert session.store.event_count == 0
    assert session.worker_pids() == []
