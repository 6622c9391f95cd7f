"""A candidate's whole Blender scene saved as `.blend` beside its asset, so the UI can step back to any candidate.

Paths inside are relative to the snapshot (`//vdb/…`, `//cache`): a match worker writes into a staging folder that
is renamed when it finishes, and best/ links the same file from another folder, so absolute paths would dangle.
Called at the end of a worker's job: it rewrites the session's paths, which nothing renders from afterwards.
"""

from __future__ import annotations

import os
from pathlib import Path

import bpy

from ..core.errors import VDBForgeError

SNAPSHOT_NAME = "scene.blend"
DOMAIN_NAME = "VDBForge_Domain"


def _relative_to(path: str, folder: Path) -> str:
    absolute = Path(bpy.path.abspath(path)).resolve()
    if not path or folder not in absolute.parents:
        return path
    return "//" + os.path.relpath(absolute, folder).replace(os.sep, "/")


def save_snapshot(folder: Path) -> Path:
    """Save the current session as `folder/scene.blend`; a re-bake from it writes to `folder/cache`."""
    folder = Path(folder).resolve()
    path = folder / SNAPSHOT_NAME
    domain = bpy.data.objects.get(DOMAIN_NAME)
    fluid = domain.modifiers.get("Fluid") if domain else None
    if fluid is not None and fluid.fluid_type == "DOMAIN":
        fluid.domain_settings.cache_directory = "//cache"
    for volume in bpy.data.volumes:
        volume.filepath = _relative_to(volume.filepath, folder)
    for image in bpy.data.images:
        if image.source == "FILE":
            image.filepath = _relative_to(image.filepath, folder)
    # Blender writes `path@` and renames it, so a kill mid-save leaves no partial scene.blend. The paths are already
    # relative to `folder`; remapping would rebase them on the (unsaved) session's own folder.
    bpy.ops.wm.save_as_mainfile(filepath=str(path), copy=True, relative_remap=False, compress=True)
    return path


def _anchor(path: str, folder: Path) -> str:
    """A `//` path of an appended block, made absolute against the snapshot's folder instead of this file's."""
    return str((folder / path[2:]).resolve()) if path.startswith("//") else path


def append_snapshot_scene(path: Path, name: str) -> bpy.types.Scene:
    """Add the snapshot's scene to the open file as a new scene called `name`; the user's scenes are untouched."""
    path = Path(path).resolve()
    before_volumes = set(bpy.data.volumes)
    with bpy.data.libraries.load(str(path), link=False) as (source, target):
        if not source.scenes:
            raise VDBForgeError(f"{path} holds no scene")
        target.scenes = source.scenes[:1]
    scene = target.scenes[0]
    scene.name = name
    for volume in set(bpy.data.volumes) - before_volumes:
        volume.filepath = _anchor(volume.filepath, path.parent)
    for obj in scene.objects:
        fluid = obj.modifiers.get("Fluid")
        if fluid is not None and fluid.fluid_type == "DOMAIN":
            fluid.domain_settings.cache_directory = _anchor(fluid.domain_settings.cache_directory, path.parent)
    return scene
