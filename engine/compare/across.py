"""One comparison on several interpreters: every model on every interpreter, one after another.

A front end that has an engine on each interpreter (``taskscope compare --python A,B``, the
window's Interpreter selector) hands :class:`CompareAcross` one session per interpreter. Each
interpreter's engine runs the request as any comparison (its models one after another, with
the settling pause between), then the next interpreter's does: never two at once. The result
has one row per model per interpreter; each row's ``python`` says which interpreter ran it, as
that engine said.

**Speed-ups are per interpreter**: each row's ``speedup`` is against sequential *on the same
interpreter* (``speedup_basis`` names it, e.g. ``"sequential on 3.13.0"``), as each
interpreter's own comparison computes it, so a row's reading sentence and its speed-up agree.
How interpreters compare with each other is in the rows' ``wall_s``; the winner is the row
with the lowest wall of all complete rows.

A model the interpreter does not have (sub-interpreters on 3.11, free-threaded threads on a
GIL build) gets a row with status ``"error"`` and the interpreter's own reason, and does not
run there; it still runs on the interpreters that have it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ..build import python_label
from .request import CompareRequest, parse_models
from .results import CompareProgress, CompareResult, ModelResult

if TYPE_CHECKING:
    from ..api import CompareJobAPI, SessionAPI


@dataclass(frozen=True)
class Where:
    """One interpreter of a comparison: the session whose engine runs on it, that
    interpreter's ``python`` block, and its models (name -> ``engine.models.ModelInfo``).
    ``release``: called once its comparison is over (a CLI shuts that engine down then, so
    that an idle engine does not share the machine with the next interpreter's models)."""

    session: SessionAPI
    python: Mapping[str, Any]
    models: Mapping[str, Any]
    release: Callable[[], None] | None = None


#: An interpreter of a comparison, or what makes it when its turn comes (starts its engine).
WhereLike = Where | Callable[[], Where]


class CompareAcross:
    """A :class:`~engine.api.CompareJobAPI` over several interpreters (see the module
    docstring). It moves on to the next interpreter when polled (:attr:`done`,
    :attr:`progress`, :meth:`wait`): a window polls it on its frame tick, a CLI waits."""

    def __init__(self, where: Sequence[WhereLike], request: CompareRequest,
                 on_progress: Callable[[CompareProgress], None] | None = None,
                 how: Mapping[str, Any] | None = None) -> None:
        if not where:
            raise ValueError("a comparison across interpreters needs at least one")
        self._where = list(where)
        self._request = request
        self._cb = on_progress
        self._how = dict(how or {})
        self._names = parse_models(request.models)
        self._n = len(self._names) * len(self._where)
        self._i = -1
        self._offset = 0  # rows of the interpreters before the current one
        self._job: CompareJobAPI | None = None
        self._current: Where | None = None
        #: Per interpreter so far: its comparison's result (None: it ran none) and the rows
        #: of the models it did not run (not there, or skipped after a cancel).
        self._groups: list[tuple[CompareResult | None, list[ModelResult]]] = []
        self._cancelled = False
        self._done = False
        self._progress: CompareProgress | None = None
        self.result: CompareResult | None = None
        self.error: BaseException | None = None
        self._t0 = time.monotonic()
        self._next()

    # -- CompareJobAPI ------------------------------------------------------------------------
    @property
    def progress(self) -> CompareProgress | None:
        self._poll()
        return self._progress

    @progress.setter
    def progress(self, value: CompareProgress | None) -> None:
        self._progress = value

    @property
    def done(self) -> bool:
        self._poll()
        return self._done

    def cancel(self) -> None:
        self._cancelled = True
        if self._job is not None and not self._job.done:
            self._job.cancel()

    def wait(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.done:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            job = self._job
            if job is not None:
                job.wait(0.05 if left is None else min(0.05, left))
        return True

    # -- moving on ------------------------------------------------------------------------------
    def _poll(self) -> None:
        job = self._job
        if self._done or job is None or not job.done:
            return
        if job.error is not None:
            self.error = job.error
            self._finish()
            return
        _, rows = self._groups[-1]
        self._groups[-1] = (job.result, rows)
        self._release()
        self._offset += len(self._names)
        self._next()

    def _next(self) -> None:
        """Start the next interpreter's comparison (or finish)."""
        while True:
            self._i += 1
            if self._i >= len(self._where):
                self._finish()
                return
            item = self._where[self._i]
            if self._cancelled:  # the rest is not run; an engine not started stays so
                python = dict(item.python) if isinstance(item, Where) else None
                where = python_label(python) if python else "its interpreter"
                self._groups.append((None, [
                    ModelResult(m, "skipped", tasks=0, python=python,
                                reading=f"{m} on {where}: not run (compare cancelled)")
                    for m in self._names]))
                continue
            try:
                w = item if isinstance(item, Where) else item()
            except Exception as e:  # noqa: BLE001 - e.g. its engine did not start
                self.error = e
                self._finish()
                return
            self._current = w
            here = [m for m in self._names if _has(w.models, m)]
            self._groups.append((None, [self._unavailable(w, m) for m in self._names
                                        if not _has(w.models, m)]))
            if not here:
                self._release()
                self._offset += len(self._names)
                continue
            offset = self._offset

            def relay(p: CompareProgress, offset: int = offset) -> None:
                i = self._names.index(p.model) if p.model in self._names else len(self._names) - 1
                p = replace(p, index=offset + i, n_models=self._n,
                            elapsed_s=time.monotonic() - self._t0)
                self._progress = p
                if self._cb is not None:
                    self._cb(p)

            request = replace(self._request, models=here)
            try:
                self._job = w.session.start_compare(request, relay, **self._how)
            except Exception as e:  # noqa: BLE001 - e.g. its engine process is gone
                self.error = e
                self._finish()
            return

    def _release(self) -> None:
        w, self._current = self._current, None
        if w is not None and w.release is not None:
            w.release()

    def _unavailable(self, w: Where, model: str) -> ModelResult:
        info = w.models.get(model)
        why = getattr(info, "reason", "") or "unknown here"
        return ModelResult(model, "error", tasks=0,
                           error=f"not available on Python {python_label(dict(w.python))}: {why}",
                           reading=f"{model} on {python_label(dict(w.python))}: not available "
                                   f"there ({why})",
                           python=dict(w.python))

    def _finish(self) -> None:
        self._release()
        if self.error is None:
            self.result = merge(self._groups, self._names, self._request, self._cancelled)
        self._done = True
        p = self._progress
        phase = "cancelled" if self._cancelled else "done"
        self._progress = CompareProgress(phase, None, self._n, self._n, 0,
                                         p.tasks_total if p is not None else 0, None,
                                         time.monotonic() - self._t0)
        if self._cb is not None:
            self._cb(self._progress)


def _has(models: Mapping[str, Any], name: str) -> bool:
    info = models.get(name)
    return info is None or bool(getattr(info, "available", True))


def merge(groups: Sequence[tuple[CompareResult | None, Sequence[ModelResult]]],
          names: Sequence[str], request: CompareRequest,
          cancelled: bool = False) -> CompareResult:
    """One result from each interpreter's comparison and the rows of the models it did not
    run, interpreter by interpreter in the order they ran, models in the request's order:
    speed-ups stay per interpreter, the winner is the lowest wall of every complete row."""
    results: list[ModelResult] = []
    parts = [part for part, _ in groups if part is not None]
    for part, rows in groups:
        ran = {r.model: r for r in (part.results if part is not None else [])}
        for r in ran.values():  # each says where it ran: its basis and its sentence
            if r.python:
                where = python_label(r.python)
                if r.speedup_basis is not None:
                    r.speedup_basis = f"{r.speedup_basis} on {where}"
                if r.reading.startswith(f"{r.model}:"):
                    r.reading = f"{r.model} on {where}:{r.reading[len(r.model) + 1:]}"
        by_model = {**ran, **{r.model: r for r in rows}}
        results += [by_model[name] for name in names if name in by_model]
    complete = [r for r in results if r.complete and r.wall_s]
    # As within one interpreter: a winner needs two complete runs to be ranked against.
    best = min(complete, key=lambda r: r.wall_s or 0.0) if len(complete) >= 2 else None
    for r in results:
        r.winner = r is best
    notes: list[str] = []
    for part in parts:
        notes += [n for n in part.notes if n not in notes]
    notes.append("speed-ups are per interpreter: against sequential on the same interpreter; "
                 "compare wall times across interpreters")
    first = parts[0] if parts else None
    return CompareResult(
        workload=first.workload if first else str(request.workload),
        tasks=first.tasks if first else 0,
        size_s=first.size_s if first else 0.0,
        params=dict(first.params) if first else dict(request.params or {}),
        models=[r.model for r in results],
        results=results,
        cores=first.cores if first else 0,
        t0_ns=min((p.t0_ns for p in parts), default=0),
        end_ns=max((p.end_ns for p in parts), default=0),
        cancelled=cancelled or any(p.cancelled for p in parts),
        winner=best.model if best is not None else None,
        label=first.label if first else "",
        notes=notes,
    )
