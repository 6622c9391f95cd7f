"""Write .nvdb files: one segment (FileHeader, one FileMetaData + name per grid, then the grid payloads).

Grids are built on a small thread pool (numpy, zlib and blosc release the GIL) and written in order as they finish,
with at most `workers` grids in flight, so peak memory is the input frame plus a few grid buffers. The file appears
under its final name only when complete.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np

from ..atomic import temp_path_for
from ..errors import VDBForgeError
from . import layout as L
from .assemble import QUANTIZE, BuiltGrid, build_grid
from .buffers import BufferPool, pool_in_use
from .codec import check_codec, encode
from .dense import keep_thread_scratch, scratch_scope
from .grid import NanoGrid


def default_workers(codec: str) -> int:
    """Grids in flight. zlib releases the GIL and runs single-threaded, so zip frames compress two grids at once when
    there are two cores. For none and blosc (which already compresses on all cores) a second grid costs more than it
    gains: measured on a 128^3 frame, 140 ms with one worker against 176 ms with two."""
    return min(2, os.cpu_count() or 1) if codec == "zip" else 1


def check_options(codec: str, quantize: str | None, tolerance: float | None) -> str | None:
    """Validate writer options up front (before any work); returns quantize with "none" normalised to None."""
    check_codec(codec)
    if quantize == "none":
        quantize = None
    if quantize not in QUANTIZE:
        raise VDBForgeError(f"unknown quantization '{quantize}'; use one of none, fp4, fp8, fp16, fpn")
    if tolerance is not None and quantize != "fpn":
        raise VDBForgeError("a tolerance applies only to quantize='fpn'")
    if tolerance is not None and not tolerance >= 0:
        raise VDBForgeError(f"the FpN tolerance must be >= 0, got {tolerance}")
    return quantize


def write_nvdb(
    path: str | os.PathLike,
    grids: Sequence[NanoGrid],
    codec: str = "none",
    quantize: str | None = None,
    tolerance: float | None = None,
    *,
    dither: bool = False,
    workers: int | None = None,
) -> dict:
    """Write `grids` to one .nvdb file and return sizes and counts.

    quantize applies to float grids (vec3f grids are always stored as Vec3f): "fp4", "fp8", "fp16" store 4/8/16-bit
    codes per leaf; "fpn" picks 1-16 bits per leaf so every voxel is within `tolerance` (absolute; default 0.01 for
    fog, 0.1 voxel for level sets, else 0). dither uses NanoVDB's 8^3 dither pattern instead of rounding.
    workers: grids built and compressed concurrently (default: 2 for zip, else 1)."""
    grids = list(grids)
    quantize = check_options(codec, quantize, tolerance)
    for g in grids:
        if not isinstance(g, NanoGrid):
            raise VDBForgeError(f"write_nvdb expects NanoGrid objects, got {type(g).__name__}")
    jobs = [partial(build_grid, g, quantize, tolerance, dither) for g in grids]
    info = write_built(path, [g.name for g in grids], jobs, codec, workers)
    info["quantize"] = quantize or "none"
    return info


def write_built(
    path: str | os.PathLike, names: list[str], jobs: list[Callable[[], BuiltGrid]], codec: str, workers: int | None
) -> dict:
    """Write the grids produced by `jobs` (in this order, named `names`) as one segment."""
    if not jobs:
        raise VDBForgeError("no grids to write to the NanoVDB file")
    if len(jobs) > 0xFFFF:
        raise VDBForgeError(f"a NanoVDB file holds at most 65535 grids, got {len(jobs)}")
    encoded = [n.encode("utf-8") for n in names]
    header_size = L.FILE_HEADER_SIZE + sum(L.FILE_META_SIZE + len(n) + 1 for n in encoded)
    path = Path(path)
    infos = []
    metas = []
    with temp_path_for(path) as tmp, open(tmp, "wb") as fh:
        fh.write(bytes(header_size))
        if workers is None:
            workers = default_workers(codec)
        # compress inside the job: zlib and blosc release the GIL, so grids compress side by side
        pool = BufferPool()
        staged = [partial(_build_and_encode, job, codec, pool) for job in jobs]
        for built, pieces in _in_order(staged, workers):
            size = 0
            for piece in pieces:
                fh.write(piece)
                size += len(piece)
            del pieces
            if codec == "none":  # the pieces were views of the buffer: free only now that they are written
                pool.give(built.buffer)
            built.meta["file_size"] = size
            built.meta["codec"] = L.CODECS[codec]
            metas.append((built.meta, built.name))
            built.info["file_size"] = size
            infos.append(built.info)
            del built
        total = fh.tell()
        fh.seek(0)
        head = np.zeros(1, L.FILE_HEADER)
        head["magic"] = L.MAGIC
        head["version"] = L.VERSION
        head["grid_count"] = len(jobs)
        head["codec"] = L.CODECS[codec]
        fh.write(head.tobytes())
        for (meta, name), expected in zip(metas, encoded, strict=True):
            if name != expected:
                raise VDBForgeError(f"grid '{expected.decode()}' was built under another name ('{name.decode()}')")
            fh.write(meta.tobytes())
            fh.write(name + b"\0")
    return {"path": str(path), "codec": codec, "bytes": total, "grid_count": len(jobs), "grids": infos}


def _build_and_encode(job: Callable[[], BuiltGrid], codec: str, pool: BufferPool) -> tuple[BuiltGrid, list]:
    with pool_in_use(pool):
        built = job()
    pieces = list(encode(built.buffer, codec))
    if codec != "none":  # compressed copies are all that is written
        pool.give(built.buffer)
    return built, pieces


def _in_order(jobs: list[Callable], workers: int) -> Iterator:
    """Run jobs with at most `workers` in flight and yield their results in submission order."""
    if workers <= 1 or len(jobs) == 1:
        with scratch_scope():
            for job in jobs:
                yield job()
        return
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="nvdb", initializer=keep_thread_scratch)
    pending: deque = deque()
    todo = iter(jobs)
    try:
        for job in todo:
            pending.append(pool.submit(job))
            if len(pending) >= workers:
                break
        while pending:
            result = pending.popleft().result()
            nxt = next(todo, None)
            if nxt is not None:
                pending.append(pool.submit(nxt))
            yield result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
