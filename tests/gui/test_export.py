"""File-menu exports, offscreen: plot images through pyqtgraph's exporters, and the thin trace
wrappers. Real widgets with real data; the files are checked as files (PNG signature, SVG XML)."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before anything imports Qt

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pyqtgraph as pg
import pytest

from engine.events import Event, Kind
from engine.store import EventStore
from gui import export

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def plot(qtbot):  # type: ignore[no-untyped-def]
    """A shown PlotWidget with two curves, laid out at a known size."""
    w = pg.PlotWidget()
    qtbot.addWidget(w)
    w.resize(400, 300)
    x = np.linspace(0, 10, 500)
    w.plot(x, np.sin(x), pen="y")
    w.plot(x, np.cos(x) * 50 + 50, pen="c")
    w.show()
    qtbot.waitExposed(w)
    return w


def _png_size(data: bytes) -> tuple[int, int]:
    # IHDR is the first chunk: width and height are big-endian at bytes 16..24.
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_png_from_plot_widget_and_plot_item(plot, tmp_path: Path) -> None:
    p1 = export.export_plot_png(plot, tmp_path / "a.png")
    p2 = export.export_plot_png(plot.getPlotItem(), tmp_path / "b.png", width=800)
    for p in (p1, p2):
        data = p.read_bytes()
        assert data[:8] == PNG_MAGIC
        assert len(data) > 2000  # a real picture with curves, not an empty canvas
    w1, h1 = _png_size(p1.read_bytes())
    assert w1 > 100 and h1 > 100
    w2, h2 = _png_size(p2.read_bytes())
    assert w2 == 800
    assert abs(h2 / w2 - h1 / w1) < 0.02  # the height follows the aspect ratio


def test_png_pixels_are_not_blank(plot, tmp_path: Path) -> None:
    from PySide6 import QtGui

    p = export.export_plot_png(plot, tmp_path / "c.png")
    img = QtGui.QImage(str(p))
    assert not img.isNull()
    colours = {img.pixel(x, y) for x in range(0, img.width(), 7) for y in range(0, img.height(), 7)}
    assert len(colours) > 3  # background, axes, two curves at least


def test_svg_is_xml_with_svg_root(plot, tmp_path: Path) -> None:
    p = export.export_plot_svg(plot, tmp_path / "a.svg")
    root = ET.parse(p).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    # The curves are in it as paths.
    assert len(root.findall(".//{http://www.w3.org/2000/svg}path")) >= 2


def test_svg_renders_like_the_png(plot, tmp_path: Path) -> None:
    """The SVG draws the whole plot in an SVG Tiny renderer (Qt's): the background covers the
    picture (not a 100x100 corner) and closed paths keep their close command."""
    from PySide6 import QtGui, QtSvg

    svg = export.export_plot_svg(plot, tmp_path / "r.svg")
    text = svg.read_text()
    assert " Z" in text  # pyqtgraph's exporter chokes on these with Qt 6.11; we keep them
    renderer = QtSvg.QSvgRenderer(str(svg))
    assert renderer.isValid()
    png = QtGui.QImage(str(export.export_plot_png(plot, tmp_path / "r.png")))
    img = QtGui.QImage(png.size(), QtGui.QImage.Format.Format_ARGB32)
    img.fill(0xFFFFFFFF)
    painter = QtGui.QPainter(img)
    renderer.render(painter)
    painter.end()
    w, h = img.width(), img.height()
    # Far corners are plot background in both pictures (white would mean unpainted).
    for x, y in ((w - 3, 3), (w - 3, h - 3), (3, h - 3)):
        assert img.pixelColor(x, y) == png.pixelColor(x, y), (x, y)


def test_scene_and_layout_targets(qtbot, tmp_path: Path) -> None:
    win = pg.GraphicsLayoutWidget()
    qtbot.addWidget(win)
    win.resize(500, 400)
    a = win.addPlot(row=0, col=0)
    a.plot([1, 3, 2, 4])
    b = win.addPlot(row=1, col=0)
    b.plot([4, 1, 3, 2])
    win.show()
    qtbot.waitExposed(win)
    for target, name in ((win, "layout"), (win.scene(), "scene"), (b, "item")):
        png = export.export_plot(target, tmp_path / f"{name}.png")
        assert png.read_bytes()[:8] == PNG_MAGIC
        svg = export.export_plot(target, tmp_path / f"{name}.svg")
        assert ET.parse(svg).getroot().tag.endswith("svg")


def test_bad_targets_and_paths_raise_one_line(plot, tmp_path: Path) -> None:
    with pytest.raises(export.ExportError, match="cannot export a str"):
        export.export_plot_png("not a plot", tmp_path / "x.png")
    with pytest.raises(export.ExportError, match=r"choose a \.png or \.svg"):
        export.export_plot(plot, tmp_path / "x.jpgg")
    with pytest.raises(export.TraceError, match="does not exist"):
        export.export_plot_png(plot, tmp_path / "missing" / "x.png")
    with pytest.raises(export.TraceError, match="is a directory"):
        export.export_plot_svg(plot, tmp_path)
    with pytest.raises(export.ExportError, match="positive number of pixels"):
        export.export_plot_png(plot, tmp_path / "x.png", width=0)
    item = pg.PlotItem()  # never added to a scene
    with pytest.raises(export.ExportError, match="not shown in any view"):
        export.export_plot_png(item, tmp_path / "x.png")
    assert sorted(os.listdir(tmp_path)) == []  # nothing half-written, no temp files


def test_failed_export_keeps_the_old_file(plot, tmp_path: Path) -> None:
    target = tmp_path / "keep.png"
    target.write_bytes(b"old")
    with pytest.raises(export.ExportError):
        export.export_plot_png(plot, target, width=-5)
    assert target.read_bytes() == b"old"


def test_trace_wrappers_round_trip(tmp_path: Path) -> None:
    store = EventStore()
    store.add_run(1, None, 1, 2, 1_000_000)
    store.append([
        Event(1, 1, Kind.STARTED, 2_000_000, pid=10, tid=11, thread="t", core=0),
        Event(1, 1, Kind.FINISHED, 5_000_000, pid=10, tid=11, thread="t", core=0),
        Event(1, 2, Kind.CANCELLED, 3_000_000, info={"reason": "cancelled"}),
    ])
    store.end_run(1, 5_000_000)
    s = export.export_session_trace(store, tmp_path / "s.json")
    r = export.export_run_trace(store, 1, tmp_path / "r.json")
    assert (s.tasks, r.tasks) == (2, 2)
    replay = export.open_replay(tmp_path / "s.json")
    assert [t.state.value for t in replay.tasks] == ["finished", "cancelled"]
    tasks_csv, samples_csv = export.export_csv_files(store, tmp_path / "out")
    assert tasks_csv.read_text().count("\n") == 3
    assert samples_csv.exists()
    with pytest.raises(export.TraceError, match="no such file"):
        export.open_replay(tmp_path / "nope.json")
