"""Write the asset's OpenVDB sequence (`<asset>_####.vdb`) from a baked liquid cache.

Mantaflow's liquid data files hold only FLIP particles and velocity; the surface is the `.bobj.gz` mesh of each frame,
which we turn into a narrow-band level set. The `.bobj.gz` layout (Mantaflow `fileio/iomeshes.cpp`, `writeBobjFile`),
all little-endian inside one gzip stream:

    int32 n_verts, n_verts x float32[3] positions
    int32 n_normals, n_normals x float32[3] normals
    int32 n_tris, n_tris x int32[3] vertex indices

Positions are "normalised to a unit cube around 0": (grid position - grid size / 2) / max(grid size), in cells of the
mesh solver (the simulation grid times the mesh upres). Blender (`create_liquid_geometry` in `blenkernel/fluid.cc`)
scales them by the domain's longest world side and adds the domain centre; so world = centre + position * longest.
"""

from __future__ import annotations

import gzip
import struct
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import bpy
import numpy as np

from ..core.preset_model import Preset
from .cache_grids import DomainGeometry, cache_file
from .liquid_scene import liquid_settings
from .openvdb_import import import_openvdb
from .vdb_export import ExportReport, finish_nanovdb, nanovdb_converter, take_grid, write_frame

ProgressFn = Callable[[int, int], None]
HALF_WIDTH = 3.0
SECONDARY_KINDS = {"SPRAY": "spray", "FOAM": "foam", "BUBBLE": "bubble"}
MAX_DENSE_VOXELS = 64_000_000  # scratch array of one whitewater grid (256 MB of float32)


def mesh_file(cache_dir: Path, frame: int) -> Path:
    return Path(cache_dir) / "mesh" / f"fluid_mesh_{frame:04d}.bobj.gz"


