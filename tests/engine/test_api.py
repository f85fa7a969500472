"""One interface for both sessions (engine.api.SessionAPI): what the window, compare and the CLI
may call, both sessions have, with one signature each. Real sessions, a real engine process."""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from engine import EventStore, Session, SpecError, State, make_spec
from engine.api import CompareJobAPI, RunHandle, SessionAPI
from engine.compare import CompareAcross, CompareJob, CompareRequest
from engine.remote import Engines, RemoteCompareJob, RemoteRun, RemoteSession
from engine.session import Run

WAIT_S = 30.0


def _members(proto: type) -> list[str]:
    names = {n for n in vars(proto) if not n.startswith("_")}
    return sorted(names | set(getattr(proto, "__annotations__", {})))


def _mismatches(proto: type, cls: type) -> list[str]:
    """Where ``cls`` does not have ``proto``'s members with their signatures: every parameter
    the protocol names, by the same name, kind and default, in the same order; anything the
    class adds must be optional. (Data members and properties are checked on instances.)"""
    out = []
    for name in _members(proto):
        want = inspect.getattr_static(proto, name, None)
        if not inspect.isfunction(want):
            continue
        have = inspect.getattr_static(cls, name, None)
        if not inspect.isfunction(have):
            out.append(f"{cls.__name__}.{name}: missing, or not a method")
            continue
        w = list(inspect.signature(want).parameters.values())[1:]
        h = {p.name: p for p in list(inspect.signature(have).parameters.values())[1:]}
        for p in w:
            q = h.get(p.name)
            if p.kind is p.VAR_KEYWORD:
                q = next((x for x in h.values() if x.kind is x.VAR_KEYWORD), None)
            if q is None:
                out.append(f"{cls.__name__}.{name}: no parameter {p.name!r}")
                continue
            kinds = {p.kind, p.POSITIONAL_OR_KEYWORD} if p.kind is p.KEYWORD_ONLY else {p.kind}
            if q.kind not in kinds:
                out.append(f"{cls.__name__}.{name}({p.name}): {q.kind} instead of {p.kind}")
            if q.default != p.default:
                out.append(f"{cls.__name__}.{name}({p.name}): default {q.default!r}, "
                           f"the protocol says {p.default!r}")
        positional = [p.name for p in w if p.kind is p.POSITIONAL_OR_KEYWORD]
        theirs = [n for n, q in h.items() if q.kind is q.POSITIONAL_OR_KEYWORD]
        if theirs[:len(positional)] != positional:
            out.append(f"{cls.__name__}.{name}: positional order {theirs}, not {positional}")
        named = {p.name for p in w}
        for q in h.values():
            if q.name not in named and q.kind not in (q.VAR_KEYWORD, q.VAR_POSITIONAL) \
                    and q.default is q.empty:
                out.append(f"{cls.__name__}.{name}: adds a required parameter {q.name!r}")
    return out


@pytest.mark.parametrize(("proto", "classes"), [
    (SessionAPI, (Session, RemoteSession, Engines)),
    (RunHandle, (Run, RemoteRun)),
    (CompareJobAPI, (CompareJob, RemoteCompareJob, CompareAcross)),
])
def test_both_sessions_have_every_member_with_the_protocols_signature(
        proto: type, classes: tuple[type, ...]) -> None:
    for cls in classes:
        assert _mismatches(proto, cls) == []


def test_the_signature_check_sees_a_wrong_default_and_a_missing_method() -> None:
    class Wrong:
        def cancel_task(self, task_id: int, force: bool = True, reason: str = "x") -> bool:
            return False

    got = _mismatches(SessionAPI, Wrong)
    assert any("cancel_task(force): default True" in m for m in got), got
    assert any("Wrong.pump: missing" in m for m in got), got


@pytest.fixture
def remote(leak_check: None) -> Iterator[RemoteSession]:
    s = RemoteSession(None)
    try:
        yield s
    finally:
        assert s.shutdown(2.0).clean


def test_instances_of_both_sessions_satisfy_it_and_a_remote_run_waits_without_stealing_changes(
        remote: RemoteSession) -> None:
    with Session(sample_hz=None, warm=False) as local:
        for s in (local, remote):
            assert isinstance(s, SessionAPI)
            assert s.gone_reason is None
            run = s.start(make_spec("threads", "sleep", 3, "10ms", 3))
            assert isinstance(run, RunHandle)
            assert run.wait(WAIT_S)
            assert run.ended and run.record.counts.get("finished") == 3
            # The wait folded the updates in; the window's next pump still gets what changed.
            assert set(run.task_ids) <= s.pump().changed
            assert not s.pump().changed


def test_an_in_process_session_pumps_what_changed_in_its_store() -> None:
    """Session.pump reads its store's event log with its own cursor: the tasks that changed
    once, the events counted; a reader that fell behind the ring gets every task of every
    unfinished run."""
    store = EventStore(max_events=4)
    with Session(store, sample_hz=None, warm=False) as s:
        assert s.pump().changed == set()
        store.add_run(1, make_spec("threads", "sleep", 10, "1ms", 2), 1, 10, 1)
        p = s.pump()
        assert (p.events, p.dropped) == (4, 6)
        assert p.changed == set(range(1, 11))  # the ring lost 6 of them: all are sent
        assert s.pump().changed == set()

    with Session(sample_hz=None, warm=False) as s:
        run = s.start(make_spec("threads", "sleep", 4, "5ms", 2))
        assert run.wait(WAIT_S)
        p = s.pump()
        assert p.changed == set(run.task_ids) and p.dropped == 0
        assert p.events >= 4 * 3  # queued, started, finished for each
        assert s.store.tasks(run.run_id)[0].state is State.FINISHED


def test_an_in_process_session_starts_a_comparison() -> None:
    with Session(sample_hz=None, warm=False) as s:
        with pytest.raises(SpecError, match="nope"):
            s.start_compare(CompareRequest("sleep", ["sequential", "nope"], 2, "10ms"))
        job = s.start_compare(CompareRequest("sleep", ["sequential", "threads"], 2, "10ms"),
                              settle_s=0.05)
        assert isinstance(job, CompareJobAPI)
        assert job.wait(WAIT_S) and job.error is None
        assert [r.model for r in job.result.results] == ["sequential", "threads"]
        assert all(r.status == "complete" for r in job.result.results)


def test_an_in_process_sessions_front_end_loop_probe_reaches_its_samples() -> None:
    loop = asyncio.new_event_loop()
    th = threading.Thread(target=loop.run_forever, daemon=True)
    th.start()
    try:
        with Session(sample_hz=20.0, warm=False) as s:
            s.attach_loop(loop, 0.01)
            s.set_loop_idle(False)
            deadline = time.monotonic() + WAIT_S
            got: Any = None
            while got is None and time.monotonic() < deadline:
                samples, _ = s.store.read_samples(0)
                got = next((x.lag_ms["gui"] for x in samples if "gui" in x.lag_ms), None)
                time.sleep(0.05)
            assert got is not None and got >= 0.0
            assert s.gui_lag() is not None
            s.detach_loop()
            assert s.gui_lag() is None
            assert s.sampler is not None and s.sampler.lag_stats("gui") is None
    finally:
        loop.call_soon_threadsafe(loop.stop)
        th.join(5.0)
        loop.close()
