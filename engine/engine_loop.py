"""The engine's own asyncio loop: a stock event loop in a thread of its own.

Coroutine workloads run here, never on a front end's (GUI) loop: qasync starts one Qt timer
per callback, which made 10k coroutines 5x slower than on a stock loop (DESIGN.md).
"""

from __future__ import annotations

import asyncio
import threading


class EngineLoop:
    """A stock asyncio event loop running in a thread of its own."""

    def __init__(self, name: str = "taskscope-engine-loop") -> None:
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._main, name=name, daemon=True)
        self.native_id = 0
        self.thread.start()
        self._ready.wait()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.native_id = threading.get_native_id()
        self.loop.call_soon(self._ready.set)
        try:
            self.loop.run_forever()
        finally:
            self._drain()

    def _drain(self) -> None:
        loop = self.loop
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for t in pending:
            t.cancel()
        if pending:
            # Let cancelled tasks run their handlers (they emit their 'cancelled' events).
            fut = asyncio.gather(*pending, return_exceptions=True)
            try:
                loop.run_until_complete(asyncio.wait_for(fut, 1.0))
            except (TimeoutError, asyncio.CancelledError, RuntimeError):
                pass
        try:
            loop.run_until_complete(loop.shutdown_default_executor())
        except RuntimeError:
            pass
        loop.close()

    def stop(self, timeout: float = 2.0) -> None:
        if self.loop.is_closed():
            return
        try:
            self.loop.call_soon_threadsafe(self.loop.stop)
        except RuntimeError:
            pass
        self.thread.join(timeout)
