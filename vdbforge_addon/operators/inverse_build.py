"""Build Model: the selected preset's dataset and image → parameters model as a background job (modal; Esc cancels
and keeps the finished samples). The session is `core.inverse_build.InverseBuildSession`; this stays thin."""

from pathlib import Path

import bpy

from ..core.dataset_job import DatasetSettings
from ..core.errors import PresetError
from ..core.inverse_build import InverseBuildSession
from ..core.parameters import apply_overrides
from ..core.paths import user_data_dir
from ..core.preset_library import resolve_preset
from ..core.worker_session import SessionState
from ..panels.properties import tunable_overrides
from .build_bake import worker_command
from .session_modal import SessionModalMixin


def start_build(context: bpy.types.Context) -> InverseBuildSession:
    from ..ml.inverse_store import model_path

    props = context.scene.vdbforge
    if not props.preset:
        raise PresetError("no preset is selected")
    preset = apply_overrides(resolve_preset(props.preset), tunable_overrides(props))
    it = props.iterate
    settings = DatasetSettings(
        n=it.model_samples,
        resolution=props.resolution,
        frames=(props.frame_start, props.frame_end),
        workers=it.workers,
    )
    command, extra_sys_path = worker_command()
    return InverseBuildSession(
        preset,
        user_data_dir() / "datasets",
        settings,
        Path(model_path(preset.id)),
        command=command,
        extra_sys_path=extra_sys_path,
    )


class VDBFORGE_OT_inverse_build(SessionModalMixin, bpy.types.Operator):
    """Bake and preview many parameter samples of the selected preset, then learn the image → parameters model that
    starts a match near the answer (Esc cancels; finished samples are kept and the next build continues them)"""

    bl_idname = "vdbforge.inverse_build"
    bl_label = "Build Model"
    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        props = getattr(context.scene, "vdbforge", None)
        return props is not None and not (props.running or props.iterate.running or props.iterate.model_building)

    def _make_session(self, context: bpy.types.Context) -> InverseBuildSession:
        return start_build(context)

    def _show(self, context: bpy.types.Context, state: SessionState) -> None:
        it = context.scene.vdbforge.iterate
        it.model_building = state.running
        it.model_progress = state.fraction
        it.model_status_text = state.error or state.message

    def _end(self, context: bpy.types.Context, state: SessionState) -> set[str]:
        context.scene.vdbforge.iterate.model_building = False
        if state.failed:
            self.report({"ERROR"}, state.error)
            return {"CANCELLED"}
        self.report({"INFO"}, state.message)
        return {"FINISHED"} if state.finished else {"CANCELLED"}


classes = (VDBFORGE_OT_inverse_build,)
