"""The References & Score sub-panel and its settings (`scene.vdbforge.score`): reference images, a text target,
metric weights, and the last score with its per-angle breakdown.

Like export_panel.py, imported by properties.py (for the PointerProperty) and main_panels.py (for the panel), so it
imports neither (panel_base.py gives the sidebar placement).
"""

# No `from __future__ import annotations`: Blender reads the property definitions from real annotation objects.

import bpy
from bpy.props import BoolProperty, CollectionProperty, FloatProperty, IntProperty, StringProperty

from ..core.scoring_settings import DEFAULT_WEIGHTS, METRIC_NAMES
from .panel_base import SidebarSubPanel

METRIC_LABELS = {
    "lpips_alex": "LPIPS (Alex)",
    "lpips_vgg": "LPIPS (VGG)",
    "clip": "CLIP Image",
    "ssim": "SSIM",
    "ms_ssim": "MS-SSIM",
    "color": "Colour",
    "silhouette": "Silhouette",
}


class VDBForgeReference(bpy.types.PropertyGroup):
    filepath: StringProperty(
        name="Image", description="Reference image the previews are compared with", subtype="FILE_PATH"
    )


class VDBForgeScoreRow(bpy.types.PropertyGroup):
    """One preview image's score (the mean over references when there are several)."""

    image: StringProperty(name="Image")
    frame: IntProperty(name="Frame")
    angle: IntProperty(name="Angle")
    score: FloatProperty(name="Score", min=0.0, max=1.0, subtype="FACTOR")
    best_for: StringProperty(name="Best For", description="References this image matches best")


def _weight_property(metric: str) -> FloatProperty:
    return FloatProperty(
        name=METRIC_LABELS[metric],
        description=f"Weight of {METRIC_LABELS[metric]} in the objective (0 leaves it out)",
        default=DEFAULT_WEIGHTS.get(metric, 0.0),
        min=0.0,
        max=10.0,
        soft_max=1.0,
    )


class VDBForgeScoreProperties(bpy.types.PropertyGroup):
    references: CollectionProperty(type=VDBForgeReference)
    active_reference: IntProperty(name="Active Reference", default=0)
    text_target: StringProperty(name="Text", description="Describe the target; scored with CLIP", default="")
    weight_lpips_alex: _weight_property("lpips_alex")
    weight_lpips_vgg: _weight_property("lpips_vgg")
    weight_clip: _weight_property("clip")
    weight_ssim: _weight_property("ssim")
    weight_ms_ssim: _weight_property("ms_ssim")
    weight_color: _weight_property("color")
    weight_silhouette: _weight_property("silhouette")
    allow_missing_weights: BoolProperty(
        name="Skip Unavailable Metrics",
        description="Score with the metrics that can run when model weights or torch are missing (listed below)",
        default=True,
    )
    objective: FloatProperty(name="Objective", min=0.0, max=1.0, subtype="FACTOR")
    results: CollectionProperty(type=VDBForgeScoreRow)
    summary: StringProperty(name="Summary", description="Metrics used and the best match per reference")
    skipped: StringProperty(name="Skipped", description="Metrics that could not run, with the reason")

    def weights(self) -> dict[str, float]:
        return {metric: getattr(self, f"weight_{metric}") for metric in METRIC_NAMES}


class VDBFORGE_UL_references(bpy.types.UIList):
    def draw_item(self, _context, layout, _data, item, _icon, _active_data, _active_propname, _index) -> None:
        layout.label(text=bpy.path.basename(item.filepath) or "(no file)", icon="IMAGE_DATA")


class VDBFORGE_PT_references(SidebarSubPanel, bpy.types.Panel):
    bl_idname = "VDBFORGE_PT_references"
    bl_label = "References & Score"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        score = context.scene.vdbforge.score
        row = layout.row()
        row.template_list("VDBFORGE_UL_references", "", score, "references", score, "active_reference", rows=3)
        col = row.column(align=True)
        col.operator("vdbforge.reference_add", text="", icon="ADD")
        col.operator("vdbforge.reference_remove", text="", icon="REMOVE")
        layout.prop(score, "text_target")
        box = layout.box()
        box.label(text="Metric Weights")
        grid = box.grid_flow(columns=2, align=True)
        for metric in METRIC_NAMES:
            grid.prop(score, f"weight_{metric}")
        box.prop(score, "allow_missing_weights")
        layout.operator("vdbforge.score_previews", icon="CHECKMARK")
        if score.summary:
            self._draw_results(layout.box(), score)

    @staticmethod
    def _draw_results(box: bpy.types.UILayout, score: VDBForgeScoreProperties) -> None:
        box.prop(score, "objective", slider=True)
        for line in score.summary.split("\n"):
            box.label(text=line)
        col = box.column(align=True)
        for row in score.results:
            line = col.row(align=True)
            line.label(text=f"frame {row.frame} angle {row.angle}" if row.frame else row.image)
            line.prop(row, "score", text="", slider=True)
            if row.best_for:
                line.label(text=f"best: {row.best_for}", icon="CHECKMARK")
        if score.skipped:
            for reason in score.skipped.split("\n"):
                box.label(text=reason, icon="INFO")


property_classes = (VDBForgeReference, VDBForgeScoreRow, VDBForgeScoreProperties)
classes = (VDBFORGE_UL_references, VDBFORGE_PT_references)
