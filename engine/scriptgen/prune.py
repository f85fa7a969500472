"""Show code's last step: drop what a generated script never uses.

The script is built of shared pieces (every workload defines ``work`` and ``async def awork``;
the helpers ``check`` and ``wait_for``; the report), so a thread script carried an unused
``async def``, an asyncio script an unused ``wait_for``, and so on. People read these
scripts: :func:`prune` leaves only what runs.
"""

from __future__ import annotations

import ast
import re


def prune(script: str) -> str:
    """Drop what the script never uses: top-level functions and classes no other code names
    (the pieces above are shared, so a thread script carried an unused ``async def awork``
    and the like), then imports nothing names. Repeated until nothing more goes: dropping
    ``awork`` can leave the helper only it called unused."""
    while True:
        tree = ast.parse(script)
        lines = script.split("\n")
        drop: list[tuple[int, int]] = []
        for node in tree.body:
            start = (node.decorator_list[0].lineno if getattr(node, "decorator_list", None)
                     else node.lineno)
            end = node.end_lineno or node.lineno
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                if not _named_outside(tree, node.name, start, end):
                    drop.append((start, end))
            elif isinstance(node, ast.Import | ast.ImportFrom):
                if isinstance(node, ast.ImportFrom) and node.module == "__future__":
                    continue
                names = [(a.asname or a.name).split(".")[0] for a in node.names]
                unused = [n for n in names if not _named_outside(tree, n, start, end)]
                if len(unused) == len(names):
                    drop.append((start, end))
                elif unused:
                    assert isinstance(node, ast.ImportFrom)
                    keep = ", ".join(a.name + (f" as {a.asname}" if a.asname else "")
                                     for a in node.names if (a.asname or a.name) not in unused)
                    lines[start - 1] = f"from {node.module} import {keep}"
                    for k in range(start, end):
                        lines[k] = "\0"
        if not drop and "\0" not in lines:
            return script
        for start, end in sorted(drop, reverse=True):
            del lines[start - 1:end]
        # Two blank lines between pieces, as before (a dropped piece left four).
        script = re.sub(r"\n{4,}", "\n\n\n", "\n".join(x for x in lines if x != "\0"))


def _named_outside(tree: ast.Module, name: str, start: int, end: int) -> bool:
    """Whether ``name`` is used (read, called, or named as an attribute) outside the lines
    ``start``..``end``."""
    for node in ast.walk(tree):
        lineno = getattr(node, "lineno", None)
        if lineno is None or start <= lineno <= end:
            continue
        if isinstance(node, ast.Name) and node.id == name:
            return True
        if isinstance(node, ast.Attribute) and node.attr == name:
            return True
    return False
