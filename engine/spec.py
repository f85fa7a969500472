"""Run specs: what to run, validated before anything starts.

:func:`make_spec` takes loosely typed values (from a CLI, a form, a JSON file) and returns a
frozen :class:`RunSpec`, or raises :class:`SpecError` whose message is one line that names the
field. Nothing is started for a spec that fails.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import SpecError
from .models.registry import MAX_PROCESS_WORKERS, MAX_WORKERS, cpu_count
from .parse import parse_duration, parse_int

#: Limits on a spec's values. Beyond them a run is refused: they guard against typos such as
#: ``--tasks 10000000000`` that would otherwise exhaust memory before anything useful happens.
MAX_TASKS = 1_000_000
MAX_SIZE_S = 3600.0
MAX_TIMEOUT_S = 86_400.0

POLICIES = ("collect", "fail-fast")

__all__ = [
    "MAX_PROCESS_WORKERS",
    "MAX_SIZE_S",
    "MAX_TASKS",
    "MAX_TIMEOUT_S",
    "MAX_WORKERS",
    "POLICIES",
    "RunSpec",
    "SpecError",
    "cpu_count",
    "make_spec",
    "parse_duration",
    "parse_int",
    "workload_label",
]


@dataclass(frozen=True)
class RunSpec:
    """A validated run. Build it with :func:`make_spec`."""

    model: str
    workload: str
    tasks: int = 10
    size_s: float = 0.2
    workers: int | None = None
    timeout_s: float | None = None
    policy: str = "collect"
    params: Mapping[str, Any] = field(default_factory=dict)
    #: The model's own options (its registry entry says which), e.g. a cluster's address.
    options: Mapping[str, Any] = field(default_factory=dict)

    def effective_workers(self) -> int:
        """The worker count the model will use, with the model's default filled in."""
        from .models import default_workers

        return self.workers if self.workers is not None else default_workers(self.model, self.tasks)

    @property
    def label(self) -> str:
        """What the run runs, in a few words (see :func:`workload_label`)."""
        return workload_label(self.workload, self.tasks, self.size_s, self.params)

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "workload": self.workload,
            "tasks": self.tasks,
            "size_s": self.size_s,
            "workers": self.effective_workers(),
            "timeout_s": self.timeout_s,
            "policy": self.policy,
            "params": dict(self.params),
            **({"options": dict(self.options)} if self.options else {}),
        }


def workload_label(workload: str, tasks: int, size_s: float, params: Mapping[str, Any],
                   compact: bool = False) -> str:
    """What a run runs, in a few words, for every front end: ``cpu · 8 tasks × 500 ms``
    (``compact``: ``cpu · 8 × 500 ms``, for a narrow column); a custom run by its call,
    ``work.py:work(30) · 8 tasks`` (it ignores the size: the function decides how much work
    a task is)."""
    n = f"{tasks} task{'' if tasks == 1 else 's'}"
    if workload == "custom":
        from .custom import call_text

        return f"{call_text(params)} · {n}"
    size = f"{size_s:g} s" if size_s >= 1 else f"{size_s * 1e3:.4g} ms"
    return f"{workload} · {tasks if compact else n} × {size}"


def make_spec(
    model: Any,
    workload: Any,
    tasks: Any = 10,
    size: Any = "200ms",
    workers: Any = None,
    timeout: Any = None,
    policy: Any = "collect",
    params: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
    *,
    models: Mapping[str, Any] | None = None,
) -> RunSpec:
    """Validate loosely typed values into a :class:`RunSpec`; raise :class:`SpecError` if bad.

    ``models``: whether each model is available, as the interpreter that will run the spec
    says (name -> ``engine.models.ModelInfo``; ``RemoteSession.models()`` for an engine
    process on another Python). Default: this interpreter's answer."""
    from .models import registry
    from .workloads import WORKLOADS, validate_params

    if not isinstance(model, str) or not model.strip():
        raise SpecError("model", "is required")
    model = model.strip()
    info = registry.entry(model)  # raises SpecError for unknown names
    there = models.get(model) if models is not None else None
    if there is not None:
        ok, reason, fix, where = there.available, there.reason, there.fix, "on that interpreter"
    else:
        avail = info.available()
        ok, reason, fix, where = avail.ok, avail.reason, avail.fix, "here"
    if not ok:
        fix = f" ({fix})" if fix else ""
        raise SpecError("model", f"{model} is not available {where}: {reason}{fix}")

    if not isinstance(workload, str) or not workload.strip():
        raise SpecError("workload", "is required")
    workload = workload.strip()
    wl = WORKLOADS.get(workload)
    if wl is None:
        raise SpecError(
            "workload", f"unknown workload {workload!r}; choose one of {', '.join(WORKLOADS)}"
        )
    refused = info.refuses.get(workload)
    if refused:
        raise SpecError("workload", f"{model} cannot run {workload}: {refused}")
    if wl.process_only and not info.isolated:
        isolated = [n for n in registry.names() if registry.entry(n).isolated]
        raise SpecError(
            "workload",
            f"{workload} kills its worker process, so it needs a process model "
            f"({' or '.join(isolated)}), not {model}",
        )

    n = parse_int(tasks, "tasks", 1, MAX_TASKS)
    size_s = parse_duration(size, "size")
    if size_s > MAX_SIZE_S:
        raise SpecError("size", f"must be at most {MAX_SIZE_S:.0f}s per task, got {size!r}")

    w: int | None = None
    if workers is not None and workers != "":
        if info.max_workers == 1:
            w = parse_int(workers, "workers", 1, MAX_WORKERS)
            if w != 1:
                raise SpecError("workers", f"{model} runs on exactly one worker; leave it unset or 1")
        else:
            w = parse_int(workers, "workers", 1, info.max_workers)

    t: float | None = None
    if timeout is not None and timeout != "":
        t = parse_duration(timeout, "timeout")
        if t == 0:
            raise SpecError("timeout", "must be greater than 0 (leave it unset for no timeout)")
        if t > MAX_TIMEOUT_S:
            raise SpecError("timeout", f"must be at most {MAX_TIMEOUT_S:.0f}s, got {timeout!r}")

    if policy not in POLICIES:
        raise SpecError("policy", f"must be one of {', '.join(POLICIES)}, got {policy!r}")

    if params is not None and not isinstance(params, Mapping):
        raise SpecError("params", f"expected name=value pairs, got {type(params).__name__}")
    p = validate_params(workload, dict(params or {}))
    if workload == "custom" and info.isolated:
        from .custom import check_for_processes

        check_for_processes(p)  # arguments must pickle; the function must import in a worker
    o = _options(info, options)
    return RunSpec(model, workload, n, size_s, w, t, policy, p, o)


def _options(info: Any, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The model's options, checked and with defaults filled in (see ``ModelEntry.options``)."""
    if options is not None and not isinstance(options, Mapping):
        raise SpecError("options", f"expected name=value pairs, got {type(options).__name__}")
    given = dict(options or {})
    known = info.options
    for key in given:
        if key not in known:
            allowed = ", ".join(known) or "none"
            raise SpecError(f"options.{key}", f"unknown option for {info.name} (it takes: {allowed})")
    out: dict[str, Any] = {}
    for key, (default, check) in known.items():
        value = given.get(key, default)
        out[key] = check(value, f"options.{key}") if value is not None else None
    return {k: v for k, v in out.items() if v is not None}
