"""The cyclic garbage collector, paused while a dream does its CPU-bound work.

CPython's cycle collector runs every few hundred container allocations, and walks every
live object each time the heap has grown by a quarter. A dream at 10k memories holds a
few hundred thousand long-lived objects (memory and sessions as read, then the engine's
features and indexes) and allocates millions of short-lived sets and tuples: the
collector made ~1,400 passes over them, a quarter of the dream's CPU time, and found
almost nothing to free (under a hundred objects in cycles after a whole dream, measured
with `gc.collect()`). Reference counting frees everything else exactly as before, so
pausing changes no result and no peak memory, only time.

`paused()` nests and is thread-safe: the offline engine pauses in its worker thread while
the service may pause on the event loop. The collector resumes when the last pause ends,
unless it was already off when the first began (a caller's own `gc.disable()` stands).
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["paused"]

_lock = threading.Lock()
_pauses = 0
_resume = False  # whether the collector ran before the first of the current pauses


@contextmanager
def paused() -> Iterator[None]:
    """Run the body without cyclic garbage collection; for bounded, CPU-bound work only."""
    global _pauses, _resume
    with _lock:
        if _pauses == 0:
            _resume = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _lock:
            _pauses -= 1
            if _pauses == 0 and _resume:
                gc.enable()
