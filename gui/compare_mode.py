"""Compare mode's controller: runs several models ONE AFTER ANOTHER through
:func:`engine.compare.start_compare` and feeds the window and the compare view from the frame tick.

Why not one run per model at once: 4 CPU threads and 4 worker processes started together
compete for the same cores and skew each other's figures, which breaks the promise that a
comparison tells the truth. The engine's compare runs one model at a time in its own thread,
lets the machine settle in between and measures each model's window; this class only

* starts it (validation errors go to the form, never a traceback),
* adopts each model's run as it appears in the store, so the usual runs table, task table and
  live timeline show it exactly like a run started by hand,
* polls the job's progress on the frame tick (the comparison runs in the engine process; its
  progress arrives with the engine's updates, folded in by the frame's pump, and
  ``on_progress`` only appends finished models to a list; nothing signals the GUI per event),
* cancels the whole comparison (its button, Esc, closing the window).

Across interpreters (several ticked in the Interpreter box), every model runs on each, one
engine after another (``engine.compare.CompareAcross``): the view then gets one row, band and
bar per model *per interpreter*, named ``"threads · 3.13.0"`` (:func:`row_key`); the engine's
results are copied under those names for it, and keep their own.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from engine import CompareJobAPI, RunRecord, RunSpec, SessionAPI, SpecError, TaskRecord
from engine.clock import now_ns
from engine.compare import CompareProgress, CompareRequest, CompareResult, ModelResult
from engine.remote import RemoteError

from .compare_view import IDLE_LIVE, IDLE_REPLAY, CompareView
from .controls import Controls
from .hosts import CompareHost


def row_key(model: str, python: dict[str, Any] | None) -> str:
    """A comparison row's name across interpreters: ``"threads · 3.13.0"`` (``t`` after a
    free-threaded build's version)."""
    if not python:
        return model
    return f"{model} · {python.get('version', '?')}{'t' if python.get('free_threaded') else ''}"


