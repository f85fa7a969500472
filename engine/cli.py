"""The headless front end: ``taskscope run | models`` (``compare`` and ``bench`` plug in here).

Bad arguments exit with status 2 and one line on stderr, never a traceback, and nothing starts.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .clock import NS_PER_S
from .models import all_models, model_names
from .samples import core_averages
from .spec import SpecError, make_spec
from .workloads import WORKLOADS

if TYPE_CHECKING:
    from .api import SessionAPI
    from .store import RunRecord


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump
        raise UsageError(message)


def _add_model_options(p: argparse.ArgumentParser) -> None:
    """Options a model takes (its registry entry says which; others refuse them)."""
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="dask: an existing cluster's scheduler (default: start a LocalCluster)")


def _options(args: argparse.Namespace) -> dict[str, Any]:
    return {"scheduler": args.scheduler} if args.scheduler is not None else {}


def _params(items: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--param: expected KEY=VALUE, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="taskscope", description="See Python concurrency as it happens.")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)

    r = sub.add_parser("run", help="run one workload under one model and summarise it")
    r.add_argument("--model", "-m", required=True, help=f"one of: {', '.join(model_names())}")
    r.add_argument("--workload", "-w", default=None,
                   help=f"one of: {', '.join(WORKLOADS)} (or give --function)")
    r.add_argument("--tasks", "-n", default="10", help="number of tasks (default 10)")
    r.add_argument("--size", "-s", default="200ms", help="work per task as a duration (200ms)")
    r.add_argument("--workers", "-k", default=None, help="workers / concurrency limit")
    r.add_argument("--timeout", "-t", default=None, help="per-task timeout, e.g. 2s")
    r.add_argument("--policy", default="collect", help="collect (default) or fail-fast")
    r.add_argument("--param", "-p", action="append", metavar="KEY=VALUE",
                   help="workload parameter, e.g. delay=50ms for http")
    r.add_argument("--json", metavar="PATH|-", help="write the run as JSON ('-' for stdout)")
    r.add_argument("--trace", metavar="PATH",
                   help="write the run as a Chrome/Perfetto trace (JSON; open in ui.perfetto.dev)")
    r.add_argument("--csv", metavar="PREFIX",
                   help="write PREFIX-tasks.csv and PREFIX-samples.csv")
    r.add_argument("--quiet", "-q", action="store_true", help="print only the summary line")
    r.add_argument("--python", metavar="PATH",
                   help="run the engine on this interpreter (prepare it once with: taskscope "
                        "pythons add PATH; list them with: taskscope pythons)")
    _add_model_options(r)
    _add_custom_args(r)  # custom workloads (issue 5)
    r.add_argument("--show-code", action="store_true",
                   help="print the equivalent standalone Python script instead of running")

    c = sub.add_parser("compare", help="run one workload under several models, one at a time")
    c.add_argument("--workload", "-w", default=None,
                   help=f"one of: {', '.join(WORKLOADS)} (or give --function)")
    c.add_argument("--models", "-M", required=True, help="comma-separated, e.g. sequential,threads")
    c.add_argument("--tasks", "-n", default="10", help="number of tasks (default 10)")
    c.add_argument("--size", "-s", default="200ms", help="work per task as a duration (200ms)")
    c.add_argument("--workers", "-k", default=None, help="workers for every model but sequential")
    c.add_argument("--timeout", "-t", default=None, help="per-task timeout, e.g. 2s")
    c.add_argument("--policy", default="collect", help="collect (default) or fail-fast")
    c.add_argument("--param", "-p", action="append", metavar="KEY=VALUE",
                   help="workload parameter, e.g. delay=50ms for http")
    c.add_argument("--settle", default="500ms", help="pause before each model (default 500ms)")
    c.add_argument("--json", metavar="PATH|-", help="write the results as JSON ('-' for stdout)")
    c.add_argument("--csv", metavar="PATH", help="write one CSV row per model")
    c.add_argument("--python", metavar="PATH[,PATH...]",
                   help="run every model on each of these interpreters, one after another "
                        "(a row per model per interpreter; speed-ups against sequential on the "
                        "same interpreter)")
    _add_model_options(c)
    _add_custom_args(c)

    sub.add_parser("models", help="list the concurrency models and whether each is available")
    sub.add_parser("workloads", help="list the workloads")
    from .pythons.command import add_parser as add_pythons_parser

    add_pythons_parser(sub)  # taskscope pythons [add PATH] (issue 14)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command == "run":
            return _run(args)
        if args.command == "compare":
            return _compare(args)
        if args.command == "models":
            return _models()
        if args.command == "pythons":
            from .pythons.command import main as pythons_main

            return pythons_main(args)
        if args.command == "workloads":
            for w in WORKLOADS.values():
                print(f"{w.name:10} {w.description}")
            return 0
        parser.print_help()
        return 0
    except KeyboardInterrupt:  # Ctrl+C before a run's own handler, or a second one
        print("\ntaskscope: interrupted", file=sys.stderr)
        return 130
    except UsageError as e:
        print(f"taskscope: error: {e}", file=sys.stderr)
        return 2
    except SpecError as e:
        print(f"taskscope: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (``taskscope run --json - | head``): not an error of ours.
        # Point stdout at devnull so the interpreter's final flush does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


def _models() -> int:
    for m in all_models():
        mark = "yes" if m.available else "no "
        extra = "" if m.available else f"  ({m.reason}{'; ' + m.fix if m.fix else ''})"
        print(f"{m.name:18} {mark}  {m.description}{extra}")
    return 0


def _engine_pythons(text: str | None) -> list[str]:
    """``--python PATH[,PATH...]``: the executable that runs the engine on each (checked before
    anything starts; one line naming --python for a path that cannot run it)."""
    if text is None:
        return []
    from .pythons.discovery import NotPrepared, engine_python

    paths = [p.strip() for p in text.split(",") if p.strip()]
    if not paths:
        raise UsageError("--python: expected an interpreter's path, e.g. python3.13")
    out: list[str] = []
    for p in paths:
        try:
            exe = engine_python(p)
        except NotPrepared as e:
            raise UsageError(f"--python: {e}") from None
        if exe in out:
            raise UsageError(f"--python: {p} is listed twice")
        out.append(exe)
    return out


def _run(args: argparse.Namespace) -> int:
    # Ctrl+C is a cancel from the start: before the session exists it only marks the run as
    # interrupted (nothing starts then). A KeyboardInterrupt raised inside an import or the
    # session's start-up would leave threads or an import lock behind (seen: a run that never
    # ended, at load 5; a process that hung on exit).
    interrupted = threading.Event()
    started: list[SessionAPI] = []

    def on_sigint(signum: int, frame: Any) -> None:
        if interrupted.is_set():
            raise KeyboardInterrupt
        interrupted.set()
        print("\ntaskscope: cancelling (Ctrl+C again to stop at once)", file=sys.stderr)
        if started:
            started[0].cancel_all(reason="interrupted")

    old = signal.signal(signal.SIGINT, on_sigint)
    try:
        return _run_interruptible(args, interrupted, started)
    finally:
        signal.signal(signal.SIGINT, old)


def _run_interruptible(args: argparse.Namespace, interrupted: threading.Event,
                       started: list[SessionAPI]) -> int:
    """``taskscope run`` under :func:`_run`'s Ctrl+C handler."""
    workload, params = _workload_params(args)
    elsewhere = args.python is not None and not args.show_code
    spec = make_spec(args.model, workload, args.tasks, args.size, args.workers,
                     args.timeout, args.policy, params, _options(args),
                     models=_assumed() if elsewhere else None)
    if args.show_code:
        return _show_code(spec)
    python = _engine_pythons(args.python)[0] if elsewhere else None
    _custom_note(spec)
    _check_exports(args)
    out = _open_json(args.json)
    from .models import model_info
    from .session import Session

    if interrupted.is_set():  # Ctrl+C before anything started: nothing will
        return 130
    if python is not None and python != sys.executable:
        from .remote import RemoteSession

        # The engine on that interpreter: it judges whether it has the model (one line,
        # and nothing runs, if not).
        session: SessionAPI = RemoteSession(10.0, python=python)
        try:
            spec = make_spec(args.model, workload, args.tasks, args.size, args.workers,
                             args.timeout, args.policy, params, _options(args),
                             models=session.models())
        except BaseException:
            session.shutdown()
            raise
    else:
        # The forkserver only for a model that needs worker processes: started in the
        # background, it imports the engine and NumPy on the other core while the first
        # tasks run (a "300ms" numpy task under sequential took 358-378 ms instead of 303
        # when it overlapped them).
        session = Session(warm=model_info(spec.model).isolated)
    started.append(session)
    try:
        run = session.start(spec)
        if interrupted.is_set():  # Ctrl+C while the session started: cancel what it began
            session.cancel_all(reason="interrupted")
        while not run.wait(1.0):  # a signal still runs its handler at once
            if session.gone_reason is not None:
                print(f"taskscope: error: the engine process stopped ({session.gone_reason})",
                      file=sys.stderr)
                return 1
        doc = run_document(session, run.run_id)
    finally:
        session.shutdown()
    if not (args.json == "-" and args.quiet):
        print(format_summary(doc, brief=args.quiet), file=sys.stdout if args.json != "-" else sys.stderr)
    if out is not None:
        _write_json(out, doc)
    if not _write_exports(args, session.store, run.run_id):
        return 1
    return 130 if interrupted.is_set() else 0


