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

Every kind of entry has a :class:`Schema`, and the reader refuses a missing or unknown field.
A field the format gains later is *optional* in its schema, so traces written before it still
load, with the field's default:

* a TaskRecord field: add it to the dataclass (with a default) and to :data:`TASK_OPTIONAL`;
* a run field (say, the interpreter a run used): add it to :data:`RUN_SCHEMA` as optional, to
  :func:`encode_run`, and to :func:`decode_run` with its default (the replay sets every field of
  the decoded RunRecord on the store's record);
* a sample field: likewise, in :data:`SAMPLE_SCHEMA`, :func:`encode_sample`,
  :func:`decode_sample`;
* a comparison's field (``engine.compare``'s ``CompareResult`` / ``ModelResult``): nothing to
  do here. Like task entries, their schemas come from the dataclasses, and a field with a
  default is optional. The section's ``comparisons`` list is itself optional (traces without
  a comparison, and those written before, have none).

:data:`FORMAT_VERSION` stays for such additions: an older TaskScope refuses the new field by
name ("unknown field"). Bump it only for a change older readers would misread.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import operator
import platform
import sys
import types
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple, Union, get_args, get_origin, get_type_hints

from ..compare import CompareResult, ModelResult
from ..samples import Sample, WorkerSample
from ..spec import RunSpec
from ..store import TASK_FIELD_TYPES, TASK_FIELDS, EventStore, RunRecord, TaskRecord
from .errors import BadTrace

#: Version of the ``taskscope`` section. Bump it when the section changes incompatibly (not for
#: an optional field: see the module docstring).
FORMAT_VERSION = 1


class Schema:
    """The fields one kind of entry in the section has, and the JSON types each may hold.

    Every field must be there, except the ``optional`` ones: a field the format gained after
    format 1 (traces written before lack it), or one the encoder writes only when it holds
    something. The decoder gives an absent optional field its default. A field not in the
    schema is an error, so a file is never half understood.
    """

    __slots__ = ("optional", "types", "_exact")

    def __init__(self, types: dict[str, tuple[type, ...]], optional: Iterable[str] = ()) -> None:
        self.types = types
        self.optional = frozenset(optional)
        if not self.optional <= types.keys():
            raise ValueError(f"optional fields not in the schema: {self.optional - types.keys()}")
        # json only ever produces exact dict/list/str/int/float/bool/None, so one set lookup per
        # field replaces isinstance chains (bool is not an integer here, an int is a valid float).
        self._exact = {
            key: frozenset(x for t in ts for x in ((int, float) if t is float else (t,)))
            for key, ts in types.items()
        }

    def check(self, obj: Any, where: str) -> dict[str, Any]:
        """``obj`` itself, once it is an object with exactly these fields, each of its types."""
        if type(obj) is not dict:
            raise BadTrace(f"{where}: expected an object, got {type_name(obj)}")
        exact = self._exact
        if len(obj) != len(exact) or not obj.keys() <= exact.keys():
            for key in obj:
                if key not in exact:
                    raise BadTrace(f"{where}: unknown field {key!r}")
        for key, allowed in exact.items():
            if key not in obj:
                if key in self.optional:
                    continue
                raise BadTrace(f"{where}: missing field {key!r}")
            v = obj[key]
            if type(v) not in allowed:
                want = " or ".join(
                    type_name(t()) if t is not type(None) else "null" for t in self.types[key]
                )
                raise BadTrace(f"{where}.{key}: expected {want}, got {type_name(v)}")
        return obj


#: The section's own header (see :func:`encode_section`).
SECTION_SCHEMA = Schema({
    "version": (int,), "scope": (str,), "origin_ns": (int,), "exported_at": (str,),
    "python": (str,), "platform": (str,), "runs": (list,), "tasks": (list,),
    "samples": (list,), "comparisons": (list,),
}, optional=("comparisons",))  # written only when the runs were compared

#: A run (see :func:`encode_run`, :func:`decode_run`).
RUN_SCHEMA = Schema({
    "run_id": (int,),
    "spec": (dict, type(None)),
    "first_task_id": (int,),
    "n_tasks": (int,),
    "start_ns": (int,),
    "end_ns": (int, type(None)),
    "counts": (dict,),
    # The interpreter that ran it (engine.build's python block), since issue 14; written
    # when the engine said it.
    "python": (dict,),
}, optional=("python",))

#: A run's ``python`` block.
PYTHON_SCHEMA = Schema({
    "executable": (str,),
    "version": (str,),
    "free_threaded": (bool,),
    "gil_enabled": (bool, type(None)),
})

SPEC_SCHEMA = Schema({
    "model": (str,),
    "workload": (str,),
    "tasks": (int,),
    "size_s": (float,),
    "workers": (int, type(None)),
    "timeout_s": (float, type(None)),
    "policy": (str,),
    "params": (dict,),
})

NUM = (float, str)  # a float, or "NaN"/"Infinity"/"-Infinity"

