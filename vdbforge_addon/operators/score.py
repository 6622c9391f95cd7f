"""Reference list editing and the Score button: the last preview renders scored in this Blender process."""

from pathlib import Path

import bpy
from bpy.props import CollectionProperty, StringProperty
from bpy_extras.io_utils import ImportHelper

from .. import __package__ as base_package
from ..core.errors import VDBForgeError
from ..core.scoring_settings import ScoringSettings

IMAGE_GLOB = "*.png;*.jpg;*.jpeg;*.tif;*.tiff;*.bmp;*.webp"


class VDBFORGE_OT_reference_add(bpy.types.Operator, ImportHelper):
    """Add reference images to compare the previews with"""

    bl_idname = "vdbforge.reference_add"
    bl_label = "Add Reference"
    bl_options = {"REGISTER", "UNDO"}

    filter_glob: StringProperty(default=IMAGE_GLOB, options={"HIDDEN"})
    files: CollectionProperty(type=bpy.types.OperatorFileListElement, options={"HIDDEN", "SKIP_SAVE"})

    def execute(self, context: bpy.types.Context) -> set[str]:
        folder = Path(self.filepath).parent
        paths = [folder / f.name for f in self.files if f.name] or [Path(self.filepath)]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            self.report({"ERROR"}, f"reference image not found: {missing[0]}")
            return {"CANCELLED"}
        score = context.scene.vdbforge.score
        for path in paths:
            score.references.add().filepath = str(path)
        score.active_reference = len(score.references) - 1
        return {"FINISHED"}


class VDBFORGE_OT_reference_remove(bpy.types.Operator):
    """Remove the selected reference image"""

    bl_idname = "vdbforge.reference_remove"
    bl_label = "Remove Reference"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return context.scene is not None and len(context.scene.vdbforge.score.references) > 0

    def execute(self, context: bpy.types.Context) -> set[str]:
        score = context.scene.vdbforge.score
        score.references.remove(min(score.active_reference, len(score.references) - 1))
        score.active_reference = max(0, min(score.active_reference, len(score.references) - 1))
        return {"FINISHED"}


class VDBFORGE_OT_score_previews(bpy.types.Operator):
    """Score the last preview renders against the references and the text target"""

    bl_idname = "vdbforge.score_previews"
    bl_label = "Score Previews"
    bl_options = {"REGISTER"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        props = context.scene.vdbforge
        try:
            report = _score(props, *_critic(context))
        except VDBForgeError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        _show(props.score, report)
        self.report({"INFO"}, f"Objective {report['objective']:.3f} ({', '.join(report['metrics_used'])})")
        return {"FINISHED"}


def _critic(context: bpy.types.Context) -> tuple:
    """(CriticConfig, api key) from the add-on preferences, or (None, None) when the critic is off."""
    addon = context.preferences.addons.get(base_package)
    prefs = addon.preferences if addon is not None else None
    if prefs is None or prefs.critic_provider == "none" or prefs.critic_weight <= 0:
        return None, None
    if not bpy.app.online_access:
        raise VDBForgeError("the critic needs network access: enable Allow Online Access in Preferences > System")
    if not prefs.critic_model:
        raise VDBForgeError("the critic needs a model name (Preferences > Add-ons > VDBForge)")
    from ..ml.critic import CriticConfig

    fields = {"provider": prefs.critic_provider, "model": prefs.critic_model, "weight": prefs.critic_weight}
    if prefs.critic_url:
        fields["base_url"] = prefs.critic_url
    return CriticConfig(**fields), (prefs.critic_api_key or None)


def _score(props: bpy.types.PropertyGroup, critic=None, api_key: str | None = None) -> dict:
    from ..ml.scoring import ScoreRequest, find_renders, score

    if not props.contact_sheet:
        raise VDBForgeError("no previews yet: render a preview first (Preview panel)")
    ui = props.score
    settings = ScoringSettings(weights={m: w for m, w in ui.weights().items() if w > 0} or {"ssim": 1.0})
    request = ScoreRequest(
        renders=find_renders(Path(bpy.path.abspath(props.contact_sheet)).parent),
        references=[Path(bpy.path.abspath(r.filepath)) for r in ui.references if r.filepath],
        text=ui.text_target.strip(),
        settings=settings,
        allow_missing_weights=ui.allow_missing_weights,
        critic=critic,
        critic_api_key=api_key,
    )
    return score(request)


def _show(ui: bpy.types.PropertyGroup, report: dict) -> None:
    ui.objective = report["objective"]
    ui.results.clear()
    best_for: dict[str, list[str]] = {}
    for ref in report["references"]:
        best_for.setdefault(ref["best_render"], []).append(Path(ref["path"]).name)
    if report["text"]:
        best_for.setdefault(report["text"]["best_render"], []).append("text")
    for render in report["renders"]:
        row = ui.results.add()
        row.image = Path(render["path"]).name
        row.frame, row.angle = render["frame"] or 0, render["angle"] or 0
        scores = [r["score"] for r in render["references"]] + ([render["text_score"]] if "text_score" in render else [])
        row.score = sum(scores) / len(scores) if scores else 0.0
        row.best_for = ", ".join(best_for.get(render["path"], []))
    ui.summary = "Metrics: " + ", ".join(report["metrics_used"])
    if "critic" in report:
        verdict = report["critic"].get("verdict")
        ui.summary += (
            f"\nCritic: {verdict['rating']}/10" if verdict else f"\nCritic failed: {report['critic']['error']}"
        )
    # One short line per skipped metric; the full reason (file names, folders) is in the CLI's `vdbforge models`.
    ui.skipped = "\n".join(f"{m} skipped: {reason.split(':')[0]}" for m, reason in report["skipped"].items())


class VDBFORGE_OT_models_fetch(bpy.types.Operator):
    """Download a scoring model's weights into the models folder (needs Allow Online Access)"""

    bl_idname = "vdbforge.models_fetch"
    bl_label = "Download Weights"
    bl_options = {"REGISTER"}

    name: StringProperty(name="Model", description="lpips-alex, lpips-vgg or clip:MODEL:TAG", default="lpips-alex")

    def execute(self, context: bpy.types.Context) -> set[str]:
        from ..ml.model_download import fetch_weights

        try:
            # Pressing the button is the consent; Blender's online access switch must be on as well.
            path = fetch_weights(self.name, consent=True)
        except VDBForgeError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"{self.name}: {path}")
        return {"FINISHED"}


classes = (
    VDBFORGE_OT_reference_add,
    VDBFORGE_OT_reference_remove,
    VDBFORGE_OT_score_previews,
    VDBFORGE_OT_models_fetch,
)
