"""Read-only replay of a saved trace, in a window of its own: what such a window shows.

A replay is a :class:`~gui.main_window.MainWindow` built on the store that
:func:`engine.trace.load_trace` fills, with no :class:`engine.Session` behind it. The views read
that store exactly as they read a live one (same table models, same timeline data, same CPU
view), so a replay shows what the live window showed.

Why a second window, not a mode of the main one: the live session must keep running and stay
visible, undisturbed, while a trace is open (issue 6: opening a file "changes nothing"). A
separate window also lets a user put a saved run next to a live one, and closing it simply
drops the replay's store. In a replay window nothing can be started or cancelled: the run form,
Start/Cancel actions and every Cancel/Kill column are gone, their shortcuts cleared (so Ctrl+R,
Esc and F still belong to the live window), and the title says ``Replay — <file>``.

Heavy work stays off the GUI thread: :func:`gui.replay_load.prepare` (parse, validate, rebuild
the store, lay out every timeline bar) is Qt-free and runs on a worker thread; the window then
only fills its views from ready data, through the few methods of :class:`~gui.hosts.ReplayHost`.
"""

from __future__ import annotations

from engine.trace import Replay

from .hosts import ReplayHost
from .replay_load import model_of

TITLE_PREFIX = "Replay — "


def banner_text(replay: Replay) -> str:
    """What the trace holds and where it came from, in one line of rich text."""
    meta = replay.meta
    return (
        f"<b>Read-only replay</b> of {replay.path.name} · {replay.scope} trace · "
        f"{len(replay.runs)} run{'s' if len(replay.runs) != 1 else ''}, "
        f"{len(replay.tasks):,} tasks, {len(replay.samples):,} CPU samples · exported "
        f"{str(meta.get('exported_at', '?'))[:19].replace('T', ' ')} · "
        f"Python {str(meta.get('python', '?')).split()[0]}")


def enter_replay_mode(win: ReplayHost, replay: Replay) -> None:
    """Turn a freshly built window (no session) into a read-only view of ``replay``."""
    win.set_read_only(f"{TITLE_PREFIX}{replay.path.name}", banner_text(replay),
                      str(replay.path))
    models = model_of(replay)
    for r in replay.runs:
        win.register_run(r.run_id, models(r.run_id), can_force=False)
    # Fill the views once, from ready data (the frame timer never runs in a replay).
    for r in sorted(replay.store.runs(), key=lambda r: r.run_id):
        win.show_run(r)
    win.show_recorded_samples()
    if replay.comparisons:  # the trace's last comparison, as the live window last showed it
        win.show_comparison(replay.comparisons[-1])
    win.show_whole_trace()
    win.refresh_status()
