"""Thin operators that hand the work to core/ and blender/."""

from . import build_bake, export_modal, inverse_build, iterate, modal_bake, presets, score

classes = (
    *build_bake.classes,
    *modal_bake.classes,
    *presets.classes,
    *export_modal.classes,
    *score.classes,
    *iterate.classes,
    *inverse_build.classes,
)
