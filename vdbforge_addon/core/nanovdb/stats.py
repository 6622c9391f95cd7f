"""Per-node statistics and active bounding boxes, computed the way nanovdb::GridStats (32.4) defines them.

Population statistics over active values, with active tiles weighted by the voxels they cover. For Vec3f the min/max
are the vectors of smallest/largest squared length and avg/std describe the squared length (GridStats.h Extrema<T,1>).
Partial results are merged with the parallel-variance formula in float64, as GridStats does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_F32_MAX = np.float32(np.finfo(np.float32).max)
_LOW_BIT = np.array([(b & -b).bit_length() - 1 if b else 0 for b in range(256)], dtype=np.int32)
_HIGH_BIT = np.array([b.bit_length() - 1 if b else 0 for b in range(256)], dtype=np.int32)


@dataclass
class Stats:
    count: np.ndarray  # (M,) float64 number of active voxels (exact below 2^53)
    mean: np.ndarray  # (M,) float64
    m2: np.ndarray  # (M,) float64 sum of squared deviations
    kmin: np.ndarray  # (M,) float32 ordering key of the minimum (the value, or |v|^2 for vec3)
    kmax: np.ndarray
    vmin: np.ndarray  # (M,) or (M, 3) float32
    vmax: np.ndarray
    bmin: np.ndarray  # (M, 3) int32 inclusive bbox of active values
    bmax: np.ndarray

    def __len__(self) -> int:
        return len(self.count)

    def std(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            var = np.where(self.count >= 2, self.m2 / np.maximum(self.count, 1), 0.0)
        return np.sqrt(np.maximum(var, 0.0))

    def take(self, idx: np.ndarray) -> Stats:
        return Stats(*(getattr(self, f)[idx] for f in self.__dataclass_fields__))


def sort_key(values: np.ndarray) -> np.ndarray:
    """Scalar that orders values like GridStats: the value itself, or Vec3f::lengthSqr() in float32."""
    if values.ndim >= 2 and values.shape[-1] == 3:
        v = values
        # (x*x + y*y) + z*z in float32, as lengthSqr evaluates it; two work arrays instead of five
        key = np.multiply(v[..., 0], v[..., 0])
        tmp = np.multiply(v[..., 1], v[..., 1])
        np.add(key, tmp, out=key)
        np.multiply(v[..., 2], v[..., 2], out=tmp)
        return np.add(key, tmp, out=key)
    return values


def unpack_masks(masks: np.ndarray) -> np.ndarray:
    n = len(masks)
    bits = np.unpackbits(masks.view(np.uint8).reshape(n, 64), axis=1, bitorder="little")
    return bits.view(bool)


def leaf_bboxes(origins: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tight bbox of active voxels per leaf from the 8 mask words (LeafNode::updateBBox): (min, dif, has_active)."""
    n = len(masks)
    if n == 0:
        return np.zeros((0, 3), np.int32), np.zeros((0, 3), np.uint8), np.zeros(0, bool)
    nz = masks != 0
    has = nz.any(axis=1)
    xmin = np.argmax(nz, axis=1)
    xmax = 7 - np.argmax(nz[:, ::-1], axis=1)
    ored = np.bitwise_or.reduce(masks, axis=1)
    ybytes = ored.view(np.uint8).reshape(n, 8)
    ynz = ybytes != 0
    ymin = np.argmax(ynz, axis=1)
    ymax = 7 - np.argmax(ynz[:, ::-1], axis=1)
    zbits = np.bitwise_or.reduce(ybytes, axis=1)
    zmin, zmax = _LOW_BIT[zbits], _HIGH_BIT[zbits]
    lo = np.stack([xmin, ymin, zmin], axis=1)
    hi = np.stack([xmax, ymax, zmax], axis=1)
    lo[~has] = 0
    hi[~has] = 0
    return (origins + lo).astype(np.int32), (hi - lo).astype(np.uint8), has


