"""The stages every job shares, for both gas and liquid domains: set up, build, bake, export, render previews.

`render_job` runs them once; `evaluate_job` re-renders the same export many times while fitting render-time
parameters. The family decides only which builder, exporter and preview renderer are used.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.preset_model import Preset
from ..core.protocol import Emitter
from .bake import bake_domain
from .preview_render import PreviewReport, render_previews
from .runtime import prepare_runtime
from .scene_reset import reset_to_empty_scene
from .vdb_export import ExportReport

ProgressFn = Callable[[int, int], None]


@dataclass
class BakedAsset:
    preset: Preset
    export: ExportReport
    baked_frames: list[int]
    runtime: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def is_liquid(self) -> bool:
        return self.preset.domain.type == "liquid"

    @property
    def vdb_by_frame(self) -> dict[int, str]:
        return dict(zip(self.export.frames, self.export.files, strict=True))

    def previewable_frames(self) -> list[int]:
        # Liquids can only be framed where a surface exists; gas frames with nothing visible still export.
        if self.is_liquid:
            return [f for f in self.export.frames if f in self.export.visible_bounds]
        return list(self.export.frames)


def choose_preview_frames(requested: list[int], available: list[int]) -> list[int]:
    """Each requested frame, or the nearest exported one; default two thirds into the sequence."""
    if not available:
        return []
    if not requested:
        requested = [available[0] + (available[-1] - available[0]) * 2 // 3]
    chosen: list[int] = []
    for frame in requested:
        nearest = min(available, key=lambda f: (abs(f - frame), f))
        if nearest not in chosen:
            chosen.append(nearest)
    return chosen


def bake_and_export(job: dict[str, Any], preset: Preset, emit: Emitter) -> BakedAsset:
    """Set up Blender, build the preset's scene, bake it and export `out_dir/vdb` (every `frame_step`-th frame)."""
    timings: dict[str, float] = {}
    out_dir, cache_dir = Path(job["out_dir"]), Path(job["cache_dir"])
    liquid = preset.domain.type == "liquid"
    emit.status("setup", "preparing Blender")
    runtime_report = prepare_runtime()
    scene = reset_to_empty_scene()

    t = time.perf_counter()
    emit.status("build", f"building the {'liquid' if liquid else 'gas'} scene")
    if liquid:
        from .liquid_scene import build_liquid_scene

        domain = build_liquid_scene(scene, preset, cache_dir)
    else:
        from .gas_scene import build_gas_scene

        domain = build_gas_scene(scene, preset, cache_dir)
    timings["build"] = time.perf_counter() - t

    t = time.perf_counter()
    emit.status("bake", f"baking frames {preset.domain.frame_start}-{preset.domain.frame_end}")
    baked = bake_domain(domain, lambda done, total: emit.progress("bake", done, total))
    timings["bake"] = time.perf_counter() - t

    t = time.perf_counter()
    frames = baked[:: int(job.get("frame_step", 1))]
    emit.status("export", f"writing {len(frames)} VDB frames")
    progress = lambda done, total: emit.progress("export", done, total)  # noqa: E731
    params = job.get("params", {})
    if liquid:
        from .liquid_export import export_liquid_frames

        export = export_liquid_frames(preset, params, cache_dir, out_dir / "vdb", frames, domain, progress)
    else:
        from .vdb_export import export_gas_frames

        export = export_gas_frames(preset, params, cache_dir, out_dir / "vdb", frames, progress)
    timings["export"] = time.perf_counter() - t
    for notice in export.all_notices():
        emit.send("log", level="notice", message=notice)
    return BakedAsset(preset, export, baked, runtime_report, timings)


def preview_bounds(asset: BakedAsset, frames: list[int]) -> tuple[list[float], list[float]]:
    if not frames:
        what = "liquid surface in any frame" if asset.is_liquid else "visible volume in any frame"
        raise RuntimeError(f"Error: the bake produced no {what}; nothing to preview")
    bounds = asset.export.union_bounds(frames)
    if bounds is None:
        what = "liquid surface" if asset.is_liquid else "visible density or flame"
        raise RuntimeError(f"Error: the bake produced no {what}; nothing to preview")
    return bounds


def render_preview_set(
    preset: Preset,
    asset: BakedAsset,
    frames: list[int],
    bounds: tuple[list[float], list[float]],
    angles: int,
    out_dir: Path,
    on_progress: ProgressFn | None = None,
) -> PreviewReport:
    """`out_dir/f####_a##.png` per frame and angle (+ contact sheet) of `asset` shaded and lit as `preset` says."""
    if asset.is_liquid:
        from .liquid_preview import render_liquid_previews

        return render_liquid_previews(preset, asset.vdb_by_frame, bounds, frames, angles, out_dir, on_progress)
    return render_previews(preset, asset.vdb_by_frame, bounds, frames, angles, out_dir, on_progress)


def asset_result(asset: BakedAsset, preview: PreviewReport, frames: list[int]) -> dict[str, Any]:
    """The result keys every job that bakes and previews reports."""
    export = asset.export
    return {
        "baked_frames": asset.baked_frames,
        "vdb_files": export.files,
        "nanovdb_files": export.nanovdb_files,
        "nanovdb_helpers": export.nanovdb_helpers,
        "grids_per_frame": {str(k): v for k, v in export.grids_per_frame.items()},
        "active_voxels": {str(k): v for k, v in export.active_voxels.items()},
        "notices": export.all_notices(),
        "preview_frames": frames,
        "previews": preview.images,
        "contact_sheet": preview.contact_sheet,
        "bounds": preview.bounds,
        "render_seconds_per_image": preview.seconds_per_image,
        "timings": asset.timings,
        "runtime": asset.runtime,
    }
