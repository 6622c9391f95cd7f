"""Topology of the NanoVDB tree: which upper/lower nodes exist, in which order, and where leaves and tiles sit.

Nodes are ordered as NanoVDB's breadth-first layout requires (uppers in root order, then each upper's lowers by slot,
then each lower's leaves by slot), which falls out of sorting one integer key per node.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import VDBForgeError
from .grid import NanoGrid

_M21 = np.uint64((1 << 21) - 1)


@dataclass
class Topology:
    leaf_order: np.ndarray  # (N,) permutation of the input leaves into traversal order
    leaf_parent: np.ndarray  # (N,) lower index of each sorted leaf
    leaf_slot: np.ndarray  # (N,) slot of each sorted leaf in its lower node
    lower_origins: np.ndarray  # (L, 3) int32
    lower_parent: np.ndarray  # (L,) upper index
    lower_slot: np.ndarray  # (L,) slot in the upper node
    upper_origins: np.ndarray  # (U, 3) int32
    upper_keys: np.ndarray  # (U,) uint64 root keys
    tile1: tuple[np.ndarray, np.ndarray, np.ndarray]  # (tile indices, lower index, slot), sorted by (lower, slot)
    tile2: tuple[np.ndarray, np.ndarray, np.ndarray]  # (tile indices, upper index, slot), sorted by (upper, slot)
    tile3: tuple[np.ndarray, np.ndarray]  # (tile indices, root keys), in root-key order

    @property
    def counts(self) -> tuple[int, int, int]:
        return len(self.leaf_order), len(self.lower_origins), len(self.upper_origins)


def root_key(origins: np.ndarray) -> np.ndarray:
    """RootData::CoordToKey: 21 bits per axis of uint32(coord) >> 12, x highest."""
    u = (origins.astype(np.int64) & 0xFFFFFFFF).astype(np.uint64) >> np.uint64(12)
    return (u[:, 0] << np.uint64(42)) | (u[:, 1] << np.uint64(21)) | u[:, 2]


def key_to_origin(keys: np.ndarray) -> np.ndarray:
    parts = [(keys >> np.uint64(s)) & _M21 for s in (42, 21, 0)]
    u32 = np.stack(parts, axis=1).astype(np.uint32) << np.uint32(12)
    return u32.view(np.int32)


def child_slot(origins: np.ndarray, node_total: int, child_total: int) -> np.ndarray:
    """Linear table index of a child (or tile) inside its parent: x-major, like InternalNode::CoordToOffset."""
    log2 = node_total - child_total
    m = (1 << node_total) - 1
    o = (origins & m) >> child_total
    return ((o[:, 0].astype(np.int64) << (2 * log2)) | (o[:, 1].astype(np.int64) << log2) | o[:, 2]).astype(np.int64)


def slot_to_offset(slots: np.ndarray, node_total: int, child_total: int) -> np.ndarray:
    log2 = node_total - child_total
    m = (1 << log2) - 1
    xyz = np.stack([(slots >> (2 * log2)) & m, (slots >> log2) & m, slots & m], axis=1)
    return (xyz << child_total).astype(np.int32)


def tree_order(origins: np.ndarray) -> np.ndarray:
    """Permutation of distinct leaf origins into breadth-first order (root key, slot in the lower node's parent upper,
    slot in the lower node): the leaf_order build_topology derives, so leaves listed in this order need no reordering."""
    return np.lexsort((child_slot(origins, 7, 3), child_slot(origins, 12, 7), root_key(origins)))


def _dupes(keys: np.ndarray) -> bool:
    if len(keys) < 2:
        return False
    s = np.sort(keys)
    return bool(np.any(s[1:] == s[:-1]))


def build_topology(grid: NanoGrid) -> Topology:
    leaves, tiles = grid.leaves, grid.tiles
    lo = leaves.origins
    if len(tiles) == 0:
        return _leaves_only(lo, grid.name)
    t_idx = [np.flatnonzero(tiles.levels == lv) for lv in (1, 2, 3)]
    t1o, t2o, t3o = (tiles.origins[i] for i in t_idx)

    leaf_rk, t1_rk, t2_rk = root_key(lo), root_key(t1o), root_key(t2o)
    t3_rk = root_key(t3o)
    upper_keys = np.unique(np.concatenate([leaf_rk, t1_rk, t2_rk]))
    if len(t3_rk):
        if _dupes(t3_rk):
            raise VDBForgeError(f"grid '{grid.name}': two root-level tiles share an origin")
        if np.isin(t3_rk, upper_keys).any():
            raise VDBForgeError(f"grid '{grid.name}': a root-level tile overlaps leaves or smaller tiles")

    # lower nodes keyed by (upper index, slot in upper)
    leaf_lkey = (np.searchsorted(upper_keys, leaf_rk).astype(np.int64) << 15) | child_slot(lo, 12, 7)
    t1_lkey = (np.searchsorted(upper_keys, t1_rk).astype(np.int64) << 15) | child_slot(t1o, 12, 7)
    lower_keys = np.unique(np.concatenate([leaf_lkey, t1_lkey]))
    t2_key = (np.searchsorted(upper_keys, t2_rk).astype(np.int64) << 15) | child_slot(t2o, 12, 7)
    if len(t2_key):
        if _dupes(t2_key):
            raise VDBForgeError(f"grid '{grid.name}': two 128^3 tiles share an origin")
        if np.isin(t2_key, lower_keys).any():
            raise VDBForgeError(f"grid '{grid.name}': a 128^3 tile overlaps leaves or 8^3 tiles")

    # leaves keyed by (lower index, slot in lower)
    leaf_key = (np.searchsorted(lower_keys, leaf_lkey).astype(np.int64) << 12) | child_slot(lo, 7, 3)
    t1_key = (np.searchsorted(lower_keys, t1_lkey).astype(np.int64) << 12) | child_slot(t1o, 7, 3)
    order = np.argsort(leaf_key, kind="stable")
    sorted_keys = leaf_key[order]
    if len(sorted_keys) > 1 and np.any(sorted_keys[1:] == sorted_keys[:-1]):
        raise VDBForgeError(f"grid '{grid.name}': two leaves share an origin")
    if len(t1_key):
        if _dupes(t1_key):
            raise VDBForgeError(f"grid '{grid.name}': two 8^3 tiles share an origin")
        if np.isin(t1_key, sorted_keys).any():
            raise VDBForgeError(f"grid '{grid.name}': an 8^3 tile overlaps a leaf")

    upper_origins = key_to_origin(upper_keys)
    lower_parent = lower_keys >> 15
    lower_slot = lower_keys & 0x7FFF
    lower_origins = upper_origins[lower_parent] + slot_to_offset(lower_slot, 12, 7)

    o1 = np.argsort(t1_key, kind="stable")
    o2 = np.argsort(t2_key, kind="stable")
    o3 = np.argsort(t3_rk, kind="stable")
    return Topology(
        leaf_order=order,
        leaf_parent=sorted_keys >> 12,
        leaf_slot=sorted_keys & 0xFFF,
        lower_origins=lower_origins,
        lower_parent=lower_parent,
        lower_slot=lower_slot,
        upper_origins=upper_origins,
        upper_keys=upper_keys,
        tile1=(t_idx[0][o1], t1_key[o1] >> 12, t1_key[o1] & 0xFFF),
        tile2=(t_idx[1][o2], t2_key[o2] >> 15, t2_key[o2] & 0x7FFF),
        tile3=(t_idx[2][o3], t3_rk[o3]),
    )


def _leaves_only(lo: np.ndarray, name: str) -> Topology:
    """The common case (no tiles) with fewer, larger numpy calls: overhead dominates for small grids."""
    rk = root_key(lo)
    upper_keys, up_idx = np.unique(rk, return_inverse=True)
    lkey = (up_idx.reshape(-1).astype(np.int64) << 15) | child_slot(lo, 12, 7)
    lower_keys, lo_idx = np.unique(lkey, return_inverse=True)
    leaf_key = (lo_idx.reshape(-1).astype(np.int64) << 12) | child_slot(lo, 7, 3)
    order = np.argsort(leaf_key, kind="stable")
    sorted_keys = leaf_key[order]
    if len(sorted_keys) > 1 and np.any(sorted_keys[1:] == sorted_keys[:-1]):
        raise VDBForgeError(f"grid '{name}': two leaves share an origin")
    upper_origins = key_to_origin(upper_keys)
    lower_parent = lower_keys >> 15
    lower_slot = lower_keys & 0x7FFF
    none = np.zeros(0, np.int64)
    return Topology(
        leaf_order=order,
        leaf_parent=sorted_keys >> 12,
        leaf_slot=sorted_keys & 0xFFF,
        lower_origins=upper_origins[lower_parent] + slot_to_offset(lower_slot, 12, 7),
        lower_parent=lower_parent,
        lower_slot=lower_slot,
        upper_origins=upper_origins,
        upper_keys=upper_keys,
        tile1=(none, none, none),
        tile2=(none, none, none),
        tile3=(none, np.zeros(0, np.uint64)),
    )
