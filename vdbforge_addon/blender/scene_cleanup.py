"""Remove an earlier VDBForge build from the scene: its objects, the data-blocks only they used, their caches."""

from __future__ import annotations

import shutil
from pathlib import Path

import bpy

from .gas_scene import COLLECTION_NAME

# Sub-folders Mantaflow writes into a domain's cache directory; nothing else in that folder is touched.
_FLUID_CACHE_DIRS = ("config", "data", "noise", "mesh", "particles", "guiding", "script")


def clear_fluid_cache(cache_dir: Path) -> None:
    # A bake only overwrites the frames it writes: frames of an earlier, longer bake would otherwise survive and be
    # read back as part of this one.
    for name in _FLUID_CACHE_DIRS:
        folder = cache_dir / name
        if folder.is_dir() and not folder.is_symlink():
            shutil.rmtree(folder)


def remove_previous_build() -> int:
    """Delete the objects of an earlier build and every data-block and cache they alone used; returns the count."""
    collection = bpy.data.collections.get(COLLECTION_NAME)
    if collection is None:
        return 0
    objects = list(collection.all_objects)
    owned: list[bpy.types.ID] = []
    for obj in objects:
        if obj.data is not None:
            owned.append(obj.data)
        if obj.animation_data is not None and obj.animation_data.action is not None:
            owned.append(obj.animation_data.action)  # keyframed emission windows, moving obstacles
        owned += [system.settings for system in obj.particle_systems]  # liquid spray / foam / bubbles
        for mod in obj.modifiers:
            if mod.type != "FLUID":
                continue
            if mod.fluid_type == "DOMAIN" and mod.domain_settings.cache_directory:
                clear_fluid_cache(Path(bpy.path.abspath(mod.domain_settings.cache_directory)))
            elif mod.fluid_type == "FLOW" and mod.flow_settings.noise_texture is not None:
                owned.append(mod.flow_settings.noise_texture)
    for obj in objects:
        bpy.data.objects.remove(obj)
    # Only what nothing else uses any more: a user who reused our mesh or texture keeps it.
    orphans = {id_ for id_ in owned if id_.users == 0}
    if orphans:
        bpy.data.batch_remove(list(orphans))
    return len(objects)


def remove_leaked_particle_settings(before: set[bpy.types.ParticleSettings]) -> None:
    """Remove particle settings created since `before` that nothing uses.

    Setting up a liquid domain makes Blender create and drop a FLIP particle system whose settings keep a user count
    of 1 with no user at all, so neither the object removal nor Blender's orphan purge would ever free them.
    """
    new = [ps for ps in bpy.data.particles if ps not in before and not ps.use_fake_user]
    if new:
        users = bpy.data.user_map(subset=new)
        bpy.data.batch_remove([ps for ps in new if not users[ps]])
