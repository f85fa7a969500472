"""The ``dask`` model on a real LocalCluster of 2 single-threaded worker processes.

Most tests share one cluster, started once for this module the way the engine starts its own
(same options), and reached as an existing cluster (``scheduler=...``): the runner does the
same work either way, and a cluster costs 1 to 10 s to start on a loaded 2-core machine. The
engine's embedded cluster (started and closed by the session itself) has tests of its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import engine
from engine import Session, SpecError, State, make_spec
from engine.events import Kind
from tests.conftest import alive_pids, engine_children
from tests.engine.enginekit import check_invariants, run_events, wait_until

distributed = pytest.importorskip("distributed")

QT = ["PySide6", "shiboken6", "pyqtgraph", "qasync", "gui"]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """One LocalCluster for the module, as the engine starts its own: 2 workers, 1 thread
    each, no retries."""
    from engine.models.dask.cluster import local_cluster

    lc = local_cluster(2)
    try:
        yield lc
    finally:
        lc.close(timeout=10)


def _worker_pids(lc: Any) -> set[int]:
    return {w.pid for w in lc.workers.values() if w.pid}


@pytest.fixture
def dsession(cluster: Any) -> Iterator[Session]:
    """A fresh Session; on teardown its shutdown must be clean and quick and leave no process
    behind other than the shared cluster's own (current) workers."""
    before = set(engine_children())
    s = Session()
    try:
        yield s
    finally:
        report = s.shutdown()
    assert report.clean, f"tasks still running after shutdown: {report.stuck_tasks}"
    assert report.seconds < 3.0, report
    wait_until(lambda: len(_worker_pids(cluster)) == 2, 30)
    left = set(engine_children()) - before - _worker_pids(cluster)
    assert not left, f"processes left behind: {left}"


def _spec(cluster: Any, workload: str, **kw: Any) -> engine.RunSpec:
    kw.setdefault("workers", 2)
    return make_spec("dask", workload, options={"scheduler": cluster.scheduler_address}, **kw)


def _running(s: Session, tid: int) -> bool:
    rec = s.store.task(tid)
    return rec is not None and rec.state is State.RUNNING


# -- running ---------------------------------------------------------------------------------
BUILT_IN = [("cpu", {}), ("numpy", {}), ("sleep", {}), ("http", {"delay": "10ms"}),
            ("file", {}), ("mixed", {}), ("blocking", {}), ("fail", {"every": 2}),
            ("events", {})]


def test_every_built_in_workload_finishes_on_two_worker_processes(
        dsession: Session, cluster: Any) -> None:
    workers = _worker_pids(cluster)
    for workload, params in BUILT_IN:
        run = dsession.start(_spec(cluster, workload, tasks=4, size="60ms", params=params))
        assert run.wait(60), workload
        check_invariants(dsession, run)
        recs = dsession.store.tasks(run.run_id)
        want = State.FAILED if workload == "fail" else State.FINISHED
        states = [r.state for r in recs]
        if workload == "fail":  # every=2: tasks 0 and 2 fail on purpose
            assert states == [want, State.FINISHED, want, State.FINISHED], states
        else:
            assert states == [want] * 4, (workload, [(r.state, r.error) for r in recs])
        pids = {r.pid for r in recs}
        assert pids <= workers and os.getpid() not in pids, (workload, pids, workers)
        # each lane names its worker: address, pid, thread
        for r in recs:
            addr = r.thread.split()[0]
            assert addr.startswith("tcp://127.0.0.1:") and r.tid > 0, r
    # both workers took tasks over the runs: two lanes, two pids, neither the engine's
    lanes = {(r.pid, r.tid, r.thread) for r in dsession.store.tasks()}
    assert {p for p, _, _ in lanes} == workers and len(lanes) == 2, lanes


def test_a_task_shows_running_when_it_starts_not_when_it_ends(
        dsession: Session, cluster: Any) -> None:
    run = dsession.start(_spec(cluster, "sleep", tasks=1, size="3s"))
    tid = run.first_task_id
    t0 = time.monotonic()
    wait_until(lambda: _running(dsession, tid), 10)
    seen = time.monotonic() - t0
    rec = dsession.store.task(tid)
    assert rec.end_ns is None and seen < 2.5, seen  # running, long before its 3 s are up
    assert run.wait(30)
    assert dsession.store.task(tid).state is State.FINISHED


