"""The TaskScope section of a trace: exact JSON encodings of runs, tasks and samples, both ways.

Every format module shares these: the Chrome/Perfetto export embeds the section and draws its
slices from the same records, the CSV export uses the same JSON-safe copies of task details,
and the replay validates the section field by field and decodes it back into records.

JSON has no non-finite numbers (and Perfetto rejects them), so a float that may be NaN or
infinite is written as the string ``"NaN"``, ``"Infinity"`` or ``"-Infinity"``.

A task entry is a :class:`~engine.store.TaskRecord`, field for field: its fields, their order
and the JSON types each may hold are derived from the dataclass's own annotations
(:data:`TASK_CODECS`), not listed here again, so a field added to TaskRecord is in every trace
written from then on (and a field of a type JSON cannot carry fails at import).
"""

from __future__ import annotations

import enum
import math
import operator
import types
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Union, get_args, get_origin

from ..samples import Sample, WorkerSample
from ..spec import RunSpec
from ..store import TASK_FIELD_TYPES, TASK_FIELDS, EventStore, RunRecord, TaskRecord
from .errors import BadTrace

#: Version of the ``taskscope`` section. Bump it when the section changes incompatibly.
FORMAT_VERSION = 1

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
    try:
        return _number(v)
    except ValueError as e:
        raise BadTrace(f"{where}: {e}") from None


def _number(v: Any) -> float:
    """A float from its JSON form (a number, or "NaN"/"Infinity"/"-Infinity")."""
    if type(v) in (int, float):
        return float(v)
    x = _NONFINITE.get(v) if isinstance(v, str) else None
    if x is None:
        raise ValueError(f"expected a number, got {type_name(v)}")
    return x


def dec_int_key(k: str, where: str) -> int:
    try:
        n = int(k)
    except ValueError:
        raise BadTrace(f"{where}: key {k!r} is not an integer") from None
    if str(n) != k:
        raise BadTrace(f"{where}: key {k!r} is not an integer")
    return n


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


#: For tests and tools: the names of every field the section encodes per sample.
SAMPLE_FIELDS = tuple(SAMPLE_TYPES)


# -- task records: the fields and their types come from TaskRecord itself ----------------------


class FieldCodec(NamedTuple):
    """How one TaskRecord field travels in the section."""

    #: The JSON types the field may hold (as :func:`check_fields` takes them).
    types: tuple[type, ...]
    #: Value -> JSON; None where the value is its own JSON.
    encode: Callable[[Any], Any] | None
    #: JSON (already type-checked) -> value; None where the JSON is the value. Raises
    #: ValueError with what is wrong (the caller adds where).
    decode: Callable[[Any], Any] | None


def field_codec(name: str, hint: Any) -> FieldCodec:
    """The codec of a TaskRecord field whose annotation is ``hint``.

    Raises TypeError, at import, for a type the section has no encoding for: a new TaskRecord
    field of a new kind fails here (and so in every test), never goes missing from traces.
    """
    union = isinstance(hint, types.UnionType) or get_origin(hint) is Union
    members = get_args(hint) if union else (hint,)
    if sum(m is not type(None) for m in members) != 1:  # int | str: which one did JSON hold?
        raise TypeError(f"TaskRecord.{name}: the trace cannot tell apart the members of {hint}")
    json_types: list[type] = []
    enc: Callable[[Any], Any] | None = None
    dec: Callable[[Any], Any] | None = None
    for m in members:
        origin = get_origin(m) or m
        if m is type(None):
            json_types.append(type(None))
        elif isinstance(m, type) and issubclass(m, enum.Enum):
            value_type = next((t for t in (str, int) if issubclass(m, t)), None)
            if value_type is None:
                raise TypeError(f"TaskRecord.{name}: enum {m.__name__} has no JSON value type")
            json_types.append(value_type)
            enc, dec = operator.attrgetter("value"), _enum_decoder(name, m)
        elif m is float:  # non-finite values travel as strings (see enc_float)
            json_types += [float, str]
            enc, dec = enc_float, _number
        elif m in (bool, int, str):
            json_types.append(m)
        elif origin in (dict, list):
            json_types.append(origin)
            enc = jsonable  # a JSON-safe copy out (it passes None through); in, the parsed value
        else:
            raise TypeError(f"TaskRecord.{name}: the trace has no JSON encoding for {hint}")
    if type(None) in json_types:
        if enc is not None and enc is not jsonable:  # jsonable passes None through itself
            enc = _or_none(enc)
        if dec is not None:
            dec = _or_none(dec)
    return FieldCodec(tuple(json_types), enc, dec)


def _enum_decoder(name: str, cls: type[enum.Enum]) -> Callable[[Any], Any]:
    def decode(v: Any) -> Any:
        try:
            return cls(v)
        except ValueError:
            raise ValueError(f"unknown {name} {v!r}") from None

    return decode


def _or_none(f: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda v: None if v is None else f(v)


#: Each TaskRecord field's codec, in TaskRecord's order: derived from the dataclass's own
#: annotations (:data:`engine.store.TASK_FIELD_TYPES`), so the section follows TaskRecord.
TASK_CODECS: dict[str, FieldCodec] = {n: field_codec(n, h) for n, h in TASK_FIELD_TYPES.items()}
#: Every TaskRecord field and the JSON types it may hold.
TASK_TYPES: dict[str, tuple[type, ...]] = {n: c.types for n, c in TASK_CODECS.items()}
_TASK_DECODERS = tuple((n, c.decode) for n, c in TASK_CODECS.items() if c.decode is not None)
_task_items = operator.itemgetter(*TASK_FIELDS)


def decode_task(t: Any, where: str) -> TaskRecord:
    """The record a task entry encodes, after checking every field (raises :class:`BadTrace`)."""
    check_fields(t, TASK_TYPES, where)
    kwargs = dict(zip(TASK_FIELDS, _task_items(t), strict=True))
    for name, dec in _TASK_DECODERS:
        try:
            kwargs[name] = dec(kwargs[name])
        except ValueError as e:
            raise BadTrace(f"{where}.{name}: {e}") from None
    return TaskRecord(**kwargs)


def _task_encoder() -> Callable[[TaskRecord], dict[str, Any]]:
    """:func:`encode_task`, written out field by field from the codecs (as dataclasses writes
    ``__init__``): a dict display of ``t.field`` reads runs about 3x faster than a loop over the
    fields (timeit, a finished task with no error: 3.4 against 11 us), and an export encodes
    every task twice (the section, and the args of its slice)."""
    env: dict[str, Any] = {}
    items = []
    for name, codec in TASK_CODECS.items():
        if codec.encode is None:
            items.append(f"{name!r}: t.{name}")
        else:
            env[f"_enc_{name}"] = codec.encode
            items.append(f"{name!r}: _enc_{name}(t.{name})")
    src = "def encode_task(t):\n    return {" + ", ".join(items) + "}\n"
    exec(src, env)  # the names are TaskRecord's own field names, nothing else
    fn = env["encode_task"]
    fn.__doc__ = "Every field of the record, by name, in TaskRecord's order (JSON-safe values)."
    return fn


encode_task: Callable[[TaskRecord], dict[str, Any]] = _task_encoder()
