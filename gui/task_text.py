"""A task in words: its duration, its worker, its story (a tooltip) and its one line.

The task table's cells and the timeline's hover text read a task the same way from here.
"""

from __future__ import annotations

from engine import TaskRecord

from . import theme
from .worker_kind import worker_address, worker_kind


def fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.3f} s"


def worker_text(rec: TaskRecord, model: str) -> str:
    if not rec.pid:
        return ""
    kind = worker_kind(model)
    if kind == "cluster":
        return f"worker {worker_address(rec.thread)} · pid {rec.pid}"
    if kind == "process":
        return f"process {rec.pid}"
    if kind == "loop":
        return f"{rec.task_name or 'coroutine'} on loop {rec.tid}"
    return f"{rec.thread or 'thread'} ({rec.tid})"


def describe_task(r: TaskRecord, model: str, t0_ns: int, now_ns: int) -> str:
    """The task's whole story as rich text: state, worker, core, times (seconds since
    ``t0_ns``; a running task's duration up to ``now_ns``), cancel, reason, error."""

    def rel(t_ns: int | None) -> str:
        return "" if t_ns is None else f"{(t_ns - t0_ns) / 1e9:.3f} s"

    lines = [
        f"<b>task {r.task_id}</b> · run {r.run_id} #{r.index} · "
        f"<span style='color:{theme.STATE_COLORS[r.state]}'>{theme.STATE_LABELS[r.state]}"
        "</span>",
        f"worker: {worker_text(r, model)} · pid {r.pid} · tid {r.tid}",
    ]
    if r.task_name:
        lines.append(f"asyncio task: {r.task_name}")
    lines.append(f"core: {r.core if r.core >= 0 else 'unknown'} (when last reported)")
    lines.append(f"queued {rel(r.queued_ns)} · started {rel(r.start_ns)}"
                 + (f" · ended {rel(r.end_ns)}" if r.end_ns else ""))
    if r.start_ns is not None:
        dur = ((r.end_ns or now_ns) - r.start_ns) / 1e9
        lines.append(f"waited {fmt_s((r.start_ns - r.queued_ns) / 1e9)} · "
                     f"ran {fmt_s(dur)} · progress {r.progress * 100:.0f}%")
    if r.cancel_requested_ns:
        lines.append(f"cancel requested at {rel(r.cancel_requested_ns)}")
    if r.reason:
        lines.append(f"reason: {r.reason}")
    if r.error:
        msg = str(r.error.get("message", ""))[:200]
        lines.append(f"<span style='color:{theme.ERROR}'>{r.error.get('type', 'error')}: "
                     f"{msg}</span>")
    return "<br>".join(lines)


def describe_task_line(r: TaskRecord, model: str, t0_ns: int, now_ns: int) -> str:
    """The task in one plain line (the timeline's info line): who, what state, where, when."""
    parts = [f"task {r.task_id}", f"run {r.run_id} #{r.index}", theme.STATE_LABELS[r.state]]
    worker = worker_text(r, model)
    if worker:
        parts.append(worker)
    if r.core >= 0:
        parts.append(f"core {r.core}")
    if r.start_ns is not None:
        parts.append(f"started {(r.start_ns - t0_ns) / 1e9:.3f} s")
        parts.append(f"ran {fmt_s(((r.end_ns or now_ns) - r.start_ns) / 1e9)}")
        parts.append(f"progress {r.progress * 100:.0f}%")
    if r.reason:
        parts.append(f"reason: {r.reason}")
    if r.error:
        parts.append(f"{r.error.get('type', 'error')}: {str(r.error.get('message', ''))[:120]}")
    return " · ".join(parts)
