"""The TaskScope section of a trace: exact JSON encodings of runs, tasks and samples, both ways.

Every format module shares these: the Chrome/Perfetto export embeds the section and draws its
slices from the same records, the CSV export uses the same JSON-safe copies of task details,
and the replay validates the section field by field and decodes it back into records.

JSON has no non-finite numbers (and Perfetto rejects them), so a float that may be NaN or
infinite is written as the string ``"NaN"``, ``"Infinity"`` or ``"-Infinity"``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ..events import State
from ..samples import Sample, WorkerSample
from ..spec import RunSpec
from ..store import EventStore, RunRecord, TaskRecord
from .errors import BadTrace

#: Version of the ``taskscope`` section. Bump it when the section changes incompatibly.
FORMAT_VERSION = 1

#: Every TaskRecord field and the JSON types it may hold. A test checks this covers every
#: field of :class:`~engine.store.TaskRecord`, so a new field cannot be silently dropped.
TASK_TYPES: dict[str, tuple[type, ...]] = {
    "task_id": (int,),
    "run_id": (int,),
    "index": (int,),
    "state": (str,),
    "queued_ns": (int,),
    "start_ns": (int, type(None)),
    "end_ns": (int, type(None)),
    "cancel_requested_ns": (int, type(None)),
    "pid": (int,),
    "tid": (int,),
    "thread": (str,),
    "task_name": (str,),
    "core": (int,),
    "progress": (float, str),  # str: "NaN"/"Infinity" (JSON has no non-finite numbers)
    "error": (dict, type(None)),
    "reason": (str,),
}

RUN_TYPES: dict[str, tuple[type, ...]] = {
    "run_id": (int,),
    "spec": (dict, type(None)),
    "first_task_id": (int,),
    "n_tasks": (int,),
    "start_ns": (int,),
    "end_ns": (int, type(None)),
    "counts": (dict,),
}

SPEC_TYPES: dict[str, tuple[type, ...]] = {
    "model": (str,),
    "workload": (str,),
    "tasks": (int,),
    "size_s": (float,),
    "workers": (int, type(None)),
    "timeout_s": (float, type(None)),
    "policy": (str,),
    "params": (dict,),
}

NUM = (float, str)  # a float, or "NaN"/"Infinity"/"-Infinity"

SAMPLE_TYPES: dict[str, tuple[type, ...]] = {
    "t_ns": (int,),
    "interval_s": NUM,
    "cores": (list,),
    "cores_user": (list,),
    "cores_system": (list,),
    "total": NUM,
    "self_cpu": NUM,
    "self_rss": (int,),
    "workers": (dict,),
    "threads": (dict,),
    "lag_ms": (dict,),
    "gil": (float, str, type(None)),
    "gil_disabled": (bool,),
    "remote": (dict,),  # optional: written only when there were workers on other machines
}

_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def enc_float(x: float) -> float | str:
    """Floats as JSON numbers; non-finite ones as strings, since JSON (and Perfetto) has none."""
    x = float(x)
    if math.isfinite(x):
        return x
    return "NaN" if math.isnan(x) else ("Infinity" if x > 0 else "-Infinity")


def is_int(v: Any) -> bool:
    return type(v) is int


def encode_task(t: TaskRecord) -> dict[str, Any]:
    return {
        "task_id": t.task_id,
        "run_id": t.run_id,
        "index": t.index,
        "state": t.state.value,
        "queued_ns": t.queued_ns,
        "start_ns": t.start_ns,
        "end_ns": t.end_ns,
        "cancel_requested_ns": t.cancel_requested_ns,
        "pid": t.pid,
        "tid": t.tid,
        "thread": t.thread,
        "task_name": t.task_name,
        "core": t.core,
        "progress": enc_float(t.progress),
        "error": jsonable(t.error) if t.error is not None else None,
        "reason": t.reason,
    }


def encode_spec(spec: Any) -> dict[str, Any] | None:
    if not isinstance(spec, RunSpec):
        return None
    return {
        "model": spec.model,
        "workload": spec.workload,
        "tasks": spec.tasks,
        "size_s": float(spec.size_s),
        "workers": spec.workers,  # as given (None: the model's default), not the effective count
        "timeout_s": None if spec.timeout_s is None else float(spec.timeout_s),
        "policy": spec.policy,
        "params": jsonable(dict(spec.params)),
    }


def encode_run(r: RunRecord) -> dict[str, Any]:
    return {
        "run_id": r.run_id,
        "spec": encode_spec(r.spec),
        "first_task_id": r.task_ids.start,
        "n_tasks": len(r.task_ids),
        "start_ns": r.start_ns,
        "end_ns": r.end_ns,
        "counts": {str(k): int(v) for k, v in r.counts.items()},
    }


def encode_sample(s: Any) -> dict[str, Any]:
    return {
        "t_ns": int(s.t_ns),
        "interval_s": enc_float(s.interval_s),
        "cores": [enc_float(c) for c in s.cores],
        "cores_user": [enc_float(c) for c in s.cores_user],
        "cores_system": [enc_float(c) for c in s.cores_system],
        "total": enc_float(s.total),
        "self_cpu": enc_float(s.self_cpu),
        "self_rss": int(s.self_rss),
        "workers": {
            str(pid): {"cpu": enc_float(w.cpu), "rss": int(w.rss), "core": int(w.core)}
            for pid, w in s.workers.items()
        },
        "threads": {str(t): enc_float(c) for t, c in s.threads.items()},
        "lag_ms": {str(k): enc_float(v) for k, v in s.lag_ms.items()},
        "gil": None if s.gil is None else enc_float(s.gil),
        "gil_disabled": bool(s.gil_disabled),
        **({"remote": {str(a): {"pid": int(w.pid), "cpu": enc_float(w.cpu), "rss": int(w.rss)}
                       for a, w in s.remote.items()}} if s.remote else {}),
    }


def jsonable(v: Any) -> Any:
    """A JSON-safe copy of task details (errors, params): unknown objects become their repr."""
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return enc_float(v)
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    return repr(v)


def samples_for(store: EventStore, runs: Sequence[RunRecord] | None = None) -> list[Sample]:
    """The store's samples in time order; with ``runs``, only those taken while one ran.

    A sample belongs to a run when its interval ``[t - interval, t]`` overlaps the run.
    """
    samples = [s for s in store.read_samples(0)[0] if isinstance(s, Sample)]
    if runs is not None:
        samples = [s for s in samples if _overlaps_any(s, runs)]
    samples.sort(key=lambda s: s.t_ns)
    return samples


def _overlaps_any(s: Sample, runs: Sequence[RunRecord]) -> bool:
    """Does the sample's interval ``[t - interval, t]`` overlap one of the runs?"""
    lo = s.t_ns - int(max(0.0, s.interval_s if math.isfinite(s.interval_s) else 0.0) * 1e9)
    for r in runs:
        end = r.end_ns if r.end_ns is not None else s.t_ns
        if lo <= end and s.t_ns >= r.start_ns:
            return True
    return False


