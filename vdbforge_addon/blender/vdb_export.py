"""Write the asset's OpenVDB sequence (`<asset>_####.vdb`) from a baked gas cache."""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.atomic import temp_path_for
from ..core.nanovdb.frame_pool import FrameConverter
from ..core.preset_model import Preset
from ..core.render_run import format_frame_list
from ..core.vdb_recompress import recompress_vdb
from ..core.version import vdbforge_version
from .cache_grids import DomainGeometry, pick_grid, read_gas_frame
from .openvdb_import import import_openvdb

ProgressFn = Callable[[int, int], None]


@dataclass
class ExportReport:
    files: list[str] = field(default_factory=list)
    nanovdb_files: list[str] = field(default_factory=list)
    nanovdb_helpers: int = 0  # helper processes the .nvdb conversion used (core/nanovdb/frame_pool.py)
    frames: list[int] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    grids_per_frame: dict[int, list[str]] = field(default_factory=dict)
    active_voxels: dict[int, dict[str, int]] = field(default_factory=dict)
    visible_bounds: dict[int, tuple[list[float], list[float]]] = field(default_factory=dict)
    frame_notes: dict[str, list[int]] = field(default_factory=dict)

    def note(self, frame: int, text: str) -> None:
        """A per-frame notice; the same text on many frames is reported once with their range."""
        self.frame_notes.setdefault(text, []).append(frame)

    def all_notices(self) -> list[str]:
        return [*self.notices, *(f"{format_frame_list(fs)}: {text}" for text, fs in self.frame_notes.items())]

    def union_bounds(self, frames: list[int] | None = None) -> tuple[list[float], list[float]] | None:
        boxes = [self.visible_bounds[f] for f in (frames or self.visible_bounds) if f in self.visible_bounds]
        return functools.reduce(union_box, boxes, None)


Box = tuple[list[float], list[float]]


def union_box(old: Box | None, box: Box) -> Box:
    """The world box holding both (`old` may be None: nothing yet)."""
    if old is None:
        return box
    return [min(a, b) for a, b in zip(old[0], box[0], strict=True)], [
        max(a, b) for a, b in zip(old[1], box[1], strict=True)
    ]


BOUNDS_GRIDS = ("density", "flame")
VISIBLE_FRACTION = 0.02  # voxels fainter than this fraction of the frame's peak do not decide the framing


def visible_world_bounds(grid) -> tuple[list[float], list[float]] | None:
    """World box of the voxels that are actually visible, so faint wisps do not shrink the subject in previews."""
    (i0, j0, k0), (i1, j1, k1) = grid.evalActiveVoxelBoundingBox()
    values = np.zeros((i1 - i0 + 1, j1 - j0 + 1, k1 - k0 + 1), dtype=np.float32)
    grid.copyToArray(values, ijk=(i0, j0, k0))
    peak = float(values.max())
    if peak <= 0:
        return None
    mask = values > VISIBLE_FRACTION * peak
    lo, hi = [], []
    for axis in range(3):
        hit = np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis)))
        lo.append(hit[0])
        hi.append(hit[-1])
    w0 = grid.transform.indexToWorld((i0 + lo[0] - 0.5, j0 + lo[1] - 0.5, k0 + lo[2] - 0.5))
    w1 = grid.transform.indexToWorld((i0 + hi[0] + 0.5, j0 + hi[1] + 0.5, k0 + hi[2] + 0.5))
    return [min(a, b) for a, b in zip(w0, w1, strict=True)], [max(a, b) for a, b in zip(w0, w1, strict=True)]


def asset_metadata(preset: Preset, params: dict, frame: int) -> dict[str, object]:
    return {
        "creator": f"VDBForge {vdbforge_version()}",
        "vdbforge_preset": preset.id,
        "vdbforge_family": preset.family,
        "vdbforge_parameters": json.dumps(params, sort_keys=True),
        "units": "meters",
        "frame": frame,
        "fps": preset.domain.fps,
    }


def write_vdb(vdb, path: Path, grids: list, metadata: dict, compression: str = "blosc") -> None:
    """Blender's openvdb module always writes Blosc; for zip or none its file is re-encoded by core/vdb_recompress.py
    before it is renamed onto `path`, so `path` only ever holds a finished file."""
    with temp_path_for(path) as tmp:
        vdb.write(str(tmp), grids, metadata=metadata)
        if compression != "blosc":
            recompress_vdb(tmp, tmp, compression)


