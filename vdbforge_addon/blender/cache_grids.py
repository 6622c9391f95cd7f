"""Read a Mantaflow gas cache frame as world-space OpenVDB grids with conventional names.

Mantaflow stores grids in its own index space; the world placement comes from the domain box and resolution, using
the same rule Blender uses to size the grid (cells are cubes of the largest side divided by the resolution).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..core.preset_model import Domain
from .openvdb_import import import_openvdb

# conventional name -> Mantaflow cache names, best first (noise grids are the up-resolved detail)
GAS_GRID_SOURCES: dict[str, tuple[str, ...]] = {
    "density": ("density_noise", "density"),
    "flame": ("flame_noise", "flame"),
    "temperature": ("temperature", "heat"),
    "velocity": ("velocity",),
    "fuel": ("fuel_noise", "fuel"),
    "heat": ("heat", "temperature"),
}


@dataclass(frozen=True)
class DomainGeometry:
    origin: tuple[float, float, float]  # world position of the domain's minimum corner
    cell_size: float
    resolution: tuple[int, int, int]

    @classmethod
    def from_domain(cls, domain: Domain) -> DomainGeometry:
        size = domain.size
        longest = max(size)
        res = tuple(max(1, int(s / longest * domain.resolution + 0.5)) for s in size)
        cell = longest / domain.resolution
        origin = tuple(c - s / 2 for c, s in zip(domain.center, size, strict=True))
        return cls(origin=origin, cell_size=cell, resolution=res)  # type: ignore[arg-type]

    def matrix(self, upres: int = 1) -> list[list[float]]:
        """OpenVDB row-vector matrix mapping index (cell centres at integers) to world space."""
        dx = self.cell_size / upres
        tx, ty, tz = (o + 0.5 * dx for o in self.origin)
        return [[dx, 0.0, 0.0, 0.0], [0.0, dx, 0.0, 0.0], [0.0, 0.0, dx, 0.0], [tx, ty, tz, 1.0]]


def cache_file(cache_dir: Path, kind: str, frame: int) -> Path:
    return Path(cache_dir) / kind / f"fluid_{kind}_{frame:04d}.vdb"


def read_gas_frame(cache_dir: Path, frame: int, geometry: DomainGeometry, upres: int) -> dict[str, object]:
    """All grids of one cached frame keyed by their Mantaflow name, already placed in world space."""
    vdb = import_openvdb()
    grids: dict[str, object] = {}
    for kind, scale in (("data", 1), ("noise", upres)):
        path = cache_file(cache_dir, kind, frame)
        if not path.is_file():
            continue
        loaded, _meta = vdb.readAll(str(path))
        for grid in loaded:
            grid.transform = vdb.createLinearTransform(geometry.matrix(scale))
            grids[grid.name] = grid
    if not grids:
        raise FileNotFoundError(f"no cache files for frame {frame} in '{cache_dir}'")
    return grids


def pick_grid(grids: dict[str, object], conventional: str) -> tuple[str, object] | None:
    for source in GAS_GRID_SOURCES.get(conventional, (conventional,)):
        if source in grids:
            return source, grids[source]
    return None