def test_the_workers_import_no_qt(dsession: Session, cluster: Any) -> None:
    from distributed import Client

    from engine.models.dask import worker

    run = dsession.start(_spec(cluster, "cpu", tasks=2, size="10ms"))
    assert run.wait(60)
    with Client(cluster.scheduler_address, set_as_default=False) as c:
        loaded = c.run(worker.modules_loaded, QT)
    assert loaded and all(v == [] for v in loaded.values()), loaded


# -- cancel, force, timeout, crash --------------------------------------------------------------
def test_a_running_task_is_cancelled_cooperatively_within_a_second(
        dsession: Session, cluster: Any) -> None:
    run = dsession.start(_spec(cluster, "sleep", tasks=2, size="20s"))
    a, b = run.task_ids
    wait_until(lambda: _running(dsession, a) and _running(dsession, b), 30)
    t0 = time.monotonic()
    assert dsession.cancel_task(a)
    wait_until(lambda: dsession.store.task(a).state.terminal, 5)
    took = time.monotonic() - t0
    rec = dsession.store.task(a)
    assert rec.state is State.CANCELLED and not (rec.error or {}).get("forced"), rec
    assert took < 1.0, f"cancel took {took:.3f} s"
    assert _running(dsession, b)  # the other task goes on
    assert dsession.cancel_run(run.run_id)
    assert run.wait(10)
    check_invariants(dsession, run)


def test_queued_tasks_are_cancelled_at_once_in_the_runner_and_in_dask(
        dsession: Session, cluster: Any) -> None:
    run = dsession.start(_spec(cluster, "sleep", tasks=12, size="20s"))
    ids = list(run.task_ids)
    wait_until(lambda: _running(dsession, ids[0]) and _running(dsession, ids[1]), 30)
    # 2 run; the other 10 wait, queued in Dask (its window takes up to 1024 tasks)
    t0 = time.monotonic()
    dsession.cancel_run(run.run_id)
    assert run.wait(10)
    assert time.monotonic() - t0 < 5
    events = check_invariants(dsession, run)
    never = [t for t, evs in events.items() if all(e.kind != Kind.STARTED for e in evs)]
    assert len(never) >= 8
    assert all(dsession.store.task(t).state is State.CANCELLED for t in ids)


def test_force_restarts_only_that_tasks_worker(dsession: Session, cluster: Any) -> None:
    run = dsession.start(_spec(cluster, "sleep", tasks=6, size="1500ms"))
    ids = list(run.task_ids)
    wait_until(lambda: sum(_running(dsession, t) for t in ids) == 2, 30)
    victim = next(t for t in ids if _running(dsession, t))
    other = next(t for t in ids if t != victim and _running(dsession, t))
    vpid = dsession.store.task(victim).pid
    opid = dsession.store.task(other).pid
    t0 = time.monotonic()
    assert dsession.cancel_task(victim, force=True)
    wait_until(lambda: dsession.store.task(victim).state.terminal, 10)
    took = time.monotonic() - t0
    assert run.wait(60)
    check_invariants(dsession, run)
    rec = dsession.store.task(victim)
    assert rec.state is State.CANCELLED and rec.error is None, rec
    assert took < 5.0, took
    assert not alive_pids([vpid])  # its worker was killed...
    wait_until(lambda: len(_worker_pids(cluster)) == 2, 30)
    assert opid in _worker_pids(cluster) and vpid not in _worker_pids(cluster)  # ...and replaced
    # no other task was touched: the one running on the other worker and the queued ones
    # (some were queued in Dask for the killed worker) all finished
    others = [dsession.store.task(t) for t in ids if t != victim]
    assert [r.state for r in others] == [State.FINISHED] * 5, others


def test_a_timeout_stops_a_ten_second_sleep_within_two_seconds(
        dsession: Session, cluster: Any) -> None:
    run = dsession.start(_spec(cluster, "sleep", tasks=2, size="10s", timeout="1s"))
    assert run.wait(20)
    for rec in dsession.store.tasks(run.run_id):
        assert rec.state is State.TIMED_OUT, rec
        assert (rec.end_ns - rec.start_ns) / 1e9 < 2.0, rec
    check_invariants(dsession, run)