def leaf_stats(values: np.ndarray, masks: np.ndarray, bbox_min: np.ndarray, bbox_dif: np.ndarray) -> Stats:
    """Statistics of the active voxels of each leaf; `values` are what a reader decodes (quantized if so)."""
    n = len(values)
    vec = values.ndim == 3
    key = sort_key(values)
    count = np.zeros(n, np.float64)
    mean = np.zeros(n, np.float64)
    m2 = np.zeros(n, np.float64)
    kmin = np.zeros(n, np.float32)
    kmax = np.zeros(n, np.float32)
    amin = np.zeros(n, np.int64)
    amax = np.zeros(n, np.int64)
    full = np.all(masks == np.uint64(0xFFFFFFFFFFFFFFFF), axis=1)
    partial = ~full & np.any(masks != 0, axis=1)
    if full.any():
        _full_rows(key, np.flatnonzero(full), vec, mean, m2, kmin, kmax, amin, amax)
        count[full] = 512.0
    if partial.any():
        idx = np.flatnonzero(partial)
        if vec:
            count[idx] = _partial_vec_rows(key, idx, masks, mean, m2, amin, amax)
        else:
            count[idx] = _partial_scalar_rows(key, idx, masks, mean, m2, kmin, kmax)
    if vec:
        rows = np.arange(n)
        kmin, kmax = key[rows, amin].astype(np.float32), key[rows, amax].astype(np.float32)
        vmin, vmax = values[rows, amin], values[rows, amax]
        empty = count == 0
        kmin[empty] = kmax[empty] = 0
        vmin[empty] = 0
        vmax[empty] = 0
    else:
        vmin, vmax = kmin, kmax
    bmin = bbox_min.astype(np.int32)
    bmax = bmin + bbox_dif.astype(np.int32)
    return Stats(count, mean, m2, kmin, kmax, vmin, vmax, bmin, bmax)


# Rows per pass: the float64 work arrays (CHUNK x 512) stay in cache and are reused, where whole-grid temporaries
# cost a fresh allocation (page faults) per step. Every reduction runs along a row, so chunking changes no result.
_CHUNK = 256


def _chunks(idx: np.ndarray) -> list[np.ndarray | slice]:
    n = len(idx)
    if n and idx[-1] == n - 1:  # all rows, in order: slices give views instead of gathered copies
        return [slice(s, min(s + _CHUNK, n)) for s in range(0, n, _CHUNK)]
    return [idx[s : s + _CHUNK] for s in range(0, n, _CHUNK)]


def _full_rows(key, idx, vec, mean, m2, kmin, kmax, amin, amax) -> None:
    """Two-pass population statistics in float64 over fully active rows (GridStats accumulates in double too)."""
    d_buf = np.empty((min(_CHUNK, len(idx)), 512), np.float64)
    for rows in _chunks(idx):
        k = key[rows]
        d = d_buf[: len(k)]
        mu = k.mean(axis=1, dtype=np.float64)
        np.subtract(k, mu[:, None], out=d)
        mean[rows] = mu
        m2[rows] = np.einsum("ij,ij->i", d, d)
        if vec:  # the min/max vectors are needed, not only their squared lengths
            amin[rows] = k.argmin(axis=1)
            amax[rows] = k.argmax(axis=1)
        else:
            kmin[rows] = k.min(axis=1)
            kmax[rows] = k.max(axis=1)


def _partial_scalar_rows(key, idx, masks, mean, m2, kmin, kmax) -> np.ndarray:
    """Scalar leaves with some inactive voxels: reduce the compacted active values segment by segment."""
    act = unpack_masks(masks[idx])
    cnt = act.sum(axis=1)
    starts = np.concatenate([[0], np.cumsum(cnt)[:-1]])
    vals = key[idx][act]
    c = cnt.astype(np.float64)
    mu = np.add.reduceat(vals, starts, dtype=np.float64) / c
    d = np.subtract(vals, np.repeat(mu, cnt))
    np.multiply(d, d, out=d)
    mean[idx] = mu
    m2[idx] = np.add.reduceat(d, starts)
    kmin[idx] = np.minimum.reduceat(vals, starts)
    kmax[idx] = np.maximum.reduceat(vals, starts)
    return c


def _partial_vec_rows(key, idx, masks, mean, m2, amin, amax) -> np.ndarray:
    """Vec3 leaves with some inactive voxels: inactive slots masked out with neutral values, row by row."""
    counts = np.empty(len(idx), np.float64)
    m = min(_CHUNK, len(idx))
    sel_buf = np.empty((m, 512), key.dtype)
    d_buf = np.empty((m, 512), np.float64)
    for s in range(0, len(idx), _CHUNK):
        rows = idx[s : s + _CHUNK]
        k = key[rows]
        act = unpack_masks(masks[rows])
        inact = ~act
        sel = sel_buf[: len(k)]
        d = d_buf[: len(k)]
        c = act.sum(axis=1).astype(np.float64)
        np.copyto(sel, k)
        sel[inact] = np.inf
        amin[rows] = sel.argmin(axis=1)
        sel[inact] = -np.inf
        amax[rows] = sel.argmax(axis=1)
        sel[inact] = 0
        mu = sel.sum(axis=1, dtype=np.float64) / c
        np.subtract(k, mu[:, None], out=d)
        d[inact] = 0.0
        counts[s : s + len(k)] = c
        mean[rows] = mu
        m2[rows] = np.einsum("ij,ij->i", d, d)
    return counts


