"""What Blender's register()/unregister() do: classes, the `scene.vdbforge` property, the user-data folder.

Loaded as an extension the package is `bl_ext.<repo>.vdbforge`, so names come from `__package__`, never a literal.
Unregister undoes register in reverse order and leaves no class, property or hook behind.
"""

import bpy
from bpy.props import PointerProperty, StringProperty

from . import operators, panels
from .core import paths
from .operators import preview_image
from .panels.properties import VDBForgeSceneProperties


class VDBForgePreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    models_dir: StringProperty(
        name="Models Folder",
        description="Folder with model weights for scoring (LPIPS, CLIP); empty uses the usual caches",
        default="",
        subtype="DIR_PATH",
    )

    def draw(self, context: bpy.types.Context) -> None:
        self.layout.prop(self, "models_dir")


CLASSES = (VDBForgePreferences, *panels.classes, *operators.classes)
_register_classes, _unregister_classes = bpy.utils.register_classes_factory(CLASSES)


def _user_dir() -> str:
    return bpy.utils.extension_path_user(__package__, path="", create=True)


def _is_extension() -> bool:
    # Loaded as a legacy add-on (a development checkout on the scripts path) there is no extension user folder;
    # core.paths then keeps its own default ($VDBFORGE_HOME or the XDG data folder).
    return __package__.startswith("bl_ext.")


def register() -> None:
    already = {cls for cls in CLASSES if cls.is_registered}
    try:
        _register_classes()
        bpy.types.Scene.vdbforge = PointerProperty(type=VDBForgeSceneProperties)
    except BaseException:
        # Blender does not call unregister() after a failed register(): undo what this call did (the property is
        # assigned last, so it never needs undoing), then let the original error reach Blender, which shows it.
        for cls in reversed(CLASSES):
            if cls.is_registered and cls not in already:
                bpy.utils.unregister_class(cls)
        raise
    if _is_extension():
        paths.set_user_dir_provider(_user_dir)


def unregister() -> None:
    if _is_extension():
        paths.set_user_dir_provider(None)
    preview_image.remove_preview_image()
    del bpy.types.Scene.vdbforge
    _unregister_classes()
