"""One render job inside a worker: build → bake → export → preview, reporting each stage (gas and liquid alike)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from ..core.atomic import write_json
from ..core.export_run import CACHE_PRESET_FILE
from ..core.parameters import validate_preset
from ..core.protocol import Emitter
from .pipeline import asset_result, bake_and_export, choose_preview_frames, preview_bounds, render_preview_set
from .scene_reset import reset_to_empty_scene


def run_render_job(job: dict[str, Any], emit: Emitter) -> dict[str, Any]:
    started = time.perf_counter()
    preset = validate_preset(job["preset"], f"job preset '{job['preset'].get('id')}'")
    out_dir = Path(job["out_dir"])
    cache_dir = Path(job["cache_dir"])
    cache_dir.mkdir(parents=True, exist_ok=True)
    # `vdbforge export --cache` needs the domain geometry and export defaults of the bake it reads.
    write_json(cache_dir / CACHE_PRESET_FILE, job["preset"])
    asset = bake_and_export(job, preset, emit)

    t = time.perf_counter()
    requested = job.get("preview_frames") or preset.render.preview_frames
    preview_frames = choose_preview_frames(requested, asset.previewable_frames())
    # Framed on what the previews show (the scored frames), not on the whole sequence's extent.
    bounds = preview_bounds(asset, preview_frames)
    emit.status("render", f"rendering {len(preview_frames)} frame(s) x {job['angles']} angle(s)")
    preview = render_preview_set(
        preset,
        asset,
        preview_frames,
        bounds,
        int(job["angles"]),
        out_dir / "preview",
        lambda done, total: emit.progress("render", done, total),
    )
    asset.timings["render"] = time.perf_counter() - t

    if not job.get("keep_cache"):
        shutil.rmtree(cache_dir, ignore_errors=True)
    reset_to_empty_scene()
    asset.timings["total_worker"] = time.perf_counter() - started
    return asset_result(asset, preview, preview_frames)
