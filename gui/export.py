"""What the window's File menu calls to export: plot images, traces, CSV, and to open a replay.

Images go through pyqtgraph's own exporters (``ImageExporter`` for PNG, ``SVGExporter`` for
SVG), so what is saved is what the plot draws. Traces and CSV are the engine's
(:mod:`engine.trace`); the wrappers here only exist so the GUI has one module to import and one
exception type to catch: every function raises :class:`engine.trace.TraceError` (or its
subclass :class:`ExportError`) with a one-line message a dialog can show as it is.

Call these on the GUI thread (pyqtgraph renders with Qt). None of them opens a dialog: the
caller asks the user for a path first. pyqtgraph's exporters open a file dialog when given no
file name; we never let them, since a dialog popping up from an export call is a surprise.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyqtgraph as pg
from pyqtgraph.exporters import ImageExporter, SVGExporter
from pyqtgraph.GraphicsScene import GraphicsScene
from PySide6 import QtCore, QtGui, QtWidgets

from engine.store import EventStore
from engine.trace import (
    ExportSummary,
    Replay,
    TraceError,
    check_output_path,
    export_csv,
    export_run,
    export_session,
    load_trace,
    write_bytes_atomic,
)

__all__ = [
    "IMAGE_SUFFIXES",
    "ExportError",
    "TraceError",
    "export_csv_files",
    "export_plot",
    "export_plot_png",
    "export_plot_svg",
    "export_plots",
    "export_run_trace",
    "export_session_trace",
    "open_replay",
]

#: File suffixes :func:`export_plot` understands.
IMAGE_SUFFIXES = (".png", ".svg")


class ExportError(TraceError):
    """An image export failed. A :class:`TraceError`, so one ``except TraceError`` covers every
    File-menu failure."""


def _export_item(target: Any) -> Any:
    """The item (or scene) pyqtgraph's exporters take, from whatever plot object we are given.

    Accepts a PlotWidget (its PlotItem), a GraphicsLayoutWidget (its whole layout, so every
    plot in it), any other GraphicsView (its scene), a GraphicsScene, or a QGraphicsItem such
    as a PlotItem.
    """
    if isinstance(target, pg.PlotWidget):
        item: Any = target.getPlotItem()
    elif isinstance(target, pg.GraphicsLayoutWidget):
        item = target.ci
    elif isinstance(target, pg.GraphicsView):
        item = target.scene()
    elif isinstance(target, (GraphicsScene, QtWidgets.QGraphicsItem)):
        item = target
    else:
        raise ExportError(
            f"cannot export a {type(target).__name__}: expected a pyqtgraph plot, layout, "
            f"view, scene or graphics item"
        )
    scene = item if isinstance(item, GraphicsScene) else item.scene()
    if scene is None or not scene.views():
        raise ExportError("cannot export the plot: it is not shown in any view")
    return item


def export_plot_png(target: Any, path: str | os.PathLike[str], width: int | None = None) -> Path:
    """Save the plot as a PNG through ``pyqtgraph.exporters.ImageExporter``.

    ``width`` in pixels (the height follows the plot's aspect ratio); default: its size on
    screen. The file is written atomically: a failed export leaves any old file as it was.
    """
    check_output_path(path)  # before rendering: a bad path fails fast and cheaply
    return write_bytes_atomic(path, _png_bytes(_render_png(target, width)))


def _render_png(target: Any, width: int | None = None) -> QtGui.QImage:
    item = _export_item(target)
    try:
        exporter = ImageExporter(item)
        if width is not None:
            if isinstance(width, bool) or not isinstance(width, int) or width < 1:
                raise ExportError(f"width: expected a positive number of pixels, got {width!r}")
            exporter.parameters()["width"] = width
        image = exporter.export(toBytes=True)  # a QImage; never None here (no dialog path)
    except ExportError:
        raise
    except Exception as e:  # noqa: BLE001 - pyqtgraph raises bare Exception (e.g. size 0)
        raise ExportError(f"cannot render the plot as PNG: {e}") from None
    if image is None or image.isNull() or image.width() == 0 or image.height() == 0:
        raise ExportError("cannot render the plot as PNG: the plot has no size yet")
    return image


def _png_bytes(image: QtGui.QImage) -> bytes:
    buf = QtCore.QBuffer()
    buf.open(QtCore.QIODevice.OpenModeFlag.WriteOnly)
    ok = image.save(buf, "PNG")
    buf.close()
    if not ok:
        raise ExportError("cannot encode the plot as PNG (Qt's PNG writer failed)")
    return bytes(buf.data().data())


def export_plot_svg(target: Any, path: str | os.PathLike[str]) -> Path:
    """Save the plot as SVG through ``pyqtgraph.exporters.SVGExporter`` (written atomically)."""
    check_output_path(path)
    return write_bytes_atomic(path, _render_svg(target))


def _render_svg(target: Any) -> bytes:
    item = _export_item(target)
    try:
        with _svg_closepath_fix():
            data = SVGExporter(item).export(toBytes=True)
    except Exception as e:  # noqa: BLE001 - pyqtgraph raises bare exceptions
        raise ExportError(f"cannot render the plot as SVG: {e}") from None
    if not data:
        raise ExportError("cannot render the plot as SVG: pyqtgraph produced nothing")
    return _sized_svg(bytes(data))


_SVG_ROOT = re.compile(rb"<svg\b[^>]*>")
_VIEWBOX = re.compile(rb'viewBox\s*=\s*"\s*[-0-9.eE]+[ ,]+[-0-9.eE]+[ ,]+([0-9.eE]+)[ ,]+([0-9.eE]+)\s*"')


def _sized_svg(data: bytes) -> bytes:
    """Give the SVG absolute sizes: ``width``/``height`` on the root, and on the background.

    pyqtgraph writes only a ``viewBox`` and paints the background as a ``100%`` x ``100%``
    rect. Browsers resolve that against the viewport, but SVG Tiny renderers (Qt's
    QSvgRenderer, which the document's own ``baseProfile="tiny"`` invites) do not take
    percentages there and paint a 100x100 square in the corner instead. Absolute sizes taken
    from the ``viewBox`` make every renderer draw the same picture.
    """
    m = _SVG_ROOT.search(data)
    if m is None:
        return data
    root = m.group(0)
    vb = _VIEWBOX.search(root)
    if vb is None:
        return data
    w, h = vb.group(1).decode(), vb.group(2).decode()
    if not re.search(rb"\swidth\s*=", root):
        sized = root[:-1].rstrip(b"/") + f' width="{w}" height="{h}"'.encode()
        root = sized + (b"/>" if root.endswith(b"/>") else b">")
    rest = data[m.end():].replace(
        b'<rect width="100%" height="100%"', f'<rect width="{w}" height="{h}"'.encode(), 1
    )
    return data[: m.start()] + root + rest


@contextmanager
def _svg_closepath_fix() -> Iterator[None]:
    """Let pyqtgraph's SVG exporter cope with the close-path command newer Qt writes.

    Qt 6.11's SVG generator ends closed paths with a lone ``Z`` token (``"M0,0 L9,0 L0,0 Z"``);
    pyqtgraph 0.14's ``correctCoordinates`` splits every token on ``","`` and raises
    ``ValueError`` on it, so every plot's SVG export fails (pyqtgraph issue #3485, still open).
    For the duration of one export we take the ``Z`` tokens out of each path, let pyqtgraph
    transform the coordinates (it maps tokens one to one, in order), and put each ``Z`` back at
    its place. Scoped to our call and restored after, so nothing else in the app is patched.
    """
    mod = importlib.import_module("pyqtgraph.exporters.SVGExporter")
    original = getattr(mod, "correctCoordinates", None)
    if original is None:  # a pyqtgraph without this helper: nothing to work around
        yield
        return

    def correct(node: Any, defs: Any, item: Any, options: Any) -> Any:
        closes: list[tuple[Any, list[int]]] = []
        for el in node.getElementsByTagName("path"):
            tokens = el.getAttribute("d").split()
            where = [i for i, t in enumerate(tokens) if t in ("Z", "z")]
            if where:
                el.setAttribute("d", " ".join(t for t in tokens if t not in ("Z", "z")))
                closes.append((el, where))
        result = original(node, defs, item, options)
        for el, where in closes:
            tokens = el.getAttribute("d").split()
            for i in where:
                tokens.insert(i, "Z")
            el.setAttribute("d", " ".join(tokens))
        return result

    mod.correctCoordinates = correct
    try:
        yield
    finally:
        mod.correctCoordinates = original


def export_plot(target: Any, path: str | os.PathLike[str]) -> Path:
    """PNG or SVG, chosen by the file's suffix (what a single "Export image..." dialog needs)."""
    suffix = Path(os.fspath(path)).suffix.lower()
    if suffix == ".png":
        return export_plot_png(target, path)
    if suffix == ".svg":
        return export_plot_svg(target, path)
    raise ExportError(f"{Path(os.fspath(path)).name}: choose a .png or .svg file name")


def export_plots(targets: Sequence[Any], path: str | os.PathLike[str]) -> Path:
    """Several plots stacked top to bottom in one PNG or SVG (by the file's suffix).

    For views made of more than one pyqtgraph scene (the CPU view: per-core bands above, totals
    below). Each plot goes through pyqtgraph's exporter as in :func:`export_plot`; the results
    are stacked: PNG images painted one under the other, SVG documents placed as translated
    groups of one document (their element ids prefixed so clip paths stay distinct).
    """
    if len(targets) == 1:
        return export_plot(targets[0], path)
    if not targets:
        raise ExportError("nothing to export: no plots given")
    suffix = Path(os.fspath(path)).suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise ExportError(f"{Path(os.fspath(path)).name}: choose a .png or .svg file name")
    check_output_path(path)
    if suffix == ".png":
        images = [_render_png(t) for t in targets]
        width = max(i.width() for i in images)
        out = QtGui.QImage(width, sum(i.height() for i in images),
                           QtGui.QImage.Format.Format_ARGB32)
        out.fill(images[0].pixelColor(0, 0))  # the plots' own background where one is narrower
        painter = QtGui.QPainter(out)
        y = 0
        for i in images:
            painter.drawImage(0, y, i)
            y += i.height()
        painter.end()
        return write_bytes_atomic(path, _png_bytes(out))
    return write_bytes_atomic(path, _stack_svgs([_render_svg(t) for t in targets]))


def _stack_svgs(docs: Sequence[bytes]) -> bytes:
    parts: list[str] = []
    width = height = 0.0
    style = ""
    for k, data in enumerate(docs):
        text = data.decode("utf-8")
        root = re.search(r"<svg\b[^>]*>", text)
        vb = _VIEWBOX.search(root.group(0).encode()) if root else None
        end = text.rfind("</svg>")
        if root is None or vb is None or end < 0:
            raise ExportError("cannot combine the plots as SVG: unexpected exporter output")
        w, h = float(vb.group(1)), float(vb.group(2))
        body = text[root.end():end]
        st = re.search(r"<style>.*?</style>", body, re.S)
        if st and not style:
            style = st.group(0)
        body = re.sub(r"<title>.*?</title>|<desc>.*?</desc>|<style>.*?</style>", "", body,
                      flags=re.S)
        body = re.sub(r'\bid="([^"]+)"', rf'id="p{k}_\1"', body)
        body = re.sub(r"url\(#([^)]+)\)", rf"url(#p{k}_\1)", body)
        body = re.sub(r'href="#([^"]+)"', rf'href="#p{k}_\1"', body)
        parts.append(f'<g transform="translate(0,{height:g})">{body}</g>')
        width = max(width, w)
        height += h
    head = ('<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'
            '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
            f'version="1.2" baseProfile="tiny" viewBox="0 0 {width:g} {height:g}" '
            f'width="{width:g}" height="{height:g}">\n<title>TaskScope plots</title>\n')
    return (head + style + "\n".join(parts) + "\n</svg>\n").encode("utf-8")


def export_session_trace(store: EventStore, path: str | os.PathLike[str]) -> ExportSummary:
    """File > Export > Session trace: every run and sample (see :func:`engine.trace.export_session`)."""
    return export_session(store, path)


def export_run_trace(store: EventStore, run_id: int, path: str | os.PathLike[str]) -> ExportSummary:
    """File > Export > Run trace: one run and the samples taken while it ran."""
    return export_run(store, run_id, path)


def export_csv_files(
    store: EventStore, prefix: str | os.PathLike[str], run_ids: list[int] | None = None
) -> tuple[Path, Path]:
    """File > Export > CSV: ``PREFIX-tasks.csv`` and ``PREFIX-samples.csv`` (all runs if
    ``run_ids`` is None)."""
    return export_csv(store, prefix, run_ids)


def open_replay(path: str | os.PathLike[str]) -> Replay:
    """File > Open trace: read one of our traces for a read-only replay.

    Returns an :class:`engine.trace.Replay` whose ``store`` the views can read exactly like a
    live session's store. On any problem raises :class:`TraceError` and changes nothing.
    """
    return load_trace(path)