def test_a_task_that_ignores_its_timeout_is_stopped_by_killing_its_worker(
        dsession: Session, cluster: Any, tmp_path: Path) -> None:
    f = tmp_path / "stubborn.py"
    f.write_text("import time\n\ndef work():\n    time.sleep(10)\n")
    run = dsession.start(_spec(cluster, "custom", tasks=1, timeout="500ms",
                               params={"function": f"{f}:work"}))
    assert run.wait(20)
    rec = dsession.store.task(run.first_task_id)
    assert rec.state is State.TIMED_OUT and "worker killed" in rec.reason, rec
    assert (rec.end_ns - rec.start_ns) / 1e9 < 5.0, rec
    wait_until(lambda: len(_worker_pids(cluster)) == 2, 30)


def test_a_crash_fails_only_its_own_task_and_is_not_retried(
        dsession: Session, cluster: Any) -> None:
    run = dsession.start(_spec(cluster, "crash", tasks=6, size="300ms", params={"every": 3}))
    assert run.wait(60)
    events = check_invariants(dsession, run)
    recs = dsession.store.tasks(run.run_id)
    crashed = [r for r in recs if r.index % 3 == 0]
    assert all(r.state is State.FAILED and r.error["type"] == "WorkerDied" for r in crashed), crashed
    assert str(crashed[0].pid) in crashed[0].error["message"]
    assert all(r.state is State.FINISHED for r in recs if r.index % 3), recs
    # each task started once: Dask ran none of them again
    assert all(sum(e.kind == Kind.STARTED for e in evs) == 1 for evs in events.values())
    wait_until(lambda: len(_worker_pids(cluster)) == 2, 30)


@pytest.mark.parametrize("first_s", [0.008, 0.001])
def test_a_task_whose_worker_dies_before_its_start_is_sent_is_not_run_again(
        dsession: Session, cluster: Any, tmp_path: Path, first_s: float) -> None:
    """One task kills its worker at once, right after that worker's previous task: its start
    waits for the worker's next batch (one left under 5 ms ago), so the worker dies with it,
    and Dask says KilledWorker for a task the engine never saw start. The worker's start log
    says it did start, so it fails, naming the worker, instead of being submitted again as one
    that never ran (where it would then finish: a retry the user would not see). The previous
    task (8 ms: its end leaves in a batch of its own; 1 ms: it may still be on its way when
    Dask says the worker is gone) finished, and says so, once."""
    mark = tmp_path / "crashed"
    f = tmp_path / "crash_once.py"
    f.write_text(
        "import os, time\n\n"
        "def work():\n"
        f"    seen = os.path.join({str(tmp_path)!r}, f'seen-{{os.getpid()}}')\n"
        "    if not os.path.exists(seen):  # this worker's first task\n"
        "        open(seen, 'w').close()\n"
        f"        time.sleep({first_s})\n"
        "        return\n"
        "    try:  # a later one: the first of them anywhere dies at once\n"
        f"        os.close(os.open({str(mark)!r}, os.O_CREAT | os.O_EXCL | os.O_WRONLY))\n"
        "    except FileExistsError:\n"
        "        time.sleep(0.001)\n"
        "        return\n"
        "    os._exit(70)\n")
    run = dsession.start(_spec(cluster, "custom", tasks=8, params={"function": f"{f}:work"}))
    assert run.wait(60)
    events = check_invariants(dsession, run)
    recs = dsession.store.tasks(run.run_id)
    failed = [r for r in recs if r.state is State.FAILED]
    assert mark.exists() and len(failed) == 1, recs
    assert failed[0].error["type"] == "WorkerDied" and "died while running" in \
        failed[0].error["message"], failed[0].error
    assert all(r.state is State.FINISHED for r in recs if r is not failed[0]), recs
    assert all(sum(e.kind == Kind.STARTED for e in evs) <= 1 for evs in events.values())
    wait_until(lambda: len(_worker_pids(cluster)) == 2, 30)


