"""The Iterate sub-panel and its settings (`scene.vdbforge.iterate`): a match run against the References & Score
targets, with live generation / evaluations / best score / best thumbnail, Cancel (Esc), Apply Best, Save Best; where
the search starts, and whether the preset has an inverse model, with Build Model (dataset + training, Esc cancels).

Like export_panel.py, imported by properties.py and main_panels.py, so it imports neither.
"""

# No `from __future__ import annotations`: Blender reads the property definitions from real annotation objects.

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, StringProperty

from .panel_base import SidebarSubPanel


class VDBForgeIterateProperties(bpy.types.PropertyGroup):
    budget: IntProperty(name="Budget", description="Bakes to spend", default=32, min=1, max=10_000, soft_max=256)
    population: IntProperty(name="Population", description="Candidates per generation", default=6, min=2, max=256)
    workers: IntProperty(name="Workers", description="Worker processes baking at once", default=2, min=1, max=64)
    optimizer: EnumProperty(
        name="Optimizer",
        items=[
            ("cma", "CMA-ES", "Covariance matrix adaptation over the simulation parameters"),
            ("random", "Random", "Random search with the same budget: the baseline"),
        ],
        default="cma",
    )
    inner_budget: IntProperty(
        name="Render Fit", description="Renders per candidate fitting the render-time parameters", default=10, min=0
    )
    threshold: FloatProperty(
        name="Stop At", description="Stop once a candidate scores this much", default=0.97, min=0, max=1
    )
    seed: IntProperty(name="Seed", default=0, min=0)
    snapshots: BoolProperty(
        name="Snapshots",
        description="Save each candidate's scene (.blend) in the run folder, to step back to it later",
        default=False,
    )
    init: EnumProperty(
        name="Start From",
        items=[
            ("auto", "Auto", "The inverse model's prediction when this preset has one, otherwise the preset's values"),
            ("inverse", "Model", "The inverse model's prediction for the first reference (Build Model makes one)"),
            ("memory", "Memory", "The best past runs of this preset (technique memory)"),
            ("default", "Preset", "The preset's own values"),
        ],
        default="auto",
    )
    model_samples: IntProperty(
        name="Samples",
        description="Bakes in the dataset the model learns from (512 is a good start; building again adds to it)",
        default=512,
        min=8,
        max=100_000,
        soft_max=4096,
    )
    model_building: BoolProperty(name="Building Model", default=False)
    model_progress: FloatProperty(name="Model Progress", min=0.0, max=1.0, subtype="FACTOR")
    model_status_text: StringProperty(name="Model Status")
    running: BoolProperty(name="Running", default=False)
    progress: FloatProperty(name="Progress", min=0.0, max=1.0, subtype="FACTOR")
    status_text: StringProperty(name="Status")
    best_score: FloatProperty(name="Best Score", min=0.0, max=1.0, subtype="FACTOR")
    best_image: StringProperty(name="Best Image", description="Image data-block showing the best preview")
    run_dir: StringProperty(name="Run Folder", description="The last match run (run.json, history, best/, report)")


class VDBFORGE_PT_iterate(SidebarSubPanel, bpy.types.Panel):
    bl_idname = "VDBFORGE_PT_iterate"
    bl_label = "Iterate"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        props = context.scene.vdbforge
        it = props.iterate
        col = layout.column(align=True)
        for name in ("budget", "population", "workers", "inner_budget", "threshold", "seed"):
            col.prop(it, name)
        layout.prop(it, "optimizer", expand=True)
        layout.prop(it, "init")
        self._draw_model(layout, props)
        layout.prop(it, "snapshots")
        score = props.score
        if not score.references and not score.text_target.strip():
            layout.label(text="Add a reference or text in References & Score", icon="INFO")
        layout.operator("vdbforge.match_run", icon="PLAY")
        if it.running or it.status_text:
            box = layout.box()
            box.prop(it, "progress", text="Bakes", slider=True)
            box.label(text=it.status_text, icon="TIME" if it.running else "INFO")
            if it.running:
                box.label(text="Esc cancels and keeps the finished candidates")
        image = bpy.data.images.get(it.best_image) if it.best_image else None
        if image is not None:
            image.preview_ensure()
            layout.template_icon(icon_value=image.preview.icon_id, scale=8.0)
            layout.prop(it, "best_score", slider=True)
        if it.run_dir:
            row = layout.row(align=True)
            row.operator("vdbforge.match_apply_best", icon="CHECKMARK")
            row.operator("vdbforge.match_save_best", icon="ADD")
            layout.operator("vdbforge.match_open_snapshot", icon="SCENE_DATA")
            layout.label(text=it.run_dir, icon="FILE_FOLDER")

    def _draw_model(self, layout: bpy.types.UILayout, props) -> None:
        it = props.iterate
        box = layout.box()
        status = _model_status(props.preset)
        icon = {"ready": "CHECKMARK", "none": "INFO", "no-torch": "ERROR"}.get(status.state, "ERROR")
        box.label(text=status.text, icon=icon)
        if status.state == "no-torch":
            return
        if it.model_building or it.model_status_text:
            box.prop(it, "model_progress", text="Build", slider=True)
            box.label(text=it.model_status_text, icon="TIME" if it.model_building else "INFO")
            if it.model_building:
                box.label(text="Esc cancels and keeps the finished samples")
        row = box.row(align=True)
        row.prop(it, "model_samples")
        row.operator("vdbforge.inverse_build", text="Rebuild Model" if status.state == "ready" else "Build Model")


def _model_status(preset_id: str):
    from ..core.errors import VDBForgeError
    from ..core.preset_library import resolve_preset
    from ..ml.inverse_store import ModelStatus, model_status

    if not preset_id:
        return ModelStatus("none", "Choose a preset")
    try:
        return model_status(resolve_preset(preset_id))
    except VDBForgeError as exc:
        return ModelStatus("unreadable", str(exc))


property_classes = (VDBForgeIterateProperties,)
classes = (VDBFORGE_PT_iterate,)
