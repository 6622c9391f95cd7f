"""Payload codecs of .nvdb files (util/IO.h Internal::write): raw, zlib, or chunked blosc."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

import numpy as np

from ..errors import VDBForgeError

BLOSC_CHUNK = 1 << 30  # IO.h MAX_SIZE: the reader inflates chunk by chunk of at most 1 GiB
BLOSC_BLOCKSIZE = 1 << 18  # what the C++ writer passes to blosc_compress_ctx


def _blosc():
    try:
        import blosc  # lazily: an optional dependency, needed only for this codec
    except ImportError:
        raise VDBForgeError("the BLOSC codec needs the 'blosc' Python package (pip install blosc)") from None
    return blosc


def single_threaded_blosc() -> int | None:
    """Compress with one blosc thread (when frames already run side by side in processes); returns the previous
    thread count to restore, or None without the blosc package."""
    try:
        import blosc
    except ImportError:
        return None
    return blosc.set_nthreads(1)


def restore_blosc_threads(previous: int | None) -> None:
    if previous is not None:
        _blosc().set_nthreads(previous)


def check_codec(codec: str) -> None:
    if codec not in ("none", "zip", "blosc"):
        raise VDBForgeError(f"unknown NanoVDB codec '{codec}'; use none, zip or blosc")
    if codec == "blosc":
        _blosc()


def encode(buffer: np.ndarray, codec: str) -> Iterator[bytes | memoryview]:
    """Yield the on-disk pieces of one grid payload; their total length is the grid's fileSize."""
    data = memoryview(buffer).cast("B")
    if codec == "none":
        yield data
    elif codec == "zip":
        packed = zlib.compress(data)
        yield struct.pack("<Q", len(packed))
        yield packed
    elif codec == "blosc":
        blosc = _blosc()
        blosc.set_blocksize(BLOSC_BLOCKSIZE)
        try:
            for start in range(0, max(len(data), 1), BLOSC_CHUNK):
                packed = blosc.compress(
                    data[start : start + BLOSC_CHUNK], typesize=4, clevel=9, shuffle=blosc.SHUFFLE, cname="lz4"
                )
                yield struct.pack("<Q", len(packed))
                yield packed
        finally:
            blosc.set_blocksize(0)  # back to blosc's automatic block size
    else:
        check_codec(codec)
