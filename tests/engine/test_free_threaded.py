"""The free-threaded path, from a description of a build this machine cannot have.

No 3.14t (nor any free-threaded build) installs here: Debian 12 has none, Debian sid's needs a
newer libc, and the PyPI installers of Python builds download from hosts this machine cannot
reach. Every judgement of "which interpreter is this" reads :func:`engine.build.current`, so
these tests hand it the description of a 3.14t, with its GIL off and then back on, and check
what each judge makes of it: the free-threaded model's availability, the GIL probe and the
sampler ("no GIL", never a 0% that was not measured), the python block, and a run of the
model itself (the thread runner, which is real here). The interpreters' discovery side is
covered the same way in test_pythons.py (``assess`` of a described 3.14t).
"""

from __future__ import annotations

import pytest

from engine import Session, State, build, make_spec
from engine.build import Build, python_label
from engine.models import model_info
from engine.probes import GilProbe, gil_disabled
from engine.sampler import Sampler
from engine.store import EventStore

T_OFF = Build("/opt/python3.14t/bin/python3.14t", "3.14.0", free_threaded=True,
              gil_enabled=False)
T_ON = Build("/opt/python3.14t/bin/python3.14t", "3.14.0", free_threaded=True,
             gil_enabled=True)


@pytest.fixture
def described(monkeypatch: pytest.MonkeyPatch):
    def use(b: Build) -> None:
        monkeypatch.setattr(build, "current", lambda: b)

    return use


def test_this_interpreter_is_a_gil_build_and_says_so() -> None:
    b = build.current()
    assert not b.gil_off
    assert not model_info("free-threaded").available
    assert "free-threaded build" in model_info("free-threaded").reason
    assert "--python" in model_info("free-threaded").fix


def test_a_free_threaded_build_with_the_gil_off_has_the_model_and_no_gil_to_probe(
        described) -> None:
    described(T_OFF)
    m = model_info("free-threaded")
    assert m.available and not m.reason
    assert gil_disabled()
    probe = GilProbe()
    assert probe.disabled
    probe.start()
    assert probe.thread is None  # nothing to wait for: no probe thread at all
    assert probe.take() is None
    assert build.python_block() == {"executable": T_OFF.executable, "version": "3.14.0",
                                    "free_threaded": True, "gil_enabled": False}
    assert python_label(build.python_block()) == "3.14.0t"


def test_the_sampler_reports_no_gil_rather_than_a_measured_zero(described) -> None:
    described(T_OFF)
    store = EventStore()
    sampler = Sampler(store, lambda: [], hz=10)
    try:
        sampler.set_busy(True)
        s = sampler.sample_now()
    finally:
        sampler.stop()
    assert s.gil_disabled is True and s.gil is None


def test_the_gil_switched_back_on_is_told_apart(described) -> None:
    described(T_ON)
    m = model_info("free-threaded")
    assert not m.available and "GIL switched on" in m.reason and "PYTHON_GIL" in m.fix
    assert not gil_disabled()
    assert GilProbe().disabled is False
    assert python_label(build.python_block()) == "3.14.0t (GIL on)"


def test_the_free_threaded_model_runs_the_thread_runner_and_records_the_build(
        described) -> None:
    described(T_OFF)
    spec = make_spec("free-threaded", "cpu", 4, "10ms", 2)
    with Session(sample_hz=None) as s:
        run = s.start(spec)
        assert run.wait(30)
        tasks = s.store.tasks(run.run_id)
        assert [t.state for t in tasks] == [State.FINISHED] * 4
        assert len({t.tid for t in tasks}) == 2  # two real worker threads
        assert run.record.info["python"]["free_threaded"] is True
        assert run.record.info["python"]["gil_enabled"] is False