def _assumed() -> dict[str, Any]:
    """Every model taken as available: the rest of a spec is checked here, before the engine
    on another interpreter is asked whether it has the model."""
    from .models.registry import assumed_available

    return assumed_available()


def _check_exports(args: argparse.Namespace) -> None:
    """Check --trace/--csv paths before the run starts: a typo fails now, not after the run."""
    from .trace import TraceError, check_output_path, csv_paths

    try:
        if args.trace is not None:
            check_output_path(args.trace, "--trace")
        if args.csv is not None:
            if not args.csv.strip() or args.csv.endswith(("/", os.sep)) or os.path.isdir(args.csv):
                # csv_paths would make '-tasks.csv' in the current or that directory
                raise UsageError(f"--csv: expected a file prefix such as out/run1, got {args.csv!r}")
            for p in csv_paths(args.csv):
                check_output_path(p, "--csv")
    except TraceError as e:
        raise UsageError(str(e)) from None


def _write_exports(args: argparse.Namespace, store: Any, run_id: int) -> bool:
    """Write --trace/--csv after the run; False (and one line on stderr) if one failed."""
    from .trace import TraceError, export_csv, export_run

    try:
        if args.trace is not None:
            export_run(store, run_id, args.trace)
        if args.csv is not None:
            export_csv(store, args.csv, [run_id])
    except TraceError as e:
        print(f"taskscope: error: {e}", file=sys.stderr)
        return False
    return True