def type_name(v: Any) -> str:
    if v is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array",
            dict: "object"}.get(type(v), type(v).__name__)


_EXACT: dict[int, dict[str, frozenset[type]]] = {}


def _exact_types(spec: dict[str, tuple[type, ...]]) -> dict[str, frozenset[type]]:
    """The exact Python types json.loads gives for each field's allowed JSON types.

    json only ever produces exact dict/list/str/int/float/bool/None, so one set lookup per
    field replaces isinstance chains (bool is not an integer here, an int is a valid float).
    """
    got = _EXACT.get(id(spec))
    if got is None:
        got = {}
        for key, types in spec.items():
            exact: set[type] = set()
            for t in types:
                exact.update((int, float) if t is float else (t,))
            got[key] = frozenset(exact)
        _EXACT[id(spec)] = got
    return got


def check_fields(obj: Any, spec: dict[str, tuple[type, ...]], where: str,
                  optional: Sequence[str] = ()) -> dict[str, Any]:
    if type(obj) is not dict:
        raise BadTrace(f"{where}: expected an object, got {type_name(obj)}")
    exact = _exact_types(spec)
    if len(obj) != len(spec) or not obj.keys() <= exact.keys():
        for key in obj:
            if key not in spec:
                raise BadTrace(f"{where}: unknown field {key!r}")
    for key, allowed in exact.items():
        if key not in obj:
            if key in optional:
                continue
            raise BadTrace(f"{where}: missing field {key!r}")
        v = obj[key]
        if type(v) not in allowed:
            types = spec[key]
            want = " or ".join(type_name(t()) if t is not type(None) else "null" for t in types)
            raise BadTrace(f"{where}.{key}: expected {want}, got {type_name(v)}")
    return obj


