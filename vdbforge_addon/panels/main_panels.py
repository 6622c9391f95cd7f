"""The VDBForge tab of the 3D viewport's sidebar: one parent panel, sub-panels in workflow order."""

import textwrap

import bpy

from ..core.errors import VDBForgeError
from ..core.parameters import current_values
from ..core.paths import user_data_dir
from .properties import selected_preset

CATEGORY = "VDBForge"
PARENT_ID = "VDBFORGE_PT_main"


class _VDBForgePanel:
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = CATEGORY

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        # Between unregistering the property and the panel (or in a window without a scene) there is nothing to draw.
        return context.scene is not None and getattr(context.scene, "vdbforge", None) is not None


class _VDBForgeSubPanel(_VDBForgePanel):
    bl_parent_id = PARENT_ID


def _wrapped(layout: bpy.types.UILayout, text: str, width: int = 44) -> None:
    for line in textwrap.wrap(text, width) or [""]:
        layout.label(text=line)


def _format(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class VDBFORGE_PT_main(_VDBForgePanel, bpy.types.Panel):
    bl_idname = PARENT_ID
    bl_label = "VDBForge"

    def draw(self, context: bpy.types.Context) -> None:
        self.layout.label(text="Preset → Bake → Preview → Score → Iterate → Export")


class VDBFORGE_PT_preset(_VDBForgeSubPanel, bpy.types.Panel):
    bl_idname = "VDBFORGE_PT_preset"
    bl_label = "Preset"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        props = context.scene.vdbforge
        layout.prop(props, "preset", text="")
        try:
            preset = selected_preset(props)
        except VDBForgeError as exc:
            # Drawing must not raise; the broken file's one-line reason is what the user needs to see.
            layout.label(text=str(exc), icon="ERROR")
            return
        if preset is None:
            layout.label(text="No preset selected", icon="INFO")
            return
        layout.label(text=f"{preset.family} / {preset.kind}")
        if preset.description:
            _wrapped(layout.column(align=True), preset.description)
        if not preset.parameters:
            return
        box = layout.box()
        box.label(text="Tunables")
        values = current_values(preset)
        col = box.column(align=True)
        for tunable in preset.parameters:
            if tunable.choices is not None:
                bounds = " | ".join(_format(c) for c in tunable.choices)
            else:
                bounds = f"{_format(tunable.min)} – {_format(tunable.max)}" + (" log" if tunable.scale == "log" else "")
            row = col.row()
            row.label(text=tunable.label or tunable.path)
            row.label(text=f"{_format(values[tunable.path])}  [{bounds}]")


class VDBFORGE_PT_build_bake(_VDBForgeSubPanel, bpy.types.Panel):
    bl_idname = "VDBFORGE_PT_build_bake"
    bl_label = "Build & Bake"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        props = context.scene.vdbforge
        layout.prop(props, "resolution")
        row = layout.row(align=True)
        row.prop(props, "frame_start")
        row.prop(props, "frame_end")
        layout.prop(props, "output_dir")
        if not props.output_dir:
            layout.label(text=f"Default: {user_data_dir() / 'scenes'}", icon="FILE_FOLDER")
        layout.operator("vdbforge.build_bake", icon="MOD_FLUIDSIM")


class VDBFORGE_PT_preview(_VDBForgeSubPanel, bpy.types.Panel):
    bl_idname = "VDBFORGE_PT_preview"
    bl_label = "Preview"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        layout.prop(context.scene.vdbforge, "angles")
        layout.operator("vdbforge.render_preview", icon="RENDER_STILL")


class _PlaceholderPanel(_VDBForgeSubPanel):
    bl_options = {"DEFAULT_CLOSED"}
    available_after = ""

    def draw(self, context: bpy.types.Context) -> None:
        self.layout.label(text=f"Available after {self.available_after}", icon="INFO")


class VDBFORGE_PT_references(_PlaceholderPanel, bpy.types.Panel):
    bl_idname = "VDBFORGE_PT_references"
    bl_label = "References & Score"
    available_after = "the scoring module lands"


class VDBFORGE_PT_iterate(_PlaceholderPanel, bpy.types.Panel):
    bl_idname = "VDBFORGE_PT_iterate"
    bl_label = "Iterate"
    available_after = "the optimizer lands"


class VDBFORGE_PT_export(_PlaceholderPanel, bpy.types.Panel):
    bl_idname = "VDBFORGE_PT_export"
    bl_label = "Export"
    available_after = "the export module lands"


# Registration order is the order the sub-panels appear in.
classes = (
    VDBFORGE_PT_main,
    VDBFORGE_PT_preset,
    VDBFORGE_PT_build_bake,
    VDBFORGE_PT_preview,
    VDBFORGE_PT_references,
    VDBFORGE_PT_iterate,
    VDBFORGE_PT_export,
)