def _open_json(path: str | None) -> Any:
    """Open the --json target before the run starts, so a bad path fails before anything runs."""
    if path is None:
        return None
    if path == "-":
        return sys.stdout
    try:
        return open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed by _write_json
    except OSError as e:
        raise UsageError(f"--json: cannot write {path}: {e.strerror}") from None


def _write_json(out: Any, doc: dict) -> None:
    json.dump(doc, out, indent=1, default=_json_default)
    out.write("\n")
    if out is not sys.stdout:
        out.close()


def _json_default(o: Any) -> Any:
    if hasattr(o, "as_dict"):
        return o.as_dict()
    if isinstance(o, float) and not math.isfinite(o):
        return None
    return str(o)


def run_document(session: SessionAPI, run_id: int) -> dict[str, Any]:
    """The JSON-able account of one run: spec, wall time, counts and every task."""
    rec = session.store.run(run_id)
    tasks = session.store.tasks(run_id)
    spec = rec.spec
    info = dict(rec.info)
    return {
        # which interpreter ran it, as the engine that ran it said (issue 14)
        "python": info.pop("python", None),
        "model": spec.model,
        "workload": spec.workload,
        "wall_s": rec.wall_s,
        "spec": spec.as_dict(),
        "counts": {k: v for k, v in rec.counts.items() if v and k not in ("queued", "running")},
        # what the model reported about the run: when its workers were ready, its cluster
        "info": info,
        "tasks": [t.as_dict() for t in tasks],
        # sampler (issue 3): cores_avg (per-core % over the run), cpu_total_avg, samples
        **run_samples(session, rec),
    }


