"""``taskscope pythons`` (the interpreters here, as a table or JSON) and ``taskscope pythons add
PATH`` (prepare one, with progress).

Exit status of ``add``: 0 ready; 2 the path is not a usable Python (not one, or too old);
1 it could not be prepared (no registry reachable, a dependency with no build for it, ...).
Every failure is one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .discovery import Interpreter, discover


def add_parser(sub: Any) -> None:
    """Add ``pythons`` (and ``pythons add``) to the CLI's subparsers."""
    p = sub.add_parser("pythons", help="list the interpreters that can run the engine; "
                                       "'pythons add PATH' prepares one")
    p.add_argument("--json", action="store_true", help="the list as JSON on stdout")
    psub = p.add_subparsers(dest="pythons_command", parser_class=type(p))
    a = psub.add_parser("add", help="prepare an interpreter to run the engine (an environment "
                                    "in TaskScope's cache)")
    a.add_argument("path", help="the interpreter, e.g. ~/.pyenv/versions/3.13.0/bin/python3.13")
    a.add_argument("--extra", action="append", default=[], metavar="NAME",
                   help="an optional extra to install too (dask)")
    a.add_argument("--with", dest="packages", action="append", default=[], metavar="REQ",
                   help="another package to install there (what your own functions import)")
    a.add_argument("--quiet", "-q", action="store_true", help="print only the last line")


def main(args: argparse.Namespace) -> int:
    if getattr(args, "pythons_command", None) == "add":
        return _add(args)
    found = discover()
    if args.json:
        json.dump([i.as_dict() for i in found], sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print(format_table(found))
    return 0


def status(i: Interpreter) -> str:
    if not i.ready:
        return f"{i.reason}; {i.fix}"
    extra = []
    if i.subinterpreters:
        extra.append(f"sub-interpreters ({i.subinterpreters})")
    if i.free_threaded_model:
        extra.append("free-threaded threads")
    if i.engine_python != i.path:
        extra.append("prepared")
    return "ready" + (f" ({', '.join(extra)})" if extra else "")


def format_table(found: list[Interpreter]) -> str:
    rows = [("PATH", "VERSION", "BUILD", "CAN RUN THE ENGINE")]
    rows += [(i.path + (" *" if i.source == "current" else ""), i.version or "?", i.build,
              status(i)) for i in found]
    w = [max(len(r[k]) for r in rows) for k in range(3)]
    lines = [f"{r[0]:{w[0]}}  {r[1]:{w[1]}}  {r[2]:{w[2]}}  {r[3]}" for r in rows]
    notes = [f"  {i.path}: {n}" for i in found for n in i.notes]
    return "\n".join(lines + ["(* the interpreter TaskScope runs on)"]
                     + (["notes:", *notes] if notes else []))


def _add(args: argparse.Namespace) -> int:
    from .prepare import PrepareError, prepare

    def say(line: str) -> None:
        if not args.quiet:
            print(line, flush=True)

    try:
        done = prepare(args.path, say, extras=args.extra, packages=args.packages)
    except PrepareError as e:
        print(f"taskscope: error: {e}", file=sys.stderr)
        return 2 if e.bad_input else 1
    except KeyboardInterrupt:
        print("taskscope: interrupted", file=sys.stderr)
        return 130
    if args.quiet:
        print(f"ready: {done.python}")
    return 0