def tile_stats(values: np.ndarray, active: np.ndarray, origins: np.ndarray, dim: int, voxels: int) -> Stats:
    key = sort_key(values).astype(np.float32)
    count = np.where(active, float(voxels), 0.0)
    return Stats(
        count=count,
        mean=key.astype(np.float64),
        m2=np.zeros(len(values)),
        kmin=key,
        kmax=key,
        vmin=values,
        vmax=values,
        bmin=origins.astype(np.int32),
        bmax=(origins + (dim - 1)).astype(np.int32),
    )


def combine(n_groups: int, parts: list[tuple[np.ndarray, Stats]], vec: bool) -> Stats:
    """Merge item statistics into their parents; earlier parts win ties, as GridStats visits tiles before children."""
    parts = [(p, s) for p, s in parts if len(p)]
    out = empty_stats(n_groups, vec)
    if not parts:
        return out
    cat = (lambda f: getattr(parts[0][1], f)) if len(parts) == 1 else (
        lambda f: np.concatenate([getattr(s, f) for _, s in parts]))  # fmt: skip
    parent = parts[0][0] if len(parts) == 1 else np.concatenate([p for p, _ in parts])
    count = cat("count")
    sel = np.flatnonzero(count > 0)
    if len(sel) == 0:
        return out
    if n_groups > 1:
        sel = sel[np.argsort(parent[sel], kind="stable")]
    parent = parent[sel]
    count, mean_i, m2_i = count[sel], cat("mean")[sel], cat("m2")[sel]
    kmin, kmax = cat("kmin")[sel], cat("kmax")[sel]
    bmin, bmax = cat("bmin")[sel], cat("bmax")[sel]
    if n_groups == 1:
        groups, starts = np.zeros(1, np.int64), np.zeros(1, np.int64)
    else:
        groups, starts = np.unique(parent, return_index=True)
    n = np.bincount(parent, count, minlength=n_groups)
    total = np.bincount(parent, count * mean_i, minlength=n_groups)
    mean = np.divide(total, n, out=np.zeros(n_groups), where=n > 0)
    dev = mean_i - mean[parent]
    out.count, out.mean = n, mean
    out.m2 = np.bincount(parent, m2_i + count * dev * dev, minlength=n_groups)
    out.kmin[groups] = np.minimum.reduceat(kmin, starts)
    out.kmax[groups] = np.maximum.reduceat(kmax, starts)
    out.bmin[groups] = np.minimum.reduceat(bmin, starts, axis=0)
    out.bmax[groups] = np.maximum.reduceat(bmax, starts, axis=0)
    if vec:
        out.vmin[groups] = cat("vmin")[sel][_first_match(parent, kmin, out.kmin)]
        out.vmax[groups] = cat("vmax")[sel][_first_match(parent, kmax, out.kmax)]
    else:
        out.vmin, out.vmax = out.kmin, out.kmax
    return out


def _first_match(parent: np.ndarray, key: np.ndarray, group_key: np.ndarray) -> np.ndarray:
    hits = np.flatnonzero(key == group_key[parent])
    _, first = np.unique(parent[hits], return_index=True)
    return hits[first]


def empty_stats(n: int, vec: bool) -> Stats:
    vshape = (n, 3) if vec else (n,)
    return Stats(
        count=np.zeros(n),
        mean=np.zeros(n),
        m2=np.zeros(n),
        kmin=np.zeros(n, np.float32),
        kmax=np.zeros(n, np.float32),
        vmin=np.zeros(vshape, np.float32),
        vmax=np.zeros(vshape, np.float32),
        bmin=np.zeros((n, 3), np.int32),
        bmax=np.full((n, 3), -1, np.int32),
    )


def f32_max() -> np.float32:
    return _F32_MAX
