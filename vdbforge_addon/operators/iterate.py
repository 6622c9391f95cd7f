"""Iterate: a match run from the panel (modal, a timer steps `MatchSession`), Apply Best and Save Best as Preset.

The targets are the References & Score panel's; the preset is the selected one with its edited tunables; the run
folder is `<user data>/matches/<preset>-<time>`. Headless (no window) `execute()` runs the same loop to the end.
"""

import json
import time
from collections.abc import Callable
from pathlib import Path

import bpy

from ..blender.scene_snapshot import append_snapshot_scene
from ..core.errors import PresetError, VDBForgeError
from ..core.match_controller import MatchController
from ..core.match_run import SNAPSHOT, RunDir
from ..core.match_session import MatchSession
from ..core.match_settings import MatchSettings
from ..core.match_setup import new_run
from ..core.parameters import apply_overrides, current_values, validate_preset
from ..core.paths import user_data_dir
from ..core.preset_library import resolve_preset
from ..core.preset_sharing import save_user_preset, shadows_builtin, user_preset_path
from ..core.scoring_settings import ScoringSettings
from ..core.worker_session import SessionState
from ..ml.start_point import start_point
from ..panels.properties import rebuild_tunables, tunable_overrides
from .build_bake import worker_command
from .preview_image import BEST_IMAGE, show_image
from .session_modal import SessionModalMixin


def start_match(context: bpy.types.Context, note: Callable[[str], None]) -> MatchSession:
    props = context.scene.vdbforge
    if not props.preset:
        raise PresetError("no preset is selected")
    it, score = props.iterate, props.score
    preset = apply_overrides(resolve_preset(props.preset), tunable_overrides(props))
    references = [Path(bpy.path.abspath(r.filepath)) for r in score.references if r.filepath]
    settings = MatchSettings(
        budget=it.budget,
        population=it.population,
        workers=it.workers,
        optimizer=it.optimizer,
        inner_budget=it.inner_budget,
        threshold=it.threshold,
        seed=it.seed,
        resolution=props.resolution,
        frames=(props.frame_start, props.frame_end),
        angles=props.angles,
        allow_missing_weights=score.allow_missing_weights,
        snapshots=it.snapshots,
    )
    weights = {m: w for m, w in score.weights().items() if w > 0} or {"ssim": 1.0}
    scoring = ScoringSettings.model_validate({**preset.scoring.model_dump(), "weights": weights})
    from ..cli_match import check_targets

    check_targets(references, score.text_target, scoring, settings.allow_missing_weights)
    run = RunDir(user_data_dir() / "matches" / f"{preset.id}-{time.strftime('%Y%m%d-%H%M%S')}")
    init = start_point(it.init, preset, references, note=note)
    config = new_run(run, preset, references, score.text_target.strip(), settings, scoring, init)
    command, extra_sys_path = worker_command()
    return MatchSession(MatchController(run, config, command=command, extra_sys_path=extra_sys_path))


