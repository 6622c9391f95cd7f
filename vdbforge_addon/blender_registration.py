"""What Blender's register()/unregister() do: classes, the `scene.vdbforge` property, the user-data folder.

Loaded as an extension the package is `bl_ext.<repo>.vdbforge`, so names come from `__package__`, never a literal.
Unregister undoes register in reverse order and leaves no class, property or hook behind.
"""

import bpy
from bpy.props import EnumProperty, FloatProperty, PointerProperty, StringProperty

from . import operators, panels
from .core import paths
from .ml import model_weights
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

    critic_provider: EnumProperty(
        name="Critic",
        description="Vision-language model that rates previews against the references (sends images over the network)",
        items=[
            ("none", "Off", "No critic"),
            ("openai", "OpenAI-compatible", "Any chat-completions endpoint, including local servers"),
            ("anthropic", "Anthropic", "Anthropic Messages API"),
        ],
        default="none",
    )
    critic_model: StringProperty(name="Model", description="The provider's model name", default="")
    critic_url: StringProperty(name="Endpoint", description="Base URL; empty uses the provider's default", default="")
    critic_api_key: StringProperty(
        name="API Key",
        description="Used only for requests; empty reads OPENAI_API_KEY / ANTHROPIC_API_KEY from the environment",
        default="",
        subtype="PASSWORD",
    )
    critic_weight: FloatProperty(
        name="Weight", description="Share of the critic's rating in the objective", default=0.3, min=0.0, max=1.0
    )

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        layout.prop(self, "models_dir")
        row = layout.row(align=True)
        for name in ("lpips-alex", "lpips-vgg", "clip:ViT-B-32:openai"):
            row.operator("vdbforge.models_fetch", text=f"Get {name}").name = name
        if not bpy.app.online_access:
            layout.label(text="Downloads need Allow Online Access (Preferences > System)", icon="INFO")
        box = layout.box()
        box.prop(self, "critic_provider")
        if self.critic_provider != "none":
            for name in ("critic_model", "critic_url", "critic_api_key", "critic_weight"):
                box.prop(self, name)
            if not bpy.app.online_access:
                box.label(text="Enable Allow Online Access (Preferences > System) to use a critic", icon="ERROR")


CLASSES = (VDBForgePreferences, *panels.classes, *operators.classes)
_register_classes, _unregister_classes = bpy.utils.register_classes_factory(CLASSES)


def _user_dir() -> str:
    return bpy.utils.extension_path_user(__package__, path="", create=True)


def preferences() -> VDBForgePreferences | None:
    addon = bpy.context.preferences.addons.get(__package__)
    return addon.preferences if addon is not None else None


def _models_dir_preference() -> str:
    prefs = preferences()
    return bpy.path.abspath(prefs.models_dir) if prefs is not None and prefs.models_dir else ""


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
    model_weights.set_models_dir_provider(_models_dir_preference)


def unregister() -> None:
    if _is_extension():
        paths.set_user_dir_provider(None)
    model_weights.set_models_dir_provider(None)
    preview_image.remove_preview_image()
    del bpy.types.Scene.vdbforge
    _unregister_classes()
