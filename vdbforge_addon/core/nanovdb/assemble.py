"""Build one NanoVDB grid buffer (GridData, TreeData, root, upper, lower and leaf nodes) from a NanoGrid."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

from ..errors import VDBForgeError
from . import layout as L
from .buffers import zeroed
from .grid import NanoGrid
from .quantize import Quantized, quantize_fixed, quantize_fpn, quantize_stat
from .stats import Stats, combine, leaf_bboxes, leaf_stats, tile_stats
from .tree import Topology, build_topology

QUANTIZE = (None, "fp4", "fp8", "fp16", "fpn")
_POP8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.int64)
_I32_MAX, _I32_MIN = np.iinfo(np.int32).max, np.iinfo(np.int32).min
_F32_MAX = float(np.finfo(np.float32).max)
_F64_MAX = float(np.finfo(np.float64).max)


@dataclass
class BuiltGrid:
    buffer: np.ndarray  # uint8, the grid exactly as it sits in memory and (uncompressed) on disk
    meta: np.ndarray  # one layout.FILE_META record (file_size and codec filled in by the writer)
    name: bytes
    info: dict = field(default_factory=dict)


def default_tolerance(grid: NanoGrid) -> float:
    """OpenToNanoVDB's FpN defaults: 0.1 voxel for level sets (band ±3 voxels), 0.01 for fog volumes ([0, 1])."""
    if grid.grid_class == "levelset":
        return 0.1 * float(voxel_size(grid.transform)[0])
    if grid.grid_class == "fog":
        return 0.01
    return 0.0


def _det3(a) -> float:
    return (
        a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1])
        - a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0])
        + a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0])
    )


def affine_inverse(m: np.ndarray) -> np.ndarray:
    """Inverse of a 4x4 row-vector affine matrix by cofactors: plain floats beat LAPACK's call overhead here, and
    zeros come out as +0.0 like OpenVDB's Mat4::inverse (numpy's can produce -0.0, a different bit pattern)."""
    a = m[:3, :3].tolist()
    det = _det3(a)
    cof = [[0.0] * 3 for _ in range(3)]
    for i in range(3):
        for j in range(3):
            r = [k for k in range(3) if k != i]
            c = [k for k in range(3) if k != j]
            minor = a[r[0]][c[0]] * a[r[1]][c[1]] - a[r[0]][c[1]] * a[r[1]][c[0]]
            cof[j][i] = (-1) ** (i + j) * minor / det + 0.0
    inv = np.eye(4)
    inv[:3, :3] = cof
    inv[3, :3] = -(m[3, :3] @ inv[:3, :3]) + 0.0
    return inv


def voxel_size(m: np.ndarray) -> np.ndarray:
    """AffineMap::voxelSize, collapsed to one value when the map has uniform scale (as the converter stores it)."""
    mat = m[:3, :3]
    vs = np.sqrt((mat * mat).sum(axis=1))
    unit = mat / abs(_det3(mat.tolist())) ** (1.0 / 3.0)
    uniform = abs(abs(_det3(unit.tolist())) - 1.0) <= 1e-8 and bool(np.all(np.abs(unit @ unit.T - np.eye(3)) <= 1e-8))
    return np.full(3, vs[0]) if uniform else vs


