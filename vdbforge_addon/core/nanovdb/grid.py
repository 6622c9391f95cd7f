"""The sparse grid description the NanoVDB writer consumes: leaves of 8x8x8 voxels plus constant tiles."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import VDBForgeError
from .layout import MAX_NAME, TILE_DIM

VALUE_TYPES = ("float", "vec3f")
GRID_CLASSES = ("fog", "levelset", "staggered", "unknown")


@dataclass
class Leaves:
    """N leaf nodes. `values[n, i]` is voxel i = (x&7)<<6 | (y&7)<<3 | (z&7) of leaf n (NanoVDB's own order, which is
    also C order of an [x, y, z] block); bit i of `masks[n]` (word i>>6, bit i&63) marks it active."""

    origins: np.ndarray  # (N, 3) int32, multiples of 8
    values: np.ndarray  # (N, 512) float32, or (N, 512, 3) for vec3f
    masks: np.ndarray  # (N, 8) uint64

    def __len__(self) -> int:
        return len(self.origins)


@dataclass
class Tiles:
    """Constant-value tiles. Level 1 covers 8^3 voxels (a lower-node table entry), level 2 covers 128^3 (an upper-node
    entry), level 3 covers 4096^3 (a root entry). Inactive tiles matter only for values that differ from the
    background, e.g. the inside (-background) of a level set."""

    origins: np.ndarray  # (T, 3) int32, multiples of the tile size
    levels: np.ndarray  # (T,) uint8 in 1..3
    values: np.ndarray  # (T,) float32 or (T, 3)
    active: np.ndarray  # (T,) bool

    def __len__(self) -> int:
        return len(self.origins)


@dataclass
class NanoGrid:
    """One grid to write. `transform` maps index to world space in OpenVDB's row-vector convention:
    world = [i j k 1] @ transform (translation in the last row)."""

    name: str
    value_type: str
    grid_class: str
    transform: np.ndarray
    background: float | tuple
    leaves: Leaves | None = None
    tiles: Tiles | None = None

    def __post_init__(self) -> None:
        self.validate()

    @property
    def channels(self) -> int:
        return 3 if self.value_type == "vec3f" else 1

    def validate(self) -> None:
        """Normalise dtypes/shapes in place and reject what NanoVDB cannot represent, with one-line reasons."""
        if self.value_type not in VALUE_TYPES:
            raise VDBForgeError(f"grid '{self.name}': value type '{self.value_type}' is not one of {VALUE_TYPES}")
        if self.grid_class not in GRID_CLASSES:
            raise VDBForgeError(f"grid '{self.name}': grid class '{self.grid_class}' is not one of {GRID_CLASSES}")
        if self.grid_class in ("fog", "levelset") and self.value_type != "float":
            raise VDBForgeError(f"grid '{self.name}': class '{self.grid_class}' needs float values in NanoVDB")
        if self.grid_class == "staggered" and self.value_type != "vec3f":
            raise VDBForgeError(f"grid '{self.name}': class 'staggered' needs vec3f values in NanoVDB")
        if len(self.name.encode("utf-8")) > MAX_NAME:
            raise VDBForgeError(f"grid '{self.name[:40]}…': names longer than {MAX_NAME} bytes are not supported")
        c = self.channels
        m = np.asarray(self.transform, dtype=np.float64)
        if m.shape != (4, 4) or not np.isfinite(m).all():
            raise VDBForgeError(f"grid '{self.name}': transform must be a finite 4x4 matrix")
        if m[:, 3].tolist() != [0.0, 0.0, 0.0, 1.0]:
            raise VDBForgeError(f"grid '{self.name}': transform must be affine (last column 0, 0, 0, 1)")
        a = m[:3, :3].tolist()
        det = (
            a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1])
            - a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0])
            + a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0])
        )
        if abs(det) < 1e-300:
            raise VDBForgeError(f"grid '{self.name}': transform is singular")
        self.transform = m
        bg = np.asarray(self.background, dtype=np.float32).reshape(-1)
        if bg.size == 1 and c == 3:
            bg = np.repeat(bg, 3)
        if bg.size != c:
            raise VDBForgeError(f"grid '{self.name}': background must have {c} component(s)")
        self.background = float(bg[0]) if c == 1 else tuple(float(v) for v in bg)
        self.leaves = self._check_leaves(self.leaves, c)
        self.tiles = self._check_tiles(self.tiles, c)

    def background_array(self) -> np.ndarray:
        return np.asarray(self.background, dtype=np.float32).reshape(self.channels if self.channels > 1 else ())

    def _check_leaves(self, leaves: Leaves | None, c: int) -> Leaves:
        if leaves is None:
            return empty_leaves(c)
        o = np.ascontiguousarray(leaves.origins, dtype=np.int32).reshape(-1, 3)
        n = len(o)
        vshape = (n, 512) if c == 1 else (n, 512, 3)
        v = np.asarray(leaves.values)
        if v.shape != vshape:
            raise VDBForgeError(f"grid '{self.name}': leaf values must have shape {vshape}, got {v.shape}")
        v = np.ascontiguousarray(v, dtype=np.float32)
        mk = np.ascontiguousarray(leaves.masks, dtype=np.uint64)
        if mk.shape != (n, 8):
            raise VDBForgeError(f"grid '{self.name}': leaf masks must have shape ({n}, 8), got {mk.shape}")
        if n and np.any(o & 7):
            raise VDBForgeError(f"grid '{self.name}': leaf origins must be multiples of 8")
        return Leaves(o, v, mk)

    def _check_tiles(self, tiles: Tiles | None, c: int) -> Tiles:
        if tiles is None:
            return empty_tiles(c)
        o = np.ascontiguousarray(tiles.origins, dtype=np.int32).reshape(-1, 3)
        t = len(o)
        lv = np.ascontiguousarray(tiles.levels, dtype=np.uint8).reshape(-1)
        v = np.ascontiguousarray(tiles.values, dtype=np.float32)
        v = v.reshape(t) if c == 1 else v.reshape(t, 3)
        a = np.ascontiguousarray(tiles.active, dtype=bool).reshape(-1)
        if len(lv) != t or len(a) != t:
            raise VDBForgeError(f"grid '{self.name}': tile origins, levels, values and active flags differ in length")
        if t:
            if lv.min() < 1 or lv.max() > 3:
                raise VDBForgeError(f"grid '{self.name}': tile levels must be 1 (8^3), 2 (128^3) or 3 (4096^3)")
            dims = np.array([0, TILE_DIM[1], TILE_DIM[2], TILE_DIM[3]], dtype=np.int32)[lv]
            if np.any(o % dims[:, None]):
                raise VDBForgeError(f"grid '{self.name}': tile origins must be multiples of the tile size")
        return Tiles(o, lv, v, a)


def empty_leaves(channels: int) -> Leaves:
    vshape = (0, 512) if channels == 1 else (0, 512, 3)
    return Leaves(np.zeros((0, 3), np.int32), np.zeros(vshape, np.float32), np.zeros((0, 8), np.uint64))


def empty_tiles(channels: int) -> Tiles:
    vshape = (0,) if channels == 1 else (0, 3)
    return Tiles(np.zeros((0, 3), np.int32), np.zeros(0, np.uint8), np.zeros(vshape, np.float32), np.zeros(0, bool))


def identity_transform(voxel_size: float = 1.0) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] *= voxel_size
    return m
