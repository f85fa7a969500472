"""The timeline GraphicsObject on synthetic task records: lanes, packing, level of detail.

The records are the engine's own TaskRecord dataclass filled with plain values (no engine
behaviour is imitated: these tests are about drawing)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from engine import State, TaskRecord
from gui.timeline import TimelineView
from gui.timeline_data import STATE_CODE, TimelineData, Worker

T0 = 1_000_000_000


def rec(tid: int, run: int, pid: int, thread_id: int, start_s: float, end_s: float | None,
        state: State = State.FINISHED, name: str = "") -> TaskRecord:
    return TaskRecord(tid, run, tid, state=state, queued_ns=T0,
                      start_ns=T0 + int(start_s * 1e9),
                      end_ns=None if end_s is None else T0 + int(end_s * 1e9),
                      pid=pid, tid=thread_id, thread=name or f"run{run}-thread_{thread_id}")


def test_one_lane_per_thread_and_coroutines_stack_into_sub_lanes() -> None:
    d = TimelineData(T0)
    models = {1: "threads", 2: "asyncio"}
    recs = [rec(1, 1, 10, 100, 0.0, 1.0), rec(2, 1, 10, 101, 0.0, 1.0),
            rec(3, 1, 10, 100, 1.0, 2.0)]
    # Three coroutines on one loop thread: two overlap, the third starts after the first ends.
    recs += [rec(4, 2, 10, 200, 0.0, 1.0), rec(5, 2, 10, 200, 0.5, 2.0),
             rec(6, 2, 10, 200, 1.5, None, State.RUNNING)]
    d.update(recs, models.__getitem__)
    assert len(d.workers) == 3  # two threads + one loop
    slot = d.slot_of
    assert d.row[slot[1]] == d.row[slot[3]] != d.row[slot[2]]  # same thread, same lane
    loop_rows = {int(d.row[slot[t]]) for t in (4, 5, 6)}
    assert len(loop_rows) == 2  # 4 and 6 share a sub-lane; 5 overlaps both
    assert d.row[slot[4]] == d.row[slot[6]]
    assert d.rows == 4
    assert d.state[slot[6]] == STATE_CODE[State.RUNNING]
    assert np.isnan(d.end[slot[6]])
    # Later events update the same bar, never add one.
    d.update([rec(6, 2, 10, 200, 1.5, 2.5, State.CANCELLED)], models.__getitem__)
    assert d.n == 6 and d.state[slot[6]] == STATE_CODE[State.CANCELLED]
    assert d.find(2.0, d.row[slot[6]] + 0.5, 3.0) == slot[6]
    labels = d.row_labels()
    assert any("asyncio loop" in lab for lab, _ in labels.values())


def test_two_threads_of_one_dask_worker_get_two_lanes_with_their_own_labels() -> None:
    d = TimelineData(T0)
    addr = "tcp://127.0.0.1:40123"
    recs = [rec(1, 1, 10, 300, 0.0, 1.0, name=f"{addr} 0-Dask-Default-Threads-10-0"),
            rec(2, 1, 10, 301, 0.0, 1.0, name=f"{addr} 0-Dask-Default-Threads-10-1")]
    d.update(recs, lambda run: "dask")
    labels = [w.label for w in d.workers]
    assert len(labels) == 2 and len(set(labels)) == 2, labels
    assert all("127.0.0.1:40123" in lab for lab in labels), labels
    assert "(300)" in labels[0] and "(301)" in labels[1], labels


def test_load_from_arrays_gives_the_bars_update_gives() -> None:
    """``load`` (the bench's million bars) builds what ``update`` builds from records, and the
    data then takes records as usual."""
    models = {1: "threads", 2: "asyncio"}
    recs = [rec(1, 1, 10, 100, 0.0, 1.0), rec(2, 1, 10, 101, 0.2, 1.0),
            rec(3, 1, 10, 100, 1.0, 2.0), rec(4, 2, 10, 200, 0.1, 1.0),
            rec(5, 2, 10, 200, 0.5, 2.0), rec(6, 2, 10, 200, 1.5, None, State.RUNNING)]
    a = TimelineData(T0)
    a.update(recs, models.__getitem__)
    b = TimelineData(T0)
    v0 = b.version
    order = [5, 2, 0, 4, 1, 3]  # any order: load stores bars in start order, as update does
    b.load([Worker(w.key, w.run_id, w.label, w.kind) for w in a.workers],
           a.worker[:6][order], a.sub[:6][order], a.start[:6][order], a.end[:6][order],
           a.state[:6][order])
    assert b.version > v0 and b.n == a.n == 6
    for name in ("worker", "sub", "row", "start", "state"):
        assert np.array_equal(getattr(a, name)[:6], getattr(b, name)[:6]), name
    assert np.array_equal(a.end[:6], b.end[:6], equal_nan=True)
    assert b.task_id[:6].tolist() == [1, 2, 3, 4, 5, 6]  # slot order; update keeps real ids
    assert (b.rows, b.running, b.t_max, b.row_labels()) == (a.rows, a.running, a.t_max,
                                                            a.row_labels())
    assert [w.subs for w in b.workers] == [w.subs for w in a.workers]
    assert b.slot_of == {t: t - 1 for t in range(1, 7)}
    # A new coroutine after bar 5 ended takes bar 5's sub-lane (bar 6 still runs in the
    # other), on either.
    more = [rec(7, 2, 10, 200, 2.5, 2.6)]
    a.update(more, models.__getitem__)
    b.update(more, models.__getitem__)
    assert a.row[a.slot_of[7]] == b.row[b.slot_of[7]] == a.row[a.slot_of[5]]
    assert a.rows == b.rows
    with pytest.raises(ValueError, match="sub-lanes"):
        b.load(b.workers[:1], np.array([0]), np.array([1]), np.array([0.0]), np.array([1.0]),
               np.array([STATE_CODE[State.FINISHED]], np.int8))


def _fill(d: TimelineData, n: int, lanes: int) -> None:
    recs = []
    per = n // lanes
    for i in range(n):
        lane, k = divmod(i, per)
        recs.append(rec(i + 1, 1, 10, 1000 + lane, k * 0.01, k * 0.01 + 0.008,
                        State.FAILED if i % 97 == 0 else State.FINISHED))
    d.update(recs, lambda r: "threads")


def _render(qtbot: Any, view: TimelineView) -> None:
    view.resize(1200, 500)
    view.show()
    qtbot.waitExposed(view)
    view.grab()  # paints the scene


def test_level_of_detail_above_50k_bars_and_paint_stays_fast(qtbot: Any) -> None:
    d = TimelineData(T0)
    _fill(d, 60_000, 40)
    assert d.n == 60_000 and len(d.workers) == 40
    view = TimelineView(d, lambda: 20.0, lambda t: f"task {t}")
    qtbot.addWidget(view)
    view.follow = False
    view.getPlotItem().getViewBox().setRange(xRange=(0, 16), yRange=(0, 40), padding=0)
    t = time.perf_counter()
    _render(qtbot, view)
    took = time.perf_counter() - t
    assert view.item.last_lod, "60k visible bars must use the coarse level of detail"
    assert view.item.last_paint_ms < 1000 and took < 5, (view.item.last_paint_ms, took)

    # Zoomed in, only a few bars are visible: exact bars again.
    view.getPlotItem().getViewBox().setRange(xRange=(1.0, 1.2), yRange=(0, 5), padding=0)
    view.grab()
    assert not view.item.last_lod


def test_ten_thousand_bars_draw_exactly(qtbot: Any) -> None:
    d = TimelineData(T0)
    _fill(d, 10_000, 20)
    view = TimelineView(d, lambda: 6.0, lambda t: f"task {t}")
    qtbot.addWidget(view)
    view.follow = False
    view.getPlotItem().getViewBox().setRange(xRange=(0, 5.5), yRange=(0, 20), padding=0)
    _render(qtbot, view)
    assert not view.item.last_lod
    assert view.item.last_paint_ms < 500, view.item.last_paint_ms


def test_stacked_coroutines_paint_the_same_pixels_merged(qtbot: Any) -> None:
    """More coroutines in flight than sub-lanes pile up on each row; the item merges the
    overlapping bars of a row into one before drawing. The picture must be pixel for pixel
    the one drawn bar by bar, including bars of other states on the same rows, a failed bar
    inside a running pile, and back-to-back bars that keep their one-pixel gap."""
    from gui.timeline_data import MAX_SUBLANES
    from gui.timeline_item import _union

    d = TimelineData(T0)
    recs = [rec(1, 1, 100, 100, 0.0, None, State.RUNNING)]
    recs += [rec(2 + k, 1, 100, 100, k * 0.5, k * 0.5 + 0.5) for k in range(6)]  # touching
    tid = 100
    for i in range(MAX_SUBLANES * 20):
        s = 0.5 + i * 0.001
        end = None if i % 7 else s + 0.4 + (i % 5) * 0.3
        state = State.RUNNING if end is None else (State.FAILED if i % 3 == 0 else
                                                   State.FINISHED)
        recs.append(rec(tid, 2, 200, 200, s, end, state))
        tid += 1
    d.update(recs, {1: "threads", 2: "asyncio"}.__getitem__)
    assert d.stacked
    view = TimelineView(d, lambda: 5.0, lambda _t: "")
    qtbot.addWidget(view)
    view.follow = False
    view.resize(900, 500)
    view.show()
    vb = view.getPlotItem().getViewBox()
    vb.setRange(xRange=(-0.2, 5.2), yRange=(0, d.rows), padding=0)
    merged = view.grab().toImage()
    d.stacked = False  # draw every bar on its own
    view.item.update()
    separate = view.grab().toImage()
    assert merged == separate
    # ...and the merge really cut the work: one rect per overlapping pile and state.
    n = d.n
    xs, xe = d.start[:n].copy(), d.ends(5.0)
    out = _union(xs, xe, d.row[:n], d.state[:n], -1.0, 6.0)
    assert len(out[0]) < n / 4
    # Touching bars on lane 0 (end == next start) stay apart.
    lane0 = (out[2] == 1) & (out[3] == STATE_CODE[State.FINISHED])
    assert lane0.sum() >= 6


def test_a_small_timeline_paints_the_pixels_the_array_path_paints(
        qtbot: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Up to SMALL_BARS bars are drawn in plain Python, not through numpy: the same picture,
    pixel for pixel, with bars partly and wholly out of view, running bars to now, bars
    thinner than a pixel, back-to-back bars with their gap, and a selected bar."""
    from gui import timeline_item

    d = TimelineData(T0)
    recs = [rec(1, 1, 10, 100, -3.0, 0.5), rec(2, 1, 10, 100, 0.5, 1.0),  # back to back
            rec(3, 1, 10, 100, 1.0, 1.0004), rec(4, 1, 10, 101, 0.2, None, State.RUNNING),
            rec(5, 1, 11, 102, 2.0, 2.6, State.FAILED), rec(6, 1, 11, 102, 9.0, 12.0),
            rec(7, 1, 11, 103, 3.9, None, State.CANCEL_REQUESTED)]
    d.update(recs, lambda _r: "threads")
    assert d.n <= timeline_item.SMALL_BARS and not d.stacked
    view = TimelineView(d, lambda: 4.0, lambda _t: "")
    qtbot.addWidget(view)
    view.follow = False
    view.resize(700, 300)
    view.show()
    view.getPlotItem().getViewBox().setRange(xRange=(-0.5, 5.0), yRange=(0, d.rows), padding=0)
    view.item.select(2)
    small = view.grab().toImage()
    monkeypatch.setattr(timeline_item, "SMALL_BARS", -1)  # every bar through the arrays
    view.item.update()
    arrays = view.grab().toImage()
    assert small == arrays


def test_now_line_follows_the_clock_and_spans_the_visible_rows(qtbot: Any) -> None:
    """The now line is at the clock after each tick, covers the rows in view from top to
    bottom whatever the vertical range, and its label sits at the bottom, next to it."""
    d = TimelineData(T0)
    d.update([rec(1, 1, 10, 100, 0.0, None, State.RUNNING)], lambda r: "threads")
    clock = [3.0]
    view = TimelineView(d, lambda: clock[0], lambda _t: "")
    qtbot.addWidget(view)
    view.resize(800, 300)
    view.show()
    for t in (3.0, 4.5, 7.25):
        clock[0] = t
        view.tick()
        line = view.now_line.line.line()
        assert view.now_line.value() == t == line.x1() == line.x2()
        y0, y1 = view.getPlotItem().getViewBox().viewRange()[1]
        assert sorted((line.y1(), line.y2())) == [y0, y1]
        assert view.now_line.label.pos().x() == t and view.now_line.label.pos().y() == y1
    view.follow = False
    view.getPlotItem().getViewBox().setRange(yRange=(2, 40), padding=0)
    line = view.now_line.line.line()
    assert sorted((line.y1(), line.y2())) == [2, 40]
    view.now_line.set_text("end")
    assert view.now_line.label.text() == "end"