# -- compare, the CLI, clocks and CPU -----------------------------------------------------------
def test_compare_threads_and_dask(dsession: Session, cluster: Any) -> None:
    from engine.compare import CompareRequest, compare

    req = CompareRequest("sleep", "threads,dask", tasks=4, size="200ms", workers=2,
                         options={"scheduler": cluster.scheduler_address})
    res = compare(dsession, req, settle_s=0.1)
    assert [r.model for r in res.results] == ["threads", "dask"]
    assert all(r.status == "complete" for r in res.results), res.results
    dask_run = dsession.store.run(res.results[1].run_id)
    info = dask_run.info
    assert info["cluster"]["started_by"] == "existing" and info["startup_s"] >= 0
    assert dask_run.start_ns <= info["workers_ready_ns"] <= dask_run.end_ns


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], capture_output=True,
                          text=True, timeout=timeout)


def test_cli_json_carries_the_worker_lanes(cluster: Any) -> None:
    p = _cli("run", "-m", "dask", "--scheduler", cluster.scheduler_address, "-w", "sleep",
             "-n", "4", "-s", "100ms", "-k", "2", "--json", "-", "-q")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["counts"] == {"finished": 4}
    lanes = {(t["pid"], t["thread_id"], t["thread_name"].split()[0]) for t in doc["tasks"]}
    assert {pid for pid, _, _ in lanes} == _worker_pids(cluster), lanes
    assert all(a.startswith("tcp://") for _, _, a in lanes)
    assert doc["info"]["cluster"]["scheduler"] == cluster.scheduler_address


def test_cli_compare_threads_and_dask(cluster: Any) -> None:
    p = _cli("compare", "--models", "threads,dask", "--scheduler", cluster.scheduler_address,
             "-w", "sleep", "-n", "4", "-s", "100ms", "-k", "2", "--settle", "100ms",
             "--json", "-")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert [r["model"] for r in doc["results"]] == ["threads", "dask"]
    assert all(r["status"] == "complete" for r in doc["results"])


def test_show_code_scripts_run_on_the_existing_cluster(cluster: Any, tmp_path: Path) -> None:
    from engine.scriptgen import generate
    from tests.engine.test_scriptgen import run_generated_scripts

    addr = cluster.scheduler_address
    src = generate(_spec(cluster, "cpu", tasks=4, size="30ms"))
    assert f"SCHEDULER = {addr!r}" in src and "LocalCluster(" not in src
    run_generated_scripts("dask", tmp_path, {"scheduler": addr})


def test_the_show_code_script_starts_its_own_local_cluster(tmp_path: Path) -> None:
    from engine.scriptgen import generate

    path = tmp_path / "local_cluster.py"
    path.write_text(generate(make_spec("dask", "cpu", 4, "30ms", workers=2)))
    p = subprocess.run([sys.executable, str(path)], capture_output=True, text=True,
                       timeout=120, cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-800:]
    lines = p.stdout.splitlines()
    assert lines[0].startswith("cluster start-up ") and "finished 4" in lines, p.stdout
    assert lines[-1].startswith("wall "), p.stdout


def test_the_clock_offset_of_a_worker_on_this_machine_measures_zero(cluster: Any) -> None:
    from distributed import Client

    from engine.models.dask.cluster import measure_offset

    with Client(cluster.scheduler_address, set_as_default=False) as c:
        addr = next(iter(c.scheduler_info()["workers"]))
        offset, err = measure_offset(c, addr)
    # same CLOCK_MONOTONIC: the measured offset is 0 within its own error bound
    assert err > 0 and abs(offset) <= err + 1_000_000, (offset, err)


def test_local_workers_are_sampled_and_remote_figures_come_from_the_scheduler(
        dsession: Session, cluster: Any) -> None:
    run = dsession.start(_spec(cluster, "cpu", tasks=4, size="400ms"))
    wait_until(lambda: any(s.workers.keys() & _worker_pids(cluster) for s in
                           dsession.store.read_samples(0)[0]), 20)
    assert run.wait(60)
    # the scheduler's own figures for every worker, as used for workers on other machines
    c = run.runner.cluster
    for w in c.workers.values():
        w.local = False
    c._read_remote()  # what the monitor thread does once a second for remote workers
    remote = c.remote_samples()
    assert set(remote) == set(c.workers) and all(r.rss > 0 for r in remote.values()), remote


