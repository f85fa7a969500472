"""Trace export, CSV export and replay (issue 6), on real runs.

One module-scoped recording runs every model we have (threads, asyncio, processes,
asyncio-processes, sequential), with a failed task, a cancelled run (some tasks cancelled while
running, some before they started) and the real sampler (per-core CPU, engine-loop lag, GIL
probe). The tests export it, check the file against an independent Trace Event Format
validator, read it back, and compare every field of every task and every sample. Bad files of
every kind must raise TraceError with one line, and leave everything as it was.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib.util
import json
import math
import os
import re
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import engine
from engine import trace
from engine.events import Event, Kind, State
from engine.samples import Sample, WorkerSample
from engine.store import EventStore, TaskRecord
from engine.trace import records
from engine.trace.errors import BadTrace

TASKSCOPE = Path(sys.executable).with_name("taskscope")


def wait_until(pred: Any, timeout: float = 10.0) -> None:
    """Poll ``pred`` until it is true; fail the test on timeout. (Local, so this file stands on
    its own.)"""
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            pytest.fail(f"condition not met within {timeout}s")
        time.sleep(0.005)


# ---------------------------------------------------------------------------------------------
# The recording
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Recording:
    store: EventStore
    runs: dict[str, int]  # label -> run id
    loop_tid: int


class _PsutilSampler:
    """Stand-in used only where ``engine.sampler`` is not in the tree yet: real per-core
    figures from psutil at 20 Hz (no lag or GIL probes)."""

    def __init__(self, store: EventStore) -> None:
        import threading

        import psutil

        self._psutil = psutil
        self.store = store
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True)
        psutil.cpu_percent(percpu=True)  # prime: the first call is meaningless
        self._thread.start()

    def _main(self) -> None:
        while not self._stop.wait(0.05):
            cores = tuple(self._psutil.cpu_percent(percpu=True))
            zero = (0.0,) * len(cores)
            self.store.add_sample(Sample(time.monotonic_ns(), 0.05, cores, cores, zero,
                                         sum(cores) / len(cores), 0.0, 0))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(1)


class _Nothing:
    def stop(self) -> None:
        pass


def _start_sampler(session: engine.Session) -> Any:
    """The session's own sampler if it has one; else the engine's Sampler; else psutil."""
    if getattr(session, "sampler", None) is not None:
        return _Nothing()  # the session stops its own sampler at shutdown
    try:
        from engine.sampler import Sampler
    except ImportError:
        return _PsutilSampler(session.store)
    sampler = Sampler(session.store, session.worker_pids, hz=20)
    sampler.add_loop_probe("engine", session.loop)
    sampler.start()
    return sampler


@pytest.fixture(scope="module")
def rec() -> Iterator[Recording]:
    try:
        session = engine.Session(sample_hz=20)  # type: ignore[call-arg]
    except TypeError:  # a Session without its own sampler
        session = engine.Session()
    sampler = _start_sampler(session)
    runs: dict[str, int] = {}
    try:
        def go(label: str, *args: Any, **kw: Any) -> engine.Run:
            run = session.start(engine.make_spec(*args, **kw))
            runs[label] = run.run_id
            return run

        r = go("asyncio", "asyncio", "fail", 6, "30ms", 3, params={"every": 3})
        assert r.wait(10)
        r = go("threads", "threads", "sleep", 6, "2s", 2)
        # Cancel once two are running: those two end 'cancelled' after a cancel request, the
        # other four are cancelled before they start.
        wait_until(lambda: sum(t.start_ns is not None for t in session.store.tasks(r.run_id)) == 2)
        session.cancel_run(r.run_id)
        assert r.wait(10)
        r = go("processes", "processes", "cpu", 4, "40ms", 2)
        assert r.wait(20)
        r = go("asyncio-processes", "asyncio-processes", "sleep", 3, "20ms", 2)
        assert r.wait(20)
        r = go("sequential", "sequential", "fail", 3, "10ms", params={"every": 2})
        assert r.wait(10)
        time.sleep(0.15)  # a few samples after the last run
        loop_tid = session.loop_thread_id
    finally:
        sampler.stop()
        report = session.shutdown()
    assert report.clean, report
    yield Recording(session.store, runs, loop_tid)


@pytest.fixture(scope="module")
def session_file(rec: Recording, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("trace") / "session.json"
    summary = trace.export_session(rec.store, path)
    assert summary.path == path and summary.bytes == path.stat().st_size
    return path


@pytest.fixture(scope="module")
def session_doc(session_file: Path) -> dict[str, Any]:
    return json.loads(session_file.read_text())


def all_samples(store: EventStore) -> list[Sample]:
    return sorted(store.read_samples(0)[0], key=lambda s: s.t_ns)


def test_the_recording_has_what_the_tests_need(rec: Recording) -> None:
    states = defaultdict(set)
    for t in rec.store.tasks():
        states[t.run_id].add(t.state.value)
    assert "failed" in states[rec.runs["asyncio"]]
    threads = rec.store.tasks(rec.runs["threads"])
    assert sum(t.cancel_requested_ns is not None for t in threads) == 2
    assert sum(t.start_ns is None and t.state.value == "cancelled" for t in threads) == 4
    samples = all_samples(rec.store)
    assert len(samples) >= 5
    if importlib.util.find_spec("engine.sampler") is not None:
        assert any("engine" in s.lag_ms for s in samples)
        assert any(s.gil is not None for s in samples)


# ---------------------------------------------------------------------------------------------
# An independent validator of the Trace Event Format (not the module's own)
# ---------------------------------------------------------------------------------------------

_NUM = (int, float)


def _is_int(v: Any) -> bool:
    return type(v) is int


def validate(doc: Any) -> dict[str, list[dict[str, Any]]]:
    """Assert ``doc`` is a trace Perfetto and chrome://tracing open; return events by phase.

    Required keys and types per phase; X with non-negative dur, nested strictly per thread
    (thread tracks are stacks); B/E balanced per thread; every pid/tid with events named by
    metadata under the same pid; counters numeric; the whole thing strict JSON.
    """
    assert isinstance(doc, dict), "the top level is an object"
    events = doc["traceEvents"]
    assert isinstance(events, list)
    json.dumps(doc, allow_nan=False)  # strict JSON: no NaN/Infinity anywhere
    by_ph: dict[str, list[dict[str, Any]]] = defaultdict(list)
    threads: dict[tuple[int, int], str] = {}
    procs: dict[int, str] = {}
    stacks: dict[tuple[int, int], list[str]] = defaultdict(list)
    for ev in events:
        assert isinstance(ev, dict), ev
        ph = ev["ph"]
        assert isinstance(ph, str) and isinstance(ev["name"], str), ev
        assert _is_int(ev["pid"]) and _is_int(ev["tid"]), ev
        assert 0 <= ev["pid"] < 2**31 and 0 <= ev["tid"] < 2**31, ev  # 32-bit safe
        by_ph[ph].append(ev)
        if ph == "M":
            assert ev["name"] in ("process_name", "thread_name", "process_sort_index",
                                  "thread_sort_index"), ev
            if ev["name"].endswith("_name"):
                assert isinstance(ev["args"]["name"], str) and ev["args"]["name"], ev
            else:
                assert _is_int(ev["args"]["sort_index"]), ev
            if ev["name"] == "thread_name":
                assert (ev["pid"], ev["tid"]) not in threads, f"thread named twice: {ev}"
                threads[(ev["pid"], ev["tid"])] = ev["args"]["name"]
            elif ev["name"] == "process_name":
                procs[ev["pid"]] = ev["args"]["name"]
            continue
        assert type(ev["ts"]) in _NUM and math.isfinite(ev["ts"]) and ev["ts"] >= 0, ev
        if "args" in ev:
            assert isinstance(ev["args"], dict)
        if ph == "X":
            assert type(ev["dur"]) in _NUM and ev["dur"] >= 0, ev
            assert isinstance(ev.get("cat", ""), str)
        elif ph == "B":
            stacks[(ev["pid"], ev["tid"])].append(ev["name"])
        elif ph == "E":
            assert stacks[(ev["pid"], ev["tid"])], f"E without B: {ev}"
            stacks[(ev["pid"], ev["tid"])].pop()
        elif ph == "i":
            assert ev.get("s", "t") in ("t", "p", "g"), ev
        elif ph == "C":
            assert ev["args"] and all(type(v) in _NUM and math.isfinite(v)
                                      for v in ev["args"].values()), ev
        else:
            raise AssertionError(f"unexpected phase {ph!r}")
    assert not any(stacks.values()), "unbalanced B/E"
    used = {(e["pid"], e["tid"]) for ph in ("X", "B", "i") for e in by_ph[ph]}
    missing = used - set(threads)
    assert not missing, f"lanes without thread_name metadata: {missing}"
    assert {p for p, _ in used} <= set(procs), "a pid without process_name metadata"
    # Thread tracks are stacks: X slices on one thread must nest or be disjoint.
    lanes: dict[tuple[int, int], list[tuple[float, float]]] = defaultdict(list)
    for e in by_ph["X"]:
        lanes[(e["pid"], e["tid"])].append((e["ts"], e["ts"] + e["dur"]))
    for key, spans in lanes.items():
        spans.sort(key=lambda s: (s[0], -s[1]))
        open_ends: list[float] = []
        for start, end in spans:
            while open_ends and open_ends[-1] <= start + 1e-3:
                open_ends.pop()
            assert not open_ends or end <= open_ends[-1] + 1e-3, f"improper nesting on {key}"
            open_ends.append(end)
    return by_ph


# ---------------------------------------------------------------------------------------------
# Export: structure and content
# ---------------------------------------------------------------------------------------------


def test_session_trace_is_a_valid_trace(session_doc: dict[str, Any]) -> None:
    by_ph = validate(session_doc)
    assert by_ph["X"] and by_ph["M"] and by_ph["C"] and by_ph["i"]
    # Our module's own validator agrees (it is what load_trace runs).
    counts = trace.validate_trace_events(session_doc["traceEvents"])
    assert counts == {ph: len(evs) for ph, evs in by_ph.items() if evs}


def test_one_slice_per_started_task_with_full_details(rec: Recording,
                                                      session_doc: dict[str, Any]) -> None:
    tasks = {t.task_id: t for t in rec.store.tasks()}
    slices = [e for e in session_doc["traceEvents"] if e["ph"] == "X" and e.get("cat") == "task"]
    assert sorted(e["args"]["task_id"] for e in slices) == sorted(
        t.task_id for t in tasks.values() if t.start_ns is not None)
    origin = session_doc["otherData"]["origin_ns"]
    assert session_doc["taskscope"]["origin_ns"] == origin
    for e in slices:
        t = tasks[e["args"]["task_id"]]
        assert t.start_ns is not None and t.end_ns is not None
        assert e["ts"] == pytest.approx((t.start_ns - origin) / 1000, abs=1e-3)
        assert e["dur"] == pytest.approx((t.end_ns - t.start_ns) / 1000, abs=2e-3)
        a = e["args"]
        assert (a["run_id"], a["index"], a["state"], a["core"]) == (t.run_id, t.index,
                                                                   t.state.value, t.core)
        assert (a["pid"], a["tid"], a["thread"]) == (t.pid, t.tid, t.thread)
        assert (a["queued_ns"], a["start_ns"], a["end_ns"]) == (t.queued_ns, t.start_ns, t.end_ns)
        assert a["cancel_requested_ns"] == t.cancel_requested_ns
        assert a["error"] == t.error and a["reason"] == t.reason
    failed = [e for e in slices if e["args"]["state"] == "failed"]
    assert failed and all(e["args"]["error"]["type"] == "WorkloadFailure" for e in failed)


def test_timestamps_are_small_and_start_at_zero(session_doc: dict[str, Any]) -> None:
    timed = [e for e in session_doc["traceEvents"] if e["ph"] != "M"]
    assert min(e["ts"] for e in timed) == 0
    assert max(e["ts"] + e.get("dur", 0) for e in timed) < 120e6  # well under two minutes


def test_tasks_sit_on_their_real_worker_lanes(rec: Recording, session_doc: dict[str, Any]) -> None:
    names = {(e["pid"], e["tid"]): e["args"]["name"] for e in session_doc["traceEvents"]
             if e["ph"] == "M" and e["name"] == "thread_name"}
    procs = {e["pid"]: e["args"]["name"] for e in session_doc["traceEvents"]
             if e["ph"] == "M" and e["name"] == "process_name"}
    slices = [e for e in session_doc["traceEvents"] if e["ph"] == "X" and e.get("cat") == "task"]
    by_run = defaultdict(list)
    for e in slices:
        by_run[e["args"]["run_id"]].append(e)
    # Thread-bound tasks (threads, sequential, process workers): the lane is the real thread.
    for label in ("threads", "sequential", "processes", "asyncio-processes"):
        for e in by_run[rec.runs[label]]:
            assert (e["pid"], e["tid"]) == (e["args"]["pid"], e["args"]["tid"]), e
            assert names[(e["pid"], e["tid"])] == e["args"]["thread"]
    for label in ("processes", "asyncio-processes"):
        for e in by_run[rec.runs[label]]:
            assert e["pid"] != os.getpid() and procs[e["pid"]].startswith("worker process")
    # Coroutines: one named track each, under the loop thread's real pid.
    coro = by_run[rec.runs["asyncio"]]
    assert len({e["tid"] for e in coro}) == len(coro) == 6
    for e in coro:
        a = e["args"]
        assert a["tid"] == rec.loop_tid and e["pid"] == a["pid"] == os.getpid()
        assert e["tid"] != a["tid"]
        assert names[(e["pid"], e["tid"])] == f"{a['task_name']} (loop thread {rec.loop_tid})"
    assert procs[os.getpid()] == "TaskScope engine"


def test_cancel_requests_are_instant_events(rec: Recording, session_doc: dict[str, Any]) -> None:
    origin = session_doc["otherData"]["origin_ns"]
    inst = [e for e in session_doc["traceEvents"] if e["ph"] == "i"]
    want = {t.task_id: t for t in rec.store.tasks() if t.cancel_requested_ns is not None}
    assert sorted(e["args"]["task_id"] for e in inst) == sorted(want)
    lane = {e["args"]["task_id"]: (e["pid"], e["tid"]) for e in session_doc["traceEvents"]
            if e["ph"] == "X" and e.get("cat") == "task"}
    for e in inst:
        t = want[e["args"]["task_id"]]
        assert e["name"] == "cancel requested" and e["s"] == "t"
        assert e["ts"] == pytest.approx((t.cancel_requested_ns - origin) / 1000, abs=1e-3)
        assert (e["pid"], e["tid"]) == lane[t.task_id]  # on the task's own lane


def test_counters_carry_every_sample(rec: Recording, session_doc: dict[str, Any]) -> None:
    origin = session_doc["otherData"]["origin_ns"]
    counters = defaultdict(dict)
    for e in session_doc["traceEvents"]:
        if e["ph"] == "C":
            counters[e["name"]][e["ts"]] = e["args"]
    samples = all_samples(rec.store)
    n_cores = len(samples[0].cores)
    for s in samples:
        ts = round((s.t_ns - origin) / 1000, 3)
        for i in range(n_cores):
            assert counters[f"core {i} CPU"][ts] == {"%": s.cores[i]}
        assert counters["all cores CPU"][ts] == {"%": s.total}
        if "engine" in s.lag_ms:
            assert counters["engine loop lag"][ts] == {"ms": s.lag_ms["engine"]}
        if s.gil is not None:
            assert counters["GIL wait"][ts] == {"%": pytest.approx(s.gil * 100)}


# ---------------------------------------------------------------------------------------------
# Round trip
# ---------------------------------------------------------------------------------------------


def _task_fields(t: TaskRecord) -> tuple[Any, ...]:
    return dataclasses.astuple(t)


def _run_fields(r: engine.RunRecord) -> tuple[Any, ...]:
    return (r.run_id, r.spec, r.task_ids, r.start_ns, r.end_ns, r.counts)


def test_round_trip_keeps_every_task_and_sample(rec: Recording, session_file: Path) -> None:
    replay = trace.load_trace(session_file)
    assert replay.scope == "session" and replay.patched == 0
    live = sorted(rec.store.tasks(), key=lambda t: t.task_id)
    assert [_task_fields(t) for t in replay.tasks] == [_task_fields(t) for t in live]
    assert replay.samples == all_samples(rec.store)
    assert [_run_fields(r) for r in replay.runs] == [
        _run_fields(r) for r in sorted(rec.store.runs(), key=lambda r: r.run_id)]
    # The replay's store is a normal store, read like a live one.
    st = replay.store
    assert [_task_fields(t) for t in sorted(st.tasks(), key=lambda t: t.task_id)] == [
        _task_fields(t) for t in live]
    assert st.read_samples(0)[0] == replay.samples
    assert st.duplicate_terminals == 0 and st.unknown_events == 0
    events, _, dropped = st.read_events(0)
    assert dropped == 0
    by_task: dict[int, list[Event]] = defaultdict(list)
    for ev in events:
        by_task[ev.task_id].append(ev)
    for t in live:
        kinds = [e.kind for e in by_task[t.task_id]]
        assert kinds[0] == Kind.QUEUED and kinds[-1] == t.state.value, kinds
        assert ((Kind.STARTED in kinds) == (t.start_ns is not None)), kinds
    ts = [e.t_ns for e in events if e.kind != Kind.QUEUED]
    assert ts == sorted(ts)  # a replay reads in time order, like a live session


def test_run_export_holds_one_run_and_its_samples(rec: Recording, tmp_path: Path) -> None:
    rid = rec.runs["processes"]
    path = tmp_path / "run.json"
    summary = trace.export_run(rec.store, rid, path)
    doc = json.loads(path.read_text())
    validate(doc)
    replay = trace.load_trace(path)
    assert replay.scope == "run" and [r.run_id for r in replay.runs] == [rid]
    assert [_task_fields(t) for t in replay.tasks] == [
        _task_fields(t) for t in rec.store.tasks(rid)]
    run = rec.store.run(rid)
    assert run is not None and run.end_ns is not None
    want = [s for s in all_samples(rec.store)
            if s.t_ns - s.interval_s * 1e9 <= run.end_ns and s.t_ns >= run.start_ns]
    assert replay.samples == want and summary.samples == len(want) > 0


def test_non_finite_values_round_trip_as_strict_json(tmp_path: Path) -> None:
    store = EventStore()
    store.add_run(1, None, 1, 1, 10_000)
    store.append([Event(1, 1, Kind.STARTED, 20_000, pid=5, tid=6, thread="w", core=1),
                  Event(1, 1, Kind.PROGRESS, 25_000, pid=5, tid=6, thread="w", value=math.nan),
                  Event(1, 1, Kind.CANCELLED, 30_000, pid=5, tid=6, thread="w",
                        info={"reason": "stop", "forced": True})])
    s = Sample(t_ns=40_000, interval_s=0.1, cores=(1.0, math.inf), cores_user=(0.5, 0.0),
               cores_system=(0.5, 0.0), total=math.nan, self_cpu=3.0, self_rss=1,
               lag_ms={"engine": -math.inf}, gil=math.nan)
    store.add_samples([s])
    path = tmp_path / "nan.json"
    trace.export_session(store, path)
    text = path.read_text()
    assert "NaN" not in text.replace('"NaN"', "") and "Infinity" not in text.replace(
        '"Infinity"', "").replace('"-Infinity"', "")
    validate(json.loads(text))
    replay = trace.load_trace(path)
    got = replay.samples[0]
    assert got.cores[1] == math.inf and math.isnan(got.total) and got.lag_ms["engine"] == -math.inf
    assert math.isnan(replay.tasks[0].progress) and replay.tasks[0].reason == "stop"
    assert replay.patched == 0


def test_local_and_remote_workers_in_one_sample_round_trip(tmp_path: Path) -> None:
    """A sample with worker processes here and Dask workers elsewhere reads back whole: each
    kind of entry is checked against its own schema."""
    store = EventStore()
    store.add_run(1, None, 1, 1, 1_000)
    store.add_samples([Sample(
        t_ns=2_000, interval_s=0.1, cores=(10.0,), cores_user=(5.0,), cores_system=(5.0,),
        total=10.0, self_cpu=1.0, self_rss=1, workers={7: WorkerSample(7, 50.0, 4096, 0)},
        remote={"tcp://10.0.0.2:4000": WorkerSample(99, 80.0, 8192, -1)})])
    path = tmp_path / "remote.json"
    trace.export_session(store, path)
    (got,) = trace.load_trace(path).samples
    assert got.workers == {7: WorkerSample(7, 50.0, 4096, 0)}
    assert got.remote == {"tcp://10.0.0.2:4000": WorkerSample(99, 80.0, 8192, -1)}


def test_a_schema_takes_its_optional_fields_as_absent() -> None:
    """How a field the format gains later is declared: optional, so traces written before it
    (which lack it) still load, while any other missing or unknown field is refused."""
    schema = records.Schema({"a": (int,), "added_later": (dict, type(None))},
                            optional=("added_later",))
    assert schema.check({"a": 1}, "run") == {"a": 1}
    assert schema.check({"a": 1, "added_later": None}, "run")
    for bad, match in (({}, "run: missing field 'a'"),
                       ({"a": 1, "b": 2}, "run: unknown field 'b'"),
                       ({"a": 1, "added_later": 3}, "run.added_later: expected object or null")):
        with pytest.raises(BadTrace, match=match):
            schema.check(bad, "run")
    with pytest.raises(ValueError, match="not in the schema"):
        records.Schema({"a": (int,)}, optional=("b",))


def test_field_lists_cover_the_records() -> None:
    """A new TaskRecord/Sample field must be added to the trace format, not silently dropped."""
    assert set(trace.TASK_FIELDS) == {f.name for f in dataclasses.fields(TaskRecord)}
    assert set(trace.SAMPLE_FIELDS) == {f.name for f in dataclasses.fields(Sample)}


def test_a_trace_carries_every_taskrecord_field(session_doc: dict[str, Any]) -> None:
    """The section's task entries, the slices' args and the CSV columns all hold every field of
    TaskRecord: the trace follows the dataclass, however many fields it grows."""
    names = [f.name for f in dataclasses.fields(TaskRecord)]
    tasks = session_doc["taskscope"]["tasks"]
    assert tasks and all(list(t) == names for t in tasks)  # the same fields, in the same order
    assert list(records.TASK_TYPES) == names
    slices = [e for e in session_doc["traceEvents"] if e.get("cat") == "task"]
    assert slices and all(set(names) <= set(e["args"]) for e in slices)
    missing = set(names) - set(trace.TASK_CSV_COLUMNS)
    assert not missing, f"TaskRecord fields with no column in TASK_CSV_COLUMNS: {missing}"


def test_task_field_types_map_to_json_types() -> None:
    """How a TaskRecord field's annotation becomes the JSON the section holds (what a new field
    of that type would get), and that a type with no JSON form fails loudly at import."""
    types, enc, dec = records.field_codec("x", int | None)
    assert types == (int, type(None)) and enc is None and dec is None
    types, enc, dec = records.field_codec("x", float | None)
    assert types == (float, str, type(None)) and enc is not None and dec is not None
    assert [enc(v) for v in (1.5, math.inf, None)] == [1.5, "Infinity", None]
    assert math.isnan(dec("NaN")) and dec(None) is None and dec(2) == 2.0
    with pytest.raises(ValueError, match="expected a number, got string"):
        dec("12")
    types, enc, dec = records.field_codec("state", State)
    assert types == (str,) and enc(State.RUNNING) == "running" and dec("running") is State.RUNNING
    with pytest.raises(ValueError, match="unknown state 'exploded'"):
        dec("exploded")
    types, enc, dec = records.field_codec("python", dict[str, Any] | None)
    assert types == (dict, type(None)) and enc({"v": (3, 13)}) == {"v": [3, 13]} and dec is None
    for hint in (tuple[int, ...], set[str], bytes, float | str, int | str | None):
        with pytest.raises(TypeError, match="TaskRecord.x"):
            records.field_codec("x", hint)


FORMAT_1 = Path(__file__).with_name("data") / "trace-format-1.json"


def test_a_format_1_trace_still_loads() -> None:
    """A trace written by TaskScope before the trace package existed (format 1, kept in
    tests/engine/data) loads, and exporting what it loaded writes the same TaskScope section."""
    replay = trace.load_trace(FORMAT_1)
    assert replay.patched == 0 and replay.meta["version"] == 1
    assert [(t.task_id, t.state.value) for t in replay.tasks] == [
        (1, "finished"), (2, "failed"), (3, "cancelled"), (4, "running")]
    failed, cancelled, running = replay.tasks[1], replay.tasks[2], replay.tasks[3]
    assert failed.error == {"type": "ValueError", "message": "task 1 failed on purpose"}
    assert (cancelled.start_ns, cancelled.cancel_requested_ns, cancelled.reason) == (
        None, 23_000, "user")
    assert (running.task_name, running.progress, running.end_ns) == ("Task-7", 0.5, None)
    assert replay.runs[0].spec.model == "threads" and replay.runs[1].spec is None
    assert math.isnan(replay.samples[0].cores[1])
    # Everything the old file held is written again as it was (fields added since aside).
    old = json.loads(FORMAT_1.read_text())["taskscope"]
    again = trace.build_trace(replay.store, now_ns=40_000)["taskscope"]
    for key in ("runs", "tasks", "samples"):
        pairs = zip(again[key], old[key], strict=True)
        assert [{k: e[k] for k in o} for e, o in pairs] == old[key]
    assert {k: again[k] for k in ("version", "scope", "origin_ns")} == {
        "version": 1, "scope": "session", "origin_ns": 1_000}


# ---------------------------------------------------------------------------------------------
# Lanes under load: many coroutines, and overlapping tasks on one thread
# ---------------------------------------------------------------------------------------------


def test_many_coroutines_are_packed_into_valid_lanes(tmp_path: Path) -> None:
    n = trace.COROUTINE_TRACK_LIMIT + 500
    with engine.Session(warm=False) as session:
        run = session.start(engine.make_spec("asyncio", "sleep", n, "2ms", 100))
        assert run.wait(30)
        loop = session.loop_thread_id
    path = tmp_path / "many.json"
    trace.export_run(session.store, run.run_id, path)
    doc = json.loads(path.read_text())
    by_ph = validate(doc)
    slices = [e for e in by_ph["X"] if e.get("cat") == "task"]
    assert len(slices) == n
    lanes = {(e["pid"], e["tid"]) for e in slices}
    assert len(lanes) <= 100 + 5  # packed: about one lane per concurrent coroutine
    names = {(e["pid"], e["tid"]): e["args"]["name"] for e in by_ph["M"]
             if e["name"] == "thread_name"}
    assert all(names[k].startswith("coroutines ") and names[k].endswith(f"(loop thread {loop})")
               for k in lanes)
    assert all(e["name"].endswith(e["args"]["task_name"]) for e in slices)
    assert len(trace.load_trace(path).tasks) == n


def test_overlapping_tasks_on_one_thread_get_overflow_lanes(tmp_path: Path) -> None:
    store = EventStore()
    store.add_run(1, None, 1, 3, 0)
    who = {"pid": 100, "tid": 101, "thread": "worker"}
    store.append([
        Event(1, 1, Kind.STARTED, 1_000, **who), Event(1, 2, Kind.STARTED, 2_000, **who),
        Event(1, 3, Kind.STARTED, 9_000, **who), Event(1, 1, Kind.FINISHED, 5_000, **who),
        Event(1, 2, Kind.FINISHED, 8_000, **who), Event(1, 3, Kind.FINISHED, 9_500, **who),
    ])
    path = tmp_path / "overlap.json"
    trace.export_session(store, path)
    by_ph = validate(json.loads(path.read_text()))
    lane = {e["args"]["task_id"]: e["tid"] for e in by_ph["X"] if e.get("cat") == "task"}
    assert lane[1] == lane[3] == 101 and lane[2] != 101


def test_a_running_task_is_drawn_up_to_now_and_marked_open(tmp_path: Path) -> None:
    store = EventStore()
    store.add_run(1, None, 1, 2, 0)
    store.append([Event(1, 1, Kind.STARTED, 1_000, pid=1, tid=2, thread="t")])
    doc = trace.build_trace(store, now_ns=11_000)
    validate(doc)
    (x,) = [e for e in doc["traceEvents"] if e.get("cat") == "task"]
    assert x["args"]["open"] is True and x["dur"] == 10.0
    path = tmp_path / "open.json"
    trace.export_session(store, path)
    replay = trace.load_trace(path)
    assert [t.state.value for t in replay.tasks] == ["running", "queued"]
    assert replay.runs[0].end_ns is None


# ---------------------------------------------------------------------------------------------
# CSV
# ---------------------------------------------------------------------------------------------


def test_csv_has_one_row_per_task_and_per_sample(rec: Recording, tmp_path: Path) -> None:
    tasks_p, samples_p = trace.export_csv(rec.store, tmp_path / "out")
    assert (tasks_p.name, samples_p.name) == ("out-tasks.csv", "out-samples.csv")
    assert trace.csv_paths(tmp_path / "out.csv") == (tasks_p, samples_p)
    with tasks_p.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    live = {t.task_id: t for t in rec.store.tasks()}
    assert sorted(int(r["task_id"]) for r in rows) == sorted(live)
    assert tuple(rows[0]) == trace.TASK_CSV_COLUMNS
    for r in rows:
        t = live[int(r["task_id"])]
        assert r["state"] == t.state.value and int(r["pid"]) == t.pid and r["thread"] == t.thread
        assert r["start_ns"] == ("" if t.start_ns is None else str(t.start_ns))
        assert r["error_type"] == (t.error or {}).get("type", "")
        if t.error:
            assert json.loads(r["error"]) == t.error  # multi-line traceback survives CSV
    with samples_p.open(newline="") as fh:
        srows = list(csv.DictReader(fh))
    samples = all_samples(rec.store)
    assert len(srows) == len(samples)
    for r, s in zip(srows, samples, strict=True):
        assert int(r["t_ns"]) == s.t_ns
        assert [float(r[f"core{i}"]) for i in range(len(s.cores))] == list(s.cores)
        if "engine" in s.lag_ms:
            assert float(r["lag_engine_ms"]) == s.lag_ms["engine"]


# ---------------------------------------------------------------------------------------------
# Bad files: one exception type, one line, nothing changed
# ---------------------------------------------------------------------------------------------


def _good(session_file: Path) -> dict[str, Any]:
    return json.loads(session_file.read_text())


def _set(doc: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    d: Any = doc
    for k in path[:-1]:
        d = d[k]
    d[path[-1]] = value
    return doc


def _drop_task_slices(doc: dict[str, Any]) -> dict[str, Any]:
    doc["traceEvents"] = [e for e in doc["traceEvents"] if e.get("cat") != "task"][:-1]
    return doc


BAD_DOCS = {
    "foreign chrome trace": (lambda d: {"traceEvents": [
        {"name": "thread_name", "ph": "M", "pid": 1, "tid": 1, "args": {"name": "main"}},
        {"name": "work", "ph": "X", "pid": 1, "tid": 1, "ts": 0, "dur": 5}]},
        "not a TaskScope trace"),
    "json array": (lambda d: [1, 2, 3], "top level is a JSON array"),
    "random object": (lambda d: {"hello": "world"}, "no 'traceEvents'"),
    "newer version": (lambda d: _set(d, ("taskscope", "version"), 99), "newer TaskScope"),
    "section not an object": (lambda d: _set(d, ("taskscope",), [1]), "taskscope: expected an object"),
    "start_ns a string": (lambda d: _set(d, ("taskscope", "tasks", 0, "start_ns"), "12"),
                          "start_ns: expected integer or null, got string"),
    "pid a bool": (lambda d: _set(d, ("taskscope", "tasks", 0, "pid"), True),
                   "pid: expected integer, got boolean"),
    "unknown state": (lambda d: _set(d, ("taskscope", "tasks", 0, "state"), "exploded"),
                      "unknown state"),
    "missing field": (lambda d: (d["taskscope"]["tasks"][0].pop("core"), d)[1], "missing field 'core'"),
    "extra field": (lambda d: _set(d, ("taskscope", "tasks", 0, "evil"), 1), "unknown field 'evil'"),
    "sample core not a number": (lambda d: _set(d, ("taskscope", "samples", 0, "cores", 0), "x"),
                                 "expected a number"),
    "task missing from its run": (lambda d: (d["taskscope"]["tasks"].pop(), d)[1], "tasks are in the file"),
    "negative ts": (lambda d: _set(d, ("traceEvents", -1, "ts"), -5), "ts: expected a non-negative"),
    "event without pid": (lambda d: (d["traceEvents"][-1].pop("pid"), d)[1], "pid"),
    "events not a list": (lambda d: _set(d, ("traceEvents",), {"a": 1}), "traceEvents: expected an array"),
    "slices edited out": (_drop_task_slices, "task slices"),
    "negative dur": (lambda d: (
        [e.__setitem__("dur", -1) for e in d["traceEvents"] if e["ph"] == "X"][:0], d)[1],
        "dur: expected a non-negative"),
}


def _assert_rejected(path: Path, match: str) -> None:
    small = path.is_file() and path.stat().st_size < 2**24
    before = path.read_bytes() if small else (path.stat() if path.exists() else None)
    listing = sorted(os.listdir(path.parent))
    with pytest.raises(trace.TraceError, match=match) as info:
        trace.load_trace(path)
    msg = str(info.value)
    assert "\n" not in msg and 0 < len(msg) < 300, msg
    if small:
        assert path.read_bytes() == before
    elif before is not None:
        after = path.stat()
        assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert sorted(os.listdir(path.parent)) == listing  # nothing created next to it


@pytest.mark.parametrize("name", sorted(BAD_DOCS))
def test_bad_documents_are_rejected(name: str, session_file: Path, tmp_path: Path) -> None:
    make, match = BAD_DOCS[name]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(make(_good(session_file))))
    _assert_rejected(path, match)


def test_truncated_file_is_rejected(session_file: Path, tmp_path: Path) -> None:
    data = session_file.read_bytes()
    for cut in (1, len(data) // 3, len(data) - 1):
        path = tmp_path / f"cut{cut}.json"
        path.write_bytes(data[:cut])
        _assert_rejected(path, "truncated JSON")


def test_a_cut_inside_any_token_reads_truncated(session_file: Path, tmp_path: Path) -> None:
    # A cut can split a number ("1."), a literal ("tru") or an escape; each is a truncation.
    data = session_file.read_bytes()
    path = tmp_path / "cut.json"
    for cut in range(len(data) // 3, len(data) // 3 + 200):
        path.write_bytes(data[:cut])
        with pytest.raises(trace.TraceError, match="truncated JSON"):
            trace.load_trace(path)


def test_a_cut_inside_a_character_reads_truncated(tmp_path: Path) -> None:
    """A label's "·" is two bytes in UTF-8: a file cut between them is truncated, not "not
    UTF-8" (test_a_cut_inside_any_token_reads_truncated failed so when its window of cuts
    held one)."""
    path = tmp_path / "cut.json"
    whole = '{"traceEvents": [], "taskscope": {"label": "cpu · 4 tasks"}}'.encode()
    path.write_bytes(whole[:whole.index("·".encode()) + 1])
    _assert_rejected(path, "truncated JSON")


@pytest.mark.parametrize("content,match", [
    (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "not UTF-8"),
    (b"\x00\x01\x02binary junk", "malformed JSON"),
    (b"", "empty file"),
    (b"   \n", "empty file"),
    (b"not json at all", "malformed JSON"),
    (b'{"traceEvents": [], "taskscope": {"version": NaN}}', "NaN is not valid JSON"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
])
def test_non_json_bytes_are_rejected(content: bytes, match: str, tmp_path: Path) -> None:
    path = tmp_path / "junk.json"
    path.write_bytes(content)
    _assert_rejected(path, match)


def test_paths_that_are_not_trace_files(tmp_path: Path) -> None:
    _assert_rejected(tmp_path, "is a directory")
    _assert_rejected(tmp_path / "missing.json", "no such file")


def test_a_huge_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "huge.json"
    with path.open("wb") as fh:  # sparse: costs no disk, but its size is over the cap
        fh.truncate(trace.MAX_TRACE_BYTES + 1)
    t0 = time.perf_counter()
    _assert_rejected(path, "too large to replay .* the limit is 512 MB")
    assert time.perf_counter() - t0 < 1.0


# ---------------------------------------------------------------------------------------------
# Writing: paths checked first, files written whole
# ---------------------------------------------------------------------------------------------


def test_output_paths_are_checked_without_side_effects(tmp_path: Path) -> None:
    assert trace.check_output_path(tmp_path / "ok.json") == tmp_path / "ok.json"
    assert os.listdir(tmp_path) == []
    for bad, match in ((tmp_path, "is a directory"),
                       (tmp_path / "no" / "x.json", "does not exist"),
                       ("", "expected a file path"), ("-", "expected a file path")):
        with pytest.raises(trace.TraceError, match=match):
            trace.check_output_path(bad)
    with pytest.raises(trace.TraceError, match="no run 99"):
        trace.export_run(EventStore(), 99, tmp_path / "x.json")
    assert os.listdir(tmp_path) == []


def test_export_replaces_a_file_whole(rec: Recording, tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text("old")
    trace.export_run(rec.store, rec.runs["sequential"], path)
    assert trace.load_trace(path).tasks
    assert os.listdir(tmp_path) == ["t.json"]  # no temp file left beside it
    assert path.stat().st_mode & 0o044  # the user's umask, not mkstemp's private 0600


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(TASKSCOPE), *args], capture_output=True, text=True, timeout=60,
                          cwd=cwd)


def test_cli_writes_trace_and_csv(tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    p = _cli("run", "-m", "asyncio", "-w", "fail", "-n", "4", "-s", "20ms", "-p", "every=2",
             "--trace", str(out), "--csv", str(tmp_path / "run"), "-q", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    doc = json.loads(out.read_text())
    by_ph = validate(doc)
    assert len([e for e in by_ph["X"] if e.get("cat") == "task"]) == 4
    replay = trace.load_trace(out)
    assert sorted(t.state.value for t in replay.tasks) == ["failed", "failed", "finished",
                                                           "finished"]
    with (tmp_path / "run-tasks.csv").open(newline="") as fh:
        assert len(list(csv.DictReader(fh))) == 4
    # The CLI's session samples while it runs: the trace has the CPU counters, the CSV the rows.
    assert {"core 0 CPU", "all cores CPU"} <= {e["name"] for e in by_ph["C"]}
    with (tmp_path / "run-samples.csv").open(newline="") as fh:
        assert len(list(csv.DictReader(fh))) == len(replay.samples) >= 1


@pytest.mark.parametrize("flag,value,match", [
    ("--trace", "missing-dir/x.json", "--trace: cannot write .*does not exist"),
    ("--trace", ".", "--trace: .* is a directory"),
    ("--csv", "missing-dir/x", "--csv: cannot write .*does not exist"),
])
def test_cli_bad_output_path_fails_before_the_run(flag: str, value: str, match: str,
                                                  tmp_path: Path) -> None:
    t0 = time.perf_counter()
    p = _cli("run", "-m", "threads", "-w", "sleep", "-n", "2", "-s", "30s", flag, value,
             cwd=tmp_path)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("taskscope: error: "), p.stderr
    assert re.search(match, lines[0]), lines[0]
    assert p.stdout == ""  # no summary: nothing ran
    assert time.perf_counter() - t0 < 15.0  # the 30 s run never started
    assert os.listdir(tmp_path) == []
