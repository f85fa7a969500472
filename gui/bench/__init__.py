"""``taskscope bench``: every figure measured against its target, in one run (the GUI half).

A command-line tool, kept apart from the app: nothing in :mod:`gui` imports this package; the
``taskscope`` entry point (:mod:`gui.entry`) dispatches ``taskscope bench`` to
:mod:`~gui.bench.cli`. The Qt-free figures come from :mod:`engine.bench`; these modules add the
ones that need the window:

* :mod:`~gui.bench.cli`: the command: options, the order of the steps, the table and ``--json``;
* :mod:`~gui.bench.window`: GUI-loop lag with the real window open, while the cores are
  saturated, while CPU-bound threads hold the GIL, and while the event pipeline floods;
* :mod:`~gui.bench.idle`: what the open, idle window costs (all TaskScope processes);
* :mod:`~gui.bench.paint`: timeline frame time at 10k, 100k and 1M bars;
* :mod:`~gui.bench.startup` and :mod:`~gui.bench.startup_probe`: start-up, timed from outside
  a fresh app process that the probe starts the way ``taskscope`` does;
* :mod:`~gui.bench.observer` and :mod:`~gui.bench.observer_probe`: what the window costs while
  a preset runs live in a fresh app process (its CPU, its GUI loop's lag), and that run's wall
  against ``taskscope run``, on a real X display when one can be had
  (:mod:`~gui.bench.xdisplay`), else offscreen;
* :mod:`~gui.bench.common`: the frame budget and the GUI-lag figure they share.

Importing this package, :mod:`~gui.bench.cli` or either probe is Qt-free: the bench forks (the
raw process-pool baseline) and starts processes before Qt starts, and a probe's process is the
``__main__`` its engine and worker processes are started from.
"""