# -- the embedded cluster, and bad addresses ------------------------------------------------------
def test_the_embedded_cluster_runs_and_leaves_nothing_behind(session: Session) -> None:
    run = session.start(make_spec("dask", "cpu", tasks=4, size="50ms", workers=2))
    assert run.wait(120)
    check_invariants(session, run)
    recs = session.store.tasks(run.run_id)
    assert all(r.state is State.FINISHED for r in recs)
    pids = {r.pid for r in recs}
    info = run.record.info
    assert info["cluster"]["started_by"] == "engine" and info["cluster"]["startup_s"] > 0
    workers = {w["pid"] for w in info["cluster"]["workers"]}
    assert len(workers) == 2 and pids <= workers and os.getpid() not in workers
    # the fixture's teardown: shutdown closes the cluster, and no Dask process is left


def test_a_bad_scheduler_address_is_refused_naming_the_option() -> None:
    for bad in ("http://127.0.0.1:8786", "tcp://127.0.0.1", "tcp://:8786", "tcp://h:0",
                "tcp://h:99999", "tcp://a b:1", ""):
        with pytest.raises(SpecError) as e:
            make_spec("dask", "cpu", options={"scheduler": bad})
        assert e.value.field == "options.scheduler", bad
    assert make_spec("dask", "cpu", options={"scheduler": "localhost:8786"}).options == {
        "scheduler": "tcp://localhost:8786"}
    with pytest.raises(SpecError) as e:
        make_spec("threads", "cpu", options={"scheduler": "tcp://h:1"})
    assert e.value.field == "options.scheduler"


def test_the_cli_refuses_a_bad_or_unreachable_scheduler_in_one_line() -> None:
    p = _cli("run", "-m", "dask", "--scheduler", "ftp://x:1", "-w", "cpu")
    assert p.returncode == 2 and p.stderr.count("\n") == 1, p.stderr
    assert "options.scheduler" in p.stderr and "Traceback" not in p.stderr
    t0 = time.monotonic()
    p = _cli("run", "-m", "dask", "--scheduler", "tcp://127.0.0.1:9", "-w", "cpu")
    took = time.monotonic() - t0
    assert p.returncode == 2 and p.stderr.count("\n") == 1, p.stderr
    assert "options.scheduler" in p.stderr and "cannot reach" in p.stderr
    # (within 5 s is asserted in-process below; here Python's own start counts too, 2 to 15 s
    # on a loaded 2-core machine)
    assert took < 30.0, took


def test_a_front_ends_preflight_tries_the_scheduler_without_a_session() -> None:
    # What a window calls off its GUI thread before its Start (its start call would wait on a
    # silent host in the engine process's answer): the same one-line refusal, and nothing
    # to try for a model without a scheduler.
    import engine

    with pytest.raises(SpecError) as e:
        engine.preflight(make_spec("dask", "cpu", options={"scheduler": "tcp://127.0.0.1:9"}))
    assert e.value.field == "options.scheduler" and "cannot reach" in e.value.message
    engine.preflight(make_spec("dask", "cpu"))  # a LocalCluster: nothing to reach
    engine.preflight(make_spec("threads", "cpu"))


def test_an_unreachable_scheduler_starts_nothing(dsession: Session) -> None:
    t0 = time.monotonic()
    with pytest.raises(SpecError) as e:
        dsession.start(make_spec("dask", "cpu", options={"scheduler": "tcp://127.0.0.1:9"}))
    assert time.monotonic() - t0 < 5.0
    assert e.value.field == "options.scheduler"
    assert dsession.store.runs() == []


def test_a_port_that_is_no_dask_scheduler_fails_the_runs_tasks_in_one_line(
        dsession: Session) -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as srv:  # accepts, then never says a word
        port = srv.getsockname()[1]
        run = dsession.start(make_spec("dask", "cpu", tasks=2,
                                       options={"scheduler": f"tcp://127.0.0.1:{port}"}))
        assert run.wait(30)
    recs = dsession.store.tasks(run.run_id)
    assert all(r.state is State.FAILED for r in recs), recs
    msg = recs[0].error["message"]
    assert "cannot reach the Dask scheduler" in msg and "\n" not in msg, msg