def read_bobj(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(positions float32 (n, 3), triangles uint32 (m, 3)) of a Mantaflow `.bobj.gz`, in its normalised space."""
    data = gzip.decompress(Path(path).read_bytes())
    offset = 0

    def count(what: str) -> int:
        nonlocal offset
        if offset + 4 > len(data):
            raise ValueError(f"'{path}' ends before its {what} count")
        (n,) = struct.unpack_from("<i", data, offset)
        offset += 4
        if n < 0:
            raise ValueError(f"'{path}' has a negative {what} count")
        return n

    def block(n: int, dtype: str, what: str) -> np.ndarray:
        nonlocal offset
        size = n * 3 * 4
        if offset + size > len(data):
            raise ValueError(f"'{path}' is truncated inside its {what}")
        array = np.frombuffer(data, dtype=dtype, count=n * 3, offset=offset).reshape(n, 3)
        offset += size
        return array

    points = block(count("vertex"), "<f4", "vertices")
    block(count("normal"), "<f4", "normals")
    triangles = block(count("triangle"), "<i4", "triangles")
    if len(triangles) and (triangles.min() < 0 or triangles.max() >= len(points)):
        raise ValueError(f"'{path}' has triangle indices outside its {len(points)} vertices")
    return points.astype(np.float32), triangles.astype(np.uint32)


def bobj_to_world(points: np.ndarray, preset: Preset) -> np.ndarray:
    """Blender's mapping of Mantaflow mesh positions into the (unrotated) domain box, see the module docstring."""
    center = np.asarray(preset.domain.center, dtype=np.float64)
    return (points.astype(np.float64) * max(preset.domain.size) + center).astype(np.float32)


def levelset_from_mesh(
    vdb: ModuleType, points: np.ndarray, triangles: np.ndarray, geometry: DomainGeometry, upres: int
) -> Any:
    transform = vdb.createLinearTransform(geometry.matrix(upres))
    return vdb.FloatGrid.createLevelSetFromPolygons(
        points, triangles=triangles, quads=None, transform=transform, halfWidth=HALF_WIDTH
    )


def interior_world_bounds(grid: Any) -> tuple[list[float], list[float]] | None:
    """World box of the voxels inside the surface (value <= 0): the liquid itself, not its exterior narrow band."""
    (i0, j0, k0), (i1, j1, k1) = grid.evalActiveVoxelBoundingBox()
    if i1 < i0:
        return None
    values = np.zeros((i1 - i0 + 1, j1 - j0 + 1, k1 - k0 + 1), dtype=np.float32)
    grid.copyToArray(values, ijk=(i0, j0, k0))
    # Inactive voxels deep inside are copied as -background, so the sign alone tells inside from outside.
    inside = values <= 0.0
    if not inside.any():
        return None
    lo, hi = [], []
    for axis in range(3):
        hit = np.flatnonzero(inside.any(axis=tuple(a for a in range(3) if a != axis)))
        lo.append(hit[0])
        hi.append(hit[-1])
    w0 = grid.transform.indexToWorld((i0 + lo[0] - 0.5, j0 + lo[1] - 0.5, k0 + lo[2] - 0.5))
    w1 = grid.transform.indexToWorld((i0 + hi[0] + 0.5, j0 + hi[1] + 0.5, k0 + hi[2] + 0.5))
    return [min(a, b) for a, b in zip(w0, w1, strict=True)], [max(a, b) for a, b in zip(w0, w1, strict=True)]


def secondary_positions(domain: bpy.types.Object, frame: int) -> dict[str, np.ndarray]:
    """World positions of the spray / foam / bubble particles Blender loaded from the cache for `frame`."""
    scene = bpy.context.scene
    if scene.frame_current != frame:
        scene.frame_set(frame)
    evaluated = domain.evaluated_get(bpy.context.evaluated_depsgraph_get())
    found: dict[str, np.ndarray] = {}
    for system in evaluated.particle_systems:
        name = SECONDARY_KINDS.get(system.settings.type)
        if name is None:
            continue
        count = len(system.particles)
        flat = np.zeros(count * 3, dtype=np.float32)
        if count:
            system.particles.foreach_get("location", flat)
        found[name] = flat.reshape(count, 3)
    return found


def count_density(vdb: ModuleType, positions: np.ndarray, geometry: DomainGeometry, upres: int) -> Any:
    """Particles per voxel as a fog volume (each particle counted in the voxel it falls in).

    Counting rather than trilinear splatting keeps a lone droplet a crisp speck instead of a faint eight-voxel haze.
    """
    grid = vdb.FloatGrid()
    grid.transform = vdb.createLinearTransform(geometry.matrix(upres))
    if not len(positions):
        return grid
    dx = geometry.cell_size / upres
    # Voxel centres sit at integer index coordinates (see DomainGeometry.matrix), so rounding finds a particle's voxel.
    index = np.rint((positions.astype(np.float64) - np.asarray(geometry.origin)) / dx - 0.5).astype(np.int64)
    lo = index.min(axis=0)
    shape = tuple(int(s) for s in index.max(axis=0) - lo + 1)
    if int(np.prod(shape)) > MAX_DENSE_VOXELS:
        raise ValueError(f"secondary particles spread over {shape} voxels; lower liquid.secondary.grid_upres")
    dense = np.zeros(shape, dtype=np.float32)
    local = index - lo
    np.add.at(dense, (local[:, 0], local[:, 1], local[:, 2]), 1.0)
    grid.copyFromArray(dense, ijk=tuple(int(v) for v in lo), tolerance=0.5)
    grid.pruneInactive()
    return grid


def _frame_grids(
    vdb: ModuleType, preset: Preset, cache_dir: Path, frame: int, domain: bpy.types.Object | None, report: ExportReport
) -> list[tuple[str, Any, Any]]:
    """(name, grid, class) of every grid this frame can offer, before empty ones are weeded out."""
    geometry = DomainGeometry.from_domain(preset.domain)
    liquid = liquid_settings(preset)
    found = []
    if "levelset" in preset.export.grids:
        path = mesh_file(cache_dir, frame)
        if not path.is_file():
            report.note(frame, "no surface mesh in the cache; 'levelset' skipped")
        else:
            points, triangles = read_bobj(path)
            if len(triangles):
                world = bobj_to_world(points, preset)
                grid = levelset_from_mesh(vdb, world, triangles, geometry, liquid.levelset_upres)
            else:
                grid = vdb.FloatGrid()  # an empty surface is reported as an empty grid below
            found.append(("levelset", grid, vdb.GridClass.LEVEL_SET))
    if "velocity" in preset.export.grids:
        data = cache_file(cache_dir, "data", frame)
        if not data.is_file():
            report.note(frame, "no data file in the cache; 'velocity' skipped")
        else:
            # Read by name: the file's FLIP point grid uses a codec that is only registered once Blender has baked.
            grid = vdb.read(str(data), "velocity")
            grid.transform = vdb.createLinearTransform(geometry.matrix())
            found.append(("velocity", grid, vdb.GridClass.UNKNOWN))
    if domain is not None:
        for name, positions in secondary_positions(domain, frame).items():
            # Blender keeps a particle system for every kind once any is on, whatever the preset switched off.
            if not getattr(liquid.secondary, name):
                continue
            grid = count_density(vdb, positions, geometry, liquid.secondary.grid_upres)
            found.append((name, grid, vdb.GridClass.FOG_VOLUME))
    return found


def export_liquid_frames(
    preset: Preset,
    params: dict,
    cache_dir: Path,
    out_dir: Path,
    frames: list[int],
    domain: bpy.types.Object | None = None,
    on_progress: ProgressFn | None = None,
) -> ExportReport:
    """One `.vdb` per frame: `levelset` from the surface mesh, `velocity`, and (given the baked `domain`) the
    `spray` / `foam` / `bubble` particle-count grids; empty grids are skipped with a notice."""
    vdb = import_openvdb()
    secondary = liquid_settings(preset).secondary
    want_secondary = secondary.export_grids and (secondary.spray or secondary.foam or secondary.bubble)
    half = preset.export.precision == "half"
    report = ExportReport()
    for name in preset.export.grids:
        if name not in ("levelset", "velocity"):
            report.notices.append(f"grid '{name}' does not exist for a liquid; skipped")
    if want_secondary and domain is None:
        # Blender decodes the particle cache for us; without the baked domain there is no reader for it.
        report.notices.append("secondary particles are only exported right after the bake; skipped")
    out_dir.mkdir(parents=True, exist_ok=True)
    with nanovdb_converter(vdb, preset, len(frames)) as nanovdb:
        for n, frame in enumerate(frames, start=1):
            chosen, counts = [], {}
            found = _frame_grids(vdb, preset, cache_dir, frame, domain if want_secondary else None, report)
            for name, grid, grid_class in found:
                if grid_class != vdb.GridClass.LEVEL_SET:
                    # Not for level sets: pruning inactive nodes to the (positive) background would turn inside to
                    # outside.
                    grid.pruneInactive()
                taken = take_grid(report, frame, name, grid, grid_class, half, chosen, counts)
                if taken and name == "levelset" and (box := interior_world_bounds(grid)) is not None:
                    report.visible_bounds[frame] = box
            write_frame(vdb, report, out_dir, preset, params, frame, chosen, counts, nanovdb)
            if on_progress:
                on_progress(n, len(frames))
        finish_nanovdb(report, nanovdb)
    return report