def format_summary(doc: dict[str, Any], brief: bool = False) -> str:
    spec = doc["spec"]
    counts = doc["counts"]
    if doc["workload"] == "custom":  # a user's function: its arguments, not a size, say how much
        what = f"{spec['params'].get('function', 'custom')} · {spec['tasks']} tasks"
    else:
        what = f"{doc['workload']} · {spec['tasks']} tasks × {_fmt_s(spec['size_s'])}"
    head = f"{doc['model']} · {what} · {spec['workers']} workers"
    tail = " · ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(counts.items()))
    wall = doc["wall_s"]
    line2 = f"wall {wall:.3f} s · {tail}" if wall is not None else f"not finished · {tail}"
    startup = (doc.get("info") or {}).get("startup_s")
    if isinstance(startup, int | float) and wall is not None:
        line2 += f" · of which start-up {startup:.3f} s (the workers', before the tasks)"
    py = doc.get("python")
    if py and not brief:
        from .build import python_label

        head += f" · Python {python_label(py)}"
    if brief:
        return f"{head} — {line2}"
    lines = [head, line2]
    workers: dict[tuple[int, int], list[dict]] = {}
    for t in doc["tasks"]:
        if t["pid"]:
            workers.setdefault((t["pid"], t["thread_id"]), []).append(t)
    if workers:
        lines.append(f"{len(workers)} distinct workers (pid/thread):")
        for (pid, tid), ts in sorted(workers.items())[:12]:
            busy = sum((t["end_ns"] - t["start_ns"]) for t in ts if t["start_ns"] and t["end_ns"])
            lines.append(f"  pid {pid:>7} thread {tid:>7}  {len(ts):>5} tasks  busy {busy / 1e9:.3f} s"
                         f"  {ts[0]['thread_name']}")
        if len(workers) > 12:
            lines.append(f"  … and {len(workers) - 12} more")
    errors = [t for t in doc["tasks"] if t["error"]]
    for t in errors[:5]:
        e = t["error"]
        lines.append(f"  task {t['index']}: {e.get('type', 'error')}: {e.get('message', '')}")
    if len(errors) > 5:
        lines.append(f"  … and {len(errors) - 5} more failures")
    return "\n".join(lines)


# -- custom workloads, show code, compare (issue 5) ---------------------------------------------
def _add_custom_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--function", "-f", metavar="REF",
                   help="your function: package.module:function or path/to/file.py:function "
                        "(implies --workload custom)")
    p.add_argument("--arg", "-a", action="append", metavar="VALUE",
                   help="a positional argument for --function (repeatable); parsed as a JSON "
                        "literal (3, 0.5, \"x\", [1,2], null), else taken as a string")
    p.add_argument("--args", metavar="JSON", help="all positional arguments as a JSON list")


