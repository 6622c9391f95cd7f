"""Byte layout of NanoVDB 32.4 grid buffers and .nvdb files (little-endian), as numpy structured dtypes.

Offsets follow /usr/include/nanovdb/NanoVDB.h and util/IO.h of NanoVDB 32.4.2 (the 32.7 layout is identical); see
/work/shared/NANOVDB.md for the derivation of each number.
"""

from __future__ import annotations

import numpy as np

MAGIC = 0x304244566F6E614E  # "NanoVDB0"
# 32.4.2: the newest version whose checksum rule both the 32.4 and the 32.6+ readers accept (see NANOVDB.md).
VERSION = (32 << 21) | (4 << 10) | 2

CODECS = {"none": 0, "zip": 1, "blosc": 2}

GRID_TYPE = {"float": 1, "vec3f": 6, "fp4": 13, "fp8": 14, "fp16": 15, "fpn": 16}
GRID_CLASS = {"unknown": 0, "levelset": 1, "fog": 2, "staggered": 3}

FLAG_HAS_BBOX = 1 << 1
FLAG_HAS_MINMAX = 1 << 2
FLAG_HAS_AVERAGE = 1 << 3
FLAG_HAS_STDDEV = 1 << 4
FLAG_BREADTH_FIRST = 1 << 5

ALIGN = 32
MAX_NAME = 255  # GridData.mGridName is 256 bytes including the terminating NUL; longer names need blind data

# Node geometry: (log2 of children per axis, log2 of voxels per axis)
LEAF_LOG2, LOWER_LOG2, UPPER_LOG2 = 3, 4, 5
LEAF_TOTAL, LOWER_TOTAL, UPPER_TOTAL = 3, 7, 12
# voxels covered by one active tile stored at tile level 1 (lower table), 2 (upper table), 3 (root table)
TILE_VOXELS = {1: 1 << 9, 2: 1 << 21, 3: 1 << 36}
TILE_DIM = {1: 8, 2: 128, 3: 4096}

GRID_DATA_SIZE = 672
TREE_DATA_SIZE = 64
FILE_HEADER_SIZE = 16
FILE_META_SIZE = 176


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def _dt(fields: list[tuple[str, str, int]], itemsize: int) -> np.dtype:
    return np.dtype(
        {
            "names": [f[0] for f in fields],
            "formats": [f[1] for f in fields],
            "offsets": [f[2] for f in fields],
            "itemsize": itemsize,
        }
    )


GRID_DATA = _dt(
    [
        ("magic", "<u8", 0),
        ("checksum", "<u8", 8),
        ("version", "<u4", 16),
        ("flags", "<u4", 20),
        ("grid_index", "<u4", 24),
        ("grid_count", "<u4", 28),
        ("grid_size", "<u8", 32),
        ("name", "S256", 40),
        ("mat_f", "(9,)<f4", 296),
        ("inv_mat_f", "(9,)<f4", 332),
        ("vec_f", "(3,)<f4", 368),
        ("taper_f", "<f4", 380),
        ("mat_d", "(9,)<f8", 384),
        ("inv_mat_d", "(9,)<f8", 456),
        ("vec_d", "(3,)<f8", 528),
        ("taper_d", "<f8", 552),
        ("world_bbox", "(6,)<f8", 560),
        ("voxel_size", "(3,)<f8", 608),
        ("grid_class", "<u4", 632),
        ("grid_type", "<u4", 636),
        ("blind_offset", "<i8", 640),
        ("blind_count", "<u4", 648),
        ("data0", "<u4", 652),
        ("data1", "<u8", 656),
        ("data2", "<u8", 664),
    ],
    GRID_DATA_SIZE,
)

TREE_DATA = _dt(
    [
        ("node_offset", "(4,)<i8", 0),
        ("node_count", "(3,)<u4", 32),
        ("tile_count", "(3,)<u4", 44),
        ("voxel_count", "<u8", 56),
    ],
    TREE_DATA_SIZE,
)

FILE_HEADER = _dt([("magic", "<u8", 0), ("version", "<u4", 8), ("grid_count", "<u2", 12), ("codec", "<u2", 14)], 16)

FILE_META = _dt(
    [
        ("grid_size", "<u8", 0),
        ("file_size", "<u8", 8),
        ("name_key", "<u8", 16),
        ("voxel_count", "<u8", 24),
        ("grid_type", "<u4", 32),
        ("grid_class", "<u4", 36),
        ("world_bbox", "(6,)<f8", 40),
        ("index_bbox", "(6,)<i4", 88),
        ("voxel_size", "(3,)<f8", 112),
        ("name_size", "<u4", 136),
        ("node_count", "(4,)<u4", 140),
        ("tile_count", "(3,)<u4", 156),
        ("codec", "<u2", 168),
        ("padding", "<u2", 170),
        ("version", "<u4", 172),
    ],
    FILE_META_SIZE,
)


