"""What the engine needs installed to run on an interpreter, and the optional extras.

The engine's own runtime dependencies are psutil and NumPy (the window's Qt packages are not:
the engine never imports them). These lists must agree with pyproject.toml (a test checks);
markers are evaluated by pip against the target interpreter, so one list serves every version.
"""

from __future__ import annotations

from collections.abc import Iterable

#: The engine's runtime dependencies (pyproject's ``dependencies`` minus the GUI's).
ENGINE = ("psutil>=5.9", "numpy>=1.26")

#: Extras, as pyproject's ``[project.optional-dependencies]`` spells them. ``interpreters`` is
#: always installed (it is empty outside 3.12/3.13); the others on request.
EXTRAS: dict[str, tuple[str, ...]] = {
    # PEP 734's interpreters module and InterpreterPoolExecutor for 3.12/3.13 (3.14 has them)
    "interpreters": ("interpreters-pep-734; python_version >= '3.12' and python_version < '3.14'",),
    "dask": ("distributed>=2024.1",),
}
DEFAULT_EXTRAS = ("interpreters",)


def requirements(extras: Iterable[str] = ()) -> list[str]:
    """pip requirement strings for the engine plus the default and the named extras.

    Raises ValueError naming an unknown extra."""
    out = list(ENGINE)
    for name in (*DEFAULT_EXTRAS, *extras):
        if name not in EXTRAS:
            raise ValueError(f"unknown extra {name!r} (one of: {', '.join(EXTRAS)})")
        out.extend(r for r in EXTRAS[name] if r not in out)
    return out
