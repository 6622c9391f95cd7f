"""The VDBForge tab of the 3D viewport's sidebar: one parent panel, sub-panels in workflow order."""

import textwrap

import bpy

from ..core.errors import VDBForgeError
from ..core.parameters import current_values
from ..core.paths import user_data_dir
from ..core.preset_model import Preset
from .export_panel import VDBFORGE_PT_export
from .iterate_panel import VDBFORGE_PT_iterate
from .panel_base import PARENT_ID, SidebarPanel, SidebarSubPanel
from .properties import preset_items, selected_preset
from .score_panel import VDBFORGE_PT_references


def _wrapped(layout: bpy.types.UILayout, text: str, width: int = 44) -> None:
    for line in textwrap.wrap(text, width) or [""]:
        layout.label(text=line)


def _format(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class VDBFORGE_PT_main(SidebarPanel, bpy.types.Panel):
    bl_idname = PARENT_ID
    bl_label = "VDBForge"

    def draw(self, context: bpy.types.Context) -> None:
        self.layout.label(text="Preset → Bake → Preview → Score → Iterate → Export")


class VDBFORGE_PT_preset(SidebarSubPanel, bpy.types.Panel):
    bl_idname = "VDBFORGE_PT_preset"
    bl_label = "Preset"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        props = context.scene.vdbforge
        # Blender's preset idiom (dropdown with + / −), backed by our JSON preset files.
        row = layout.row(align=True)
        row.menu("VDBFORGE_MT_presets", text=_preset_name(props) or "Choose a preset")
        row.operator("vdbforge.preset_add", text="", icon="ADD")
        row.operator("vdbforge.preset_remove", text="", icon="REMOVE")
        row = layout.row(align=True)
        row.operator("vdbforge.preset_import", text="Import", icon="IMPORT")
        row.operator("vdbforge.preset_export", text="Export", icon="EXPORT")
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
        if preset.parameters:
            _draw_tunables(layout.box(), props, preset)


def _preset_name(props: bpy.types.PropertyGroup) -> str:
    # From our own item list: RNA's enum_items of a dynamic enum is not reliable without a context.
    return next((item[1] for item in preset_items(props, None) if item[0] == props.preset), "")


def _draw_tunables(box: bpy.types.UILayout, props: bpy.types.PropertyGroup, preset: Preset) -> None:
    row = box.row()
    row.label(text="Tunables")
    row.operator("vdbforge.tunables_reset", text="", icon="LOOP_BACK")
    if props.tunables_preset != preset.id:
        # Draw cannot write properties; the tunables are filled when the preset changes or on Reset.
        box.label(text="Press Reset to edit this preset's tunables", icon="INFO")
        return
    col = box.column(align=True)
    for item in props.tunables:
        row = col.row(align=True)
        row.prop(item, "factor", text=item.label, slider=True)
        row.prop(item, "value", text="")
    choices = [t for t in preset.parameters if t.choices is not None]
    values = current_values(preset) if choices else {}
    for tunable in choices:
        col.label(text=f"{tunable.label or tunable.path}: {_format(values[tunable.path])} (fixed)")


class VDBFORGE_PT_build_bake(SidebarSubPanel, bpy.types.Panel):
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
        layout.operator("vdbforge.bake_modal", icon="RENDER_ANIMATION")
        if props.running or props.status_text:
            col = layout.column(align=True)
            col.prop(props, "progress", text="Progress" if props.running else "Last Run", slider=True)
            col.label(text=props.status_text, icon="TIME" if props.running else "INFO")
            if props.running:
                col.label(text="Esc cancels and keeps the baked frames")


class VDBFORGE_PT_preview(SidebarSubPanel, bpy.types.Panel):
    bl_idname = "VDBFORGE_PT_preview"
    bl_label = "Preview"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        layout.prop(context.scene.vdbforge, "angles")
        layout.operator("vdbforge.render_preview", icon="RENDER_STILL")
        image = bpy.data.images.get(context.scene.vdbforge.preview_image)
        if image is None:
            return
        # The image's preview icon is the simplest way to show a picture in a panel without an image editor.
        image.preview_ensure()
        layout.template_icon(icon_value=image.preview.icon_id, scale=10.0)
        layout.label(text=context.scene.vdbforge.contact_sheet, icon="IMAGE_DATA")


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