class ValueLayout:
    """Sizes and offsets that depend on the stored value type (float-valued trees share one layout)."""

    def __init__(self, vec: bool) -> None:
        self.vec = vec
        c = 3 if vec else 1
        self.channels = c
        vshape = "(3,)<f4" if vec else "<f4"
        self.value_format = vshape
        vb = 4 * c
        # RootData: bbox, table size, background, min, max (ValueT), avg, std (float); 32-byte aligned
        self.root = _dt(
            [
                ("bbox", "(6,)<i4", 0),
                ("table_size", "<u4", 24),
                ("background", vshape, 28),
                ("min", vshape, 28 + vb),
                ("max", vshape, 28 + 2 * vb),
                ("avg", "<f4", 28 + 3 * vb),
                ("std", "<f4", 32 + 3 * vb),
            ],
            _align(36 + 3 * vb),
        )
        self.root_tile = _dt(
            [("key", "<u8", 0), ("child", "<i8", 8), ("state", "<u4", 16), ("value", vshape, 20)],
            _align(20 + vb),
        )
        # InternalData table entries are union{ValueT; int64 child}: 8 bytes for float, 16 for Vec3f (8-byte aligned)
        self.table_entry = 16 if vec else 8
        self.upper = self._internal(UPPER_LOG2, vshape, vb)
        self.lower = self._internal(LOWER_LOG2, vshape, vb)
        self.leaf = _dt(
            [
                ("bbox_min", "(3,)<i4", 0),
                ("bbox_dif", "(3,)u1", 12),
                ("flags", "u1", 15),
                ("mask", "(8,)<u8", 16),
                ("min", vshape, 80),
                ("max", vshape, 80 + vb),
                ("avg", "<f4", 80 + 2 * vb),
                ("std", "<f4", 84 + 2 * vb),
                ("values", f"(512,{c})<f4" if vec else "(512,)<f4", _align(88 + 2 * vb)),
            ],
            _align(88 + 2 * vb) + 512 * vb,
        )

    def _internal(self, log2: int, vshape: str, vb: int) -> np.dtype:
        n = 1 << (3 * log2)
        words = n // 64
        mask_bytes = n // 8
        stats = 32 + 2 * mask_bytes
        table = _align(stats + 2 * vb + 8)
        return _dt(
            [
                ("bbox", "(6,)<i4", 0),
                ("flags", "<u8", 24),
                ("value_mask", f"({words},)<u8", 32),
                ("child_mask", f"({words},)<u8", 32 + mask_bytes),
                ("min", vshape, stats),
                ("max", vshape, stats + vb),
                ("avg", "<f4", stats + 2 * vb),
                ("std", "<f4", stats + 2 * vb + 4),
                ("table", f"({n * self.table_entry // 8},)<i8", table),
            ],
            table + n * self.table_entry,
        )


# Quantized leaves (LeafFnBase, 96 bytes) followed by the code array; FpN leaves are 96 + 64 * bit width bytes.
LEAF_FN_BASE = _dt(
    [
        ("bbox_min", "(3,)<i4", 0),
        ("bbox_dif", "(3,)u1", 12),
        ("flags", "u1", 15),
        ("mask", "(8,)<u8", 16),
        ("minimum", "<f4", 80),
        ("quantum", "<f4", 84),
        ("qmin", "<u2", 88),
        ("qmax", "<u2", 90),
        ("qavg", "<u2", 92),
        ("qdev", "<u2", 94),
    ],
    96,
)
FIXED_BITS = {"fp4": 4, "fp8": 8, "fp16": 16}


def fixed_quant_leaf(bits: int) -> np.dtype:
    fields = [(name, LEAF_FN_BASE.fields[name][0], LEAF_FN_BASE.fields[name][1]) for name in LEAF_FN_BASE.names]
    nbytes = 512 * bits // 8
    fields.append(("code", f"({nbytes},)u1", 96))
    return np.dtype(
        {
            "names": [f[0] for f in fields],
            "formats": [f[1] for f in fields],
            "offsets": [f[2] for f in fields],
            "itemsize": 96 + nbytes,
        }
    )


FLOAT_LAYOUT = ValueLayout(vec=False)
VEC3_LAYOUT = ValueLayout(vec=True)


def string_hash(name: bytes) -> int:
    """nanovdb::io::stringHash, the key readers use to find a grid by name."""
    h = 0
    mask = (1 << 64) - 1
    for c in name:
        h = (h * 67 + c + (h >> 56)) & mask
    return h


def _check_sizes() -> None:
    # Guards against editing a field list above without noticing that a node size changed.
    f, v = FLOAT_LAYOUT, VEC3_LAYOUT
    expected = {
        "root f": (f.root.itemsize, 64),
        "root v": (v.root.itemsize, 96),
        "tile f": (f.root_tile.itemsize, 32),
        "tile v": (v.root_tile.itemsize, 32),
        "upper f": (f.upper.itemsize, 270400),
        "upper v": (v.upper.itemsize, 532544),
        "lower f": (f.lower.itemsize, 33856),
        "lower v": (v.lower.itemsize, 66624),
        "leaf f": (f.leaf.itemsize, 2144),
        "leaf v": (v.leaf.itemsize, 6272),
    }
    bad = {k: got for k, (got, want) in expected.items() if got != want}
    if bad:
        raise AssertionError(f"NanoVDB layout drift: {bad}")


_check_sizes()
