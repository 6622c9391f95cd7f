"""Dense numpy arrays -> sparse leaves and tiles (vectorised over 8^3 blocks, no per-voxel Python)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from ..errors import VDBForgeError
from .grid import Leaves, NanoGrid, Tiles, empty_leaves, empty_tiles, identity_transform


def _pad_to_blocks(values: np.ndarray, active: np.ndarray | None, origin: np.ndarray, bg: np.ndarray):
    """Embed the arrays in 8-aligned blocks (background / inactive padding); no copy when already aligned."""
    lo = origin & ~7
    shift = origin - lo
    dims = np.array(values.shape[:3])
    size = (shift + dims + 7) // 8 * 8
    if np.all(shift == 0) and np.all(size == dims):
        return values, active, lo
    pv = np.empty(tuple(size) + values.shape[3:], np.float32)
    pv[...] = bg
    sl = tuple(slice(s, s + d) for s, d in zip(shift, dims, strict=True))
    pv[sl] = values
    pa = None
    if active is not None:
        pa = np.zeros(tuple(size), bool)
        pa[sl] = active
    return pv, pa, lo


_SCRATCH = threading.local()


@contextmanager
def scratch_scope() -> Iterator[None]:
    """Within this scope (per thread) work arrays from scratch() are reused instead of freshly allocated: on these
    machines touching fresh pages costs more than the copies made into them. Released when the scope ends."""
    outer = getattr(_SCRATCH, "bufs", None)
    if outer is None:
        _SCRATCH.bufs = {}
    try:
        yield
    finally:
        if outer is None:
            _SCRATCH.bufs = None


def keep_thread_scratch() -> None:
    """Thread-pool initializer: the worker thread reuses its work arrays until it exits."""
    _SCRATCH.bufs = {}


def scratch(slot: str, shape: tuple, dtype=np.float32) -> np.ndarray:
    """An uninitialised array, reused across calls inside scratch_scope()."""
    bufs = getattr(_SCRATCH, "bufs", None)
    if bufs is None:
        return np.empty(shape, dtype)
    n = int(np.prod(shape)) * np.dtype(dtype).itemsize
    b = bufs.get(slot)
    if b is None or b.nbytes < n:
        b = bufs[slot] = np.empty(n, np.uint8)
    return b[:n].view(dtype).reshape(shape)


def to_blocks(a: np.ndarray, slot: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(X, Y, Z[, 3]) with 8-multiple sides -> contiguous (nblocks, 512[, 3]) rows in leaf voxel order, and each
    block's offset (in voxels) from the array origin. One copy (into scratch `slot` if given); every later step is a
    fast row operation."""
    bx, by, bz = (s // 8 for s in a.shape[:3])
    tail = a.shape[3:]
    # move whole z-runs of 8 voxels as single opaque elements: about twice as fast as a float-wise transpose
    run = np.dtype((np.void, 8 * a.itemsize * (tail[0] if tail else 1)))
    v = np.ascontiguousarray(a).reshape(a.shape[0], a.shape[1], -1).view(run)
    src = v.reshape(bx, 8, by, 8, bz).transpose(0, 2, 4, 1, 3)
    if slot is None:
        rows = np.ascontiguousarray(src)
    else:
        rows = scratch(slot, src.shape, run)
        rows[...] = src
    rows = rows.view(a.dtype).reshape((bx * by * bz, 512) + tail)
    idx = np.indices((bx, by, bz)).reshape(3, -1).T * 8
    return rows, idx.astype(np.int32)


def block_min(a: np.ndarray) -> np.ndarray:
    """Minimum over each 8^3 block (all components) of an (X, Y, Z[, 3]) array with 8-multiple sides, as (bx, by, bz).
    Reduces x, then y, then z: the first two steps combine whole contiguous planes and rows, which numpy does at memory
    speed, and leave 1/64 of the data for the short z-runs."""
    x, y, z = a.shape[:3]
    c = a.shape[3] if a.ndim == 4 else 1
    m = np.minimum.reduce(np.ascontiguousarray(a).reshape(x // 8, 8, y * z * c), axis=1)
    m = np.minimum.reduce(m.reshape(x // 8, y // 8, 8, z * c), axis=2)
    return m.reshape(x // 8, y // 8, z // 8, 8 * c).min(axis=3)


def gather_blocks(a: np.ndarray, blocks: np.ndarray) -> np.ndarray:
    """Rows (K, 512[, 3]) in leaf voxel order of the 8^3 blocks at block coordinates `blocks` (K, 3) of an
    (X, Y, Z[, 3]) array: one gather of whole z-runs, touching only the blocks asked for (to_blocks copies all)."""
    x, y, z = a.shape[:3]
    tail = a.shape[3:]
    zr = z // 8
    runs = np.ascontiguousarray(a).reshape(x * y * zr, -1)
    b = blocks.astype(np.int64)
    base = (b[:, 0] * 8 * y + b[:, 1] * 8) * zr + b[:, 2]
    sub = (np.arange(8, dtype=np.int64)[:, None] * y + np.arange(8, dtype=np.int64)[None, :]) * zr
    idx = (base[:, None] + sub.reshape(1, 64)).reshape(-1)
    return np.take(runs, idx, axis=0).reshape((len(b), 512) + tail)


def rows_differ(rows: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """Per voxel: value != background (any component for vectors)."""
    ne = rows != bg
    return ne.any(axis=-1) if rows.ndim == 3 else ne


def split_blocks(
    values: np.ndarray, active: np.ndarray, origins: np.ndarray, make_tiles: bool = True
) -> tuple[Leaves, Tiles]:
    """Kept blocks (values (K, 512[, 3]), active (K, 512) bool, origins (K, 3)) -> leaves, and 8^3 tiles for blocks
    that are uniform and all active or all inactive (e.g. a level set's inside)."""
    vec = values.ndim == 3
    c = 3 if vec else 1
    n = len(values)
    if n == 0:
        return empty_leaves(c), empty_tiles(c)
    tiles = empty_tiles(c)
    if make_tiles:
        # candidates from one scalar channel (NaN never compares equal, so NaN blocks stay leaves), then confirm:
        # reductions over a trailing axis of 3 are slow in numpy, comparisons on flat rows are not
        x = values[..., 0] if vec else values
        uniform = x.min(axis=1) == x.max(axis=1)
        cand = np.flatnonzero(uniform)
        if len(cand):
            v = values[cand]
            ok = (v == v[:, :1]).reshape(len(cand), -1).all(axis=1) if vec else np.ones(len(cand), bool)
            n_act = active[cand].sum(axis=1)
            uniform[cand] = ok & ((n_act == 0) | (n_act == 512))
        if uniform.any():
            tsel = np.flatnonzero(uniform)
            tiles = Tiles(
                origins=origins[tsel],
                levels=np.ones(len(tsel), np.uint8),
                values=values[tsel, 0],
                active=active[tsel, 0].copy(),
            )
            keep = np.flatnonzero(~uniform)
            values, active, origins = values[keep], active[keep], origins[keep]
    masks = np.packbits(active, axis=1, bitorder="little").view("<u8")
    return Leaves(origins.astype(np.int32), np.ascontiguousarray(values), masks), tiles


def blocks_from_dense(
    values: np.ndarray,
    active: np.ndarray | None,
    origin: tuple | np.ndarray,
    background,
    make_tiles: bool = True,
) -> tuple[Leaves, Tiles]:
    """Split a dense box into leaves; blocks that are all background and inactive are dropped, uniform blocks become
    8^3 tiles (active, or inactive with a non-background value such as a level set's inside)."""
    values = np.asarray(values, dtype=np.float32)
    vec = values.ndim == 4
    bg = np.asarray(background, dtype=np.float32).reshape((3,) if vec else ())
    origin = np.asarray(origin, dtype=np.int64).reshape(3)
    if active is not None:
        active = np.asarray(active, dtype=bool)
        if active.shape != values.shape[:3]:
            raise VDBForgeError(f"active mask shape {active.shape} does not match values shape {values.shape[:3]}")
    values, active, lo = _pad_to_blocks(values, active, origin, bg)
    rows, offs = to_blocks(values)
    ne = rows_differ(rows, bg)
    if active is None:
        act = ne
        keep = ne.any(axis=1)
    else:
        act, _ = to_blocks(active)
        keep = (act | ne).any(axis=1)
    sel = np.flatnonzero(keep)
    return split_blocks(rows[sel], act[sel], offs[sel] + lo, make_tiles)


def coalesce_tiles(tiles: Tiles) -> Tiles:
    """Merge 4096 equal 8^3 tiles filling a lower node into one 128^3 tile, as OpenVDB's prune would."""
    lv1 = np.flatnonzero(tiles.levels == 1)
    if len(lv1) < 4096:
        return tiles
    o = tiles.origins[lv1]
    node = o & ~127
    keys, inv, counts = np.unique(node, axis=0, return_inverse=True, return_counts=True)
    inv = inv.reshape(-1)
    full = np.flatnonzero(counts == 4096)
    if len(full) == 0:
        return tiles
    vals = tiles.values[lv1]
    act = tiles.active[lv1]
    order = np.argsort(inv, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    flat = vals.reshape(len(vals), -1)[order]
    a = act[order]
    merged = []
    for g in full:  # one iteration per fully-tiled 128^3 node: few, and each check is vectorised
        s = slice(starts[g], starts[g] + 4096)
        if np.all(flat[s] == flat[s][0]) and np.all(a[s] == a[s][0]):
            merged.append(g)
    if not merged:
        return tiles
    merged = np.array(merged)
    drop = np.isin(inv, merged)
    keep = np.ones(len(tiles.origins), bool)
    keep[lv1[drop]] = False
    first = order[starts[merged]]
    return Tiles(
        origins=np.concatenate([tiles.origins[keep], keys[merged].astype(np.int32)]),
        levels=np.concatenate([tiles.levels[keep], np.full(len(merged), 2, np.uint8)]),
        values=np.concatenate([tiles.values[keep], vals[first]]),
        active=np.concatenate([tiles.active[keep], act[first]]),
    )


def concat_parts(parts: list[tuple[Leaves, Tiles]], channels: int) -> tuple[Leaves, Tiles]:
    if not parts:
        return empty_leaves(channels), empty_tiles(channels)
    if len(parts) == 1:
        return parts[0]
    leaves = Leaves(*(np.concatenate([getattr(p[0], f) for p in parts]) for f in ("origins", "values", "masks")))
    tiles = Tiles(
        *(np.concatenate([getattr(p[1], f) for p in parts]) for f in ("origins", "levels", "values", "active"))
    )
    return leaves, tiles


def grid_from_dense(
    name: str,
    values: np.ndarray,
    active: np.ndarray | None = None,
    origin_ijk: tuple[int, int, int] = (0, 0, 0),
    transform: np.ndarray | None = None,
    background: float | tuple = 0.0,
    grid_class: str | None = None,
    *,
    tiles: bool = True,
) -> NanoGrid:
    """Sparse NanoGrid from a dense (X, Y, Z) float or (X, Y, Z, 3) vec3 array whose voxel [0, 0, 0] sits at index
    `origin_ijk`. active=None marks voxels that differ from the background. Uniform 8^3 blocks become tiles unless
    tiles=False. grid_class defaults to "fog" for floats and "unknown" for vectors."""
    values = np.asarray(values)
    if values.ndim == 4 and values.shape[3] == 3:
        value_type = "vec3f"
    elif values.ndim == 3:
        value_type = "float"
    else:
        raise VDBForgeError(f"dense values must be (X, Y, Z) or (X, Y, Z, 3), got shape {values.shape}")
    if grid_class is None:
        grid_class = "fog" if value_type == "float" else "unknown"
    c = 3 if value_type == "vec3f" else 1
    bg = np.asarray(background, dtype=np.float32).reshape(-1)
    bg = bg[0] if c == 1 else np.broadcast_to(bg, (3,))
    leaves, tl = blocks_from_dense(values, active, origin_ijk, bg, make_tiles=tiles)
    return NanoGrid(
        name=name,
        value_type=value_type,
        grid_class=grid_class,
        transform=identity_transform() if transform is None else transform,
        background=background,
        leaves=leaves,
        tiles=coalesce_tiles(tl),
    )
