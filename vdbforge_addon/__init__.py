"""VDBForge: production volumetric assets from presets, fitted to reference images.

Importing this package must stay cheap and must not import bpy: the same package is the pip `vdbforge` command and
the Blender extension. Blender calls register()/unregister().
"""

from __future__ import annotations


def register() -> None:
    from .blender_registration import register as _register

    _register()


def unregister() -> None:
    from .blender_registration import unregister as _unregister

    _unregister()