class VDBFORGE_OT_match_run(SessionModalMixin, bpy.types.Operator):
    """Fit the selected preset to the references and text target: bakes candidates in worker processes (Esc cancels
    and keeps the finished candidates)"""

    bl_idname = "vdbforge.match_run"
    bl_label = "Match"
    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        props = getattr(context.scene, "vdbforge", None)
        return props is not None and not (props.running or props.iterate.running or props.iterate.model_building)

    def _make_session(self, context: bpy.types.Context) -> MatchSession:
        session = start_match(context, note=lambda message: self.report({"INFO"}, message))
        context.scene.vdbforge.iterate.run_dir = str(session.run_dir)
        return session

    def _show(self, context: bpy.types.Context, state: SessionState) -> None:
        it = context.scene.vdbforge.iterate
        it.running = state.running
        it.progress = state.fraction
        it.status_text = state.error or state.message
        result = state.result or {}
        if result.get("best_score") is not None:
            it.best_score = result["best_score"]
            if result.get("best_preview") and Path(result["best_preview"]).is_file():
                it.best_image = show_image(BEST_IMAGE, result["best_preview"])

    def _end(self, context: bpy.types.Context, state: SessionState) -> set[str]:
        context.scene.vdbforge.iterate.running = False
        from ..core.run_report import write_report

        write_report(self._session.run_dir)
        result = state.result or {}
        if result.get("best_score") is None:
            self.report({"ERROR"}, f"no candidate succeeded; see {self._session.run_dir / 'history.jsonl'}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"Best score {result['best_score']:.3f} in {result['best_dir']}")
        return {"FINISHED"} if state.finished else {"CANCELLED"}


def _best_preset(context: bpy.types.Context):
    run_dir = context.scene.vdbforge.iterate.run_dir
    path = Path(run_dir) / "best" / "preset.json"
    if not run_dir or not path.is_file():
        raise VDBForgeError("no best candidate yet: run a match first")
    return validate_preset(json.loads(path.read_text(encoding="utf-8")), str(path))


class VDBFORGE_OT_match_apply_best(bpy.types.Operator):
    """Set the scene's tunables, resolution and frames to the best candidate's and rebuild the scene"""

    bl_idname = "vdbforge.match_apply_best"
    bl_label = "Apply Best"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        props = context.scene.vdbforge
        try:
            best = _best_preset(context)
            if props.tunables_preset != props.preset:
                rebuild_tunables(props)
            values = current_values(best)
            for item in props.tunables:
                if item.path in values:
                    item.value = float(values[item.path])
            props.resolution = best.domain.resolution
            props.frame_start, props.frame_end = best.domain.frame_start, best.domain.frame_end
        except VDBForgeError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        return bpy.ops.vdbforge.build_bake(bake=False)


class VDBFORGE_OT_match_save_best(bpy.types.Operator):
    """Save the best candidate as a user preset '<preset>_matched' (numbered if that exists)"""

    bl_idname = "vdbforge.match_save_best"
    bl_label = "Save Best as Preset"
    bl_options = {"REGISTER"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        try:
            best = _best_preset(context)
            base = f"{best.id}_matched"[:60]
            preset_id = next(
                f"{base}{n or ''}" for n in range(1000) if not user_preset_path(f"{base}{n or ''}").exists()
            )
            if shadows_builtin(preset_id):
                raise PresetError(f"'{preset_id}' is a built-in preset id")
            data = {**best.model_dump(mode="json"), "id": preset_id}
            path = save_user_preset(validate_preset(data, f"preset '{preset_id}'"))
        except VDBForgeError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Saved the best candidate as preset '{preset_id}' ({path})")
        return {"FINISHED"}


class VDBFORGE_OT_match_open_snapshot(bpy.types.Operator):
    """Add the best candidate's saved scene to this file as a new scene and switch to it; your scene stays as it is"""

    bl_idname = "vdbforge.match_open_snapshot"
    bl_label = "Open Best Snapshot"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        run_dir = context.scene.vdbforge.iterate.run_dir
        path = Path(run_dir) / "best" / SNAPSHOT if run_dir else None
        if path is None or not path.is_file():
            self.report({"ERROR"}, "no best snapshot: run a match with Snapshots on")
            return {"CANCELLED"}
        try:
            score = json.loads((path.parent / "score.json").read_text(encoding="utf-8"))
            scene = append_snapshot_scene(path, f"VDBForge best #{score.get('index', '?')}")
        except (OSError, ValueError, VDBForgeError) as exc:
            self.report({"ERROR"}, f"cannot open {path}: {exc}")
            return {"CANCELLED"}
        if context.window is not None:
            context.window.scene = scene
        self.report({"INFO"}, f"Added scene '{scene.name}' from {path}")
        return {"FINISHED"}


classes = (
    VDBFORGE_OT_match_run,
    VDBFORGE_OT_match_apply_best,
    VDBFORGE_OT_match_save_best,
    VDBFORGE_OT_match_open_snapshot,
)