def nanovdb_converter(vdb, preset: Preset, frames: int) -> contextlib.AbstractContextManager[FrameConverter | None]:
    """The converter `write_frame` hands each written `.vdb` to, or None when the preset exports no NanoVDB."""
    settings = preset.export
    if not settings.nanovdb:
        return contextlib.nullcontext(None)
    return FrameConverter(
        vdb, frames=frames, codec=settings.nanovdb_codec, quantize=settings.quantize, tolerance=settings.tolerance
    )


def finish_nanovdb(report: ExportReport, nanovdb: FrameConverter | None) -> None:
    """Wait for the last .nvdb frames (raising the first failure) and record them."""
    if nanovdb is not None:
        report.nanovdb_files = nanovdb.finish()
        report.nanovdb_helpers = nanovdb.helpers_used


def take_grid(
    report: ExportReport, frame: int, name: str, grid, grid_class, half: bool, chosen: list, counts: dict
) -> bool:
    """Name and class a grid and add it to the frame's list, or (empty) note it as skipped and return False."""
    count = int(grid.activeVoxelCount())
    if count == 0:
        report.note(frame, f"grid '{name}' is empty; skipped")
        return False
    grid.name = name
    grid.gridClass = grid_class
    grid.saveFloatAsHalf = half
    chosen.append(grid)
    counts[name] = count
    return True


def write_frame(
    vdb,
    report: ExportReport,
    out_dir: Path,
    preset: Preset,
    params: dict,
    frame: int,
    grids: list,
    counts: dict,
    nanovdb: FrameConverter | None,
) -> None:
    """Write one frame's non-empty grids and record it; a frame with none is a notice. With a converter its
    `nvdb/<name>.nvdb` (next to `vdb/`) is converted from the file just written, so both hold identical values."""
    if not grids:
        report.note(frame, "every grid is empty; no file written")
        return
    path = out_dir / f"{preset.id}_{frame:04d}.vdb"
    write_vdb(vdb, path, grids, asset_metadata(preset, params, frame), preset.export.compression)
    if nanovdb is not None:
        nvdb_path = path.parent.parent / "nvdb" / path.with_suffix(".nvdb").name
        nvdb_path.parent.mkdir(parents=True, exist_ok=True)
        nanovdb.submit(path, nvdb_path)
    report.files.append(str(path))
    report.frames.append(frame)
    report.grids_per_frame[frame] = [g.name for g in grids]
    report.active_voxels[frame] = counts


def export_gas_frames(
    preset: Preset,
    params: dict,
    cache_dir: Path,
    out_dir: Path,
    frames: list[int],
    on_progress: ProgressFn | None = None,
) -> ExportReport:
    """One `.vdb` per frame holding the preset's export grids; empty grids are skipped with a notice."""
    vdb = import_openvdb()
    geometry = DomainGeometry.from_domain(preset.domain)
    upres = preset.domain.noise.upres if preset.domain.noise.enabled else 1
    half = preset.export.precision == "half"
    report = ExportReport()
    out_dir.mkdir(parents=True, exist_ok=True)
    with nanovdb_converter(vdb, preset, len(frames)) as nanovdb:
        for n, frame in enumerate(frames, start=1):
            cached = read_gas_frame(cache_dir, frame, geometry, upres)
            chosen = []
            counts: dict[str, int] = {}
            for name in preset.export.grids:
                picked = pick_grid(cached, name)
                if picked is None:
                    report.note(frame, f"grid '{name}' is not in the cache; skipped")
                    continue
                _source, grid = picked
                grid.pruneInactive()
                grid_class = vdb.GridClass.FOG_VOLUME if name != "velocity" else vdb.GridClass.UNKNOWN
                if not take_grid(report, frame, name, grid, grid_class, half, chosen, counts):
                    continue
                if name in BOUNDS_GRIDS and (box := visible_world_bounds(grid)) is not None:
                    report.visible_bounds[frame] = union_box(report.visible_bounds.get(frame), box)
            write_frame(vdb, report, out_dir, preset, params, frame, chosen, counts, nanovdb)
            if on_progress:
                on_progress(n, len(frames))
        finish_nanovdb(report, nanovdb)
    return report
