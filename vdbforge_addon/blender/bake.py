"""Bake a fluid domain, reporting per-frame progress by watching the cache folder fill up."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from pathlib import Path

import bpy

ProgressFn = Callable[[int, int], None]
_FRAME_RE = re.compile(r"_(\d{4,})\.\w+$")


def cached_frames(cache_dir: Path, subfolder: str = "data") -> list[int]:
    folder = Path(cache_dir) / subfolder
    if not folder.is_dir():
        return []
    frames = {int(m.group(1)) for p in folder.iterdir() if p.suffix == ".vdb" and (m := _FRAME_RE.search(p.name))}
    return sorted(frames)


class _CacheWatcher(threading.Thread):
    def __init__(self, cache_dir: Path, total: int, on_progress: ProgressFn, subfolder: str) -> None:
        super().__init__(daemon=True)
        self.cache_dir, self.total, self.on_progress, self.subfolder = cache_dir, total, on_progress, subfolder
        self.stop = threading.Event()
        self.last = -1

    def run(self) -> None:
        while not self.stop.wait(0.5):
            self.report()

    def report(self) -> None:
        done = min(len(cached_frames(self.cache_dir, self.subfolder)), self.total)
        if done != self.last:
            self.last = done
            self.on_progress(done, self.total)


def bake_domain(domain: bpy.types.Object, on_progress: ProgressFn | None = None) -> list[int]:
    """Bake everything the domain needs (data, noise, mesh, particles) and return the frames in the cache."""
    ds = domain.modifiers["Fluid"].domain_settings
    ds.cache_type = "ALL"
    cache_dir = Path(bpy.path.abspath(ds.cache_directory))
    total = ds.cache_frame_end - ds.cache_frame_start + 1
    watched = "noise" if ds.domain_type == "GAS" and ds.use_noise else "data"
    watcher = _CacheWatcher(cache_dir, total, on_progress, watched) if on_progress else None
    if watcher:
        watcher.start()
    scene = bpy.context.scene
    view_layer = bpy.context.view_layer
    view_layer.objects.active = domain
    try:
        with bpy.context.temp_override(scene=scene, view_layer=view_layer, object=domain, active_object=domain):
            result = bpy.ops.fluid.bake_all()
    finally:
        if watcher:
            watcher.stop.set()
            watcher.join()
            watcher.report()
    if "FINISHED" not in result:
        raise RuntimeError(f"Error: the fluid bake did not finish ({', '.join(sorted(result))})")
    frames = cached_frames(cache_dir, "data")
    if not frames:
        raise RuntimeError(f"Error: the fluid bake wrote no frames into '{cache_dir}'")
    return frames
