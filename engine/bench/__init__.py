"""The engine's half of ``taskscope bench``: Qt-free figures, each measured against its target.

One module per job, none imported by the product (only :mod:`gui.bench` and the tests use
them):

* :mod:`~engine.bench.figures`: the :class:`~engine.bench.figures.Figure` every measurement
  returns, and the table ``taskscope bench`` prints;
* :mod:`~engine.bench.overhead`: engine overhead per task against raw ``asyncio.gather``,
  ``ThreadPoolExecutor.map`` and ``ProcessPoolExecutor.map``, monitoring on and bare, both
  sides on the caller's clock;
* :mod:`~engine.bench.pool`: when a processes run's workers were ready, and that start-up;
* :mod:`~engine.bench.pipeline`: events per second from worker processes into the store;
* :mod:`~engine.bench.cancel`: cancel latency per model;
* :mod:`~engine.bench.size`: a task of size S takes S (sequential cpu, monitoring on);
* :mod:`~engine.bench.memory`: bytes the store holds per retained event;
* :mod:`~engine.bench.sampler_cost`: what the sampler with its GIL probe and the idle
  engine's monitoring cost;
* :mod:`~engine.bench.dask`: the dask model's overhead per task against raw ``client.map`` +
  ``client.gather`` on the same LocalCluster, and that cluster's start-up;
* :mod:`~engine.bench.qt_check`: run inside worker processes, fails if Qt was imported there.

This package's ``__init__`` imports nothing: :mod:`~engine.bench.qt_check` runs in worker
processes, which should not load the rest of the bench.
"""
