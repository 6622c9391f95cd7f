"""One liquid render job inside a worker: build → bake → export (level set) → preview, reporting each stage."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from ..core.preset_model import Preset
from ..core.protocol import Emitter
from .bake import bake_domain
from .liquid_export import export_liquid_frames
from .liquid_preview import render_liquid_previews
from .liquid_scene import build_liquid_scene
from .render_job import choose_preview_frames
from .runtime import prepare_runtime
from .scene_reset import reset_to_empty_scene


def run_liquid_render_job(job: dict[str, Any], preset: Preset, emit: Emitter) -> dict[str, Any]:
    """The liquid counterpart of `run_render_job`; returns the same keys."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    out_dir = Path(job["out_dir"])
    cache_dir = Path(job["cache_dir"])
    export_step = int(job.get("frame_step", 1))

    emit.status("setup", "preparing Blender")
    runtime_report = prepare_runtime()
    scene = reset_to_empty_scene()

    t = time.perf_counter()
    emit.status("build", "building the liquid scene")
    domain = build_liquid_scene(scene, preset, cache_dir)
    timings["build"] = time.perf_counter() - t

    t = time.perf_counter()
    emit.status("bake", f"baking frames {preset.domain.frame_start}-{preset.domain.frame_end}")
    baked = bake_domain(domain, lambda done, total: emit.progress("bake", done, total))
    timings["bake"] = time.perf_counter() - t

    t = time.perf_counter()
    frames = baked[::export_step]
    emit.status("export", f"writing {len(frames)} VDB frames")
    export = export_liquid_frames(
        preset,
        job.get("params", {}),
        cache_dir,
        out_dir / "vdb",
        frames,
        domain,
        lambda done, total: emit.progress("export", done, total),
    )
    timings["export"] = time.perf_counter() - t
    for notice in export.notices:
        emit.send("log", level="notice", message=notice)

    t = time.perf_counter()
    vdb_by_frame = dict(zip(export.frames, export.files, strict=True))
    # Only frames with a surface can be framed and previewed.
    with_surface = [f for f in export.frames if f in export.visible_bounds]
    preview_frames = choose_preview_frames(job.get("preview_frames") or preset.render.preview_frames, with_surface)
    if not preview_frames:
        raise RuntimeError("Error: the bake produced no liquid surface in any frame; nothing to preview")
    bounds = export.union_bounds(preview_frames)
    if bounds is None:
        raise RuntimeError("Error: the bake produced no liquid surface; nothing to preview")
    emit.status("render", f"rendering {len(preview_frames)} frame(s) x {job['angles']} angle(s)")
    preview = render_liquid_previews(
        preset,
        vdb_by_frame,
        bounds,
        preview_frames,
        int(job["angles"]),
        out_dir / "preview",
        lambda done, total: emit.progress("render", done, total),
    )
    timings["render"] = time.perf_counter() - t

    if not job.get("keep_cache"):
        shutil.rmtree(cache_dir, ignore_errors=True)
    reset_to_empty_scene()
    timings["total_worker"] = time.perf_counter() - started
    return {
        "baked_frames": baked,
        "vdb_files": export.files,
        "nanovdb_files": export.nanovdb_files,
        "grids_per_frame": {str(k): v for k, v in export.grids_per_frame.items()},
        "active_voxels": {str(k): v for k, v in export.active_voxels.items()},
        "notices": export.notices,
        "preview_frames": preview_frames,
        "previews": preview.images,
        "contact_sheet": preview.contact_sheet,
        "bounds": preview.bounds,
        "render_seconds_per_image": preview.seconds_per_image,
        "timings": timings,
        "runtime": runtime_report,
    }