def dec_float(v: Any, where: str) -> float:
    if type(v) in (int, float):
        return float(v)
    if isinstance(v, str) and v in _NONFINITE:
        return _NONFINITE[v]
    raise BadTrace(f"{where}: expected a number, got {type_name(v)}")


def dec_int_key(k: str, where: str) -> int:
    try:
        n = int(k)
    except ValueError:
        raise BadTrace(f"{where}: key {k!r} is not an integer") from None
    if str(n) != k:
        raise BadTrace(f"{where}: key {k!r} is not an integer")
    return n


def decode_task(t: dict[str, Any]) -> TaskRecord:
    return TaskRecord(
        task_id=t["task_id"], run_id=t["run_id"], index=t["index"], state=State(t["state"]),
        queued_ns=t["queued_ns"], start_ns=t["start_ns"], end_ns=t["end_ns"],
        cancel_requested_ns=t["cancel_requested_ns"], pid=t["pid"], tid=t["tid"],
        thread=t["thread"], task_name=t["task_name"], core=t["core"],
        progress=dec_float(t["progress"], "progress"), error=t["error"], reason=t["reason"],
    )


def decode_spec(s: dict[str, Any] | None) -> RunSpec | None:
    """The run's spec as recorded. Built directly, not through make_spec: a replay must open
    even where the model is not available (a trace from a free-threaded build, say)."""
    if s is None:
        return None
    return RunSpec(s["model"], s["workload"], s["tasks"], float(s["size_s"]), s["workers"],
                   None if s["timeout_s"] is None else float(s["timeout_s"]), s["policy"],
                   dict(s["params"]))


def decode_sample(s: Any, where: str) -> Sample:
    check_fields(s, SAMPLE_TYPES, where, optional=("remote",))

    def floats(key: str) -> tuple[float, ...]:
        return tuple(dec_float(x, f"{where}.{key}[{i}]") for i, x in enumerate(s[key]))

    workers: dict[int, WorkerSample] = {}
    for k, w in s["workers"].items():
        pid = dec_int_key(k, f"{where}.workers")
        check_fields(w, {"cpu": NUM, "rss": (int,), "core": (int,)}, f"{where}.workers.{k}")
        workers[pid] = WorkerSample(pid, dec_float(w["cpu"], f"{where}.workers.{k}.cpu"),
                                    w["rss"], w["core"])
    threads = {
        dec_int_key(k, f"{where}.threads"): dec_float(v, f"{where}.threads.{k}")
        for k, v in s["threads"].items()
    }
    lag = {str(k): dec_float(v, f"{where}.lag_ms.{k}") for k, v in s["lag_ms"].items()}
    remote: dict[str, WorkerSample] = {}
    for a, w in s.get("remote", {}).items():
        check_fields(w, {"pid": (int,), "cpu": NUM, "rss": (int,)}, f"{where}.remote.{a}")
        remote[a] = WorkerSample(w["pid"], dec_float(w["cpu"], f"{where}.remote.{a}.cpu"),
                                 w["rss"], -1)
    return Sample(
        t_ns=s["t_ns"],
        interval_s=dec_float(s["interval_s"], f"{where}.interval_s"),
        cores=floats("cores"),
        cores_user=floats("cores_user"),
        cores_system=floats("cores_system"),
        total=dec_float(s["total"], f"{where}.total"),
        self_cpu=dec_float(s["self_cpu"], f"{where}.self_cpu"),
        self_rss=s["self_rss"],
        workers=workers,
        threads=threads,
        lag_ms=lag,
        gil=None if s["gil"] is None else dec_float(s["gil"], f"{where}.gil"),
        gil_disabled=s["gil_disabled"],
        remote=remote,
    )


#: For tests and tools: the names of every field the section encodes per task and per sample.
TASK_FIELDS = tuple(TASK_TYPES)
SAMPLE_FIELDS = tuple(SAMPLE_TYPES)