class CompareMode:
    """One comparison at a time, owned by the window (``host``): it runs through ``session``
    (None in a replay: nothing to start) and reports at the run ``form``."""

    def __init__(self, host: CompareHost, session: SessionAPI | None, form: Controls) -> None:
        self.host = host
        self.session = session
        self.form = form
        self.view = CompareView(host.describe_task,
                                IDLE_LIVE if session is not None else IDLE_REPLAY)
        self.view.records_of = host.run_tasks
        self.view.cancelRequested.connect(self.cancel)
        self.job: CompareJobAPI | None = None
        self.models: list[str] = []
        self.started_ns = 0
        self.runs: set[int] = set()
        self._done_models: list[ModelResult] = []  # appended on the compare thread
        self._shown_done = 0
        #: Across interpreters: their labels (``3.13.0``), in order; None for one.
        self.across: list[str] | None = None
        #: Passed to start_compare; tests shorten the settle pause.
        self.options: dict[str, Any] = {}

    @property
    def active(self) -> bool:
        return self.job is not None and not self.job.done

    # -- commands -----------------------------------------------------------------------------------
    def start(self, specs: list[RunSpec], on_gui_loop: bool = False,
              across: list[str] | None = None) -> bool:
        """Start comparing the specs' models (one workload); False if refused at the form.
        ``across``: the labels of the interpreters to run each model on (the session runs
        them there, see ``engine.remote.Engines.choose``), None for this one only."""
        form = self.form
        if on_gui_loop:
            form.show_error(SpecError(
                "loop", "runs one model alone: a comparison runs asyncio on the engine's loop, "
                "so untick the other models or this option"))
            return False
        if self.session is None:
            return False
        s0 = specs[0]
        # The form's worker count (a one-worker model's spec carries none of its own).
        workers = max((s.workers for s in specs if s.workers is not None), default=None)
        self._done_models = []
        self._shown_done = 0
        done = self._done_models

        def on_progress(p: CompareProgress) -> None:  # compare thread: one list append
            if p.phase == "model_done" and p.result is not None:
                done.append(p.result)

        self.started_ns = now_ns()
        try:
            # The models' own options (a Dask scheduler): each model takes those it names.
            options = {k: v for s in specs for k, v in s.options.items()}
            request = CompareRequest(s0.workload, [s.model for s in specs], s0.tasks,
                                     s0.size_s, workers, dict(s0.params), s0.timeout_s,
                                     s0.policy, options or None)
            job = self.session.start_compare(request, on_progress, **self.options)
        except SpecError as e:
            form.show_error(e)
            return False
        except RuntimeError as e:  # the engine process is gone
            self.host.status_message(f"Could not start the comparison: {e}", 8000)
            return False
        self.job = job
        self.models = [s.model for s in specs]
        self.across = across
        self.runs = set()
        keys = self.models if across is None else [f"{m} · {p}" for p in across
                                                   for m in self.models]
        self.view.begin(keys, s0.label)
        where = "" if across is None else f" on Python {', '.join(across)}"
        form.say(f"Comparing {', '.join(self.models)}{where}: one after another, never at "
                 "once. Esc or Cancel compare stops it.")
        self.host.show_compare_tab()
        return True

    def cancel(self) -> bool:
        """Cancel the whole comparison (the running model and the ones after it)."""
        if not self.active:
            return False
        assert self.job is not None
        self.job.cancel()
        self.view.show_cancelling()
        return True

    # -- per frame -----------------------------------------------------------------------------------
    def adopt(self, rec: RunRecord) -> bool:
        """True if this new run in the store is one of the comparison's models (and register it
        with the window, and give it a band in the compare view)."""
        if self.job is None or rec.start_ns < self.started_ns:
            return False
        spec = rec.spec
        if spec is None or spec.model not in self.models or rec.run_id in self.runs:
            return False
        self.runs.add(rec.run_id)
        self.host.register_run(rec.run_id, spec.model)
        self.view.adopt_run(rec.run_id, self._key(spec.model, rec.info.get("python")),
                            rec.start_ns)
        return True

    def _key(self, model: str, python: dict[str, Any] | None) -> str:
        return model if self.across is None else row_key(model, python)

    def _keyed(self, r: ModelResult) -> ModelResult:
        """The engine's row under its name in the view (itself, for one interpreter)."""
        return r if self.across is None else replace(r, model=self._key(r.model, r.python))

    def tasks_changed(self, recs: list[TaskRecord]) -> None:
        if self.runs:
            self.view.update_tasks(recs)

    def tick(self) -> None:
        job = self.job
        if job is None:
            return
        self.view.set_progress(job.progress)
        while self._shown_done < len(self._done_models):
            self.view.model_done(self._keyed(self._done_models[self._shown_done]))
            self._shown_done += 1
        if job.done and self.view.running:
            self.finish()
        self.view.tick()

    def finish(self) -> None:
        job = self.job
        assert job is not None
        # The last events of the last run: fold them in before the final picture.
        for rid in self.runs:
            self.view.update_tasks(self.host.run_tasks(rid))
        res = job.result
        if res is not None and self.across is not None:
            rows = [self._keyed(r) for r in res.results]
            best = next((r.model for r in rows if r.winner), None)
            res = replace(res, results=rows, models=[r.model for r in rows], winner=best)
        err = "" if job.error is None else (
            str(job.error) if isinstance(job.error, RemoteError)  # already "Type: message"
            else f"{type(job.error).__name__}: {job.error}")
        self.view.set_result(res, err)
        if res is None:
            self.form.say(f"The comparison failed: {err}")
        elif res.cancelled:
            self.form.say("Comparison cancelled.")
        else:
            self.form.say(f"Comparison done: winner {res.winner or 'none'}. See the Compare tab.")

    def show_saved(self, res: CompareResult) -> None:
        """Show a comparison that ended before (a replay's): its runs' bands, table, charts
        and readings, from the trace."""
        recs: list[TaskRecord] = []
        for r in res.results:
            if r.run_id is not None:
                recs.extend(self.host.run_tasks(r.run_id))
        self.models = list(res.models)
        self.view.show_saved(res, recs)

    def shutdown(self, timeout: float = 0.0) -> None:
        """Stop the comparison (closing the window); wait up to ``timeout`` for its thread."""
        if self.job is not None:
            self.job.cancel()
            if timeout:
                self.job.wait(timeout)
