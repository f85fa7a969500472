"""Custom workloads: the user's own function, run under every model.

The user names a function by reference, never by object:

* ``package.module:function`` imports the module the ordinary way (``sys.path``);
* ``path/to/file.py:function`` imports that file by path, under a *stable* module name derived
  from its absolute path (``taskscope_user_<hash>_<stem>``), so every process that loads it gets
  the same module and the same function.

Why by reference: worker processes resolve the function themselves from the reference string
instead of receiving a pickled function object. Pickle only ever stores a function as "module +
qualified name" anyway, so a lambda, a nested function or anything defined in ``__main__``
would fail deep inside the pool with an obscure error. Resolving by name in the worker makes
the rules plain (the name must be reachable as a module attribute) and lets :func:`load` check
them before anything runs.

Arguments: ``params["args"]`` is a list of positional arguments and ``params["kwargs"]`` an
optional mapping of keyword arguments. From the CLI each ``--arg VALUE`` is parsed as a JSON
literal (``3``, ``0.5``, ``"x"``, ``[1, 2]``, ``null``) and, if that fails, kept as a plain
string; ``--args '[1, "a"]'`` gives the whole list as JSON (see :func:`parse_cli_arg`).

How each kind of function runs under each model:

=====================  ==============================  =====================================
model                  ``async def``                   plain ``def``
=====================  ==============================  =====================================
asyncio                a coroutine on the engine loop  ``asyncio.to_thread`` (offloaded)
sequential / threads   ``asyncio.run`` in the worker   called on the worker thread
processes              ``asyncio.run`` in the worker   called in the worker process
asyncio-processes      ``asyncio.run`` in the worker   called in the worker process
interpreters           ``asyncio.run`` in its          called in its sub-interpreter
                       sub-interpreter
free-threaded          ``asyncio.run`` in the worker   called on the worker thread
=====================  ==============================  =====================================

Under ``interpreters`` the function's module is imported again inside each sub-interpreter, so
it must import there: checked in a fresh sub-interpreter before the run starts, and refused in
one line naming ``params.function`` if it does not (a module that imports NumPy or psutil does
not: their C extensions refuse sub-interpreters). Its arguments and result cross by pickle.

Cancellation: if the function has a parameter named ``ctx`` it receives the task's
:class:`~engine.context.TaskContext` and can call ``ctx.progress(fraction)``, ``ctx.check()``,
``ctx.sleep(s)`` / ``await ctx.asleep(s)``; it then stops promptly on cancel and timeout.
Without ``ctx`` the engine cannot interrupt it: cancellation takes effect only *between*
tasks (queued tasks are cancelled at once, a running one runs to its end; an ``async def``
under asyncio is the exception, since ``Task.cancel()`` interrupts it at its next ``await``).
Process tasks can still be force-cancelled (their worker is killed). :data:`NO_CTX_NOTE` is the
sentence front ends show for this.

The custom workload ignores ``size``: the function decides how much work a task is.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import importlib.util
import inspect
import json
import os
import pickle
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import SpecError

FIELD = "params.function"

#: What front ends say about a function without a ``ctx`` parameter.
NO_CTX_NOTE = (
    "this function takes no ctx parameter, so a running task cannot be interrupted: "
    "cancel takes effect between tasks (process tasks can be force-killed)"
)


@dataclass(frozen=True)
class FunctionInfo:
    """What :func:`load` found: enough for a front end to describe the function."""

    ref: str  # the canonical reference (a file path is made absolute)
    module: str  # the module name it lives in (stable for files)
    name: str
    is_async: bool
    takes_ctx: bool
    #: A directory a worker must have on ``sys.path`` to import ``module`` (None: importable
    #: without help, or a file import).
    root: str | None
    file: str | None

    @property
    def cancel_note(self) -> str:
        return "" if self.takes_ctx else NO_CTX_NOTE


# -- references --------------------------------------------------------------------------
#: The longest :func:`call_text` (the arguments are cut with an ellipsis beyond it).
CALL_TEXT_MAX = 60


def call_text(params: Mapping[str, Any]) -> str:
    """What a custom run calls, as a reader would write it: ``work.py:work(30, "x")``
    (a file's directory left out; the arguments as JSON, keywords as ``name=value``)."""
    ref = str(params.get("function") or "custom")
    target, sep, name = ref.rpartition(":")
    if sep and _is_path(target):
        ref = f"{os.path.basename(target)}:{name}"
    args = [_arg_text(a) for a in params.get("args") or []]
    kwargs = params.get("kwargs") or {}
    if isinstance(kwargs, Mapping):
        args += [f"{k}={_arg_text(v)}" for k, v in kwargs.items()]
    inner = ", ".join(args)
    room = max(8, CALL_TEXT_MAX - len(ref) - 2)
    if len(inner) > room:
        inner = inner[: room - 1] + "…"
    return f"{ref}({inner})"


def _arg_text(v: Any) -> str:
    try:
        return json.dumps(v, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(v)


def split_ref(ref: Any) -> tuple[str, str]:
    """``"a.b:fn"`` or ``"dir/f.py:fn"`` -> ``(target, function)``; SpecError if malformed."""
    if not isinstance(ref, str) or not ref.strip():
        raise SpecError(FIELD, "is required: give module:function or path/to/file.py:function")
    ref = ref.strip()
    target, sep, name = ref.rpartition(":")
    if not sep or not target or not name:
        raise SpecError(
            FIELD, f"expected module:function or path/to/file.py:function, got {ref!r}"
        )
    if not all(part.isidentifier() for part in name.split(".")):
        raise SpecError(FIELD, f"{name!r} is not a function name")
    return target, name


def _is_path(target: str) -> bool:
    return target.endswith(".py") or os.sep in target or "/" in target or target.startswith(".")


def stable_module_name(path: str) -> str:
    """The module name a file is imported under: the same in every process, for one path."""
    digest = hashlib.sha1(path.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    stem = "".join(c if c.isalnum() else "_" for c in os.path.splitext(os.path.basename(path))[0])
    return f"taskscope_user_{digest}_{stem}"


_import_lock = threading.RLock()  # reentrant: _function holds it while load imports


def _import_file(path: str) -> Any:
    name = stable_module_name(path)
    mod = sys.modules.get(name)
    if mod is not None:
        return mod
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:  # pragma: no cover - .py paths always get one
        raise SpecError(FIELD, f"cannot import {path}")
    mod = importlib.util.module_from_spec(spec)
    # Registered before it runs, as a normal import does: dataclasses, pickle and recursive
    # imports all look the module up in sys.modules by its name.
    sys.modules[name] = mod
    folder = os.path.dirname(path)
    if folder not in sys.path:
        sys.path.append(folder)  # lets the file import its sibling modules; appended, not
        # prepended, so a user's file named like a stdlib module cannot shadow it
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return mod


def _one_line(e: BaseException) -> str:
    msg = str(e).strip().splitlines()
    text = msg[0] if msg else ""
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _module_root(mod: Any, module: str) -> str | None:
    """The sys.path entry ``module`` was imported from (so a worker can add it), if any."""
    f = getattr(mod, "__file__", None)
    if not f:
        return None
    d = os.path.dirname(os.path.abspath(f))
    if os.path.basename(f) == "__init__.py":
        d = os.path.dirname(d)
    for _ in range(module.count(".")):
        d = os.path.dirname(d)
    return d


def _resolve(ref: str, root: str | None = None) -> tuple[Callable[..., Any], FunctionInfo]:
    """Import and look up the function; SpecError with a one-line message if anything fails."""
    target, name = split_ref(ref)
    file: str | None = None
    if _is_path(target):
        path = os.path.abspath(os.path.expanduser(target))
        if not path.endswith(".py"):
            raise SpecError(FIELD, f"{target} is not a .py file")
        if not os.path.exists(path):
            raise SpecError(FIELD, f"no such file: {target}")
        if not os.path.isfile(path):
            raise SpecError(FIELD, f"{target} is not a file")
        file = path
        try:
            with _import_lock:
                mod = _import_file(path)
        except SpecError:
            raise
        except BaseException as e:  # noqa: BLE001 - user code: any failure is an import error
            raise SpecError(FIELD, f"importing {target} failed: {_one_line(e)}") from None
        module = mod.__name__
        ref = f"{path}:{name}"
    else:
        module = target
        if module == "__main__":
            raise SpecError(
                FIELD,
                "functions in __main__ cannot be resolved in a worker process or a "
                "sub-interpreter; "
                "put it in a module or a .py file and name that",
            )
        if not all(part.isidentifier() for part in module.split(".")):
            raise SpecError(FIELD, f"{module!r} is neither a module name nor a .py path")
        if root and root not in sys.path:
            sys.path.append(root)
        if "" not in sys.path and os.getcwd() not in sys.path:
            sys.path.append(os.getcwd())  # `taskscope run --function mymod:fn` from its folder
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name and (module == e.name or module.startswith(e.name + ".")):
                raise SpecError(FIELD, f"no such module: {module}") from None
            raise SpecError(FIELD, f"importing {module} failed: {_one_line(e)}") from None
        except BaseException as e:  # noqa: BLE001
            raise SpecError(FIELD, f"importing {module} failed: {_one_line(e)}") from None
        root = root or _module_root(mod, module)
    obj: Any = mod
    for part in name.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise SpecError(FIELD, f"no function {name!r} in {target}") from None
    if not callable(obj):
        raise SpecError(FIELD, f"{name} in {target} is not callable (it is a {type(obj).__name__})")
    info = FunctionInfo(
        ref=ref,
        module=module,
        name=name,
        is_async=_is_async(obj),
        takes_ctx=_takes_ctx(obj),
        root=None if file else root,
        file=file,
    )
    return obj, info


def _is_async(fn: Any) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - an async callable object
    )


def _takes_ctx(fn: Any) -> bool:
    try:
        return "ctx" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def load(ref: str, root: str | None = None) -> tuple[Callable[..., Any], FunctionInfo]:
    """Resolve a reference to ``(function, info)``, or raise :class:`SpecError` on
    ``params.function`` with a one-line reason: no such file, not a .py file, import error,
    no such module, no such function, not callable."""
    return _resolve(ref, root)


# -- parameters ------------------------------------------------------------------------------
def parse_cli_arg(text: str) -> Any:
    """One ``--arg`` value: a JSON literal if it parses as one, else the string itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def validate_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Check the custom workload's params (``function``, ``args``, ``kwargs``) and load the
    function (this is the only place user code is imported, and only when it is named).

    Returns canonical params: the reference made absolute for files, the root a worker needs,
    and the function's traits (``is_async``, ``takes_ctx``) for front ends.
    """
    allowed = {"function", "args", "kwargs", "root", "is_async", "takes_ctx"}
    for key in params:
        if key not in allowed:
            raise SpecError(
                f"params.{key}", "unknown parameter for custom (it takes: function, args, kwargs)"
            )
    args = params.get("args", [])
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except ValueError as e:
            raise SpecError("params.args", f"expected a JSON list: {e}") from None
    if isinstance(args, tuple):
        args = list(args)
    if not isinstance(args, list):
        raise SpecError("params.args", f"expected a list of arguments, got {type(args).__name__}")
    kwargs = params.get("kwargs", {}) or {}
    if isinstance(kwargs, str):
        try:
            kwargs = json.loads(kwargs)
        except ValueError as e:
            raise SpecError("params.kwargs", f"expected a JSON object: {e}") from None
    if not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
        raise SpecError("params.kwargs", "expected a mapping of names to values")
    if "ctx" in kwargs:
        raise SpecError("params.kwargs", "ctx is passed by the engine; do not give it")
    root = params.get("root")
    fn, info = load(params.get("function"), root if isinstance(root, str) else None)
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        sig = None
    if sig is not None:
        extra = {"ctx": None} if info.takes_ctx else {}
        try:
            sig.bind(*args, **kwargs, **extra)
        except TypeError as e:
            raise SpecError("params.args", f"do not fit {info.name}{sig}: {e}") from None
    return {
        "function": info.ref,
        "args": args,
        "kwargs": dict(kwargs),
        "root": info.root,
        "is_async": info.is_async,
        "takes_ctx": info.takes_ctx,
    }


def check_for_processes(params: Mapping[str, Any]) -> None:
    """Extra checks when the model runs tasks in worker processes: the arguments must pickle
    (they cross into the worker), and the reference must be one a worker can import."""
    for key in ("args", "kwargs"):
        try:
            pickle.dumps(params.get(key), pickle.HIGHEST_PROTOCOL)
        except Exception as e:  # noqa: BLE001
            raise SpecError(
                f"params.{key}", f"cannot be pickled for a worker process: {_one_line(e)}"
            ) from None
    _, info = load(params["function"], params.get("root"))
    mod = sys.modules.get(info.module)
    if (info.file is None and mod is not None and info.module not in sys.builtin_module_names
            and getattr(mod, "__spec__", None) is None):
        raise SpecError(
            FIELD, f"{info.module} was built at run time, so a worker process cannot import it"
        )


# -- running ------------------------------------------------------------------------------------
_cache: dict[tuple[str, str | None], tuple[Callable[..., Any], FunctionInfo]] = {}
_file_mtimes: dict[str, float] = {}


def refresh(ref: str) -> bool:
    """Forget a ``path/to/file.py:function`` module (and its cached functions) if the file
    changed since this process last looked, so the next run imports the edited code. Returns
    True if something was forgotten. Module references (``pkg.mod:fn``) are left alone: an
    installed package does not change under a running process."""
    target, _, _name = str(ref).strip().rpartition(":")
    if not target or not (target.endswith(".py") or "/" in target or os.sep in target):
        return False
    path = os.path.abspath(os.path.expanduser(target))
    try:
        mt = os.path.getmtime(path)
    except OSError:
        return False
    seen = _file_mtimes.get(path)
    _file_mtimes[path] = mt
    if seen is None or seen == mt:
        return False
    with _import_lock:
        sys.modules.pop(stable_module_name(path), None)
        for key in [k for k in _cache if k[0].startswith(path + ":")]:
            _cache.pop(key, None)
    return True


def _function(params: Mapping[str, Any]) -> tuple[Callable[..., Any], FunctionInfo]:
    """The function for these params, resolved once per process (workers do it themselves)."""
    key = (params["function"], params.get("root"))
    hit = _cache.get(key)
    if hit is None:
        with _import_lock:
            hit = _cache.get(key)
            if hit is None:
                hit = load(*key)
                _cache[key] = hit
    return hit


def _call_args(params: Mapping[str, Any], info: FunctionInfo, ctx: Any) -> tuple[list, dict]:
    kwargs = dict(params.get("kwargs") or {})
    if info.takes_ctx:
        kwargs["ctx"] = ctx
    return list(params.get("args") or []), kwargs


def run_blocking(ctx: Any, size_s: float, params: dict, calib: dict) -> Any:
    """The custom workload's blocking form (sequential, threads, processes, and the worker
    side of asyncio-processes). An ``async def`` runs to completion with ``asyncio.run``."""
    fn, info = _function(params)
    args, kwargs = _call_args(params, info, ctx)
    ctx.check()
    if info.is_async:
        return asyncio.run(fn(*args, **kwargs))
    return fn(*args, **kwargs)


async def run_async(ctx: Any, size_s: float, params: dict, calib: dict) -> Any:
    """The custom workload's async form (the asyncio model).

    A plain function is offloaded with ``asyncio.to_thread`` (the loop's default executor, at
    most ``min(32, cores + 4)`` at once). If the task is cancelled meanwhile, the thread cannot
    be stopped, so this waits for it to return before reporting the task cancelled: the task
    shows ``cancel_requested`` until then, which is the truth.
    """
    fn, info = _function(params)
    args, kwargs = _call_args(params, info, ctx)
    ctx.check()
    if info.is_async:
        return await fn(*args, **kwargs)
    fut = asyncio.ensure_future(asyncio.to_thread(fn, *args, **kwargs))
    try:
        return await asyncio.shield(fut)
    except asyncio.CancelledError:
        if not fut.done():
            try:
                await asyncio.shield(fut)
            except BaseException:  # noqa: BLE001 - the task is being cancelled either way
                pass
        raise