SAMPLE_SCHEMA = Schema({
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
    "remote": (dict,),
}, optional=("remote",))  # written only when there were workers on other machines

#: A worker process in a sample (by pid), and a worker on another machine (by address).
WORKER_SCHEMA = Schema({"cpu": NUM, "rss": (int,), "core": (int,)})
REMOTE_WORKER_SCHEMA = Schema({"pid": (int,), "cpu": NUM, "rss": (int,)})

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
    out = {
        "run_id": r.run_id,
        "spec": encode_spec(r.spec),
        "first_task_id": r.task_ids.start,
        "n_tasks": len(r.task_ids),
        "start_ns": r.start_ns,
        "end_ns": r.end_ns,
        "counts": {str(k): int(v) for k, v in r.counts.items()},
    }
    py = r.info.get("python")
    if isinstance(py, dict):
        out["python"] = {k: py.get(k) for k in PYTHON_SCHEMA.types}
    return out


def encode_section(
    scope: str,
    origin_ns: int,
    exported_at: str,
    runs: Iterable[RunRecord],
    tasks: Iterable[TaskRecord],
    samples: Iterable[Sample],
    comparisons: Iterable[CompareResult] = (),
) -> dict[str, Any]:
    """The ``"taskscope"`` section: every run, task record and sample, exactly; and the
    comparisons those runs were part of."""
    compared = [encode_comparison(c) for c in comparisons]
    return {
        "version": FORMAT_VERSION,
        "scope": scope,
        "origin_ns": origin_ns,
        "exported_at": exported_at,
        "python": platform.python_version(),
        "platform": sys.platform,
        "runs": [encode_run(r) for r in runs],
        "tasks": [encode_task(t) for t in tasks],
        "samples": [encode_sample(s) for s in samples],
        **({"comparisons": compared} if compared else {}),
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


def decode_run(r: Any, where: str) -> RunRecord:
    """The run an entry encodes, after checking it (raises :class:`BadTrace`).

    Every field of the RunRecord comes from here (the replay sets them all on the store's
    record), so a field added to runs needs its line in :func:`encode_run` and here, with a
    default where the entry lacks it (an optional field in :data:`RUN_SCHEMA`).
    """
    RUN_SCHEMA.check(r, where)
    if r["spec"] is not None:
        SPEC_SCHEMA.check(r["spec"], f"{where}.spec")
    for k, v in r["counts"].items():
        if not is_int(v):
            raise BadTrace(f"{where}.counts.{k}: expected an integer")
    first, n = r["first_task_id"], r["n_tasks"]
    if n < 0 or first < 0:
        raise BadTrace(f"{where}: negative task range")
    info: dict[str, Any] = {}
    if "python" in r:
        info["python"] = dict(PYTHON_SCHEMA.check(r["python"], f"{where}.python"))
    return RunRecord(
        run_id=r["run_id"],
        spec=decode_spec(r["spec"]),
        task_ids=range(first, first + n),
        start_ns=r["start_ns"],
        end_ns=r["end_ns"],
        counts=dict(r["counts"]),
        info=info,
    )


def decode_sample(s: Any, where: str) -> Sample:
    SAMPLE_SCHEMA.check(s, where)

    def floats(key: str) -> tuple[float, ...]:
        return tuple(dec_float(x, f"{where}.{key}[{i}]") for i, x in enumerate(s[key]))

    workers: dict[int, WorkerSample] = {}
    for k, w in s["workers"].items():
        pid = dec_int_key(k, f"{where}.workers")
        WORKER_SCHEMA.check(w, f"{where}.workers.{k}")
        workers[pid] = WorkerSample(pid, dec_float(w["cpu"], f"{where}.workers.{k}.cpu"),
                                    w["rss"], w["core"])
    threads = {
        dec_int_key(k, f"{where}.threads"): dec_float(v, f"{where}.threads.{k}")
        for k, v in s["threads"].items()
    }
    lag = {str(k): dec_float(v, f"{where}.lag_ms.{k}") for k, v in s["lag_ms"].items()}
    remote: dict[str, WorkerSample] = {}
    for a, w in s.get("remote", {}).items():
        REMOTE_WORKER_SCHEMA.check(w, f"{where}.remote.{a}")
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
SAMPLE_FIELDS = tuple(SAMPLE_SCHEMA.types)


# -- comparisons: their fields and types come from engine.compare's dataclasses ----------------
def _dataclass_schema(cls: type, own: dict[str, tuple[type, ...]] | None = None
                      ) -> tuple[Schema, dict[str, FieldCodec]]:
    """A schema and codecs derived from a dataclass's annotations (as for task records): a
    field with a default is optional, so a field the class gains later is read from older
    traces with its default. ``own``: fields whose JSON types are given here instead."""
    hints = get_type_hints(cls)
    codecs: dict[str, FieldCodec] = {}
    types_: dict[str, tuple[type, ...]] = {}
    optional = []
    for f in dataclasses.fields(cls):
        if own and f.name in own:
            types_[f.name] = own[f.name]
        else:
            codecs[f.name] = field_codec(f.name, hints[f.name], cls.__name__)
            types_[f.name] = codecs[f.name].types
        if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING:
            optional.append(f.name)
    return Schema(types_, optional=optional), codecs


def _decode_fields(obj: dict[str, Any], codecs: dict[str, FieldCodec], where: str
                   ) -> dict[str, Any]:
    out = dict(obj)
    for name, c in codecs.items():
        if c.decode is not None and name in out:
            try:
                out[name] = c.decode(out[name])
            except ValueError as e:
                raise BadTrace(f"{where}.{name}: {e}") from None
    return out


def encode_comparison(res: CompareResult) -> dict[str, Any]:
    """A comparison, field for field (``CompareResult``, each ``ModelResult``), JSON-safe."""
    d = res.as_dict()
    for r in d["results"]:
        r.pop("complete", None)  # derived from the status, not a field
    return jsonable(d)


def decode_comparison(obj: Any, where: str) -> CompareResult:
    """The comparison an entry encodes, after checking every field (raises BadTrace)."""
    _COMPARE_SCHEMA.check(obj, where)
    kw = _decode_fields(obj, _COMPARE_CODECS, where)
    results = []
    for i, r in enumerate(obj["results"]):
        w = f"{where}.results[{i}]"
        _MODEL_RESULT_SCHEMA.check(r, w)
        results.append(ModelResult(**_decode_fields(r, _MODEL_RESULT_CODECS, w)))
    kw["results"] = results
    return CompareResult(**kw)


# -- task records: the fields and their types come from TaskRecord itself ----------------------


class FieldCodec(NamedTuple):
    """How one TaskRecord field travels in the section."""

    #: The JSON types the field may hold (as :class:`Schema` takes them).
    types: tuple[type, ...]
    #: Value -> JSON; None where the value is its own JSON.
    encode: Callable[[Any], Any] | None
    #: JSON (already type-checked) -> value; None where the JSON is the value. Raises
    #: ValueError with what is wrong (the caller adds where).
    decode: Callable[[Any], Any] | None


def field_codec(name: str, hint: Any, owner: str = "TaskRecord") -> FieldCodec:
    """The codec of a field of ``owner`` (a TaskRecord's by default) annotated ``hint``.

    Raises TypeError, at import, for a type the section has no encoding for: a new TaskRecord
    field of a new kind fails here (and so in every test), never goes missing from traces.
    """
    union = isinstance(hint, types.UnionType) or get_origin(hint) is Union
    members = get_args(hint) if union else (hint,)
    if sum(m is not type(None) for m in members) != 1:  # int | str: which one did JSON hold?
        raise TypeError(f"{owner}.{name}: the trace cannot tell apart the members of {hint}")
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
                raise TypeError(f"{owner}.{name}: enum {m.__name__} has no JSON value type")
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
            raise TypeError(f"{owner}.{name}: the trace has no JSON encoding for {hint}")
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
#: TaskRecord fields the format gained after format 1, so traces written before lack them
#: (read back with the field's default). A field added to TaskRecord belongs here, or format-1
#: traces stop loading ("missing field"; tests/engine/test_trace.py checks one such trace).
TASK_OPTIONAL: frozenset[str] = frozenset()
#: Every TaskRecord field and the JSON types it may hold.
TASK_SCHEMA = Schema({n: c.types for n, c in TASK_CODECS.items()}, optional=TASK_OPTIONAL)
TASK_TYPES: dict[str, tuple[type, ...]] = TASK_SCHEMA.types
_no_default = {f.name for f in dataclasses.fields(TaskRecord)
               if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
if TASK_OPTIONAL & _no_default:  # an older trace could not give it a value
    raise TypeError(f"TaskRecord fields without a default cannot be optional: "
                    f"{sorted(TASK_OPTIONAL & _no_default)}")
del _no_default
_TASK_DECODERS = tuple((n, c.decode) for n, c in TASK_CODECS.items() if c.decode is not None)
_task_items = operator.itemgetter(*TASK_FIELDS)


def decode_task(t: Any, where: str) -> TaskRecord:
    """The record a task entry encodes, after checking every field (raises :class:`BadTrace`)."""
    TASK_SCHEMA.check(t, where)
    if len(t) == len(TASK_FIELDS):
        kwargs = dict(zip(TASK_FIELDS, _task_items(t), strict=True))
    else:  # an optional field is absent: TaskRecord gives it its default
        kwargs = {name: t[name] for name in TASK_FIELDS if name in t}
    for name, dec in _TASK_DECODERS:
        try:
            if name in kwargs:
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


_MODEL_RESULT_SCHEMA, _MODEL_RESULT_CODECS = _dataclass_schema(ModelResult)
_COMPARE_SCHEMA, _COMPARE_CODECS = _dataclass_schema(CompareResult, {"results": (list,)})
