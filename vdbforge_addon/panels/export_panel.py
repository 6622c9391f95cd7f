"""The Export sub-panel and its settings (`scene.vdbforge.export`): re-export a kept bake cache as .vdb / .nvdb into
a folder the user picks, with what `vdbforge export` offers.

`properties.py` imports this module for its PointerProperty and `main_panels.py` for the panel, so it imports neither
(either would be a cycle); the sidebar placement comes from panel_base.py.
"""

# No `from __future__ import annotations`: Blender reads the property definitions from real annotation objects.

import textwrap
from pathlib import Path
from typing import Any

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, StringProperty

from ..core.errors import OutputError, VDBForgeError
from ..core.export_session import QUANTIZE_NONE, export_overrides, latest_kept_cache, read_cache_preset
from ..core.export_session import settings_problem as core_settings_problem
from ..core.paths import user_data_dir
from ..core.preset_model import MAX_FRAMES, ExportSettings
from .panel_base import SidebarSubPanel

EXPORTS_FOLDER = "exports"  # under the user data folder, one sub-folder per preset, when no output folder is chosen

PRECISION_ITEMS = [
    ("half", "Half", "16-bit floats in the .vdb files (half the size; plenty for rendering)"),
    ("float", "Float", "32-bit floats in the .vdb files"),
]
COMPRESSION_ITEMS = [
    ("blosc", "Blosc", "Blosc compression, as Blender's openvdb module writes it (fast to read)"),
    ("zip", "Zip", "Zip compression, re-encoded from the module's Blosc file (smallest; slower to read)"),
    ("none", "None", "No compression, re-encoded from the module's Blosc file (fastest to read)"),
]
CODEC_ITEMS = [
    ("zip", "Zip", "Zip-compressed NanoVDB files"),
    ("blosc", "Blosc", "Blosc-compressed NanoVDB files"),
    ("none", "None", "Uncompressed NanoVDB files (the GPU can map them directly)"),
]
QUANTIZE_ITEMS = [
    (QUANTIZE_NONE, "None", "Full 32-bit float grids"),
    ("fp16", "Fp16", "16-bit quantized float grids"),
    ("fp8", "Fp8", "8-bit quantized float grids"),
    ("fp4", "Fp4", "4-bit quantized float grids"),
    ("fpn", "FpN", "Variable bit width per leaf, within the tolerance"),
]


class VDBForgeExportProperties(bpy.types.PropertyGroup):
    cache_dir: StringProperty(
        name="Cache Folder",
        description="Kept bake cache to export (holds vdbforge_preset.json); empty uses the last Bake & Preview cache",
        default="",
        subtype="DIR_PATH",
    )
    output_dir: StringProperty(
        name="Output Folder",
        description="Where vdb/, nvdb/ and result.json are written; empty uses the extension's user folder",
        default="",
        subtype="DIR_PATH",
    )
    grids: StringProperty(
        name="Grids",
        description="Comma-separated grids to export, e.g. density,flame; empty uses the preset's grids",
        default="",
    )
    precision: EnumProperty(name="Precision", items=PRECISION_ITEMS, default="half")
    compression: EnumProperty(name="Compression", items=COMPRESSION_ITEMS, default="blosc")
    nanovdb: BoolProperty(name="NanoVDB", description="Also write nvdb/<asset>_####.nvdb beside each .vdb")
    nanovdb_codec: EnumProperty(name="Codec", items=CODEC_ITEMS, default="zip")
    quantize: EnumProperty(name="Quantize", items=QUANTIZE_ITEMS, default=QUANTIZE_NONE)
    tolerance: FloatProperty(
        name="Tolerance",
        description="FpN: largest absolute error per voxel; 0 uses the grid's default (0.01 for fog volumes)",
        default=0.0,
        min=0.0,
        max=1000.0,
        precision=4,
    )
    use_frame_range: BoolProperty(name="Frame Range", description="Export only these frames (else every cached one)")
    frame_start: IntProperty(name="Start", default=1, min=1, max=MAX_FRAMES)
    frame_end: IntProperty(name="End", default=48, min=1, max=MAX_FRAMES)
    frame_step: IntProperty(name="Step", description="Export every n-th frame", default=1, min=1, max=MAX_FRAMES)
    progress: FloatProperty(name="Progress", min=0.0, max=1.0, subtype="FACTOR", default=0.0)
    status_text: StringProperty(name="Status", default="")
    running: BoolProperty(name="Running", description="An export is running", default=False)


def panel_overrides(props: VDBForgeExportProperties) -> dict[str, Any]:
    return export_overrides(
        grids=props.grids,
        precision=props.precision,
        compression=props.compression,
        nanovdb=props.nanovdb,
        nanovdb_codec=props.nanovdb_codec,
        quantize=props.quantize,
        tolerance=props.tolerance,
    )


