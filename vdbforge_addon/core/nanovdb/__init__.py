"""Pure-numpy NanoVDB (.nvdb) writer, validated against the official NanoVDB 32.4 reader.

from vdbforge_addon.core.nanovdb import NanoGrid, write_nvdb, grid_from_dense, grids_from_openvdb
"""

from .dense import grid_from_dense
from .grid import GRID_CLASSES, VALUE_TYPES, Leaves, NanoGrid, Tiles, identity_transform
from .openvdb_io import convert_vdb_file, grid_from_openvdb, grids_from_openvdb
from .writer import write_nvdb

__all__ = [
    "GRID_CLASSES",
    "VALUE_TYPES",
    "Leaves",
    "NanoGrid",
    "Tiles",
    "convert_vdb_file",
    "grid_from_dense",
    "grid_from_openvdb",
    "grids_from_openvdb",
    "identity_transform",
    "write_nvdb",
]