def test_without_distributed_the_model_says_how_to_get_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "distributed" else real(name, *a))
    info = engine.model_info("dask")
    assert not info.available and info.fix == "pip install 'taskscope[dask]'"
    with pytest.raises(SpecError) as e:
        make_spec("dask", "cpu")
    assert "taskscope[dask]" in str(e.value)


def _keys_held(prefix: str, dask_scheduler: Any = None) -> list[str]:
    return [k for k, ts in dask_scheduler.tasks.items()
            if isinstance(k, str) and k.startswith(prefix) and ts.who_wants]


def test_no_dask_events_are_lost_or_doubled(dsession: Session, cluster: Any) -> None:
    run = dsession.start(_spec(cluster, "events", tasks=2, size="200ms"))
    assert run.wait(60)
    by_task = check_invariants(dsession, run)
    assert len(run_events(dsession, run.run_id)) > 1000
    # Shipped in batches of hundreds, each event keeps the time its worker stamped it with:
    # in order, spread over the task's 200 ms, not bunched at the batches' arrival times.
    for evs in by_task.values():
        ts = [e.t_ns for e in evs if e.kind == Kind.PROGRESS]
        assert ts == sorted(ts) and (ts[-1] - ts[0]) / 1e6 > 150, (len(ts), ts[:3], ts[-3:])
        assert len(set(ts)) > len(ts) // 2, "progress events share their stamps"


def test_a_batch_travels_as_one_bytes_value_and_comes_back_as_the_same_events() -> None:
    """A worker's batch is one msgpack ``bytes`` value (Dask carries it without walking its
    elements); an info dict msgpack cannot carry arrives as its repr, not as a lost batch."""
    from engine.events import Event
    from engine.models.dask.worker import pack, unpack

    addr = "tcp://127.0.0.1:1"
    evs = [Event(1, 7, Kind.STARTED, 10, 2, 3, f"{addr} t", "", 0),
           Event(1, 7, Kind.FAILED, 11, 2, 3, f"{addr} t", "", 1, 0.5,
                 {"type": "ValueError", "message": "m", "traceback": "tb", "n": 1})]
    data = pack(addr, evs)
    assert isinstance(data, bytes)
    got_addr, got = unpack(data)
    assert got_addr == addr and [Event(*e) for e in got] == evs
    odd = Event(1, 8, Kind.FINISHED, 12, info={"obj": {1, 2}, "ok": 3})
    _, (back,) = unpack(pack(addr, [odd]))
    assert Event(*back).info == {"obj": "{1, 2}", "ok": 3}


def _session_cluster(s: Session) -> Any:
    from engine.models.dask.cluster import RESOURCE, Clusters, close_clusters

    (c,) = s.get(RESOURCE, Clusters, close_clusters).all()
    return c


def test_workers_on_this_machine_send_their_batches_over_the_engines_own_socket(
        dsession: Session, cluster: Any) -> None:
    """Not through the scheduler: its log of the run's event topic stays empty, and every
    task's events arrive, in order."""
    run = dsession.start(_spec(cluster, "sleep", tasks=20, size="10ms"))
    assert run.wait(60)
    by_task = check_invariants(dsession, run)
    assert all([e.kind for e in evs] == [Kind.QUEUED, Kind.STARTED, Kind.FINISHED]
               for evs in by_task.values())
    c = _session_cluster(dsession)
    assert c.channel is not None and c.channel.startswith("unix:")
    assert c.client.get_events(c.topic) == ()


