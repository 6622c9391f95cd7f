"""Render preview angles of the exported VDB sequence (what the user takes away is what we look at)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import bpy
from mathutils import Vector

from ..core.preset_model import Preset, RenderRig
from .contact_sheet import write_contact_sheet
from .openvdb_import import import_openvdb
from .preview_rig import RIG_PREFIX, Angle, configure_cycles, configure_world, frame_camera, rig_angles
from .volume_material import build_volume_material

ProgressFn = Callable[[int, int], None]


@dataclass
class PreviewReport:
    images: list[str] = field(default_factory=list)
    contact_sheet: str | None = None
    bounds: tuple[list[float], list[float]] | None = None
    seconds_per_image: list[float] = field(default_factory=list)


def _volume_object(scene: bpy.types.Scene, vdb_file: str, material: bpy.types.Material) -> bpy.types.Object:
    name = f"{RIG_PREFIX}Preview"
    obj = bpy.data.objects.get(name)
    if obj is None:
        volume = bpy.data.volumes.new(name)
        obj = bpy.data.objects.new(name, volume)
        scene.collection.objects.link(obj)
        volume.materials.append(material)
    obj.data.filepath = vdb_file
    # Re-renders with other shading (the inner fit) must see this call's material, not the first one's.
    if obj.data.materials[:] != [material]:
        obj.data.materials.clear()
        obj.data.materials.append(material)
    obj.data.grids.load()
    return obj


def render_previews(
    preset: Preset,
    vdb_by_frame: dict[int, str],
    bounds: tuple[list[float], list[float]],
    preview_frames: list[int],
    angles: int,
    out_dir: Path,
    on_progress: ProgressFn | None = None,
) -> PreviewReport:
    """`preview/f####_a##.png` for each preview frame and angle, plus `contact_sheet.png`."""
    scene = bpy.context.scene
    rig = preset.render
    configure_cycles(scene, rig)
    configure_world(scene, rig.light)
    lo, hi = Vector(bounds[0]), Vector(bounds[1])
    vdb = import_openvdb()
    first = vdb_by_frame[preview_frames[0]]
    grids = {m.name for m in vdb.readAllGridMetadata(first)}
    material = build_volume_material(preset.material, grids, preset.domain.center)
    report = PreviewReport(bounds=(list(lo), list(hi)))
    out_dir.mkdir(parents=True, exist_ok=True)
    views = rig_angles(rig, angles)
    total = len(preview_frames) * len(views)
    for frame in preview_frames:
        _volume_object(scene, vdb_by_frame[frame], material)
        render_angles(
            scene, rig, views, (lo, hi), frame, out_dir, report, on_progress and (lambda done: on_progress(done, total))
        )
    report.contact_sheet = str(write_contact_sheet(report.images, out_dir / "contact_sheet.png", columns=len(views)))
    return report


def render_angles(
    scene: bpy.types.Scene,
    rig: RenderRig,
    views: list[Angle],
    bounds: tuple[Vector, Vector],
    frame: int,
    out_dir: Path,
    report: PreviewReport,
    on_image: Callable[[int], None] | None = None,
) -> None:
    """Render the scene as it stands from each view into `out_dir/f####_a##.png`, recording timings in `report`."""
    for a, angle in enumerate(views):
        frame_camera(scene, bounds[0], bounds[1], angle, rig)
        path = out_dir / f"f{frame:04d}_a{a:02d}.png"
        scene.render.filepath = str(path)
        started = time.perf_counter()
        bpy.ops.render.render(write_still=True)
        report.seconds_per_image.append(time.perf_counter() - started)
        report.images.append(str(path))
        if on_image:
            on_image(len(report.images))
