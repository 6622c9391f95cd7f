"""The worker's export job: turn a kept Mantaflow cache into the asset's `.vdb` (and `.nvdb`) sequence again,
with other grids, precision, frame range or NanoVDB settings, without re-baking."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ..core.errors import VDBForgeError
from ..core.parameters import current_values, validate_preset
from ..core.protocol import Emitter
from .bake import cached_frames
from .vdb_export import export_gas_frames


def run_export_job(job: dict[str, Any], emit: Emitter) -> dict[str, Any]:
    started = time.perf_counter()
    cache_dir = Path(job["cache_dir"])
    preset = validate_preset(job["preset"], f"cache preset '{job['preset'].get('id')}'")
    if preset.domain.type != "gas":
        raise VDBForgeError(f"exporting a kept {preset.domain.type} cache is not supported yet")
    available = cached_frames(cache_dir, "data")
    start, end, step = job.get("frames") or (available[0] if available else 1, available[-1] if available else 0, 1)
    frames = [f for f in available if start <= f <= end][::step]
    if not frames:
        raise VDBForgeError(f"the cache in '{cache_dir}' holds no frames in {start}:{end} (it has {len(available)})")
    emit.status("export", f"writing {len(frames)} frames")
    report = export_gas_frames(
        preset,
        current_values(preset),
        cache_dir,
        Path(job["out_dir"]) / "vdb",
        frames,
        lambda done, total: emit.progress("export", done, total),
    )
    for notice in report.all_notices():
        emit.send("log", level="notice", message=notice)
    return {
        "preset_id": preset.id,
        "frames": report.frames,
        "vdb_files": report.files,
        "nanovdb_files": report.nanovdb_files,
        "nanovdb_helpers": report.nanovdb_helpers,
        "grids_per_frame": {str(k): v for k, v in report.grids_per_frame.items()},
        "notices": report.all_notices(),
        "export": preset.export.model_dump(mode="json"),
        "timings": {"export": time.perf_counter() - started},
    }
