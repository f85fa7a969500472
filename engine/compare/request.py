"""What a comparison is asked to do, validated before anything runs.

:class:`CompareRequest` holds the one parameter list that :func:`plan`,
:func:`~engine.compare.run.compare` and :func:`~engine.compare.run.start_compare` (and a
front end's ``start_compare``) share; :func:`plan` turns it into one validated
:class:`~engine.spec.RunSpec` per model, or raises :class:`~engine.errors.SpecError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import SpecError
from ..models import registry
from ..spec import RunSpec, make_spec


@dataclass(frozen=True)
class CompareRequest:
    """One workload, its sizes, and the models to run it under (loosely typed, as a CLI or a
    form gives them; :meth:`plan` validates). ``workers`` applies to every model that can
    have more than one worker; ``options`` are model options (each model takes those its
    registry entry names)."""

    workload: str
    models: str | Sequence[str]
    tasks: Any = 10
    size: Any = "200ms"
    workers: Any = None
    params: Mapping[str, Any] | None = None
    timeout: Any = None
    policy: Any = "collect"
    options: Mapping[str, Any] | None = None

    def plan(self, models: Mapping[str, Any] | None = None) -> list[RunSpec]:
        return plan(self, models)


def parse_models(models: str | Sequence[str]) -> list[str]:
    """``"a,b,c"`` or a sequence -> a list of distinct model names; SpecError on ``models``."""
    items = models.split(",") if isinstance(models, str) else list(models)
    out: list[str] = []
    for m in items:
        if not isinstance(m, str):
            raise SpecError("models", f"expected model names, got {m!r}")
        m = m.strip()
        if not m:
            continue
        if m in out:
            raise SpecError("models", f"{m} is listed twice")
        out.append(m)
    if not out:
        raise SpecError("models", "name at least one model, e.g. sequential,threads,processes")
    return out


def plan(request: CompareRequest, models: Mapping[str, Any] | None = None) -> list[RunSpec]:
    """Validate every model's spec before anything runs (a :class:`SpecError` names the
    field; a model's own errors name ``models``). ``workers`` applies to every model that can
    have more than one worker; each model gets the options its registry entry takes.
    ``models``: availability as the interpreter that will run them says (see
    :func:`~engine.spec.make_spec`)."""
    r = request
    options = dict(r.options or {})
    names = parse_models(r.models)
    for key in options:
        if not any(key in registry.entry(m).options for m in names if m in registry.names()):
            raise SpecError(f"options.{key}", "no model in this comparison takes it")
    specs = []
    for m in names:
        try:
            model = registry.entry(m)
            w = None if model.max_workers == 1 else r.workers
            own = {k: v for k, v in options.items() if k in model.options}
            specs.append(make_spec(m, r.workload, r.tasks, r.size, w, r.timeout, r.policy,
                                   r.params, own, models=models))
        except SpecError as e:
            if e.field == "model":
                raise SpecError("models", e.message) from None
            raise
    return specs
