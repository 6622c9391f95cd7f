"""Thin operators that hand the work to core/ and blender/."""

from . import build_bake

classes = (*build_bake.classes,)
