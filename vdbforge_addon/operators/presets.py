"""The preset dropdown's + / − and import / export, all backed by our JSON files (never Blender's Python presets)."""

import re
from pathlib import Path

import bpy
from bpy.props import BoolProperty, StringProperty

from ..core.errors import PresetError, VDBForgeError
from ..core.parameters import apply_overrides, validate_preset
from ..core.paths import user_presets_dir
from ..core.preset_library import PRESET_SUFFIXES, resolve_preset
from ..core.preset_sharing import (
    export_preset,
    import_pack,
    import_preset_file,
    save_user_preset,
    shadows_builtin,
    write_pack,
)
from ..panels.properties import DEFAULT_PRESET, VDBForgeSceneProperties, rebuild_tunables, tunable_overrides


def preset_id_from_name(name: str) -> str:
    """`My Plume 2` → `my_plume_2`: a preset id is lower-case letters, digits and underscores, starting with a letter."""
    slug = re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")
    if not slug or not slug[0].isalpha():
        slug = f"preset_{slug}".rstrip("_")
    return slug[:64]


def user_preset_files(preset_id: str) -> list[Path]:
    return [p for s in PRESET_SUFFIXES if (p := user_presets_dir() / f"{preset_id}{s}").is_file()]


def _select(props: VDBForgeSceneProperties, preset_id: str) -> None:
    props.preset = preset_id  # the enum's update callback refills the tunables
    rebuild_tunables(props)  # also when the id was already selected (the file under it changed)


class _PresetOperator:
    bl_options = {"REGISTER", "INTERNAL"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return getattr(context.scene, "vdbforge", None) is not None


class VDBFORGE_OT_preset_add(_PresetOperator, bpy.types.Operator):
    """Save the selected preset with the edited tunables as a new user preset"""

    bl_idname = "vdbforge.preset_add"
    bl_label = "Add Preset"

    name: StringProperty(name="Name", description="Name of the new preset; its id is derived from it")
    overwrite: BoolProperty(name="Replace Existing", description="Replace a user preset with the same id")

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        return context.window_manager.invoke_props_dialog(self)

    def execute(self, context: bpy.types.Context) -> set[str]:
        props = context.scene.vdbforge
        try:
            if not props.preset:
                raise PresetError("no preset is selected")
            if not self.name.strip():
                raise PresetError("the new preset needs a name")
            preset_id = preset_id_from_name(self.name)
            if shadows_builtin(preset_id):
                raise PresetError(f"'{preset_id}' is a built-in preset id; choose another name")
            edited = apply_overrides(resolve_preset(props.preset), tunable_overrides(props))
            data = {**edited.model_dump(mode="json"), "id": preset_id, "name": self.name.strip()}
            path = save_user_preset(validate_preset(data, f"new preset '{preset_id}'"), overwrite=self.overwrite)
            _select(props, preset_id)
        except VDBForgeError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Saved preset '{preset_id}' to {path}")
        return {"FINISHED"}


class VDBFORGE_OT_preset_remove(_PresetOperator, bpy.types.Operator):
    """Delete the selected user preset's file (built-in presets cannot be removed)"""

    bl_idname = "vdbforge.preset_remove"
    bl_label = "Remove Preset"

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        return context.window_manager.invoke_confirm(self, event)

    def execute(self, context: bpy.types.Context) -> set[str]:
        props = context.scene.vdbforge
        preset_id = props.preset
        files = user_preset_files(preset_id) if preset_id else []
        if not files:
            self.report({"ERROR"}, f"'{preset_id}' is a built-in preset; only user presets can be removed")
            return {"CANCELLED"}
        for path in files:
            path.unlink()
        # With the user file gone a built-in of the same id shows again; otherwise fall back to the default.
        _select(props, preset_id if shadows_builtin(preset_id) else DEFAULT_PRESET)
        self.report({"INFO"}, f"Removed user preset '{preset_id}'")
        return {"FINISHED"}


class VDBFORGE_OT_preset_import(_PresetOperator, bpy.types.Operator):
    """Add a preset file (.vdbforge.json) or a preset pack (.zip) to the user presets"""

    bl_idname = "vdbforge.preset_import"
    bl_label = "Import Preset"

    filepath: StringProperty(name="File", subtype="FILE_PATH")
    filter_glob: StringProperty(default="*.json;*.zip", options={"HIDDEN"})
    overwrite: BoolProperty(name="Replace Existing", description="Replace user presets with the same ids")

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        path = Path(bpy.path.abspath(self.filepath))
        try:
            if path.suffix.lower() == ".zip":
                ids = [p.name.removesuffix(".vdbforge.json") for p in import_pack(path, overwrite=self.overwrite)]
            else:
                ids = [import_preset_file(path, overwrite=self.overwrite)[0].id]
        except VDBForgeError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        _select(context.scene.vdbforge, ids[0])
        self.report({"INFO"}, f"Imported {', '.join(ids)}")
        return {"FINISHED"}


class VDBFORGE_OT_preset_export(_PresetOperator, bpy.types.Operator):
    """Write the selected preset to a .vdbforge.json file, or a .zip preset pack"""

    bl_idname = "vdbforge.preset_export"
    bl_label = "Export Preset"

    filepath: StringProperty(name="File", subtype="FILE_PATH")
    filter_glob: StringProperty(default="*.json;*.zip", options={"HIDDEN"})

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if not self.filepath:
            self.filepath = f"{context.scene.vdbforge.preset}.vdbforge.json"
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        preset_id = context.scene.vdbforge.preset
        dest = Path(bpy.path.abspath(self.filepath))
        try:
            if not preset_id:
                raise PresetError("no preset is selected")
            written = write_pack([preset_id], dest) if dest.suffix.lower() == ".zip" else export_preset(preset_id, dest)
        except VDBForgeError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Exported '{preset_id}' to {written}")
        return {"FINISHED"}


class VDBFORGE_OT_tunables_reset(_PresetOperator, bpy.types.Operator):
    """Set the tunables back to the selected preset's values"""

    bl_idname = "vdbforge.tunables_reset"
    bl_label = "Reset Tunables"

    def execute(self, context: bpy.types.Context) -> set[str]:
        try:
            rebuild_tunables(context.scene.vdbforge)
        except VDBForgeError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        return {"FINISHED"}


class VDBFORGE_MT_presets(bpy.types.Menu):
    bl_idname = "VDBFORGE_MT_presets"
    bl_label = "VDBForge Presets"

    def draw(self, context: bpy.types.Context) -> None:
        self.layout.props_enum(context.scene.vdbforge, "preset")


classes = (
    VDBFORGE_OT_preset_add,
    VDBFORGE_OT_preset_remove,
    VDBFORGE_OT_preset_import,
    VDBFORGE_OT_preset_export,
    VDBFORGE_OT_tunables_reset,
    VDBFORGE_MT_presets,
)