def build_grid(
    grid: NanoGrid, quantize: str | None = None, tolerance: float | None = None, dither: bool = False
) -> BuiltGrid:
    """The grid's complete NanoVDB buffer (breadth-first nodes, statistics, partial checksum) and its file metadata."""
    if quantize not in QUANTIZE:
        raise VDBForgeError(f"unknown quantization '{quantize}'; use one of none, fp4, fp8, fp16, fpn")
    vec = grid.value_type == "vec3f"
    qmode = None if vec else quantize
    gtype = qmode or grid.value_type
    lay = L.VEC3_LAYOUT if vec else L.FLOAT_LAYOUT
    topo = build_topology(grid)
    n_leaf, n_lower, n_upper = topo.counts

    lv = grid.leaves
    order = topo.leaf_order
    identity = n_leaf == 0 or bool(np.all(order == np.arange(n_leaf)))
    origins = lv.origins if identity else lv.origins[order]
    masks = lv.masks if identity else lv.masks[order]
    values = lv.values if identity else lv.values[order]

    quant: Quantized | None = None
    info: dict = {"type": gtype}
    if qmode == "fpn":
        tol = default_tolerance(grid) if tolerance is None else float(tolerance)
        quant = quantize_fpn(values, tol, dither)
        info["tolerance"] = tol
        info["bits_per_leaf"] = {1 << b: int(c) for b, c in enumerate(np.bincount(quant.log2_bits, minlength=5)) if c}
    elif qmode:
        quant = quantize_fixed(values, L.FIXED_BITS[qmode], dither)
    decoded = quant.decoded if quant is not None else values
    if quant is not None and n_leaf:
        act = np.unpackbits(masks.view(np.uint8), bitorder="little").reshape(n_leaf, 512).view(bool)
        err = np.abs(decoded - values)[act]
        info["max_abs_error"] = float(err.max()) if err.size else 0.0
        info["max_abs_error_all"] = float(np.abs(decoded - values).max())

    bbox_min, bbox_dif, _ = leaf_bboxes(origins, masks)
    s0 = leaf_stats(decoded, masks, bbox_min, bbox_dif)
    tiles = grid.tiles
    t1, t2, t3 = topo.tile1, topo.tile2, topo.tile3
    st1 = tile_stats(tiles.values[t1[0]], tiles.active[t1[0]], tiles.origins[t1[0]], 8, L.TILE_VOXELS[1])
    st2 = tile_stats(tiles.values[t2[0]], tiles.active[t2[0]], tiles.origins[t2[0]], 128, L.TILE_VOXELS[2])
    st3 = tile_stats(tiles.values[t3[0]], tiles.active[t3[0]], tiles.origins[t3[0]], 4096, L.TILE_VOXELS[3])
    s1 = combine(n_lower, [(t1[1], st1), (topo.leaf_parent, s0)], vec)
    s2 = combine(n_upper, [(t2[1], st2), (topo.lower_parent, s1)], vec)
    z3, zu = np.zeros(len(t3[0]), np.int64), np.zeros(n_upper, np.int64)
    s3 = combine(1, [(z3, st3), (zu, s2)], vec)

    # byte layout: GridData | TreeData | RootData + tiles | uppers | lowers | leaves
    table_size = n_upper + len(t3[0])
    root_at = L.GRID_DATA_SIZE + L.TREE_DATA_SIZE
    upper_at = root_at + lay.root.itemsize + lay.root_tile.itemsize * table_size
    lower_at = upper_at + n_upper * lay.upper.itemsize
    leaf_at = lower_at + n_lower * lay.lower.itemsize
    if qmode == "fpn":
        leaf_sizes = 96 + 64 * (1 << quant.log2_bits.astype(np.int64))
    else:
        leaf_size = (L.fixed_quant_leaf(L.FIXED_BITS[qmode]) if qmode else lay.leaf).itemsize
        leaf_sizes = np.full(n_leaf, leaf_size, np.int64)
    leaf_pos = leaf_at + np.concatenate([[0], np.cumsum(leaf_sizes)[:-1]]).astype(np.int64) if n_leaf else leaf_sizes
    total = leaf_at + int(leaf_sizes.sum())
    buf = zeroed(total)

    upper_pos = upper_at + np.arange(n_upper, dtype=np.int64) * lay.upper.itemsize
    lower_pos = lower_at + np.arange(n_lower, dtype=np.int64) * lay.lower.itemsize
    bg = grid.background_array()

    _write_internal(buf, lay.upper, upper_at, topo.upper_origins, s2, bg, vec, 15, 12,
                    (t2[1], t2[2], tiles.values[t2[0]], tiles.active[t2[0]]),
                    (topo.lower_parent, topo.lower_slot, lower_pos - upper_pos[topo.lower_parent]))  # fmt: skip
    _write_internal(buf, lay.lower, lower_at, topo.lower_origins, s1, bg, vec, 12, 7,
                    (t1[1], t1[2], tiles.values[t1[0]], tiles.active[t1[0]]),
                    (topo.leaf_parent, topo.leaf_slot, leaf_pos - lower_pos[topo.leaf_parent]))  # fmt: skip
    if qmode:
        _write_quantized_leaves(buf, leaf_at, leaf_pos, qmode, quant, s0, bbox_min, bbox_dif, masks)
    elif n_leaf:
        leaves = np.ndarray((n_leaf,), dtype=lay.leaf, buffer=buf, offset=leaf_at)
        leaves["bbox_min"] = bbox_min
        leaves["bbox_dif"] = bbox_dif
        leaves["flags"] = np.where(s0.count > 0, 2, 0).astype(np.uint8)
        leaves["mask"] = masks
        _write_stats(leaves, s0)
        leaves["values"] = values

    active_tiles = [int(np.count_nonzero(tiles.active[t[0]])) for t in (t1, t2, t3)]
    voxel_count = int(_POP8[masks.view(np.uint8)].sum()) if n_leaf else 0
    voxel_count += sum(c * L.TILE_VOXELS[lvl] for c, lvl in zip(active_tiles, (1, 2, 3), strict=True))
    root_bbox = _write_root(buf, lay, root_at, upper_pos, topo, s3, bg, vec, tiles, table_size)

    tree = np.ndarray((1,), dtype=L.TREE_DATA, buffer=buf, offset=L.GRID_DATA_SIZE)
    tree["node_offset"] = [leaf_at - L.GRID_DATA_SIZE, lower_at - L.GRID_DATA_SIZE, upper_at - L.GRID_DATA_SIZE,
                           root_at - L.GRID_DATA_SIZE]  # fmt: skip
    tree["node_count"] = [n_leaf, n_lower, n_upper]
    tree["tile_count"] = active_tiles
    tree["voxel_count"] = voxel_count

    name = grid.name.encode("utf-8")
    world_bbox, vsize = _write_grid_data(buf, grid, gtype, total, name, root_bbox)
    head = zlib.crc32(memoryview(buf)[16:upper_at])
    # "partial" checksum: head CRC + tail all-ones, the one mode both 32.4 and 32.6+ validators accept
    buf[8:16] = np.frombuffer(np.uint64(head | (0xFFFFFFFF << 32)).tobytes(), np.uint8)

    meta = np.zeros(1, L.FILE_META)
    meta["grid_size"] = total
    meta["file_size"] = total
    meta["name_key"] = L.string_hash(name)
    meta["voxel_count"] = voxel_count
    meta["grid_type"] = L.GRID_TYPE[gtype]
    meta["grid_class"] = L.GRID_CLASS[grid.grid_class]
    meta["world_bbox"] = world_bbox
    meta["index_bbox"] = root_bbox
    meta["voxel_size"] = vsize
    meta["name_size"] = len(name) + 1
    meta["node_count"] = [n_leaf, n_lower, n_upper, 1]
    meta["tile_count"] = active_tiles
    meta["version"] = L.VERSION
    info.update(
        name=grid.name,
        grid_class=grid.grid_class,
        grid_size=total,
        voxels=voxel_count,
        leaves=n_leaf,
        lowers=n_lower,
        uppers=n_upper,
        tiles=active_tiles,
    )
    return BuiltGrid(buf, meta, name, info)