def test_a_worker_that_cannot_reach_the_engines_socket_keeps_the_event_log(
        cluster: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Another machine's (or container's) worker finds no such socket: its events still
    arrive, over the scheduler."""
    from engine.models.dask.channel import EventServer

    monkeypatch.setattr(EventServer, "open", lambda self: f"unix:{tmp_path / 'none'}")
    with Session() as s:
        run = s.start(_spec(cluster, "sleep", tasks=6, size="10ms"))
        assert run.wait(60)
        check_invariants(s, run)
        assert all(s.store.task(t).state is State.FINISHED for t in run.task_ids)
        c = _session_cluster(s)
        assert len(c.client.get_events(c.topic)) > 0


def test_a_thousand_no_op_tasks_lose_no_event_and_leave_no_result_held(
        dsession: Session, cluster: Any) -> None:
    """Starts and ends of short tasks travel together in a worker's batch: none is lost or
    doubled, each ending lands in the store, and the run lets go of every future (a future
    held keeps its result on a worker, and Dask would run the task again if that worker
    died: the next run's tasks would queue behind such a rerun)."""
    from distributed import Client

    run = dsession.start(_spec(cluster, "sleep", tasks=1000, size=0.0))
    assert run.wait(60)
    by_task = check_invariants(dsession, run)
    assert all([e.kind for e in evs] == [Kind.QUEUED, Kind.STARTED, Kind.FINISHED]
               for evs in by_task.values())
    with Client(cluster.scheduler_address, set_as_default=False) as c:
        held = c.run_on_scheduler(_keys_held, f"taskscope-{run.run_id}-")
    assert held == [], f"{len(held)} results still held after the run, e.g. {held[:3]}"


def test_a_run_that_fits_in_dasks_window_does_not_wake_its_watchdog_per_batch(
        dsession: Session, cluster: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every task of a 300-task run goes to Dask at once: the endings that come back have
    nothing left to refill, so they wake no thread (it was about one wake per batch)."""
    import threading

    from engine.models.dask.runner import DaskRunner

    class Counting(threading.Event):
        sets = 0

        def set(self) -> None:
            Counting.sets += 1
            super().set()

    init = DaskRunner.__init__

    def counted(self: DaskRunner, *a: Any, **kw: Any) -> None:
        init(self, *a, **kw)
        self._wake = Counting()

    monkeypatch.setattr(DaskRunner, "__init__", counted)
    run = dsession.start(_spec(cluster, "sleep", tasks=300, size=0.0))
    assert run.wait(60)
    check_invariants(dsession, run)
    assert Counting.sets <= 3, Counting.sets  # the close's own, and none per batch


def test_a_start_after_another_tasks_end_still_shows_while_it_runs(
        dsession: Session, cluster: Any) -> None:
    """A start that follows another task's events within a flush interval waits for the next
    batch, not for its own task's end: every task of back-to-back 1 s tasks shows running
    soon after it starts."""
    run = dsession.start(_spec(cluster, "sleep", tasks=4, size="1s"))
    seen: dict[int, int] = {}
    end = time.monotonic() + 60
    while not run.ended and time.monotonic() < end:
        for tid in run.task_ids:
            if tid not in seen and _running(dsession, tid):
                seen[tid] = time.monotonic_ns()
        time.sleep(0.005)
    assert run.wait(30)
    check_invariants(dsession, run)
    lags = {tid: (seen[tid] - dsession.store.task(tid).start_ns) / 1e6 if tid in seen else None
            for tid in run.task_ids}
    # shown running within half its second (measured: a few ms), long before it ended
    assert all(lag is not None and lag < 500 for lag in lags.values()), lags


def test_remote_worker_figures_survive_a_trace_and_old_traces_still_load() -> None:
    from engine.samples import Sample, WorkerSample
    from engine.trace.records import decode_sample, encode_sample

    base = dict(t_ns=1, interval_s=0.1, cores=(1.0,), cores_user=(1.0,), cores_system=(0.0,),
                total=1.0, self_cpu=2.0, self_rss=3)
    s = Sample(**base, remote={"tcp://10.0.0.2:4000": WorkerSample(77, 99.5, 1 << 20, -1)})
    assert decode_sample(encode_sample(s), "s") == s
    old = encode_sample(Sample(**base))
    assert "remote" not in old and decode_sample(old, "s") == Sample(**base)


def test_the_window_side_gets_the_runs_cluster_and_its_dashboard_link(cluster: Any) -> None:
    from engine.remote import RemoteSession
    from tests.engine.test_remote import pump_until

    rs = RemoteSession(None)
    try:
        run = rs.start(_spec(cluster, "sleep", tasks=2, size="50ms"))
        pump_until(rs, lambda: rs.store.run(run.run_id).done)
        info = rs.store.run(run.run_id).info
        assert info["cluster"]["scheduler"] == cluster.scheduler_address
        assert "dashboard" in info["cluster"] and info["workers_ready_ns"] > 0
        lanes = {t.thread.split()[0] for t in rs.store.tasks(run.run_id)}
        assert all(a.startswith("tcp://") for a in lanes), lanes
    finally:
        assert rs.shutdown(3.0).clean
