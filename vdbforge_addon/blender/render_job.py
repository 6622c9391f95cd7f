"""One render job inside a worker: build → bake → export → preview, reporting each stage."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from ..core.atomic import write_json
from ..core.export_run import CACHE_PRESET_FILE
from ..core.parameters import validate_preset
from ..core.protocol import Emitter
from .bake import bake_domain
from .gas_scene import build_gas_scene
from .preview_render import render_previews
from .runtime import prepare_runtime
from .scene_reset import reset_to_empty_scene
from .vdb_export import export_gas_frames


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


def run_render_job(job: dict[str, Any], emit: Emitter) -> dict[str, Any]:
    timings: dict[str, float] = {}
    started = time.perf_counter()
    preset = validate_preset(job["preset"], f"job preset '{job['preset'].get('id')}'")
    out_dir = Path(job["out_dir"])
    cache_dir = Path(job["cache_dir"])
    export_step = int(job.get("frame_step", 1))
    cache_dir.mkdir(parents=True, exist_ok=True)
    # `vdbforge export --cache` needs the domain geometry and export defaults of the bake it reads.
    write_json(cache_dir / CACHE_PRESET_FILE, job["preset"])
    if preset.domain.type == "liquid":
        from .liquid_job import run_liquid_render_job

        return run_liquid_render_job(job, preset, emit)
    emit.status("setup", "preparing Blender")
    runtime_report = prepare_runtime()
    scene = reset_to_empty_scene()

    t = time.perf_counter()
    emit.status("build", "building the scene")
    domain = build_gas_scene(scene, preset, cache_dir)
    timings["build"] = time.perf_counter() - t

    t = time.perf_counter()
    emit.status("bake", f"baking frames {preset.domain.frame_start}-{preset.domain.frame_end}")
    baked = bake_domain(domain, lambda done, total: emit.progress("bake", done, total))
    timings["bake"] = time.perf_counter() - t

    t = time.perf_counter()
    frames = baked[::export_step]
    emit.status("export", f"writing {len(frames)} VDB frames")
    export = export_gas_frames(
        preset,
        job.get("params", {}),
        cache_dir,
        out_dir / "vdb",
        frames,
        lambda done, total: emit.progress("export", done, total),
    )
    timings["export"] = time.perf_counter() - t
    for notice in export.notices:
        emit.send("log", level="notice", message=notice)

    t = time.perf_counter()
    vdb_by_frame = dict(zip(export.frames, export.files, strict=True))
    preview_frames = choose_preview_frames(job.get("preview_frames") or preset.render.preview_frames, export.frames)
    if not preview_frames:
        raise RuntimeError("Error: the bake produced an empty volume in every frame; nothing to preview")
    # Framed on what the previews show (the scored frames), not on the whole sequence's extent.
    bounds = export.union_bounds(preview_frames)
    if bounds is None:
        raise RuntimeError("Error: the bake produced no visible density or flame; nothing to preview")
    emit.status("render", f"rendering {len(preview_frames)} frame(s) x {job['angles']} angle(s)")
    preview = render_previews(
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
