"""Grid buffers recycled while one file is written.

A fresh multi-megabyte buffer costs a page fault per 4 KiB the first time it is touched, which on these machines is
several times the cost of zeroing memory that is already mapped. The writer hands a buffer back once its bytes are on
disk (or compressed), and the next grid built on any thread reuses it; the pool is dropped with the write.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

_LOCAL = threading.local()
MAX_FREE = 4  # buffers kept for reuse: grids in flight are few, and each can be tens of MB


class BufferPool:
    def __init__(self) -> None:
        self._free: list[np.ndarray] = []
        self._lock = threading.Lock()

    def take(self, n: int) -> np.ndarray | None:
        """The smallest free buffer of at least n bytes (removed from the pool), or None."""
        with self._lock:
            fits = [b for b in self._free if b.nbytes >= n]
            if not fits:
                return None
            best = min(fits, key=lambda b: b.nbytes)
            self._free = [b for b in self._free if b is not best]
            return best

    def give(self, buf: np.ndarray) -> None:
        """Return a buffer from zeroed() whose contents are no longer needed."""
        base = buf.base if isinstance(buf.base, np.ndarray) else buf
        with self._lock:
            self._free.append(base)
            if len(self._free) > MAX_FREE:
                smallest = min(self._free, key=lambda b: b.nbytes)
                self._free = [b for b in self._free if b is not smallest]


@contextmanager
def pool_in_use(pool: BufferPool) -> Iterator[None]:
    """zeroed() on this thread draws from `pool` within the block."""
    prev = getattr(_LOCAL, "pool", None)
    _LOCAL.pool = pool
    try:
        yield
    finally:
        _LOCAL.pool = prev


def zeroed(n: int) -> np.ndarray:
    """n zero bytes (uint8), from the current pool when one is in use and has a buffer large enough."""
    pool = getattr(_LOCAL, "pool", None)
    buf = pool.take(n) if pool is not None else None
    if buf is None:
        return np.zeros(n, np.uint8)
    out = buf[:n]
    out.fill(0)
    return out