def _workload_params(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """The workload and its params from -w/--param, or from --function/--arg/--args."""
    params: dict[str, Any] = dict(_params(args.param))
    if args.function is None:
        if args.arg or args.args is not None:
            raise UsageError("--arg/--args need --function")
        if not args.workload:
            raise UsageError("give --workload (or --function for your own function)")
        return args.workload, params
    if args.workload not in (None, "custom"):
        raise UsageError(f"--function runs your function; it cannot be combined with "
                         f"--workload {args.workload}")
    if args.arg and args.args is not None:
        raise UsageError("give either --arg (repeatable) or --args JSON, not both")
    from .custom import parse_cli_arg

    params["function"] = args.function
    if args.args is not None:
        params["args"] = args.args  # a JSON list, checked by the spec
    elif args.arg:
        params["args"] = [parse_cli_arg(a) for a in args.arg]
    return "custom", params


def _custom_note(spec: Any) -> None:
    """Say up front when a custom function cannot be interrupted mid-task."""
    if spec.workload == "custom" and not spec.params.get("takes_ctx"):
        from .custom import NO_CTX_NOTE

        print(f"taskscope: note: {NO_CTX_NOTE}", file=sys.stderr)


def _show_code(spec: Any) -> int:
    from .scriptgen import ScriptError, generate

    try:
        print(generate(spec), end="")
    except ScriptError as e:
        raise UsageError(f"--show-code: {e}") from None
    return 0


def _compare(args: argparse.Namespace) -> int:
    """``taskscope compare``: validate every model's spec and the outputs, then run them one
    after another and print the table (and write --json/--csv)."""
    import csv

    from . import compare as cmp
    from .build import python_label
    from .parse import parse_duration

    workload, params = _workload_params(args)
    request = cmp.CompareRequest(workload, args.models, args.tasks, args.size, args.workers,
                                 params, args.timeout, args.policy, _options(args))
    # Across interpreters, each one's engine says which models it has (a row says so where
    # one is missing); everything else is checked here, before anything starts.
    request.plan(_assumed() if args.python is not None else None)
    pythons = _engine_pythons(args.python)
    settle = parse_duration(args.settle, "settle")
    if settle > 60:
        raise UsageError("--settle: at most 60s")
    if args.csv == "-" and args.json == "-":
        raise UsageError("--json - and --csv - cannot both go to stdout")
    if args.csv not in (None, "-"):
        from .trace import TraceError, check_output_path

        try:  # before --json is opened: a bad --csv must not leave an empty JSON file behind
            check_output_path(args.csv, "--csv")
        except TraceError as e:
            raise UsageError(str(e)) from None
    out = _open_json(args.json)
    csv_out = None
    if args.csv is not None:
        if args.csv == "-":
            csv_out = sys.stdout
        else:
            try:
                csv_out = open(args.csv, "w", encoding="utf-8", newline="")  # noqa: SIM115
            except OSError as e:
                raise UsageError(f"--csv: cannot write {args.csv}: {e.strerror}") from None
    from .session import Session

    session = Session() if not pythons else None
    cancel = threading.Event()
    to_stdout = args.json != "-" and args.csv != "-"
    log = sys.stdout if to_stdout else sys.stderr

    def on_sigint(signum: int, frame: Any) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()
        print("\ntaskscope: cancelling the compare (Ctrl+C again to stop at once)",
              file=sys.stderr)

    def progress(p: Any) -> None:
        if p.phase == "model_done" and p.result is not None:
            r = p.result
            wall = "-" if r.wall_s is None else f"{r.wall_s:.3f} s"
            on = f" on {python_label(r.python)}" if pythons and r.python else ""
            print(f"  [{p.index + 1}/{p.n_models}] {p.model}{on}: {wall} ({r.status})",
                  file=sys.stderr)

    old = signal.signal(signal.SIGINT, on_sigint)
    try:
        if workload == "custom":
            baseline = next(m.name for m in all_models() if m.baseline)
            _custom_note(make_spec(baseline, workload, args.tasks, args.size, None,
                                   args.timeout, args.policy, params))
        if session is not None:
            res = cmp.compare(session, request, progress, cancel, settle_s=settle)
        else:
            res = _compare_across(pythons, request, progress, cancel, settle)
    finally:
        signal.signal(signal.SIGINT, old)
        if session is not None:
            session.shutdown()
    if res is None:
        return 1
    print(cmp.format_table(res), file=log)
    if out is not None:
        _write_json(out, res.as_dict())
    if csv_out is not None:
        rows = cmp.rows(res)
        w = csv.DictWriter(csv_out, fieldnames=list(rows[0]) if rows else ["model"])
        w.writeheader()
        w.writerows(rows)
        if csv_out is not sys.stdout:
            csv_out.close()
    return 130 if res.cancelled else 0


def _compare_across(pythons: list[str], request: Any, progress: Any, cancel: threading.Event,
                    settle: float) -> Any:
    """``compare --python A,B``: every model on each interpreter, one engine at a time (each
    started when its turn comes and shut down after, so that no idle engine shares the
    machine with the next one's models). None (after one line on stderr) if one failed."""
    from . import compare as cmp

    def engine_on(exe: str) -> Any:
        def start() -> cmp.Where:
            if exe == sys.executable:
                from .build import python_block
                from .models import all_models
                from .session import Session

                local = Session()
                return cmp.Where(local, python_block(), {m.name: m for m in all_models()},
                                 release=local.shutdown)
            from .remote import RemoteSession

            remote = RemoteSession(10.0, python=exe)
            try:
                return cmp.Where(remote, remote.python, remote.models(), release=remote.shutdown)
            except BaseException:
                remote.shutdown()
                raise
        return start

    job = cmp.CompareAcross([engine_on(exe) for exe in pythons], request, progress,
                            {"settle_s": settle})
    try:
        while not job.wait(0.2):
            if cancel.is_set():
                job.cancel()
    except BaseException:  # a second Ctrl+C: stop what runs, shut its engine down
        job.cancel()
        job.wait(30.0)
        raise
    if job.error is not None:
        print(f"taskscope: error: {type(job.error).__name__}: {job.error}", file=sys.stderr)
        return None
    return job.result


def _fmt_s(s: float) -> str:
    if s >= 1:
        return f"{s:g}s"
    if s >= 1e-3:
        return f"{s * 1e3:g}ms"
    return f"{s * 1e6:g}us"



def run_samples(session: SessionAPI, rec: RunRecord) -> dict[str, Any]:
    """The sampler's part of ``taskscope run --json``: per-core averages over the run and the
    samples that overlap it (``Sample.as_dict()`` each).

    If the run ended after the last sample, one more sample is taken at once so that the tail of
    the run (and all of a run shorter than one tick) is covered.
    """
    sampler = session.sampler
    end = rec.end_ns
    if sampler is not None and sampler.running:
        latest = sampler.latest
        if end is None or latest is None or latest.t_ns < end:
            sampler.sample_now()
    samples, _ = session.store.read_samples(0)
    start = rec.start_ns
    hit = [s for s in samples
           if s.t_ns > start and (end is None or s.t_ns - int(s.interval_s * NS_PER_S) < end)]
    avg = core_averages(hit, start, end)
    return {
        "cores_avg": avg,
        "cpu_total_avg": sum(avg) / len(avg) if avg else None,
        "samples": [s.as_dict() for s in hit],
    }


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