def _node_bbox(s: Stats, origins: np.ndarray) -> np.ndarray:
    # An empty node keeps min = origin (max = origin - 1, still "empty") so InternalNode::origin() stays right.
    empty = (s.count == 0)[:, None]
    lo = np.where(empty, origins, s.bmin)
    hi = np.where(empty, origins - 1, s.bmax)
    return np.concatenate([lo, hi], axis=1).astype(np.int32)


def _write_stats(rec: np.ndarray, s: Stats) -> None:
    rec["min"] = s.vmin
    rec["max"] = s.vmax
    rec["avg"] = s.mean.astype(np.float32)
    rec["std"] = s.std().astype(np.float32)


def _bits(n_nodes: int, n_slots: int, node: np.ndarray, slot: np.ndarray) -> np.ndarray:
    b = np.zeros((n_nodes, n_slots), bool)
    b[node, slot] = True
    return np.packbits(b, axis=1, bitorder="little").view("<u8")


def _write_internal(buf, dtype, at, origins, s, bg, vec, log2_slots, total, tiles, children) -> None:
    n = len(origins)
    if n == 0:
        return
    nodes = np.ndarray((n,), dtype=dtype, buffer=buf, offset=at)
    slots = 1 << log2_slots
    nodes["bbox"] = _node_bbox(s, origins)
    nodes["flags"] = np.where(s.count > 0, 2, 1).astype(np.uint64)
    t_node, t_slot, t_val, t_act = tiles
    c_node, c_slot, c_off = children
    nodes["value_mask"] = _bits(n, slots, t_node[t_act], t_slot[t_act])
    nodes["child_mask"] = _bits(n, slots, c_node, c_slot)
    has = s.count > 0
    sub = s.take(np.flatnonzero(has))
    idx = np.flatnonzero(has)
    for k, v in (("min", sub.vmin), ("max", sub.vmax), ("avg", sub.mean), ("std", sub.std())):
        nodes[k][idx] = v
    # table entries are union{value; int64 child offset}: write values through a float view, offsets through int64
    entry = 16 if vec else 8
    t_at = at + dtype.fields["table"][1]
    fv = np.ndarray((n, slots, entry // 4), np.float32, buffer=buf, offset=t_at, strides=(dtype.itemsize, entry, 4))
    iv = np.ndarray((n, slots), np.int64, buffer=buf, offset=t_at, strides=(dtype.itemsize, entry))
    nv = 3 if vec else 1
    fv[:, :, :nv] = bg
    fv[t_node, t_slot, :nv] = t_val.reshape(-1, nv)
    fv[c_node, c_slot, :] = 0
    iv[c_node, c_slot] = c_off


def _write_quantized_leaves(buf, leaf_at, leaf_pos, qmode, q, s0, bbox_min, bbox_dif, masks) -> None:
    n = len(masks)
    if n == 0:
        return
    head = np.zeros(n, L.LEAF_FN_BASE)
    head["bbox_min"] = bbox_min
    head["bbox_dif"] = bbox_dif
    flags = np.where(s0.count > 0, 2, 0).astype(np.uint8)
    if qmode == "fpn":
        flags |= (q.log2_bits << 5).astype(np.uint8)
    head["flags"] = flags
    head["mask"] = masks
    head["minimum"] = q.minimum
    head["quantum"] = q.quantum
    act = s0.count > 0
    for k, x, off in (("qmin", s0.vmin, True), ("qmax", s0.vmax, True), ("qavg", s0.mean, True),
                      ("qdev", s0.std(), False)):  # fmt: skip
        head[k] = np.where(act, quantize_stat(x, q.minimum, q.quantum, off), 0)
    words = buf.view(np.uint64)
    wpos = leaf_pos // 8
    words[wpos[:, None] + np.arange(12)] = head.view(np.uint64).reshape(n, 12)
    for idx, payload in q.codes:
        nw = payload.shape[1] // 8
        words[wpos[idx, None] + 12 + np.arange(nw)] = np.ascontiguousarray(payload).view(np.uint64).reshape(-1, nw)


def _write_root(buf, lay, at, upper_pos, topo: Topology, s3: Stats, bg, vec, tiles, table_size) -> np.ndarray:
    root = np.ndarray((1,), dtype=lay.root, buffer=buf, offset=at)
    root["table_size"] = table_size
    root["background"] = bg
    if s3.count[0] > 0:
        bbox = np.concatenate([s3.bmin[0], s3.bmax[0]]).astype(np.int32)
        _write_stats(root, s3)
    else:
        bbox = np.array([_I32_MAX] * 3 + [_I32_MIN] * 3, np.int32)  # CoordBBox(): empty
        if table_size == 0:
            root["min"] = bg
            root["max"] = bg
        else:  # GridStats' untouched Extrema: min = +max float, max = lowest float
            root["min"] = _F32_MAX
            root["max"] = -_F32_MAX
    root["bbox"] = bbox
    rt = np.ndarray((table_size,), dtype=lay.root_tile, buffer=buf, offset=at + lay.root.itemsize)
    n_up = len(upper_pos)
    rt["key"][:n_up] = topo.upper_keys
    rt["child"][:n_up] = upper_pos - at
    ti = topo.tile3[0]
    rt["key"][n_up:] = topo.tile3[1]
    rt["state"][n_up:] = tiles.active[ti]
    rt["value"][n_up:] = tiles.values[ti]
    return bbox


def _write_grid_data(buf, grid: NanoGrid, gtype: str, total: int, name: bytes, root_bbox: np.ndarray):
    gd = np.ndarray((1,), dtype=L.GRID_DATA, buffer=buf, offset=0)
    m = grid.transform
    inv = affine_inverse(m)
    empty = bool(np.any(root_bbox[:3] > root_bbox[3:]))
    flags = L.FLAG_HAS_MINMAX | L.FLAG_HAS_AVERAGE | L.FLAG_HAS_STDDEV | L.FLAG_BREADTH_FIRST
    if empty:
        world = np.array([_F64_MAX] * 3 + [-_F64_MAX] * 3)
    else:
        flags |= L.FLAG_HAS_BBOX
        lo, hi = root_bbox[:3].astype(np.float64), root_bbox[3:].astype(np.float64) + 1.0
        corners = np.array([[(lo, hi)[(c >> a) & 1][a] for a in range(3)] for c in range(8)])
        w = corners @ m[:3, :3] + m[3, :3]
        world = np.concatenate([w.min(axis=0), w.max(axis=0)])
    vsize = voxel_size(m)
    gd["magic"] = L.MAGIC
    gd["version"] = L.VERSION
    gd["flags"] = flags
    gd["grid_index"] = 0
    gd["grid_count"] = 1
    gd["grid_size"] = total
    gd["name"] = name
    gd["mat_f"] = m[:3, :3].T.reshape(9)
    gd["inv_mat_f"] = inv[:3, :3].T.reshape(9)
    gd["vec_f"] = m[3, :3]
    gd["taper_f"] = 1.0
    gd["mat_d"] = m[:3, :3].T.reshape(9)
    gd["inv_mat_d"] = inv[:3, :3].T.reshape(9)
    gd["vec_d"] = m[3, :3]
    gd["taper_d"] = 1.0
    gd["world_bbox"] = world
    gd["voxel_size"] = vsize
    gd["grid_class"] = L.GRID_CLASS[grid.grid_class]
    gd["grid_type"] = L.GRID_TYPE[gtype]
    return world, vsize
