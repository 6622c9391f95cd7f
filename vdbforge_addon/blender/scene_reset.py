"""Return Blender to an empty scene between jobs (and before exit, which avoids the Mantaflow shutdown abort)."""

from __future__ import annotations

import bpy


def reset_to_empty_scene() -> bpy.types.Scene:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    return bpy.context.scene
