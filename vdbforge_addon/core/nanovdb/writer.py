"""Write .nvdb files: one segment (FileHeader, one FileMetaData + name per grid, then the grid payloads).

Grids are built, compressed and written one at a time, so peak memory is the input frame plus one grid buffer.
The file appears under its final name only when complete.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..atomic import temp_path_for
from ..errors import VDBForgeError
from . import layout as L
from .assemble import QUANTIZE, build_grid
from .codec import check_codec, encode
from .grid import NanoGrid


def write_nvdb(
    path: str | os.PathLike,
    grids: Sequence[NanoGrid],
    codec: str = "none",
    quantize: str | None = None,
    tolerance: float | None = None,
    *,
    dither: bool = False,
) -> dict:
    """Write `grids` to one .nvdb file and return sizes and counts.

    quantize applies to float grids (vec3f grids are always stored as Vec3f): "fp4", "fp8", "fp16" store 4/8/16-bit
    codes per leaf; "fpn" picks 1-16 bits per leaf so every voxel is within `tolerance` (absolute; default 0.01 for
    fog, 0.1 voxel for level sets, else 0). dither uses NanoVDB's 8^3 dither pattern instead of rounding."""
    grids = list(grids)
    if not grids:
        raise VDBForgeError("no grids to write to the NanoVDB file")
    if len(grids) > 0xFFFF:
        raise VDBForgeError(f"a NanoVDB file holds at most 65535 grids, got {len(grids)}")
    check_codec(codec)
    if quantize == "none":
        quantize = None
    if quantize not in QUANTIZE:
        raise VDBForgeError(f"unknown quantization '{quantize}'; use one of none, fp4, fp8, fp16, fpn")
    if tolerance is not None and quantize != "fpn":
        raise VDBForgeError("a tolerance applies only to quantize='fpn'")
    if tolerance is not None and not tolerance >= 0:
        raise VDBForgeError(f"the FpN tolerance must be >= 0, got {tolerance}")
    for g in grids:
        if not isinstance(g, NanoGrid):
            raise VDBForgeError(f"write_nvdb expects NanoGrid objects, got {type(g).__name__}")

    names = [g.name.encode("utf-8") for g in grids]
    header_size = L.FILE_HEADER_SIZE + sum(L.FILE_META_SIZE + len(n) + 1 for n in names)
    path = Path(path)
    infos = []
    metas = []
    with temp_path_for(path) as tmp, open(tmp, "wb") as fh:
        fh.write(bytes(header_size))
        for g in grids:
            built = build_grid(g, quantize, tolerance, dither)
            size = 0
            for piece in encode(built.buffer, codec):
                fh.write(piece)
                size += len(piece)
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
        head["grid_count"] = len(grids)
        head["codec"] = L.CODECS[codec]
        fh.write(head.tobytes())
        for meta, name in metas:
            fh.write(meta.tobytes())
            fh.write(name + b"\0")
    return {
        "path": str(path),
        "codec": codec,
        "quantize": quantize or "none",
        "bytes": total,
        "grid_count": len(grids),
        "grids": infos,
    }