def panel_frames(props: VDBForgeExportProperties) -> tuple[int, int, int] | None:
    return (props.frame_start, props.frame_end, props.frame_step) if props.use_frame_range else None


def settings_problem(props: VDBForgeExportProperties) -> str:
    return core_settings_problem(panel_overrides(props))


def _folder(value: str, what: str) -> Path:
    if value.startswith("//") and not bpy.data.filepath:
        raise OutputError(
            f"{what} '{value}' is relative to the .blend file, which is not saved yet; save it or choose an absolute one"
        )
    return Path(bpy.path.abspath(value)).expanduser().absolute()


def chosen_cache(context: bpy.types.Context) -> Path:
    """The picked cache folder, or the most recent cache Bake & Preview kept (under its output folder's renders/)."""
    props = context.scene.vdbforge.export
    if props.cache_dir:
        return _folder(props.cache_dir, "cache folder")
    # Imported here, not at the top: this module loads while panels/properties.py is still loading, and the
    # operators package needs that module complete.
    from ..operators.build_bake import output_folder

    renders = output_folder(context.scene.vdbforge) / "renders"
    cache = latest_kept_cache(renders)
    if cache is None:
        raise VDBForgeError(f"no cache folder chosen and no kept bake in '{renders}': run Bake & Preview or pick one")
    return cache


def chosen_output(props: VDBForgeExportProperties, preset_id: str) -> Path:
    if props.output_dir:
        return _folder(props.output_dir, "output folder")
    return user_data_dir() / EXPORTS_FOLDER / preset_id


def _wrapped(layout: bpy.types.UILayout, text: str, icon: str = "NONE", width: int = 44) -> None:
    col = layout.column(align=True)
    for i, line in enumerate(textwrap.wrap(text, width) or [""]):
        col.label(text=line, icon=icon if i == 0 else "BLANK1")


class VDBFORGE_PT_export(SidebarSubPanel, bpy.types.Panel):
    bl_idname = "VDBFORGE_PT_export"
    bl_label = "Export"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        props = context.scene.vdbforge.export
        preset = self._draw_folders(layout, context, props)
        layout.prop(props, "grids")
        if not props.grids.strip():
            grids = (preset or {}).get("export", {}).get("grids") or ExportSettings().grids
            layout.label(text=f"Default: {', '.join(grids)}", icon="INFO")
        layout.prop(props, "precision", expand=True)
        layout.prop(props, "compression", expand=True)
        layout.prop(props, "nanovdb")
        if props.nanovdb:
            box = layout.box()
            box.prop(props, "nanovdb_codec")
            box.prop(props, "quantize")
            if props.quantize == "fpn":
                box.prop(props, "tolerance")
        layout.prop(props, "use_frame_range")
        if props.use_frame_range:
            row = layout.row(align=True)
            row.prop(props, "frame_start")
            row.prop(props, "frame_end")
            row.prop(props, "frame_step")
        problem = settings_problem(props)
        if problem:
            # Shown before the user presses Export, instead of an error afterwards.
            _wrapped(layout, problem, icon="ERROR")
        row = layout.row()
        row.enabled = not problem and not props.running
        row.operator("vdbforge.export", icon="EXPORT")
        if props.running or props.status_text:
            col = layout.column(align=True)
            col.prop(props, "progress", text="Progress" if props.running else "Last Export", slider=True)
            _wrapped(col, props.status_text, icon="TIME" if props.running else "INFO")
            if props.running:
                col.label(text="Esc cancels; nothing is written until the export finishes")

    def _draw_folders(
        self, layout: bpy.types.UILayout, context: bpy.types.Context, props: VDBForgeExportProperties
    ) -> dict[str, Any] | None:
        """Draw both folder fields with the defaults they fall back to; returns the cache's preset if it is readable."""
        layout.prop(props, "cache_dir")
        preset = None
        try:
            cache = chosen_cache(context)
            preset = read_cache_preset(cache)[1]
            if not props.cache_dir:
                layout.label(text=f"Default: {cache}", icon="FILE_FOLDER")
        except VDBForgeError as exc:
            # Drawing must not raise; the reason is what the user needs to see.
            _wrapped(layout, str(exc), icon="ERROR" if props.cache_dir else "INFO")
        layout.prop(props, "output_dir")
        if not props.output_dir:
            preset_id = (preset or {}).get("id") or "<preset>"
            layout.label(text=f"Default: {user_data_dir() / EXPORTS_FOLDER / preset_id}", icon="FILE_FOLDER")
        return preset


# The panel is registered through main_panels.classes, which fixes the sub-panel order.
property_classes = (VDBForgeExportProperties,)
